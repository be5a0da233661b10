package repository

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// gets counts the objects read whole from a backend, by the first part of their names.
type gets struct {
	storage.Backend
	snapshots, index atomic.Int64
}

func (g *gets) Get(ctx context.Context, name string, limit int64) ([]byte, error) {
	switch {
	case strings.HasPrefix(name, "snapshots/"):
		g.snapshots.Add(1)
	case strings.HasPrefix(name, "index/"):
		g.index.Add(1)
	}
	return g.Backend.Get(ctx, name, limit)
}

type record struct{ N int }

// With a cache, listing snapshots a second time reads none from the storage; a cached copy
// that was changed is fetched again, not believed; a record removed from the storage leaves
// the cache too.
func TestTheCacheServesRecordsOnlyWhileTheyAreWhatTheirNamesSay(t *testing.T) {
	ctx := context.Background()
	fs, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	be := &gets{Backend: fs}
	cache := t.TempDir()
	r, err := Init(ctx, be, "pw", WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for i := range 50 {
		id, err := r.SaveFile(ctx, SnapshotFile, record{N: i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	sum := func(r *Repository) int {
		t.Helper()
		total := 0
		problems, err := LoadFiles(ctx, r, SnapshotFile, func(_ ID, v *record) { total += v.N })
		if err != nil || len(problems) > 0 {
			t.Fatal(err, problems)
		}
		return total
	}
	if got := sum(r); got != 49*50/2 || be.snapshots.Load() != 50 {
		t.Fatalf("first listing: sum %d, %d reads", got, be.snapshots.Load())
	}
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("rows")); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be, "pw", WithCache(cache)); err != nil {
		t.Fatal(err)
	}
	be.index.Store(0)
	r, err = Open(ctx, be, "pw", WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	if n := be.index.Load(); n != 0 || !r.HasBlob(r.Hash([]byte("rows"))) {
		t.Fatalf("opening again read %d index files from storage", n)
	}
	be.snapshots.Store(0)
	if got := sum(r); got != 49*50/2 || be.snapshots.Load() != 0 {
		t.Fatalf("second listing: sum %d, %d reads from storage", got, be.snapshots.Load())
	}

	// A copy replaced by another record's sealed bytes is caught by its name.
	dir := filepath.Join(cache, r.ID().String(), string(SnapshotFile))
	other, err := os.ReadFile(filepath.Join(dir, ids[1].String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ids[0].String()), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := sum(r); got != 49*50/2 || be.snapshots.Load() != 1 {
		t.Fatalf("with a changed copy: sum %d, %d reads from storage", got, be.snapshots.Load())
	}

	if err := r.DeleteFile(ctx, SnapshotFile, ids[49]); err != nil {
		t.Fatal(err)
	}
	if got := sum(r); got != 48*49/2 {
		t.Fatalf("after a record was removed: sum %d", got)
	}
	if _, err := os.Stat(filepath.Join(dir, ids[49].String())); !os.IsNotExist(err) {
		t.Errorf("the removed record's copy stays: %v", err)
	}
}

// packReads counts the requests for parts or wholes of packs.
type packReads struct {
	storage.Backend
	n atomic.Int64
}

func (p *packReads) ReadAt(ctx context.Context, name string, off int64, buf []byte) error {
	if strings.HasPrefix(name, "data/") {
		p.n.Add(1)
	}
	return p.Backend.ReadAt(ctx, name, off, buf)
}

// Tree blobs come from a local copy of their pack: none is requested from the storage by
// the writer's next reader, one request a pack by a reader on another machine, and a copy
// that was damaged is dropped and the blob read from the storage, unharmed.
func TestTreeBlobsAreReadFromALocalCopyOfTheirPack(t *testing.T) {
	ctx := context.Background()
	fs, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	be := &packReads{Backend: fs}
	writerCache := t.TempDir()
	w, err := Init(ctx, be, "pw", WithCache(writerCache))
	if err != nil {
		t.Fatal(err)
	}
	var trees []ID
	for i := range 200 {
		id, _, err := w.SaveBlob(ctx, TreeBlob, []byte(strings.Repeat("listing ", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, id)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	readAll := func(cache string) {
		t.Helper()
		r, err := Open(ctx, be, "pw", WithCache(cache))
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range trees {
			data, err := r.LoadBlob(ctx, TreeBlob, id)
			if err != nil || string(data) != strings.Repeat("listing ", i+1) {
				t.Fatalf("tree %d: %q, %v", i, data, err)
			}
		}
	}
	readAll(writerCache)
	if n := be.n.Load(); n != 0 {
		t.Fatalf("the writer's cache read %d times from the storage, want 0", n)
	}
	elsewhere := t.TempDir()
	readAll(elsewhere)
	if n := be.n.Load(); n != 1 {
		t.Fatalf("another machine read %d times from the storage for one pack, want 1", n)
	}
	copies, err := filepath.Glob(filepath.Join(elsewhere, "*", "trees", "*"))
	if err != nil || len(copies) != 1 {
		t.Fatalf("copies: %v, %v", copies, err)
	}
	if err := os.WriteFile(copies[0], []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	be.n.Store(0)
	readAll(elsewhere)
	if n := be.n.Load(); n < 1 {
		t.Fatal("a damaged copy was believed")
	}
}
