package repository

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

func syntheticPack(blobs int) indexPack {
	p := indexPack{ID: NewRandomID(), Size: int64(blobs) * 1024}
	for i := range blobs {
		p.Blobs = append(p.Blobs, indexBlob{ID: NewRandomID(), Type: DataBlob, Offset: uint32(i * 1024), Length: 1024, RawLength: 1000})
	}
	return p
}

// Forks share the index of the handle they came from instead of copying it, so a plugin
// running many jobs holds one index; what a fork adds or drops stays its own, and what the
// handle it came from learns later, its forks see.
func TestForksShareTheIndexAndKeepTheirChangesApart(t *testing.T) {
	ctx := context.Background()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	packs := make([]indexPack, 200)
	for i := range packs {
		packs[i] = syntheticPack(1000)
	}
	r.idx = loadPacks(slices.Clone(packs)...)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	forks := make([]*Repository, 50)
	for i := range forks {
		if forks[i], err = r.Fork(); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perFork := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(len(forks))
	t.Logf("a fork of a handle indexing 200,000 blobs costs %d KiB", perFork>>10)
	// A copy of the index would be about 20 MiB per fork.
	if perFork > 2<<20 {
		t.Errorf("each fork takes %d KiB: the index is copied", perFork>>10)
	}

	f, g := forks[0], forks[1]
	inBase := packs[7].Blobs[3].ID
	if !f.HasBlob(inBase) || !g.HasBlob(inBase) {
		t.Fatal("a fork does not see the index it came from")
	}
	own := syntheticPack(10)
	f.idx.addPack(own)
	if !f.HasBlob(own.Blobs[0].ID) || r.HasBlob(own.Blobs[0].ID) || g.HasBlob(own.Blobs[0].ID) {
		t.Error("a pack a fork added is not its own")
	}
	f.idx.drop(map[ID]bool{packs[7].ID: true})
	if f.HasBlob(inBase) || !r.HasBlob(inBase) || !g.HasBlob(inBase) {
		t.Error("a pack a fork dropped is not dropped for it alone")
	}
	if n := len(f.Packs()); n != 200 {
		t.Errorf("the fork knows %d packs, want 200 (one dropped, one added)", n)
	}
	blobs := 0
	f.Blobs(func(BlobInfo) { blobs++ })
	if blobs != 199*1000+10 {
		t.Errorf("the fork knows %d blobs", blobs)
	}
	later := syntheticPack(5)
	r.idx.addPack(later)
	if !f.HasBlob(later.Blobs[4].ID) || !g.HasBlob(later.Blobs[4].ID) {
		t.Error("forks do not see what the handle they came from learned later")
	}
	runtime.KeepAlive(forks)
}

// BenchmarkIndexBytesPerBlob reports what the index costs the heap per blob, at a million
// blobs in 1,000 packs, read as index files are, with the table on the heap and in a file:
// go test -run '^$' -bench IndexBytesPerBlob -benchtime 1x ./shared/repository
func BenchmarkIndexBytesPerBlob(b *testing.B) {
	for _, where := range []string{"heap", "file"} {
		b.Run(where, func(b *testing.B) {
			dir := ""
			if where == "file" {
				dir = b.TempDir()
			}
			ps := make([]indexPack, 1000)
			for i := range ps {
				ps[i] = syntheticPack(1000)
			}
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				x, err := loadPacksIn(dir, ps...)
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1e6, "B/blob")
				runtime.KeepAlive(x)
			}
		})
	}
}

// loadSynthetic builds an index as loadIndex does, from packs of random blobs.
func loadSynthetic(packs, blobs int) *index {
	ps := make([]indexPack, packs)
	for i := range ps {
		ps[i] = syntheticPack(blobs)
	}
	return loadPacks(ps...)
}

func loadPacks(packs ...indexPack) *index {
	x, err := loadPacksIn("", packs...)
	if err != nil {
		panic(err)
	}
	return x
}

// loadPacksIn builds an index whose table may spill to a file in dir.
func loadPacksIn(dir string, packs ...indexPack) (*index, error) {
	x, b := newIndex(), newTableBuilder(dir)
	for _, p := range packs {
		b.add(p)
		p.Blobs = nil
		x.addPack(p)
	}
	t, err := b.finish(func(id ID) bool { _, ok := x.packSize(id); return ok })
	x.setTable(t, dir)
	return x, err
}

// The table of a loaded index finds every blob, at the place its pack holds it, in a pack the
// index still has: a blob stored in two packs survives either being dropped, and is listed once.
// A table too large for the heap lives in a file, which nothing names.
func TestTheIndexFindsEachBlobInAPackItStillHas(t *testing.T) {
	t.Run("heap", func(t *testing.T) { testIndexTable(t, "") })
	t.Run("file", func(t *testing.T) {
		defer func(n int) { spillAt = n }(spillAt)
		spillAt = 100 * recordSize
		dir := t.TempDir()
		testIndexTable(t, dir)
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("the table's file is still named: %v", left)
		}
	})
	t.Run("no room for a file", func(t *testing.T) {
		defer func(n int) { spillAt = n }(spillAt)
		spillAt = 100 * recordSize
		notADir := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(notADir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		testIndexTable(t, notADir)
	})
}

func testIndexTable(t *testing.T, dir string) {
	a, b, c := syntheticPack(300), syntheticPack(300), syntheticPack(1)
	twice := a.Blobs[17]
	b.Blobs[5] = twice
	b.Blobs[5].Offset = 4096
	c.Blobs[0].Type, c.Node = TreeBlob, "node1"
	x, err := loadPacksIn(dir, a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	if x.tables[0].len() != 601 {
		t.Fatalf("the table holds %d records", x.tables[0].len())
	}
	for _, p := range []indexPack{a, b} {
		for i, bl := range p.Blobs {
			loc, ok := x.lookup(bl.ID)
			if !ok || bl.ID != twice.ID && (loc.Pack != p.ID || loc.Offset != bl.Offset || loc.Length != bl.Length || loc.RawLength != bl.RawLength || loc.Type != DataBlob) {
				t.Fatalf("blob %d of a pack: %+v, %v", i, loc, ok)
			}
		}
	}
	if loc, ok := x.lookup(c.Blobs[0].ID); !ok || loc.Type != TreeBlob || !loc.Node || x.packNode(loc.Pack) != "node1" {
		t.Errorf("a node's tree blob: %+v", loc)
	}
	if _, ok := x.lookup(NewRandomID()); ok {
		t.Error("an unknown blob was found")
	}
	count := func() (n int) {
		x.eachBlob(func(ID, blobLoc, string) { n++ })
		return n
	}
	if n := count(); n != 600 {
		t.Errorf("listed %d blobs, want 600: each once", n)
	}
	x.drop(map[ID]bool{a.ID: true})
	if loc, ok := x.lookup(twice.ID); !ok || loc.Pack != b.ID || loc.Offset != 4096 {
		t.Errorf("the blob stored twice, its first pack dropped: %+v, %v", loc, ok)
	}
	if _, ok := x.lookup(a.Blobs[0].ID); ok {
		t.Error("a blob of a dropped pack was found")
	}
	if n := count(); n != 301 {
		t.Errorf("listed %d blobs after a drop, want 301", n)
	}
	x.drop(map[ID]bool{b.ID: true})
	if _, ok := x.lookup(twice.ID); ok {
		t.Error("a blob whose packs are both dropped was found")
	}
}

// Listing the blobs of node-sealed packs while another writer adds to the index must not
// wait on itself: the pack's node is read under the lock the listing already holds.
func TestListingBlobsBesideAWriterDoesNotDeadlock(t *testing.T) {
	r := &Repository{idx: newIndex()}
	var node indexPack
	node.ID, node.Size, node.Node = ID{1}, 1<<20, "n1"
	for i := range 1000 {
		node.Blobs = append(node.Blobs, indexBlob{ID: ID{2, byte(i), byte(i >> 8)}, Length: 64})
	}
	r.idx.addPack(node)
	f := &Repository{idx: r.idx.layer()}
	stop := make(chan struct{})
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				r.idx.addPack(indexPack{ID: ID{3, byte(i), byte(i >> 8)}, Size: 1})
			}
		}
	}()
	done := make(chan int)
	go func() {
		n := 0
		for range 200 {
			f.Blobs(func(bi BlobInfo) {
				if bi.Node == "n1" {
					n++
				}
			})
		}
		done <- n
	}()
	select {
	case n := <-done:
		if n != 200*1000 {
			t.Errorf("listed %d blobs of node n1, want %d", n, 200*1000)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("listing the blobs beside a writer did not end")
	}
	close(stop)
	<-writer
}

// Blobs added after the index was read are sorted into tables of their own once there are
// enough of them, in a layer as in a handle's own index: every blob stays findable at its
// place, each is listed once (one stored twice, in packs of two tables, too), and dropping a
// pack hides its blobs whichever table holds them.
func TestBlobsAddedLaterAreSortedIntoTables(t *testing.T) {
	defer func(n int) { compactAt = n }(compactAt)
	compactAt = 64
	for _, x := range []*index{loadPacks(syntheticPack(100)), loadPacks(syntheticPack(100)).layer()} {
		var packs []indexPack
		for range 20 {
			p := syntheticPack(30)
			packs = append(packs, p)
			x.addPack(p)
		}
		again := packs[0].Blobs[3] // stored again, in a later pack
		again.Offset = 2048
		later := syntheticPack(10)
		later.Blobs[9] = again
		x.addPack(later)
		packs = append(packs, later)
		if len(x.tables) < 2 || len(x.tables) > 6 {
			t.Fatalf("%d tables after 21 packs", len(x.tables))
		}
		for _, p := range packs {
			for _, bl := range p.Blobs {
				loc, ok := x.lookup(bl.ID)
				if !ok || bl.ID != again.ID && (loc.Pack != p.ID || loc.Offset != bl.Offset) {
					t.Fatalf("blob of pack %s: %+v, %v", p.ID.Short(), loc, ok)
				}
			}
		}
		n := 0
		x.eachBlob(func(ID, blobLoc, string) { n++ })
		if want := 100 + 20*30 + 9; n != want { // the layer's base has 100
			t.Errorf("listed %d blobs, want %d", n, want)
		}
		x.drop(map[ID]bool{packs[0].ID: true, packs[5].ID: true})
		if _, ok := x.lookup(packs[5].Blobs[0].ID); ok {
			t.Error("a blob of a dropped pack was found")
		}
		if loc, ok := x.lookup(again.ID); !ok || loc.Pack != later.ID {
			t.Errorf("the blob stored again, its first pack dropped: %+v, %v", loc, ok)
		}
	}
}

// A blob of the base stored again in a layer, and sorted into the layer's table, is listed
// once.
func TestABlobStoredAgainInALayersTableIsListedOnce(t *testing.T) {
	defer func(n int) { compactAt = n }(compactAt)
	compactAt = 8
	first := syntheticPack(50)
	x := loadPacks(first).layer()
	again := syntheticPack(10)
	again.Blobs[0] = first.Blobs[0]
	x.addPack(again)
	if len(x.tables) != 1 {
		t.Fatalf("%d tables in the layer", len(x.tables))
	}
	n := 0
	x.eachBlob(func(ID, blobLoc, string) { n++ })
	if n != 59 {
		t.Errorf("listed %d blobs, want 59", n)
	}
}

// BenchmarkIndexLookup looks up known and unknown blobs in an index of a million:
// go test -run '^$' -bench IndexLookup ./shared/repository
func BenchmarkIndexLookup(b *testing.B) {
	ps := make([]indexPack, 1000)
	for i := range ps {
		ps[i] = syntheticPack(1000)
	}
	x := loadPacks(ps...)
	b.ResetTimer()
	for i := range b.N {
		id := ps[i%1000].Blobs[i%997].ID
		if i%2 == 1 {
			id[5]++ // unknown
		}
		if _, ok := x.lookup(id); ok != (i%2 == 0) {
			b.Fatal("wrong answer")
		}
	}
}
