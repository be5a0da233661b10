package backup_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/checker"
	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// A worker's key (the volumes role) backs up and restores volumes, but neither reads the
// control plane's backup (the swarm's secrets) nor makes one that a full key accepts, and
// its prune leaves the control plane's data alone.
func TestAWorkersKeyCannotReadOrForgeControlPlaneBackups(t *testing.T) {
	ctx := context.Background()
	be, full := newRepo(t, "operator")
	swarmDir := writeTree(t, map[string]string{"raft/wal": "the raft key and every secret", "certificates/swarm-node.key": "node key"})
	control, err := backup.Run(ctx, full, backup.Source{Kind: snapshot.KindSwarm, Name: "cluster1", Path: swarmDir, Host: "manager1"}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := full.AddKey(ctx, "operator", "worker", repository.RoleVolumes, ""); err != nil {
		t.Fatal(err)
	}
	worker, err := repository.Open(ctx, be, "worker")
	if err != nil {
		t.Fatal(err)
	}
	if worker.Role() != repository.RoleVolumes {
		t.Fatalf("the worker's key has role %q", worker.Role())
	}

	// It sees no control-plane backup, reads none of it, and cannot make one.
	if list, problems, err := snapshot.List(ctx, worker); err != nil || len(list) != 0 || len(problems) != 0 {
		t.Fatalf("the worker lists %d snapshots, problems %v, %v", len(list), problems, err)
	}
	if _, err := snapshot.Load(ctx, worker, control.ID); !errors.Is(err, repository.ErrNoControlKey) {
		t.Fatalf("the worker loads the control plane's record: %v", err)
	}
	if _, err := worker.LoadBlob(ctx, repository.TreeBlob, control.Tree); !errors.Is(err, repository.ErrNoControlKey) {
		t.Fatalf("the worker reads the control plane's tree: %v", err)
	}
	if _, err := backup.Run(ctx, worker, backup.Source{Kind: snapshot.KindSwarm, Name: "cluster1", Path: swarmDir}, backup.Options{}); !errors.Is(err, repository.ErrNoControlKey) {
		t.Fatalf("the worker backs up a control plane: %v", err)
	}

	// Its own volumes it backs up and restores.
	volDir := writeTree(t, map[string]string{"pgdata/base": "rows", "pgdata/wal": "more rows"})
	vol := func() *snapshot.Snapshot {
		t.Helper()
		sn, err := backup.Run(ctx, worker, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: volDir, Host: "worker1"}, backup.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	first := vol()
	dst := filepath.Join(t.TempDir(), "db")
	if _, err := restorer.Restore(ctx, worker, first.Tree, dst, restorer.Options{}); err != nil {
		t.Fatalf("the worker restores its volume: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "pgdata", "wal")); string(b) != "more rows" {
		t.Fatalf("restored %q", b)
	}

	// A control-plane record it seals, pointing at data it chose, is refused as forged.
	forged := &snapshot.Snapshot{Time: time.Now().UTC(), Kind: snapshot.KindSwarm, Source: "cluster1", Hostname: "manager1", Tree: first.Tree}
	if err := snapshot.Save(ctx, worker, forged); !errors.Is(err, repository.ErrNoControlKey) {
		t.Fatalf("the worker saves a control-plane record: %v", err)
	}
	// A hostile worker seals one itself, with the key it has.
	if forged.ID, err = worker.SaveFile(ctx, repository.SnapshotFile, forged); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Load(ctx, full, forged.ID); !errors.Is(err, snapshot.ErrForged) {
		t.Fatalf("a full key loads the forged control-plane record: %v", err)
	}
	list, problems, err := snapshot.List(ctx, full)
	if err != nil || len(list) != 2 || len(problems) != 1 || !errors.Is(problems[0], snapshot.ErrForged) {
		t.Fatalf("a full key lists %d snapshots with problems %v, %v", len(list), problems, err)
	}

	// The worker's prune forgets its own snapshots and leaves data to a full key.
	if err := os.WriteFile(filepath.Join(volDir, "pgdata", "wal"), []byte("newer rows"), 0o644); err != nil {
		t.Fatal(err)
	}
	vol()
	plan, err := pruner.Prune(ctx, worker, pruner.Options{Policy: retention.Policy{Last: 1}, Kind: snapshot.KindVolume})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Forget) != 1 || !plan.DataLeft || plan.PacksRemoved != 0 {
		t.Fatalf("the worker's prune forgot %d, removed %d packs, data left %v", len(plan.Forget), plan.PacksRemoved, plan.DataLeft)
	}
	// A full prune removes the forged record and what no backup needs; the control plane's
	// backup stays whole.
	plan, err = pruner.Prune(ctx, full, pruner.Options{Policy: retention.Policy{Last: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Forged) != 1 || plan.Forged[0] != forged.ID.Short() {
		t.Fatalf("the full prune removed forged records %v", plan.Forged)
	}
	reopened, err := repository.Open(ctx, be, "operator")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := checker.Check(ctx, reopened, checker.Options{ReadData: true})
	if err != nil || !rep.OK() || rep.Snapshots != 2 {
		t.Fatalf("verify with the full key after both prunes: %v %+v", err, rep)
	}
	dst = filepath.Join(t.TempDir(), "swarm")
	if _, err := restorer.Restore(ctx, reopened, control.Tree, dst, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "raft", "wal")); string(b) != "the raft key and every secret" {
		t.Fatalf("the control plane's backup restored %q", b)
	}
	// And the worker's verify passes without reading what it cannot.
	worker, err = repository.Open(ctx, be, "worker")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := checker.Check(ctx, worker, checker.Options{ReadData: true}); err != nil || !rep.OK() {
		t.Fatalf("verify with the worker's key: %v %+v", err, rep)
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// newRepo initialises a repository in a temporary directory.
func newRepo(t *testing.T, password string) (storage.Backend, *repository.Repository) {
	t.Helper()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Init(context.Background(), be, password)
	if err != nil {
		t.Fatal(err)
	}
	return be, r
}
