package agent

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/volume-plugin/driver"
)

// A restore into a new volume on a disk that fills up fails with the disk's error, and leaves
// no volume (nothing that looks restored) and no staging data behind; the same restore onto a
// disk with room then succeeds.
func TestARestoreThatRunsOutOfDiskLeavesNoVolumeBehind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a small tmpfs: run as root (make test does)")
	}
	ctx := context.Background()
	secrets, repoDir, src := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(secrets, "password"), []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWARMBACKUP_REPO", repoDir)
	t.Setenv("SWARMBACKUP_PASSWORD", "")
	for _, name := range []string{"a", "b"} {
		data := make([]byte, 3<<20)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repos := NewRepos(secrets)
	repo, err := repos.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: src, Scope: snapshot.ScopeCluster}, backup.Options{}); err != nil {
		t.Fatal(err)
	}

	small := t.TempDir()
	if err := unix.Mount("tmpfs", small, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(small, unix.MNT_DETACH) })
	log := slog.New(slog.DiscardHandler)
	restoreInto := func(dataDir string) (*driver.Driver, agentapi.Job) {
		d, err := driver.New(dataDir, t.TempDir(), log)
		if err != nil {
			t.Fatal(err)
		}
		a := New(ctx, d, repos, NewEngine(filepath.Join(t.TempDir(), "no-engine.sock")), nil, log)
		job, err := a.Restore(agentapi.RestoreRequest{Volume: "db", Target: "db-copy"})
		if err != nil {
			t.Fatal(err)
		}
		job, _ = a.Job(ctx, job.ID, agentapi.MaxJobWait)
		return d, job
	}

	d, job := restoreInto(small)
	if job.State != agentapi.JobFailed || !strings.Contains(job.Error, "no space left on device") {
		t.Fatalf("the restore onto a full disk: %s %q, want it failed for want of space", job.State, job.Error)
	}
	if d.Exists("db-copy") {
		t.Error("the failed restore left a volume db-copy, which would look restored")
	}
	var left []string
	_ = filepath.WalkDir(small, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && !strings.HasSuffix(p, ".json") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("the failed restore left data behind: %v", left)
	}

	d, job = restoreInto(t.TempDir())
	if job.State != agentapi.JobDone || !d.Exists("db-copy") {
		t.Fatalf("the restore onto a disk with room: %s %q", job.State, job.Error)
	}
}
