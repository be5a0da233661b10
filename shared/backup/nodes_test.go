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
)

// Each node's key (the volumes role, for one node) reads and writes its node's own volumes
// and the cluster-scoped ones, which follow their tasks anywhere; it reads no other node's
// own volume and makes no snapshot another node would restore. A full key reads them all.
func TestANodesKeyCannotReadOrForgeAnotherNodesVolumes(t *testing.T) {
	ctx := context.Background()
	be, full := newRepo(t, "operator")
	for node, password := range map[string]string{"nodeA": "a", "nodeB": "b"} {
		if err := full.AddKey(ctx, "operator", password, repository.RoleVolumes, node); err != nil {
			t.Fatal(err)
		}
	}
	if err := full.AddKey(ctx, "operator", "any worker", repository.RoleVolumes, ""); err != nil {
		t.Fatal(err)
	}
	open := func(password string) *repository.Repository {
		t.Helper()
		r, err := repository.Open(ctx, be, password)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := open("a"), open("b")
	if a.Role() != repository.RoleVolumes || a.Node() != "nodeA" {
		t.Fatalf("node A's key: role %s, node %q", a.Role(), a.Node())
	}
	own := func(node string) backup.Source {
		dir := writeTree(t, map[string]string{"pgdata/base": "rows of " + node})
		return backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: dir, Host: node, Node: node, Scope: snapshot.ScopeNode}
	}
	run := func(r *repository.Repository, src backup.Source) *snapshot.Snapshot {
		t.Helper()
		sn, err := backup.Run(ctx, r, src, backup.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	dbA := run(a, own("nodeA"))
	dbB := run(b, own("nodeB"))
	web := run(a, backup.Source{Kind: snapshot.KindVolume, Name: "uploads", Path: writeTree(t, map[string]string{"logo.png": "pixels"}), Host: "nodeA"})

	for _, r := range []*repository.Repository{full, b} {
		if err := r.ReloadIndex(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Node B sees its own volume and the cluster-scoped one, and nothing of node A's.
	list, problems, err := snapshot.List(ctx, b)
	if err != nil || len(problems) != 0 {
		t.Fatalf("node B lists: problems %v, %v", problems, err)
	}
	if len(list) != 2 || snapshot.Latest(list, dbA.Chain()) != nil {
		t.Fatalf("node B lists %d snapshots, node A's among them: %v", len(list), snapshot.Latest(list, dbA.Chain()) != nil)
	}
	if _, err := snapshot.Load(ctx, b, dbA.ID); !errors.Is(err, repository.ErrOtherNode) {
		t.Fatalf("node B loads node A's record: %v", err)
	}
	if _, err := restorer.Restore(ctx, b, dbA.Tree, filepath.Join(t.TempDir(), "stolen"), restorer.Options{}); !errors.Is(err, repository.ErrOtherNode) {
		t.Fatalf("node B restores node A's volume: %v", err)
	}
	restored := filepath.Join(t.TempDir(), "uploads")
	if _, err := restorer.Restore(ctx, b, web.Tree, restored, restorer.Options{}); err != nil {
		t.Fatalf("node B restores the cluster-scoped volume node A backed up: %v", err)
	}
	if _, err := backup.Run(ctx, b, own("nodeA"), backup.Options{}); !errors.Is(err, repository.ErrOtherNode) {
		t.Fatalf("node B backs up a volume of node A: %v", err)
	}
	if _, err := backup.Run(ctx, open("any worker"), own("nodeB"), backup.Options{}); !errors.Is(err, repository.ErrOtherNode) {
		t.Fatalf("a volumes key of no node backs up a node's own volume: %v", err)
	}

	// A hostile node B seals records that claim node A's chain, with each key it has; node A
	// and full keys refuse them, and node A's latest stays its own.
	forged := &snapshot.Snapshot{Time: time.Now().UTC(), Kind: snapshot.KindVolume, Source: "db", Hostname: "nodeA", Node: "nodeA", Scope: snapshot.ScopeNode, Tree: dbB.Tree}
	if err := snapshot.Save(ctx, b, forged); !errors.Is(err, repository.ErrOtherNode) {
		t.Fatalf("node B saves a record of node A's volume: %v", err)
	}
	// Backdated, as if made before node compartments existed.
	backdated := *forged
	backdated.Time = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	sharedForgery, err := b.SaveFile(ctx, repository.SnapshotFile, &backdated)
	if err != nil {
		t.Fatal(err)
	}
	ownForgery, err := b.SaveNodeFile(ctx, "nodeB", repository.SnapshotFile, forged)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*repository.Repository{"node A": a, "the full key": full} {
		list, problems, err := snapshot.List(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if latest := snapshot.Latest(list, dbA.Chain()); latest == nil || latest.ID != dbA.ID {
			t.Errorf("%s's latest of node A's db is %v, not node A's own %s", name, latest, dbA.ID.Short())
		}
		for _, p := range problems {
			if !errors.Is(p, snapshot.ErrForged) {
				t.Errorf("%s: %v", name, p)
			}
		}
	}
	if _, err := snapshot.Load(ctx, full, sharedForgery); !errors.Is(err, snapshot.ErrForged) {
		t.Errorf("the full key loads the shared-sealed forgery: %v", err)
	}
	if _, err := snapshot.Load(ctx, full, ownForgery); !errors.Is(err, snapshot.ErrForged) {
		t.Errorf("the full key loads the forgery sealed with node B's key: %v", err)
	}

	// A full key restores every node's volume, and its prune removes the forgeries.
	for _, sn := range []*snapshot.Snapshot{dbA, dbB} {
		dst := filepath.Join(t.TempDir(), sn.Node)
		if _, err := restorer.Restore(ctx, full, sn.Tree, dst, restorer.Options{}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dst, "pgdata", "base")); string(got) != "rows of "+sn.Node {
			t.Fatalf("the full key restored %q for %s", got, sn.Node)
		}
	}
	// Node A's next backup leaves its first one's pack unused: the prune rewrites the index
	// without it, and node A's remaining packs stay sealed in its compartment.
	src := own("nodeA")
	if err := os.WriteFile(filepath.Join(src.Path, "pgdata", "base"), []byte("newer rows of nodeA"), 0o644); err != nil {
		t.Fatal(err)
	}
	newer := run(a, src)
	plan, err := pruner.Prune(ctx, full, pruner.Options{Policy: retention.Policy{Last: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Forged) != 2 || plan.PacksRemoved == 0 {
		t.Fatalf("the full prune removed forged records %v, not the two, and %d packs", plan.Forged, plan.PacksRemoved)
	}
	dst := filepath.Join(t.TempDir(), "newer")
	if _, err := restorer.Restore(ctx, open("a"), newer.Tree, dst, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "pgdata", "base")); string(got) != "newer rows of nodeA" {
		t.Fatalf("node A restored %q after the prune", got)
	}
	for name, password := range map[string]string{"the full key": "operator", "node A": "a", "node B": "b"} {
		rep, err := checker.Check(ctx, open(password), checker.Options{ReadData: true})
		if err != nil || !rep.OK() {
			t.Fatalf("verify with %s: %v %+v", name, err, rep)
		}
	}
}
