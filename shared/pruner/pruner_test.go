package pruner_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/checker"
	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// history backs up a volume four times, each time with a new 300 kB file replacing the last,
// so that every snapshot owns data no other one has.
func history(t *testing.T) (storage.Backend, []*snapshot.Snapshot, string) {
	t.Helper()
	ctx := context.Background()
	be, repo := newRepo(t)
	src := t.TempDir()
	var snaps []*snapshot.Snapshot
	for range 4 {
		data := make([]byte, 300<<10)
		_, _ = rand.Read(data)
		_ = os.RemoveAll(filepath.Join(src, "gen"))
		if err := os.MkdirAll(filepath.Join(src, "gen"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "gen", "data"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sn, err := backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: src}, backup.Options{})
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, sn)
		time.Sleep(10 * time.Millisecond)
	}
	return be, snaps, src
}

// newRepo makes a repository in a temporary directory.
func newRepo(t *testing.T) (storage.Backend, *repository.Repository) {
	t.Helper()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(context.Background(), be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return be, repo
}

func open(t *testing.T, be storage.Backend) *repository.Repository {
	t.Helper()
	r, err := repository.Open(context.Background(), be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func bytesStored(t *testing.T, be storage.Backend) int64 {
	var total int64
	_ = be.List(context.Background(), "data/", func(_ string, size int64) error { total += size; return nil })
	return total
}

func TestPruneForgetsOldSnapshotsAndFreesTheirData(t *testing.T) {
	ctx := context.Background()
	be, snaps, _ := history(t)
	before := bytesStored(t, be)
	plan, err := pruner.Prune(ctx, open(t, be), pruner.Options{Policy: retention.Policy{Last: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Forget) != 2 || plan.Forget[0].ID != snaps[0].ID.Short() || plan.Forget[1].ID != snaps[1].ID.Short() {
		t.Fatalf("forgot %+v", plan.Forget)
	}
	after := bytesStored(t, be)
	if after >= before || plan.PacksRemoved == 0 {
		t.Errorf("storage went from %d to %d bytes (%d packs removed)", before, after, plan.PacksRemoved)
	}
	r := open(t, be)
	list, _, _ := snapshot.List(ctx, r)
	if len(list) != 2 {
		t.Fatalf("%d snapshots left", len(list))
	}
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after prune: %v %+v", err, rep)
	}
	if _, err := restorer.Restore(ctx, r, list[1].Tree, filepath.Join(t.TempDir(), "r"), restorer.Options{}); err != nil {
		t.Errorf("restore of a kept snapshot: %v", err)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	be, _, _ := history(t)
	before := bytesStored(t, be)
	plan, err := pruner.Prune(context.Background(), open(t, be), pruner.Options{Policy: retention.Policy{Last: 1}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Forget) != 3 || plan.PacksRemoved == 0 {
		t.Errorf("plan: %+v", plan)
	}
	list, _, _ := snapshot.List(context.Background(), open(t, be))
	if len(list) != 4 || bytesStored(t, be) != before {
		t.Error("a dry run removed something")
	}
}

func TestPruneWaitsForRunningBackups(t *testing.T) {
	ctx := context.Background()
	be, _, _ := history(t)
	r := open(t, be)
	lock, err := r.Lock(ctx, false, "backup of volume db")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock(ctx)
	_, err = pruner.Prune(ctx, open(t, be), pruner.Options{Policy: retention.Policy{Last: 1}})
	if !errors.Is(err, repository.ErrLocked) {
		t.Errorf("prune during a backup: %v", err)
	}
}

func TestPruneWithoutARuleIsRefused(t *testing.T) {
	be, _, _ := history(t)
	if _, err := pruner.Prune(context.Background(), open(t, be), pruner.Options{}); err == nil {
		t.Error("prune without rules succeeded")
	}
}

func TestForgetTrimsOneChainAndKeepsItsData(t *testing.T) {
	ctx := context.Background()
	be, snaps, _ := history(t)
	before := bytesStored(t, be)
	r := open(t, be)
	forgotten, err := pruner.Forget(ctx, r, snapshot.Chain{Kind: snapshot.KindVolume, Source: "db"}, retention.Policy{Last: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(forgotten) != 3 {
		t.Fatalf("forgot %d snapshots, want 3", len(forgotten))
	}
	list, _, _ := snapshot.List(ctx, r)
	if len(list) != 1 || list[0].ID != snaps[3].ID {
		t.Fatalf("left %d snapshots", len(list))
	}
	if bytesStored(t, be) != before {
		t.Error("forget removed data; only prune may")
	}
	if none, err := pruner.Forget(ctx, r, snapshot.Chain{Kind: snapshot.KindVolume, Source: "other"}, retention.Policy{Last: 1}); err != nil || none != nil {
		t.Errorf("forget of an unknown chain: %v %v", none, err)
	}
}

// A global service's volume db lives on every node, each with its own data: node A's
// retention must not touch node B's snapshots, and "the latest snapshot of db" on B is B's.
func TestNodeScopedVolumesOfOneNameKeepTheirChainsApart(t *testing.T) {
	ctx := context.Background()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.OpenOrInit(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	take := func(node, content string) *snapshot.Snapshot {
		t.Helper()
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "owner"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		sn, err := backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: src, Node: node, Scope: snapshot.ScopeNode}, backup.Options{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		return sn
	}
	onB := take("nodeB", "B's data")
	take("nodeA", "A's data, first")
	lastOnA := take("nodeA", "A's data, second")
	if lastOnA.Parent == nil || *lastOnA.Parent == onB.ID {
		t.Errorf("A's second snapshot has parent %v, want A's first", lastOnA.Parent)
	}

	forgotten, err := pruner.Forget(ctx, repo, lastOnA.Chain(), retention.Policy{Last: 1})
	if err != nil || len(forgotten) != 1 {
		t.Fatalf("node A's retention forgot %d snapshots (%v), want its own older one", len(forgotten), err)
	}
	list, _, _ := snapshot.List(ctx, repo)
	if latest := snapshot.Latest(list, snapshot.Chain{Kind: snapshot.KindVolume, Source: "db", Node: "nodeB"}); latest == nil || latest.ID != onB.ID {
		t.Fatalf("node B's latest snapshot of db is %v, want its own %s", latest, onB.ID.Short())
	}
	if _, err := pruner.Prune(ctx, repo, pruner.Options{Policy: retention.Policy{Last: 1}}); err != nil {
		t.Fatal(err)
	}
	list, _, _ = snapshot.List(ctx, repo)
	if len(list) != 2 {
		t.Errorf("prune --keep-last 1 left %d snapshots, want one per node", len(list))
	}
}

// A backup killed after it stored packs and before it wrote their index leaves packs no
// index lists: verify names them, and prune removes them.
func TestPruneRemovesPacksNoIndexLists(t *testing.T) {
	ctx := context.Background()
	be, snaps, _ := history(t)
	killed := open(t, be)
	for range 20 { // each of the two data packers fills a pack, which is uploaded at once
		data := make([]byte, 1<<20)
		_, _ = rand.Read(data)
		if _, _, err := killed.SaveBlob(ctx, repository.DataBlob, data); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for countPacks(t, be)-len(open(t, be).Packs()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the killed backup's pack was never stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The process dies here: no Flush, no index.
	orphans := countPacks(t, be) - len(open(t, be).Packs())

	rep, err := checker.Check(ctx, open(t, be), checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.UnindexedPacks != orphans {
		t.Errorf("verify: %d unindexed packs, problems %v; want %d named, and the repository intact", rep.UnindexedPacks, rep.Problems, orphans)
	}
	plan, err := pruner.Prune(ctx, open(t, be), pruner.Options{Policy: retention.Policy{Last: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.PacksUnindexed != orphans {
		t.Errorf("prune removed %d packs no index lists, want %d", plan.PacksUnindexed, orphans)
	}
	r := open(t, be)
	if got, want := countPacks(t, be), len(r.Packs()); got != want {
		t.Errorf("%d packs stored, %d indexed after prune", got, want)
	}
	if rep, _ := checker.Check(ctx, r, checker.Options{ReadData: true}); !rep.OK() || rep.UnindexedPacks != 0 {
		t.Errorf("after prune: %+v", rep)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if _, err := restorer.Restore(ctx, r, snaps[3].Tree, dst, restorer.Options{}); err != nil {
		t.Errorf("the newest snapshot after prune: %v", err)
	}
}

func countPacks(t *testing.T, be storage.Backend) int {
	t.Helper()
	n := 0
	if err := be.List(context.Background(), "data/", func(string, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// Retention counts sets, never keeping half of one: a set's snapshots go with it, and a
// volume's own retention does not touch them.
func TestPruneKeepsOrForgetsASetWhole(t *testing.T) {
	ctx := context.Background()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.OpenOrInit(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	take := func(volume string, tags map[string]string) *snapshot.Snapshot {
		t.Helper()
		data := make([]byte, 100<<10)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(src, volume), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sn, err := backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: volume, Path: src, Tags: tags}, backup.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	var sets []*backupset.Set
	for i := range 2 {
		id := repository.NewRandomID().String()
		tags := map[string]string{backupset.TagSet: id}
		s := &backupset.Set{ID: id, Cluster: "c", Time: time.Now().Add(time.Duration(i) * time.Minute)}
		for _, v := range []string{"db", "files"} {
			sn := take(v, tags)
			s.Members = append(s.Members, backupset.Member{Volume: v, Snapshot: sn.ID.String()})
		}
		if err := backupset.Save(ctx, repo, s); err != nil {
			t.Fatal(err)
		}
		sets = append(sets, s)
	}
	loose := take("db", nil) // a scheduled snapshot, in no set

	// The volume's own retention keeps its loose snapshot and leaves the sets' alone.
	if forgotten, err := pruner.Forget(ctx, repo, loose.Chain(), retention.Policy{Last: 1}); err != nil || len(forgotten) != 0 {
		t.Fatalf("a volume's retention forgot %d of the sets' snapshots (%v)", len(forgotten), err)
	}

	plan, err := pruner.Prune(ctx, open(t, be), pruner.Options{Policy: retention.Policy{Last: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.ForgetSets) != 1 || plan.ForgetSets[0].ID != sets[0].ID || len(plan.KeepSets) != 1 {
		t.Fatalf("prune --keep-last 1 forgot sets %v, kept %v", plan.ForgetSets, plan.KeepSets)
	}
	r := open(t, be)
	left, _, _ := backupset.List(ctx, r)
	if len(left) != 1 || left[0].ID != sets[1].ID {
		t.Fatalf("sets left: %v", left)
	}
	list, _, _ := snapshot.List(ctx, r)
	have := map[string]bool{}
	for _, sn := range list {
		have[sn.ID.String()] = true
	}
	for _, m := range sets[1].Members {
		if !have[m.Snapshot] {
			t.Errorf("the kept set lost %s's snapshot", m.Volume)
		}
	}
	for _, m := range sets[0].Members {
		if have[m.Snapshot] {
			t.Errorf("the forgotten set left %s's snapshot behind", m.Volume)
		}
	}
	if !have[loose.ID.String()] {
		t.Error("the loose snapshot, newest of its chain, was forgotten")
	}
}

// keepIndexFiles is storage on which removing an index file fails, as it does for a prune
// killed between writing the index that replaces the old files and removing them.
type keepIndexFiles struct{ storage.Backend }

func (b keepIndexFiles) Delete(ctx context.Context, name string) error {
	if strings.HasPrefix(name, string(repository.IndexFile)+"/") {
		return errors.New("killed")
	}
	return b.Backend.Delete(ctx, name)
}

// A prune that dies after writing the new index leaves the files it replaces in place. The
// next prune replaces the new file in turn, and must take them with it: left behind, they
// would count again once nothing names them as replaced, and send readers to the packs that
// prune removed. Each backup adds a directory, so the kept snapshot needs trees from every
// older one's packs, which the prunes repack.
func TestAPruneAfterAKilledOneLeavesNoIndexOfRemovedPacks(t *testing.T) {
	ctx := context.Background()
	be, newest := growingHistory(t)
	killed, err := repository.Open(ctx, keepIndexFiles{be}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pruner.Prune(ctx, killed, pruner.Options{Policy: retention.Policy{Last: 1}}); err == nil {
		t.Fatal("the prune went on after failing to remove the old index files")
	}
	plan, err := pruner.Prune(ctx, open(t, be), pruner.Options{Policy: retention.Policy{Last: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if plan.PacksUnindexed == 0 {
		t.Fatal("the second prune found none of the packs the first one dropped from the index")
	}
	intactAfter(t, be, newest)
}

// growingHistory backs up a volume four times, each time with a directory more, so that the
// last snapshot needs trees from every older one's packs, which a prune then repacks.
func growingHistory(t *testing.T) (storage.Backend, *snapshot.Snapshot) {
	t.Helper()
	ctx := context.Background()
	be, repo := newRepo(t)
	src := t.TempDir()
	var newest *snapshot.Snapshot
	var err error
	for gen := range 4 {
		for i := range 3 {
			data := make([]byte, 50<<10)
			_, _ = rand.Read(data)
			p := filepath.Join(src, fmt.Sprintf("gen%d", gen), fmt.Sprintf("d%d", i), "f")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if newest, err = backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: src}, backup.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	return be, newest
}

// intactAfter is what a user checks after a prune: verify passes, every stored pack is
// indexed and every indexed one stored, and the kept snapshot restores.
func intactAfter(t *testing.T, be storage.Backend, kept *snapshot.Snapshot) {
	t.Helper()
	ctx := context.Background()
	r := open(t, be)
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Packs != countPacks(t, be) {
		t.Fatalf("verify: %d packs indexed, %d stored, problems %v", rep.Packs, countPacks(t, be), rep.Problems)
	}
	if _, err := restorer.Restore(ctx, r, kept.Tree, filepath.Join(t.TempDir(), "r"), restorer.Options{}); err != nil {
		t.Fatalf("the kept snapshot: %v", err)
	}
}
