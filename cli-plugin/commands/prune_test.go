package commands

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// prune says what it repacked, and what it kept partly used when --max-unused allows it.
func TestPruneSaysWhatItRepacked(t *testing.T) {
	repo := testRepo(t)
	dir := t.TempDir()
	for i := range 20 {
		data := make([]byte, 64<<10)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		if round == 1 {
			// Files go to the two data packs in turn: each loses half.
			for i := 0; i < 20; i++ {
				if i%4 < 2 {
					_ = os.Remove(filepath.Join(dir, fmt.Sprintf("f%02d", i)))
				}
			}
		}
		if _, err := backup.Run(context.Background(), repo, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: dir}, backup.Options{Workers: 1}); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := run(t, &fakeEngine{}, "prune", "--keep-last", "1", "--max-unused", "unlimited")
	if err != nil || !regexp.MustCompile(`kept 2 partly used pack\(s\) whole, 640(\.\d+)?KiB of them unneeded \(within --max-unused\)`).MatchString(out) {
		t.Fatalf("prune --max-unused unlimited printed %q, %v", out, err)
	}
	out, _, err = run(t, &fakeEngine{}, "prune", "--keep-last", "1")
	if err != nil || !regexp.MustCompile(`removed 2 partly used pack\(s\), 1\.2\d*MiB, after copying the 640(\.\d+)?KiB still needed into new packs`).MatchString(out) {
		t.Fatalf("prune printed %q, %v", out, err)
	}
}
