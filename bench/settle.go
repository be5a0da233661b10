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
// peer's gigabyte of dirty pages is not written out on the next peer's clock; then it waits
// for the processors to go quiet, since MinIO deletes removed buckets in the background.
func settle() {
	syscall.Sync()
	deadline := time.Now().Add(time.Minute)
	for {
		if dirty, err := dirtyBytes(); err != nil || dirty < 16<<20 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "bench: writeback did not settle within a minute")
			break
		}
		syscall.Sync()
	}
	waitQuiet(30 * time.Second)
}

// quietBusy is the share of processor time below which the machine counts as quiet.
const quietBusy = 0.10

// waitQuiet waits until the processors were busy less than quietBusy of a quarter second,
// or until max has passed.
func waitQuiet(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		b0, t0, err := cpuTimes()
		time.Sleep(250 * time.Millisecond)
		b1, t1, err1 := cpuTimes()
		if err != nil || err1 != nil || t1 <= t0 || float64(b1-b0)/float64(t1-t0) < quietBusy {
			return
		}
	}
	fmt.Fprintf(os.Stderr, "bench: the processors did not go quiet within %s\n", max)
}

// cpuTimes reads the machine's busy and total processor time from /proc/stat.
func cpuTimes() (busy, total uint64, err error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	return parseCPULine(line)
}

// parseCPULine reads the machine's line of /proc/stat: user nice system idle iowait irq
// softirq steal ... Idle, iowait and steal (time another guest had) are not busy.
func parseCPULine(line string) (busy, total uint64, err error) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, f := range fields[1:9] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i != 3 && i != 4 && i != 7 {
			busy += v
		}
	}
	return busy, total, nil
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
