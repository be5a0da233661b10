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
