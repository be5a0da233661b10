package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// The data set, about 1 GiB: large random files (incompressible, like media or encrypted
// dumps), log-like text (compressible), and thousands of 4 KiB files (like a config tree
// or a mail spool). Generation is deterministic, so every tool sees the same bytes.
const (
	largeFiles   = 4
	largeSize    = 128 << 20
	logFiles     = 24
	logSize      = 16 << 20
	smallFiles   = 30000
	smallSize    = 4 << 10
	smallPerDir  = 500
	datasetBytes = largeFiles*largeSize + logFiles*logSize + smallFiles*smallSize
)

func generate(dir string, seed uint64) error {
	rng := rand.New(rand.NewChaCha8(seedBytes(seed)))
	for i := range largeFiles {
		if err := writeRandom(filepath.Join(dir, "large", fmt.Sprintf("blob%02d.bin", i)), rng, largeSize); err != nil {
			return err
		}
	}
	for i := range logFiles {
		if err := writeLog(filepath.Join(dir, "logs", fmt.Sprintf("app%02d.log", i)), rng, logSize, 0); err != nil {
			return err
		}
	}
	for i := range smallFiles {
		p := filepath.Join(dir, "small", fmt.Sprintf("d%03d", i/smallPerDir), fmt.Sprintf("f%05d", i))
		if err := writeRandom(p, rng, smallSize); err != nil {
			return err
		}
	}
	return nil
}

// mutate changes about 1% of the data set, the way a day of use does: logs grow, a few
// small files are rewritten, a region of one large file is overwritten, a new file appears.
// It returns the number of bytes changed or added.
func mutate(dir string, round uint64) (int64, error) {
	rng := rand.New(rand.NewChaCha8(seedBytes(1000 + round)))
	var changed int64
	for i := range 4 {
		p := filepath.Join(dir, "logs", fmt.Sprintf("app%02d.log", (int(round)*4+i)%logFiles))
		if err := writeLog(p, rng, 1<<20, os.O_APPEND); err != nil {
			return 0, err
		}
		changed += 1 << 20
	}
	for i := range 200 {
		n := (int(round)*200 + i*137) % smallFiles
		p := filepath.Join(dir, "small", fmt.Sprintf("d%03d", n/smallPerDir), fmt.Sprintf("f%05d", n))
		if err := writeRandom(p, rng, smallSize); err != nil {
			return 0, err
		}
		changed += smallSize
	}
	f, err := os.OpenFile(filepath.Join(dir, "large", fmt.Sprintf("blob%02d.bin", round%largeFiles)), os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	region := make([]byte, 2<<20)
	fillRandom(rng, region)
	_, err = f.WriteAt(region, int64(40<<20+round*(8<<20)))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	changed += int64(len(region))
	p := filepath.Join(dir, "new", fmt.Sprintf("dump-%d.bin", round))
	if err := writeRandom(p, rng, 4<<20); err != nil {
		return 0, err
	}
	return changed + 4<<20, nil
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func writeRandom(path string, rng *rand.Rand, size int) error {
	buf := make([]byte, size)
	fillRandom(rng, buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf, 0o644)
}

var (
	levels   = []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	messages = []string{
		"request served", "cache miss for key", "connection accepted from", "slow query detected",
		"retrying upstream", "user logged in", "job finished", "healthcheck ok",
	}
)

func writeLog(path string, rng *rand.Rand, size int, flag int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|flag|truncUnless(flag), 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, size+256)
	for len(buf) < size {
		buf = fmt.Appendf(buf, "2026-11-%02dT%02d:%02d:%02d.%03dZ %s [worker-%d] %s id=%08x latency=%dms\n",
			1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000),
			levels[rng.IntN(len(levels))], rng.IntN(16), messages[rng.IntN(len(messages))], rng.Uint32(), rng.IntN(900))
	}
	_, err = f.Write(buf[:size])
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func truncUnless(flag int) int {
	if flag&os.O_APPEND != 0 {
		return 0
	}
	return os.O_TRUNC
}
