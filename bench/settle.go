package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// settle flushes what earlier steps wrote and waits for the writeback to end, so that one
// peer's gigabyte of dirty pages is not written out on the next peer's clock.
func settle() {
	syscall.Sync()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if dirty, err := dirtyBytes(); err != nil || dirty < 16<<20 {
			return
		}
		syscall.Sync()
	}
	fmt.Fprintln(os.Stderr, "bench: writeback did not settle within a minute")
}

// dirtyBytes is what the kernel holds to write out: Dirty plus Writeback from /proc/meminfo.
func dirtyBytes() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "Dirty" && k != "Writeback") {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0, err
		}
		total += kib << 10
	}
	return total, sc.Err()
}

// rotated is the peers in the order of run r: each run starts with another peer, so that no
// peer always runs right after the same neighbour, or first on a cold machine.
func rotated[T any](ps []T, r int) []T {
	if len(ps) == 0 {
		return ps
	}
	k := r % len(ps)
	return append(append([]T(nil), ps[k:]...), ps[:k]...)
}
