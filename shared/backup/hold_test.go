package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// A hold copies the changed files aside while the volume's users are held; with nobody to
// hold, it copies nothing and the live tree is backed up all the same.
func TestAHoldCapturesOnlyWhenSomebodyIsHeld(t *testing.T) {
	for _, held := range []bool{true, false} {
		t.Run(map[bool]string{true: "users held", false: "nobody to hold"}[held], func(t *testing.T) {
			ctx := context.Background()
			src, captureDir := t.TempDir(), t.TempDir()
			fill(t, src, 3, 64<<10)
			be, err := localfs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			repo, err := repository.Init(ctx, be, "pw")
			if err != nil {
				t.Fatal(err)
			}
			sn, err := backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: src}, backup.Options{
				CaptureDir: captureDir,
				Hold: func(_ context.Context, capture func() error) (*snapshot.Quiesce, error) {
					if !held {
						return &snapshot.Quiesce{Mode: "pause"}, nil
					}
					return &snapshot.Quiesce{Mode: "pause", Containers: 1}, capture()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if sn.Stats.Files != 3 {
				t.Errorf("the snapshot holds %d files, want 3", sn.Stats.Files)
			}
			var copied int
			_ = filepath.WalkDir(captureDir, func(_ string, d os.DirEntry, _ error) error {
				if d != nil && d.Type().IsRegular() {
					copied++
				}
				return nil
			})
			if want := map[bool]int{true: 3, false: 0}[held]; copied != want {
				t.Errorf("%d files copied aside, want %d", copied, want)
			}
		})
	}
}
