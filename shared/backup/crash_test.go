package backup_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/checker"
	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// TestHelperProcess is not a test: the crash tests run it as a child and kill it.
func TestHelperProcess(t *testing.T) {
	op := os.Getenv("CRASH_HELPER")
	if op == "" {
		t.Skip("run by the crash tests")
	}
	ctx := context.Background()
	repo := openRepo(t, os.Getenv("CRASH_REPO"))
	var err error
	switch op {
	case "backup":
		_, err = backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "v", Path: os.Getenv("CRASH_SRC")}, backup.Options{})
	case "prune":
		_, err = pruner.Prune(ctx, repo, pruner.Options{Policy: retention.Policy{Last: 1}})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func openRepo(t testing.TB, dir string) *repository.Repository {
	t.Helper()
	be, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.OpenOrInit(context.Background(), be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fill(t *testing.T, dir string, files, size int) {
	t.Helper()
	for i := range files {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startHelper starts the helper doing op; the channel receives how it ended.
func startHelper(t *testing.T, op, repoDir, src string) (*exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "CRASH_HELPER="+op, "CRASH_REPO="+repoDir, "CRASH_SRC="+src)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, done
}

// killAtRandom starts the helper and kills it with SIGKILL after up to maxDelay; it
// reports whether the helper finished first.
func killAtRandom(t *testing.T, op, repoDir, src string, maxDelay time.Duration) bool {
	t.Helper()
	cmd, done := startHelper(t, op, repoDir, src)
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(maxDelay)))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s helper failed on its own: %v", op, err)
		}
		return true
	case <-time.After(time.Duration(n.Int64())):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return false
	}
}

// runToEnd runs the helper without killing it: the set-up before the kills, and the run
// after them that must succeed.
func runToEnd(t *testing.T, op, repoDir, src string) {
	t.Helper()
	cmd, done := startHelper(t, op, repoDir, src)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s helper failed: %v", op, err)
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		t.Fatalf("%s helper did not end within 2 minutes", op)
	}
}

// intact checks what a user checks after a crash: verify passes and every listed snapshot
// restores.
func intact(t *testing.T, repoDir string) []*snapshot.Snapshot {
	t.Helper()
	ctx := context.Background()
	repo := openRepo(t, repoDir)
	rep, err := checker.Check(ctx, repo, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify after a kill: %v", rep.Problems)
	}
	list, problems, err := snapshot.List(ctx, repo)
	if err != nil || len(problems) > 0 {
		t.Fatalf("list after a kill: %v %v", err, problems)
	}
	return list
}

func TestKilledBackupsLeaveNoPartialSnapshot(t *testing.T) {
	src, repoDir := t.TempDir(), t.TempDir()
	fill(t, src, 40, 1<<20)
	completed := 0
	for i := range 8 {
		finished := killAtRandom(t, "backup", repoDir, src, 600*time.Millisecond)
		list := intact(t, repoDir)
		// A run killed after recording its snapshot (while letting go of its lock) counts
		// as complete: its record is whole, as verify just showed.
		switch {
		case finished && len(list) != completed+1,
			!finished && len(list) != completed && len(list) != completed+1:
			t.Fatalf("round %d: %d snapshots listed after %d complete backups (this one finished: %v)", i, len(list), completed, finished)
		}
		completed = len(list)
		fill(t, filepath.Join(src, fmt.Sprintf("round%d", i)), 2, 100<<10)
	}
	// The next run succeeds, killed runs' locks notwithstanding.
	runToEnd(t, "backup", repoDir, src)
	if got := intact(t, repoDir); len(got) != completed+1 {
		t.Fatalf("%d snapshots after the final backup, want %d", len(got), completed+1)
	}
}

func TestKilledPrunesLoseNothingKept(t *testing.T) {
	src, repoDir := t.TempDir(), t.TempDir()
	for i := range 4 {
		fill(t, filepath.Join(src, fmt.Sprintf("gen%d", i)), 8, 512<<10)
		runToEnd(t, "backup", repoDir, src)
	}
	newest := intact(t, repoDir)[3].ID
	for range 6 {
		killAtRandom(t, "prune", repoDir, src, 300*time.Millisecond)
		list := intact(t, repoDir)
		found := false
		for _, sn := range list {
			found = found || sn.ID == newest
		}
		if !found {
			t.Fatal("a killed prune lost the snapshot it was to keep")
		}
	}
	runToEnd(t, "prune", repoDir, src)
	if list := intact(t, repoDir); len(list) != 1 || list[0].ID != newest {
		t.Fatalf("after the final prune: %d snapshots", len(list))
	}
}

// A prune killed while it repacks (copying the needed part of packs into new ones,
// rewriting the index, removing the old packs) loses nothing kept, and the next prune
// finishes the job: the bucket ends at about what the kept snapshot holds. Each round
// deletes files and backs up again, so that every prune has packs to repack.
func TestKilledRepacksLoseNothingKept(t *testing.T) {
	src, repoDir := t.TempDir(), t.TempDir()
	fill(t, src, 48, 256<<10)
	var newest *snapshot.Snapshot
	for round := range 6 {
		for i := round; i < 48; i += 6 {
			_ = os.Remove(filepath.Join(src, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%d", i)))
		}
		fill(t, filepath.Join(src, fmt.Sprintf("round%d", round)), 2, 256<<10)
		runToEnd(t, "backup", repoDir, src)
		list := intact(t, repoDir)
		newest = list[len(list)-1]
		finished := killAtRandom(t, "prune", repoDir, src, 600*time.Millisecond)
		t.Logf("round %d: the prune was killed: %v", round, !finished)
		list = intact(t, repoDir)
		if !slices.ContainsFunc(list, func(sn *snapshot.Snapshot) bool { return sn.ID == newest.ID }) {
			t.Fatalf("round %d: a prune killed while repacking lost the snapshot it was to keep", round)
		}
	}
	runToEnd(t, "prune", repoDir, src)
	list := intact(t, repoDir)
	if len(list) != 1 || list[0].ID != newest.ID {
		t.Fatalf("after the final prune: %d snapshots", len(list))
	}
	packs, err := openRepo(t, repoDir).StoredPacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	for _, size := range packs {
		stored += size
	}
	if needed := int64(newest.Stats.Bytes); stored > needed*11/10 {
		t.Fatalf("after the final prune the packs take %d bytes; the kept snapshot holds %d", stored, needed)
	}
}
