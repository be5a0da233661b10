package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// The scale data set: many small files in a deep tree, and a few large ones. Leaf
// directories hold scaleLeaf files each, three levels of scaleFanout below the root.
const (
	scaleLeaf       = 100
	scaleFanout     = 24
	scaleLargeFiles = 4
	scaleLargeSize  = 64 << 20
	// scaleImageBytes is the file system each restore writes into: sparse, so only what is
	// written takes space.
	scaleImageBytes = 64 << 30
)

func scalePath(dir string, i int) string {
	leaf := i / scaleLeaf
	return filepath.Join(dir, "tree",
		fmt.Sprintf("a%02d", leaf/(scaleFanout*scaleFanout)%100), fmt.Sprintf("b%02d", leaf/scaleFanout%scaleFanout),
		fmt.Sprintf("c%02d", leaf%scaleFanout), fmt.Sprintf("f%07d.txt", i))
}

// scaleSize is a small file's size: mostly under 1 KiB, some up to 8 KiB.
func scaleSize(rng *rand.Rand) int {
	if rng.IntN(10) == 0 {
		return 1024 + rng.IntN(7<<10)
	}
	return 64 + rng.IntN(960)
}

// generateScale writes the scale data set: `bench scale-gen DIR N`.
func generateScale(dir string, files int) error {
	rng := rand.New(rand.NewChaCha8(seedBytes(42)))
	for i := range scaleLargeFiles {
		if err := writeRandom(filepath.Join(dir, "large", fmt.Sprintf("blob%d.bin", i)), rng, scaleLargeSize); err != nil {
			return err
		}
	}
	buf := make([]byte, 8<<10)
	for i := range files {
		p := scalePath(dir, i)
		if i%scaleLeaf == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		b := buf[:scaleSize(rng)]
		fillText(rng, b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// fillText fills b with text-like bytes: small files of configs, mail, sources compress.
func fillText(rng *rand.Rand, b []byte) {
	const words = "the of and config value true false user id name path 0 1 2 3 4 5 6 7 8 9 \n"
	for i := range b {
		b[i] = words[rng.IntN(len(words))]
	}
}

// mutateScale changes 1% of the small files, the way a day of use does: rewritten, new and
// deleted files spread over the tree: `bench scale-mutate DIR N`.
func mutateScale(dir string, files int) error {
	rng := rand.New(rand.NewChaCha8(seedBytes(4242)))
	buf := make([]byte, 8<<10)
	for n := range files / 100 {
		i := rng.IntN(files)
		p := scalePath(dir, i)
		switch n % 4 {
		case 0:
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		case 1:
			p = strings.TrimSuffix(p, ".txt") + ".new"
			fallthrough
		default:
			b := buf[:scaleSize(rng)]
			fillText(rng, b)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// scale runs the million-file comparison: `bench scale [-files N] [-out FILE]`. One run:
// full backup, 1% changed, incremental, restore, for swarmbackup, restic and kopia.
func scale(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	files := fs.Int("files", 1_000_000, "small files in the data set")
	out := fs.String("out", "", "a file to append the report to")
	only := fs.String("peers", "swarmbackup,restic,kopia", "the tools to run, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkReport(*out); err != nil {
		return err
	}
	data := filepath.Join(e.work, "scale-data")
	if err := os.RemoveAll(e.work); err != nil {
		return err
	}
	defer os.RemoveAll(e.work)
	fmt.Fprintf(os.Stderr, "bench: generating %d small files and %d large ones in %s\n", *files, scaleLargeFiles, data)
	if _, err := runTimed(self("scale-gen", data, fmt.Sprint(*files)), os.Environ()); err != nil {
		return err
	}
	var ps []peer
	for _, p := range peers(e) {
		if slices.Contains(strings.Split(*only, ","), p.name) {
			ps = append(ps, p)
		}
	}
	client, err := e.client()
	if err != nil {
		return err
	}
	res := map[string]*results{}
	buckets := map[string]string{}
	for _, p := range ps {
		res[p.name] = &results{}
		b := fmt.Sprintf("bench-scale-%d-%s", time.Now().Unix(), p.name)
		buckets[p.name] = b
		if err := client.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
		defer removeBucket(ctx, client, b)
		for _, argv := range initOf(p, e, b) {
			if _, err := runTimed(argv, e.peerEnv(p.name, b, 0)); err != nil {
				return fmt.Errorf("%s init: %w", p.name, err)
			}
		}
	}
	step := func(what string, cmds func(p peer, b string) [][]string, keep func(*results, sample)) error {
		for _, p := range ps {
			settle()
			s, err := runAll(cmds(p, buckets[p.name]), e.peerEnv(p.name, buckets[p.name], 0))
			if err != nil {
				return fmt.Errorf("%s %s: %w", p.name, what, err)
			}
			keep(res[p.name], s)
			fmt.Fprintf(os.Stderr, "bench: %-12s %-8s %7.1fs %5d MiB RSS\n", p.name, what, s.seconds, s.rssKiB>>10)
		}
		return nil
	}
	if err := step("full", func(p peer, b string) [][]string { return p.backupCmds(e, b, data) },
		func(r *results, s sample) { r.full = append(r.full, s) }); err != nil {
		return err
	}
	if _, err := runTimed(self("scale-mutate", data, fmt.Sprint(*files)), os.Environ()); err != nil {
		return err
	}
	if err := step("incr", func(p peer, b string) [][]string { return p.backupCmds(e, b, data) },
		func(r *results, s sample) { r.incr = append(r.incr, s) }); err != nil {
		return err
	}
	for _, p := range ps {
		s, err := restoreStep(p, e, buckets[p.name], e.peerEnv(p.name, buckets[p.name], 0), scaleImageBytes, 2*(*files)+1000,
			func(dst string) error { return sameShape(data, p.restoredRoot(dst, data)) })
		if err != nil {
			return err
		}
		res[p.name].restore = append(res[p.name].restore, s)
		fmt.Fprintf(os.Stderr, "bench: %-12s %-8s %7.1fs %5d MiB RSS\n", p.name, "restore", s.seconds, s.rssKiB>>10)
	}

	line := scaleLine(*files, ps, res)
	var b strings.Builder
	fmt.Fprintf(&b, "\n## A million files\n\n`make bench-scale`, %s, on %s: %d small files (64 B to 8 KiB of text, %d per directory, four levels deep) and %d random files of %d MiB; then 1%% of the small files rewritten, added or deleted. One run (each step takes minutes; the machine is shared and noisy); the tools take turns, with writeback settled before each step; restores are checked by file count and sizes.\n\n",
		time.Now().UTC().Format("2006-01-02"), cpuModel(), *files, scaleLeaf, scaleLargeFiles, scaleLargeSize>>20)
	b.WriteString("| tool | full backup | incremental | restore | peak RSS |\n|---|---|---|---|---|\n")
	for _, p := range ps {
		r := res[p.name]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d MiB |\n", p.name, spread(r.full), spread(r.incr), spread(r.restore), peakRSS(r)>>10)
	}
	fmt.Fprintf(&b, "\nRatios are the fastest peer's time divided by swarmbackup's; peer_rss_mib is the lowest peer's peak.\n\n```\n%s\n```\n", line)
	if err := appendReport(*out, b.String()); err != nil {
		return err
	}
	fmt.Println(line)
	return nil
}

// scaleLine is the run's final line: each ratio is the fastest other tool's time over ours,
// "na" where either side did not run (PEERS left one out).
func scaleLine(files int, ps []peer, res map[string]*results) string {
	var others []string
	var lowest *results
	for _, p := range ps {
		if p.name == "swarmbackup" {
			continue
		}
		others = append(others, p.name)
		if r := res[p.name]; lowest == nil || peakRSS(r) < peakRSS(lowest) {
			lowest = r
		}
	}
	return fmt.Sprintf("scale: files=%d full_vs_best=%s incr_vs_best=%s restore_vs_best=%s rss_mib=%s peer_rss_mib=%s", files,
		speedup(res, others, func(r *results) []sample { return r.full }),
		speedup(res, others, func(r *results) []sample { return r.incr }),
		speedup(res, others, func(r *results) []sample { return r.restore }),
		peakMiB(res["swarmbackup"]), peakMiB(lowest))
}

// sameShape checks that every regular file below want exists below got with its size, and
// compares the content of one file in a hundred: hashing a million files would take longer
// than the restore.
func sameShape(want, got string) error {
	n := 0
	return filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.Stat(filepath.Join(got, rel))
		if err != nil {
			return err
		}
		if a.Size() != b.Size() {
			return fmt.Errorf("%s: %d bytes, want %d", rel, b.Size(), a.Size())
		}
		if n++; n%100 == 0 {
			x, err := fileHash(p)
			if err != nil {
				return err
			}
			y, err := fileHash(filepath.Join(got, rel))
			if err != nil {
				return err
			}
			if x != y {
				return fmt.Errorf("%s differs", rel)
			}
		}
		return nil
	})
}
