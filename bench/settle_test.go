package main

import (
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
