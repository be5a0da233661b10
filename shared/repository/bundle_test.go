package repository

import (
	"context"
	"errors"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// readOnly refuses every write, as a credential that may only read would.
type readOnly struct{ storage.Backend }

func (readOnly) Put(context.Context, string, []byte) error {
	return errors.New("access denied")
}

func saveRecords(t *testing.T, r *Repository, from, n int) []ID {
	t.Helper()
	var ids []ID
	for i := from; i < from+n; i++ {
		id, err := r.SaveFile(context.Background(), SnapshotFile, record{N: i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// countedRepository is a new repository in a directory, with its reads counted.
func countedRepository(t *testing.T) (storage.Backend, *gets, *Repository) {
	t.Helper()
	fs, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	be := &gets{Backend: fs}
	r, err := Init(context.Background(), be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return fs, be, r
}

func listed(t *testing.T, r *Repository) (count, sum int) {
	t.Helper()
	problems, err := LoadFiles(context.Background(), r, SnapshotFile, func(_ ID, v *record) { count++; sum += v.N })
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	return count, sum
}

func bundleNames(t *testing.T, be storage.Backend) []string {
	t.Helper()
	var names []string
	if err := be.List(context.Background(), bundlePrefix, func(name string, _ int64) error {
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

// The first listing of many records writes a bundle; a machine with an empty cache then reads
// the bundle and only the records written since; a record removed from the storage is not
// listed though the bundle still carries it; a lister that may not write reads all the same.
func TestAColdListingReadsABundleInsteadOfEveryRecord(t *testing.T) {
	ctx := context.Background()
	fs, be, r := countedRepository(t)
	const n = bundleAfter + 200
	ids := saveRecords(t, r, 0, n)
	open := func(be storage.Backend) *Repository {
		t.Helper()
		r, err := Open(ctx, be, "pw", WithCache(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// No bundle yet, and this lister may not write one: it reads every record.
	if count, _ := listed(t, open(readOnly{be})); count != n || be.snapshots.Load() != n {
		t.Fatalf("read-only listing: %d records, %d reads", count, be.snapshots.Load())
	}
	if names := bundleNames(t, be); len(names) != 0 {
		t.Fatalf("a read-only lister wrote %v", names)
	}
	be.snapshots.Store(0)
	if count, sum := listed(t, open(be)); count != n || sum != (n-1)*n/2 || be.snapshots.Load() != n {
		t.Fatalf("first listing: %d records (sum %d), %d reads", count, sum, be.snapshots.Load())
	}
	if names := bundleNames(t, be); len(names) != 1 {
		t.Fatalf("after the first listing: bundles %v, want one", names)
	}

	be.snapshots.Store(0)
	if count, sum := listed(t, open(be)); count != n || sum != (n-1)*n/2 || be.snapshots.Load() != 0 {
		t.Fatalf("cold listing with a bundle: %d records (sum %d), %d reads, want none", count, sum, be.snapshots.Load())
	}

	saveRecords(t, r, n, 10)
	if err := fs.Delete(ctx, fileName(SnapshotFile, ids[0])); err != nil {
		t.Fatal(err)
	}
	be.snapshots.Store(0)
	want := (n + 10 - 1) * (n + 10) / 2 // the removed record held N=0
	if count, sum := listed(t, open(be)); count != n+9 || sum != want || be.snapshots.Load() != 10 {
		t.Fatalf("after 10 new records and one removed: %d records (sum %d, want %d), %d reads, want 10", count, sum, want, be.snapshots.Load())
	}

	// Enough new records outside the bundle: the next lister writes one that carries them and
	// removes the old.
	old := bundleNames(t, be)
	saveRecords(t, r, n+10, bundleAfter+1)
	listed(t, open(be))
	now := bundleNames(t, be)
	if len(now) != 1 || now[0] == old[0] {
		t.Fatalf("bundles %v after %v, want one new", now, old)
	}
	be.snapshots.Store(0)
	if count, _ := listed(t, open(be)); count != n+9+bundleAfter+1 || be.snapshots.Load() != 0 {
		t.Fatalf("cold listing with the new bundle: %d records, %d reads", count, be.snapshots.Load())
	}
}

// A bundle proves nothing by itself: records whose bytes were changed, or that the storage
// does not list, are passed over and the listed ones read from the storage; a bundle not
// named by its own hash is not read at all.
func TestABundleIsBelievedOnlyForWhatItsBytesProve(t *testing.T) {
	ctx := context.Background()
	fs, be, r := countedRepository(t)
	const n = bundleAfter + 100
	ids := saveRecords(t, r, 0, n)
	var records [][]byte
	for _, id := range ids {
		stored, err := fs.Get(ctx, fileName(SnapshotFile, id), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, stored)
	}
	// The first 10 records changed by one byte each, and a record of another repository.
	for i := range 10 {
		records[i] = append([]byte(nil), records[i]...)
		records[i][len(records[i])-1] ^= 1
	}
	otherFS, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := Init(ctx, otherFS, "pw")
	if err != nil {
		t.Fatal(err)
	}
	foreign := saveRecords(t, other, 5000, 1)[0]
	stray, err := other.be.Get(ctx, fileName(SnapshotFile, foreign), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	tampered := encodeBundle(append(records, stray))
	if err := fs.Put(ctx, bundlePrefix+contentID(tampered).String(), tampered); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(ctx, readOnly{be}, "pw", WithCache(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if count, sum := listed(t, ro); count != n || sum != (n-1)*n/2 || be.snapshots.Load() != 10 {
		t.Fatalf("with a tampered bundle: %d records (sum %d), %d reads, want the 10 changed ones", count, sum, be.snapshots.Load())
	}

	// Misnamed: the same bytes under another name are not read.
	if err := fs.Delete(ctx, bundlePrefix+contentID(tampered).String()); err != nil {
		t.Fatal(err)
	}
	if err := fs.Put(ctx, bundlePrefix+NewRandomID().String(), encodeBundle(records[10:])); err != nil {
		t.Fatal(err)
	}
	be.snapshots.Store(0)
	ro, err = Open(ctx, readOnly{be}, "pw", WithCache(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if count, _ := listed(t, ro); count != n || be.snapshots.Load() != n {
		t.Fatalf("with a misnamed bundle: %d records, %d reads, want all", count, be.snapshots.Load())
	}
}
