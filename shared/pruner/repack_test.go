package pruner_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/checker"
	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Forgetting a snapshot whose files are mixed in packs with files still kept frees nothing
// unless those packs are repacked: prune copies what is needed into new packs and removes
// the old ones, so the bucket shrinks to about what the kept snapshots hold, for a volume
// of each compartment (the shared one, a node's own).
func TestPruneRepacksPartlyUsedPacksAndGivesTheSpaceBack(t *testing.T) {
	ctx := context.Background()
	be, repo := newRepo(t)
	// Two volumes of 6 MiB in 60 files; half the files of each are then deleted.
	sources := map[string]backup.Source{}
	for _, scope := range []string{snapshot.ScopeCluster, snapshot.ScopeNode} {
		dir := t.TempDir()
		for i := range 60 {
			data := make([]byte, 100<<10)
			_, _ = rand.Read(data)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sources["v-"+scope] = backup.Source{Kind: snapshot.KindVolume, Name: "v-" + scope, Path: dir, Node: "node1", Scope: scope}
	}
	var kept []*snapshot.Snapshot
	for round := range 2 {
		for _, src := range sources {
			if round == 1 {
				// Files go to the two data packs in turn: every pack loses half.
				for i := 0; i < 60; i++ {
					if i%4 < 2 {
						if err := os.Remove(filepath.Join(src.Path, fmt.Sprintf("f%02d", i))); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			sn, err := backup.Run(ctx, repo, src, backup.Options{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			if round == 1 {
				kept = append(kept, sn)
			}
		}
	}
	before := bytesStored(t, be)

	// Without repacking, forgetting the first snapshots frees only their trees: every data
	// pack holds kept files, and the forgotten half of the files stays in the bucket.
	plan, err := pruner.Prune(ctx, open(t, be), pruner.Options{Policy: retention.Policy{Last: 1}, MaxUnused: math.Inf(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Forget) != 2 || plan.PacksKeptPartly == 0 || plan.PacksRepacked != 0 || plan.BytesUnused < 5<<20 {
		t.Fatalf("a prune without repacking: %d forgotten, %d kept partly with %d bytes unused, %d repacked", len(plan.Forget), plan.PacksKeptPartly, plan.BytesUnused, plan.PacksRepacked)
	}
	if after := bytesStored(t, be); after != before-plan.BytesRemoved {
		t.Fatalf("a prune without repacking changed the bucket from %d to %d bytes, removing %d", before, after, plan.BytesRemoved)
	}
	before -= plan.BytesRemoved
	unused := plan.BytesUnused

	// A dry run with the default share says what it would do, and does nothing.
	dry, err := pruner.Prune(ctx, open(t, be), pruner.Options{Policy: retention.Policy{Last: 1}, MaxUnused: 0.05, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.PacksRepacked == 0 || bytesStored(t, be) != before {
		t.Fatalf("a dry run would repack %d packs; the bucket went from %d to %d bytes", dry.PacksRepacked, before, bytesStored(t, be))
	}
	plan, err = pruner.Prune(ctx, open(t, be), pruner.Options{Policy: retention.Policy{Last: 1}, MaxUnused: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	after := bytesStored(t, be)
	if plan.PacksRepacked != dry.PacksRepacked || plan.BytesUnused > int64(kept[0].Stats.Bytes/10) {
		t.Fatalf("repacked %d packs (the dry run said %d), %d bytes left unused", plan.PacksRepacked, dry.PacksRepacked, plan.BytesUnused)
	}
	needed := int64(kept[0].Stats.Bytes + kept[1].Stats.Bytes)
	if after > needed*11/10 || before-after < unused*9/10 {
		t.Fatalf("the bucket went from %d to %d bytes; the kept snapshots hold %d, %d were unused", before, after, needed, unused)
	}
	t.Logf("bucket %d -> %d bytes (kept snapshots hold %d); %d packs repacked", before, after, needed, plan.PacksRepacked)

	r := open(t, be)
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after repacking: %v %+v", err, rep)
	}
	for _, sn := range kept {
		dst := filepath.Join(t.TempDir(), "r")
		if _, err := restorer.Restore(ctx, r, sn.Tree, dst, restorer.Options{}); err != nil {
			t.Fatal(err)
		}
		for i := range 60 {
			if i%4 < 2 {
				continue
			}
			name := fmt.Sprintf("f%02d", i)
			want, _ := os.ReadFile(filepath.Join(sources[sn.Source].Path, name))
			if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(got) != string(want) {
				t.Fatalf("%s of %s restored wrongly after repacking: %v", name, sn.Source, err)
			}
		}
	}
}
