package checker_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/archiver"
	"github.com/swarmbackup/swarmbackup/shared/checker"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// fixture is a repository with one snapshot of two files in separate packs' worth of data.
func fixture(t *testing.T) (storage.Backend, *snapshot.Snapshot) {
	t.Helper()
	ctx := context.Background()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.OpenOrInit(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	for _, name := range []string{"db/table.dat", "etc/app.conf"} {
		data := make([]byte, 100<<10)
		_, _ = rand.Read(data)
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := archiver.Snapshot(ctx, r, src, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &snapshot.Snapshot{Time: time.Now(), Kind: snapshot.KindVolume, Source: "v", Tree: res.Tree, Stats: res.Stats}
	if err := snapshot.Save(ctx, r, sn); err != nil {
		t.Fatal(err)
	}
	return be, sn
}

func check(t *testing.T, be storage.Backend, readData bool) *checker.Report {
	t.Helper()
	ctx := context.Background()
	r, err := repository.Open(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: readData})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestAnIntactRepositoryPasses(t *testing.T) {
	be, _ := fixture(t)
	for _, readData := range []bool{false, true} {
		if rep := check(t, be, readData); !rep.OK() || rep.Snapshots != 1 {
			t.Errorf("read-data=%v: %+v", readData, rep)
		}
	}
}

// flipEveryByteOnce damages each byte of every pack in turn; read-data must catch each one.
func TestEveryFlippedByteInAPackIsFoundByReadData(t *testing.T) {
	be, sn := fixture(t)
	ctx := context.Background()
	var packs []string
	_ = be.List(ctx, "data/", func(name string, _ int64) error { packs = append(packs, name); return nil })
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	for _, name := range packs {
		orig, _ := be.Get(ctx, name, 1<<30)
		// Sample positions across the pack: start, blobs, header, trailer.
		for _, pos := range []int{0, 13, len(orig) / 3, len(orig) / 2, len(orig) - 60, len(orig) - 1} {
			damaged := append([]byte(nil), orig...)
			damaged[pos] ^= 0x40
			if err := be.Put(ctx, name, damaged); err != nil {
				t.Fatal(err)
			}
			rep := check(t, be, true)
			if rep.OK() {
				t.Errorf("a flipped byte at %d of %s went unnoticed", pos, name)
			}
			for _, p := range rep.Problems {
				if p.Snapshot != "" && p.Snapshot != sn.ID.Short() {
					t.Errorf("problem names snapshot %s", p.Snapshot)
				}
			}
		}
		if err := be.Put(ctx, name, orig); err != nil {
			t.Fatal(err)
		}
	}
	if rep := check(t, be, true); !rep.OK() {
		t.Errorf("after repair: %+v", rep.Problems)
	}
}

func TestDamageIsReportedBySnapshotAndPath(t *testing.T) {
	be, sn := fixture(t)
	ctx := context.Background()
	r, _ := repository.Open(ctx, be, "pw")
	tree, _ := snapshot.LoadTree(ctx, r, sn.Tree)
	db, _ := snapshot.LoadTree(ctx, r, *tree.Find("db").Subtree)
	bi, _ := r.LookupBlob(db.Find("table.dat").Content[0])
	name := "data/" + bi.Pack.String()[:2] + "/" + bi.Pack.String()
	pack, _ := be.Get(ctx, name, 1<<30)
	pack[bi.Offset+50] ^= 1
	if err := be.Put(ctx, name, pack); err != nil {
		t.Fatal(err)
	}
	rep := check(t, be, true)
	found := false
	for _, p := range rep.Problems {
		if p.Snapshot == sn.ID.Short() && p.Path == "/db/table.dat" {
			found = true
		}
		if p.Path == "/etc/app.conf" {
			t.Errorf("an intact file is reported: %v", p)
		}
	}
	if !found {
		t.Errorf("problems do not name /db/table.dat: %v", rep.Problems)
	}
}

func TestAMissingPackIsFoundWithoutReadingData(t *testing.T) {
	be, _ := fixture(t)
	ctx := context.Background()
	_ = be.List(ctx, "data/", func(name string, _ int64) error { return be.Delete(ctx, name) })
	rep := check(t, be, false)
	if rep.OK() || !strings.Contains(rep.Problems[0].String(), "missing") {
		t.Errorf("problems: %v", rep.Problems)
	}
}

// A pack the index lists is reported missing even when no snapshot needs what it held: the
// next backup would take those blobs as stored, and refer to them without storing them.
func TestAMissingPackNoSnapshotNeedsIsReported(t *testing.T) {
	be, _ := fixture(t)
	ctx := context.Background()
	r, err := repository.Open(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 10<<10)
	_, _ = rand.Read(data)
	id, _, err := r.SaveBlob(ctx, repository.DataBlob, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var pack repository.ID
	r.Blobs(func(bi repository.BlobInfo) {
		if bi.ID == id {
			pack = bi.Pack
		}
	})
	if err := be.Delete(ctx, "data/"+pack.String()[:2]+"/"+pack.String()); err != nil {
		t.Fatal(err)
	}
	rep := check(t, be, false)
	if rep.OK() || !strings.Contains(rep.Problems[0].String(), "pack "+pack.Short()+" is missing") {
		t.Errorf("problems: %v", rep.Problems)
	}
}

func TestADamagedSnapshotRecordIsReported(t *testing.T) {
	be, sn := fixture(t)
	ctx := context.Background()
	name := "snapshots/" + sn.ID.String()
	data, _ := be.Get(ctx, name, 1<<30)
	data[len(data)-3] ^= 1
	if err := be.Put(ctx, name, data); err != nil {
		t.Fatal(err)
	}
	rep := check(t, be, false)
	if rep.OK() || !strings.Contains(rep.Problems[0].What, sn.ID.Short()) {
		t.Errorf("problems: %v", rep.Problems)
	}
}
