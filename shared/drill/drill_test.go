package drill

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// packs lists the repository's pack files.
func packs(t *testing.T, root string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	_ = filepath.Walk(filepath.Join(root, "data"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			out[p] = true
		}
		return nil
	})
	return out
}

// damage flips a byte in the middle of a stored object.
func damage(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// member snapshots a directory holding files as a volume of the set, and returns the packs
// its data went to.
func member(t *testing.T, repo *repository.Repository, root, volume, host string, files map[string][]byte) (backupset.Member, []string) {
	t.Helper()
	before := packs(t, root)
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sn, err := backup.Run(context.Background(), repo, backup.Source{Kind: snapshot.KindVolume, Name: volume, Path: dir, Host: host}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var added []string
	for p := range packs(t, root) {
		if !before[p] {
			added = append(added, p)
		}
	}
	return backupset.Member{Node: host, Host: host, Volume: volume, Snapshot: sn.ID.String(), Files: sn.Stats.Files, Bytes: sn.Stats.Bytes}, added
}

func TestADrillRestoresEveryVolumeAndNamesTheDamagedOne(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	be, err := localfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.OpenOrInit(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	db, _ := member(t, repo, root, "db", "node2", map[string][]byte{"rows": bytes.Repeat([]byte("row\n"), 50000)})
	files, filesPacks := member(t, repo, root, "files", "node3", map[string][]byte{"a.jpg": bytes.Repeat([]byte{1, 2, 3}, 100000), "b.txt": []byte("b")})
	set := &backupset.Set{ID: "5e7000000000000000", Cluster: "c1", Members: []backupset.Member{db, files}}

	rec, err := Run(ctx, repo, set, Options{Host: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() {
		t.Fatalf("a good set's drill found: %v", rec.Problems)
	}
	if rec.Members[1].Files != 2 || rec.Members[1].Bytes != 300001 || rec.Bytes() != 500001 {
		t.Errorf("the drill restored %+v", rec.Members)
	}
	if rec.Estimate <= 0 || rec.Estimate > rec.Took {
		t.Errorf("estimate %s for a drill of %s", rec.Estimate, rec.Took)
	}

	// One of the files volume's packs is damaged in the bucket.
	if len(filesPacks) == 0 {
		t.Fatal("the files volume wrote no pack")
	}
	for _, p := range filesPacks {
		damage(t, p)
	}
	// Another process drills it, as a laptop or the schedule would: nothing cached.
	if repo, err = repository.Open(ctx, be, "pw"); err != nil {
		t.Fatal(err)
	}
	rec, err = Run(ctx, repo, set, Options{Host: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.OK() || len(rec.Problems) != 1 || !strings.Contains(rec.Problems[0], "volume files on node3") {
		t.Fatalf("the drill of a damaged set found: %q", rec.Problems)
	}

	t.Logf("the drill found: %s", rec.Problems[0])
	drills, err := List(ctx, repo)
	if err != nil || len(drills) != 2 {
		t.Fatalf("recorded drills: %d, %v", len(drills), err)
	}
	if last := Last(drills, "c1"); last == nil || last.ID != rec.ID || last.OK() {
		t.Errorf("the last drill recorded: %+v", last)
	}
}

// A drill proves what the storage holds: on the machine that wrote a volume, whose cache
// keeps copies of the listings' packs, a listing damaged in the bucket still fails it.
func TestADrillReadsListingsFromTheStorageNotTheCache(t *testing.T) {
	ctx := context.Background()
	root, cache := t.TempDir(), t.TempDir()
	be, err := localfs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.OpenOrInit(ctx, be, "pw", repository.WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	db, _ := member(t, repo, root, "db", "node2", map[string][]byte{"rows": bytes.Repeat([]byte("row\n"), 50000)})
	set := &backupset.Set{ID: "5e7000000000000001", Cluster: "c1", Members: []backupset.Member{db}}
	copies, err := filepath.Glob(filepath.Join(cache, "*", "trees", "*"))
	if err != nil || len(copies) == 0 {
		t.Fatalf("no listing's pack in the cache: %v", err)
	}
	for _, c := range copies {
		name := filepath.Base(c)
		damage(t, filepath.Join(root, "data", name[:2], name))
	}
	if repo, err = repository.Open(ctx, be, "pw", repository.WithCache(cache)); err != nil {
		t.Fatal(err)
	}
	rec, err := Run(ctx, repo, set, Options{Host: "node2"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.OK() {
		t.Fatal("the drill passed with the listing damaged in the storage")
	}
}
