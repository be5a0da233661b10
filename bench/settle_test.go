package main

import (
	"os"
	"slices"
	"testing"
)

func TestEachRunStartsWithTheNextPeer(t *testing.T) {
	ps := []string{"ours", "tar", "restic", "kopia"}
	for r, want := range [][]string{ps, {"tar", "restic", "kopia", "ours"}, {"restic", "kopia", "ours", "tar"}, {"kopia", "ours", "tar", "restic"}, ps} {
		if got := rotated(ps, r); !slices.Equal(got, want) {
			t.Errorf("run %d: %v, want %v", r, got, want)
		}
	}
}

func TestTimesShowTheirSpreadBesideTheMedian(t *testing.T) {
	got := spread([]sample{{seconds: 5.4}, {seconds: 4.9}, {seconds: 12.2}})
	if got != "5.40 s (4.90-12.20)" {
		t.Errorf("spread: %q", got)
	}
	if got := spread([]sample{{seconds: 3}}); got != "3.00 s" {
		t.Errorf("one sample: %q", got)
	}
}

func TestDirtyPagesAreRead(t *testing.T) {
	if _, err := dirtyBytes(); err != nil {
		t.Fatal(err)
	}
}

func TestBusyTimeLeavesOutIdleIOWaitAndSteal(t *testing.T) {
	busy, total, err := parseCPULine("cpu  100 5 20 1000 30 2 3 40 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if busy != 130 || total != 1200 {
		t.Errorf("busy %d of %d, want 130 of 1200", busy, total)
	}
	if _, _, err := parseCPULine("intr 1 2 3"); err == nil {
		t.Error("a line that is not the machine's was read")
	}
	if _, _, err := cpuTimes(); err != nil {
		t.Fatal(err)
	}
}

func TestAMissingReportFileIsRefusedBeforeTheRun(t *testing.T) {
	dir := t.TempDir()
	if err := checkReport(dir + "/missing.md"); err == nil {
		t.Error("a report file that does not exist was accepted")
	}
	existing := dir + "/BENCHMARKS.md"
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkReport(existing); err != nil {
		t.Error(err)
	}
	if err := checkReport(""); err != nil {
		t.Error(err)
	}
}
