package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

func newBackend(t *testing.T) storage.Backend {
	t.Helper()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestBlobsRoundTripAcrossReopenAndDeduplicate(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	r, err := OpenOrInit(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	text := bytes.Repeat([]byte("log line 42\n"), 50000)
	random := randomBytes(300000)
	idText, isNew, err := r.SaveBlob(ctx, DataBlob, text)
	if err != nil || !isNew {
		t.Fatalf("save text: %v new=%v", err, isNew)
	}
	idRandom, _, err := r.SaveBlob(ctx, DataBlob, random)
	if err != nil {
		t.Fatal(err)
	}
	if _, isNew, _ := r.SaveBlob(ctx, DataBlob, text); isNew {
		t.Error("the same content was stored twice")
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	r2, err := Open(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[ID][]byte{idText: text, idRandom: random} {
		got, err := r2.LoadBlob(ctx, DataBlob, id)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("load %s: %d bytes, %v", id.Short(), len(got), err)
		}
	}
	if _, isNew, _ := r2.SaveBlob(ctx, DataBlob, random); isNew {
		t.Error("a reopened repository stored known content again")
	}
	// Compression: 600 kB of repeated text must not cost 600 kB.
	var stored int64
	for _, size := range r2.Packs() {
		stored += size
	}
	if stored > int64(len(random))+100000 {
		t.Errorf("the repository holds %d bytes for %d random + %d compressible", stored, len(random), len(text))
	}
}

func TestWrongPasswordIsRefused(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	if _, err := Init(ctx, be, "right"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, be, "wrong")
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), be.Location()) {
		t.Errorf("open with a wrong password: %v", err)
	}
	if _, err := Open(ctx, newBackend(t), "right"); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("open of an empty backend: %v", err)
	}
}

func TestObjectNamesRevealNoContent(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	r, _ := Init(ctx, be, "pw")
	content := []byte("top secret content that must not show")
	id, _, _ := r.SaveBlob(ctx, DataBlob, content)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	err := be.List(ctx, "", func(name string, _ int64) error {
		if strings.Contains(name, id.String()[:16]) {
			t.Errorf("object %s carries the blob ID", name)
		}
		data, _ := be.Get(ctx, name, 1<<30)
		if bytes.Contains(data, content[:16]) {
			t.Errorf("object %s holds the plaintext", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAFlippedByteIsDetected(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	r, _ := Init(ctx, be, "pw")
	id, _, _ := r.SaveBlob(ctx, DataBlob, randomBytes(5000))
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	bi, _ := r.LookupBlob(id)
	name := packName(bi.Pack)
	pack, _ := be.Get(ctx, name, 1<<30)
	pack[bi.Offset+100] ^= 0x01
	if err := be.Put(ctx, name, pack); err != nil {
		t.Fatal(err)
	}
	_, err := r.LoadBlob(ctx, DataBlob, id)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), bi.Pack.Short()) {
		t.Errorf("load of a damaged blob: %v", err)
	}
	if VerifyPackName(bi.Pack, pack) {
		t.Error("a damaged pack still matches its name")
	}
}

func TestPackHeaderListsItsBlobs(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	r, _ := Init(ctx, be, "pw")
	want := map[ID]bool{}
	for range 10 {
		id, _, _ := r.SaveBlob(ctx, DataBlob, randomBytes(1000))
		want[id] = true
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for packID := range r.Packs() {
		pack, _ := r.ReadPack(ctx, packID, nil)
		blobs, err := r.PackContents(pack)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blobs {
			if _, err := r.BlobInPack(b, pack, nil); err != nil {
				t.Errorf("blob %s: %v", b.ID.Short(), err)
			}
			delete(want, b.ID)
		}
	}
	if len(want) != 0 {
		t.Errorf("%d blobs are in no pack header", len(want))
	}
}

func TestConcurrentInitialisationEndsInOneRepository(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	var wg sync.WaitGroup
	ids := make([]ID, 4)
	errs := make([]error, 4)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := OpenOrInit(ctx, be, "pw")
			if err == nil {
				ids[i] = r.ID()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("writer %d opened repository %s, writer 0 %s", i, ids[i].Short(), ids[0].Short())
		}
	}
	r, err := Open(ctx, be, "pw")
	if err != nil || r.ID() != ids[0] {
		t.Errorf("reopen: %v", err)
	}
}

func TestExclusiveLockWaitsForSharedLocks(t *testing.T) {
	ctx := context.Background()
	r, _ := Init(ctx, newBackend(t), "pw")
	backup1, err := r.Lock(ctx, false, "backup of volume a")
	if err != nil {
		t.Fatal(err)
	}
	backup2, err := r.Lock(ctx, false, "backup of volume b")
	if err != nil {
		t.Fatalf("two backups at once: %v", err)
	}
	_, err = r.Lock(ctx, true, "prune")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "backup of volume") {
		t.Fatalf("prune during backups: %v", err)
	}
	must(t, backup1.Unlock(ctx))
	must(t, backup2.Unlock(ctx))
	prune, err := r.Lock(ctx, true, "prune")
	if err != nil {
		t.Fatalf("prune after the backups: %v", err)
	}
	if _, err := r.Lock(ctx, false, "backup"); !errors.Is(err, ErrLocked) {
		t.Errorf("backup during prune: %v", err)
	}
	must(t, prune.Unlock(ctx))
	var left int
	_ = r.ListFiles(ctx, LockFile, func(ID) error { left++; return nil })
	if left != 0 {
		t.Errorf("%d locks left behind", left)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOneWriterPerChain(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	r, _ := Init(ctx, be, "pw")
	held, err := r.TakeLease(ctx, "volume db", "node1")
	if err != nil {
		t.Fatal(err)
	}
	// Another writer (another repository handle; the same live process stands in for a
	// live node) is refused, and told who holds the chain.
	other, _ := Open(ctx, be, "pw")
	_, err = other.TakeLease(ctx, "volume db", "node2")
	if !errors.Is(err, ErrLeased) || !strings.Contains(err.Error(), "node1") {
		t.Fatalf("second writer: %v", err)
	}
	if _, err := other.TakeLease(ctx, "volume web", "node2"); err != nil {
		t.Errorf("another chain: %v", err)
	}
	must(t, held.Release(ctx))
	if _, err := other.TakeLease(ctx, "volume db", "node2"); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func TestReloadIndexSeesWhatAnotherWriterStored(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	first, _ := Init(ctx, be, "pw")
	other, _ := Open(ctx, be, "pw")
	id, _, _ := other.SaveBlob(ctx, DataBlob, randomBytes(2000))
	must(t, other.Flush(ctx))
	if first.HasBlob(id) {
		t.Fatal("the first handle knows the blob before reloading")
	}
	must(t, first.ReloadIndex(ctx))
	if !first.HasBlob(id) {
		t.Error("after ReloadIndex the first handle does not know the other writer's blob")
	}
	must(t, first.ReloadIndex(ctx)) // nothing changed: kept as it is
	if !first.HasBlob(id) {
		t.Error("a reload with nothing new lost the blob")
	}
}

func TestAForkSharesTheKeysAndTheIndexAndWritesForEveryone(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	base, err := Init(ctx, be, "pw")
	must(t, err)
	old, _, _ := base.SaveBlob(ctx, DataBlob, randomBytes(3000))
	must(t, base.Flush(ctx))

	fork, err := base.Fork()
	must(t, err)
	if !fork.HasBlob(old) {
		t.Fatal("the fork does not know a blob its base had indexed")
	}
	if _, isNew, _ := fork.SaveBlob(ctx, DataBlob, mustLoad(t, base, old)); isNew {
		t.Error("the fork stored again a blob its base had")
	}
	data := randomBytes(5000)
	fresh, _, err := fork.SaveBlob(ctx, DataBlob, data)
	must(t, err)
	must(t, fork.Flush(ctx))
	if base.HasBlob(fresh) {
		t.Error("the base knew the fork's blob before reloading: their indexes are not apart")
	}
	must(t, base.ReloadIndex(ctx))
	reopened, err := Open(ctx, be, "pw")
	must(t, err)
	for name, r := range map[string]*Repository{"the base after reloading": base, "a new handle": reopened} {
		if got := mustLoad(t, r, fresh); !bytes.Equal(got, data) {
			t.Errorf("%s reads the fork's blob wrong", name)
		}
	}
}

func TestReloadIndexAfterAPruneForgetsWhatWasDropped(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	reader, err := Init(ctx, be, "pw")
	must(t, err)
	pruner, err := Open(ctx, be, "pw")
	must(t, err)
	kept, _, _ := pruner.SaveBlob(ctx, DataBlob, randomBytes(2000))
	must(t, pruner.Flush(ctx))
	dropped, _, _ := pruner.SaveBlob(ctx, DataBlob, randomBytes(2000))
	must(t, pruner.Flush(ctx))
	must(t, reader.ReloadIndex(ctx)) // two new files: read incrementally
	if !reader.HasBlob(kept) || !reader.HasBlob(dropped) {
		t.Fatal("the reader does not know both blobs after reloading")
	}
	loc, _ := pruner.idx.lookup(dropped)
	must(t, pruner.ReloadIndex(ctx))
	must(t, pruner.RewriteIndex(ctx, []ID{loc.Pack}))
	must(t, reader.ReloadIndex(ctx))
	if reader.HasBlob(dropped) {
		t.Error("after a prune the reader still believes in a dropped blob")
	}
	if !reader.HasBlob(kept) {
		t.Error("after a prune the reader lost a kept blob")
	}
}

func mustLoad(t *testing.T, r *Repository, id ID) []byte {
	t.Helper()
	data, err := r.LoadBlob(context.Background(), DataBlob, id)
	must(t, err)
	return data
}

func TestAHandleNoticesARepositoryCreatedAnewInItsPlace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := localfs.New(dir)
	must(t, err)
	old, err := Init(ctx, be, "pw")
	must(t, err)
	if same, err := old.StillThere(ctx); err != nil || !same {
		t.Fatalf("StillThere on its own repository = %v, %v", same, err)
	}
	must(t, os.RemoveAll(dir))
	be, err = localfs.New(dir)
	must(t, err)
	_, err = Init(ctx, be, "pw")
	must(t, err)
	if same, err := old.StillThere(ctx); err != nil || same {
		t.Errorf("StillThere after the repository was created anew = %v, %v; want false", same, err)
	}
}

// A prune that dies between writing its new index file and deleting the ones it replaces
// leaves those listed; a reader must keep leaving them out, reload after reload.
func TestAnIndexFileLeftByAKilledPruneStaysReplaced(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	reader, err := Init(ctx, be, "pw")
	must(t, err)
	pruner, err := Open(ctx, be, "pw")
	must(t, err)
	dropped, _, _ := pruner.SaveBlob(ctx, DataBlob, randomBytes(2000))
	must(t, pruner.Flush(ctx))
	must(t, reader.ReloadIndex(ctx))
	must(t, pruner.ReloadIndex(ctx))
	replaced := slices.Clone(pruner.indexFiles)
	saved := map[string][]byte{}
	for _, id := range replaced {
		data, err := be.Get(ctx, fileName(IndexFile, id), 1<<30)
		must(t, err)
		saved[fileName(IndexFile, id)] = data
	}
	loc, _ := pruner.idx.lookup(dropped)
	must(t, pruner.RewriteIndex(ctx, []ID{loc.Pack}))
	for name, data := range saved { // as if the prune had been killed before deleting them
		must(t, be.Put(ctx, name, data))
	}
	for round := range 2 {
		must(t, reader.ReloadIndex(ctx))
		if reader.HasBlob(dropped) {
			t.Fatalf("reload %d: the reader believes in a blob whose pack the prune dropped", round+1)
		}
	}
}

// failingIndexPuts stores at most n more index files, then fails, as a prune killed midway.
type failingIndexPuts struct {
	storage.Backend
	n atomic.Int64
}

func (b *failingIndexPuts) Put(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, "index/") && b.n.Add(-1) < 0 {
		return errors.New("killed")
	}
	return b.Backend.Put(ctx, name, data)
}

// However many blobs a backup or a prune writes, no index file lists more than a bound, so
// that no file grows past what a reader takes; a rewrite of the index stopped between its
// files loses no blob and brings back none it dropped once it is done.
func TestIndexFilesStaySmallAndARewriteStoppedBetweenThemLosesNothing(t *testing.T) {
	defer func(n int) { indexFileBlobs = n }(indexFileBlobs)
	indexFileBlobs = 30
	ctx := context.Background()
	be := &failingIndexPuts{Backend: newBackend(t)}
	be.n.Store(1 << 30)
	w, err := Init(ctx, be, "pw")
	must(t, err)
	var ids []ID
	for i := range 100 {
		id, _, err := w.SaveBlob(ctx, DataBlob, randomBytes(400_000+i))
		must(t, err)
		ids = append(ids, id)
	}
	must(t, w.Flush(ctx))
	largest := 0
	must(t, w.ListFiles(ctx, IndexFile, func(id ID) error {
		stored, err := be.Get(ctx, fileName(IndexFile, id), 1<<30)
		must(t, err)
		plain, _, err := w.openFile(IndexFile, stored)
		must(t, err)
		f, err := decodeIndexFile(plain)
		must(t, err)
		n := 0
		for _, p := range f.Packs {
			n += len(p.Blobs)
		}
		largest = max(largest, n)
		return nil
	}))
	if largest == 0 || largest > 30+perPackAtMost(w) {
		t.Fatalf("an index file lists %d blobs", largest)
	}
	allThere := func(r *Repository) {
		t.Helper()
		for i, id := range ids {
			if !r.HasBlob(id) {
				t.Fatalf("blob %d is not in the index", i)
			}
		}
	}
	r, err := Open(ctx, be, "pw")
	must(t, err)
	allThere(r)

	be.n.Store(2) // two of the new files are stored, then the prune dies
	if err := r.RewriteIndex(ctx, nil); err == nil {
		t.Fatal("the rewrite did not fail")
	}
	r, err = Open(ctx, be, "pw")
	must(t, err)
	allThere(r)
	be.n.Store(1 << 30)
	loc, _ := r.idx.lookup(ids[0])
	must(t, r.RewriteIndex(ctx, []ID{loc.Pack}))
	r, err = Open(ctx, be, "pw")
	must(t, err)
	if r.HasBlob(ids[0]) {
		t.Error("a blob of a dropped pack came back")
	}
	if n := len(r.indexFiles); n < 2 {
		t.Errorf("the rewritten index is %d file(s)", n)
	}
}

// perPackAtMost is how many blobs the largest pack of r holds: a file takes a pack whole.
func perPackAtMost(r *Repository) int {
	count := map[ID]int{}
	r.idx.eachBlob(func(_ ID, loc blobLoc, _ string) { count[loc.Pack]++ })
	most := 0
	for _, n := range count {
		most = max(most, n)
	}
	return most
}
