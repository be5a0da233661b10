package archiver_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// sqlDump is text like a database dump's: the data a chunker must cut by content, not only
// random bytes.
func sqlDump(rows int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for i := range rows {
		fmt.Fprintf(&b, "INSERT INTO orders VALUES (%d, 'customer-%06d', %d.%02d, '2026-11-%02d', 'shipped');\n",
			i, rng.IntN(1_000_000), rng.IntN(10_000), rng.IntN(100), 1+rng.IntN(30))
	}
	return b.Bytes()
}

func TestRowsInsertedNearTheStartOfADumpStoreOnlyTheChunksAroundThem(t *testing.T) {
	src := t.TempDir()
	dump := sqlDump(100_000, 7) // about 8 MiB
	path := filepath.Join(src, "db.sql")
	write(t, path, dump)
	r := openRepo(t)
	first := backup(t, r, src, nil)

	at := bytes.IndexByte(dump[4096:], '\n') + 4097
	grown := slices.Concat(dump[:at], sqlDump(3, 8), dump[at:])
	write(t, path, grown)
	second := backup(t, r, src, first)

	// The chunks after the new rows are those stored before: a few chunks are new, not the
	// whole dump again.
	if second.Stats.BytesNew > 2<<20 {
		t.Errorf("rows inserted near the start of a %d-byte dump stored %d new bytes, want at most a few chunks", len(grown), second.Stats.BytesNew)
	}
}

func TestChunkBoundariesDependOnTheRepositorysKey(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "data.bin"), randomBytes(8<<20))
	lengths := func(r *repository.Repository) []uint32 {
		sn := backup(t, r, src, nil)
		tree, err := snapshot.LoadTree(t.Context(), r, sn.Tree)
		must(t, err)
		var out []uint32
		for _, id := range tree.Nodes[0].Content {
			bi, ok := r.LookupBlob(id)
			if !ok {
				t.Fatalf("blob %s of data.bin is not in the index", id.Short())
			}
			out = append(out, bi.RawLength)
		}
		return out
	}
	a, b := lengths(openRepo(t)), lengths(openRepo(t))
	if len(a) < 8 {
		t.Fatalf("8 MiB were cut into %d chunks, want several", len(a))
	}
	// Unkeyed, the sizes of a known file's chunks would give it away in any repository.
	if slices.Equal(a, b) {
		t.Errorf("two repositories cut the same file into the same chunk sizes: %v", a)
	}
}

func TestAnOverwrittenRegionStoresLittleMoreThanItself(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 32<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	src := t.TempDir()
	path := filepath.Join(src, "disk.img")
	write(t, path, data)
	r := openRepo(t)
	first := backup(t, r, src, nil)

	region := data[12<<20 : 14<<20]
	for i := range region {
		region[i] = byte(rng.Uint32())
	}
	write(t, path, data)
	second := backup(t, r, src, first)

	// The chunks around the region are new as well, until the cut points fall back in step
	// with the old ones.
	if second.Stats.BytesNew > 3<<20 {
		t.Errorf("2 MiB overwritten stored %d new bytes, want the region and a few chunks around it", second.Stats.BytesNew)
	}
}
