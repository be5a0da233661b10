package archiver

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// Where chunks are cut depends on the repository's key, so what a change costs varies from
// one repository to the next; these tests cut with a few fixed keys and judge the total.
func testKeys() [][]byte {
	var keys [][]byte
	for k := range 8 {
		key := sha256.Sum256(fmt.Appendf(nil, "chunk test key %d", k))
		keys = append(keys, key[:])
	}
	return keys
}

// newBytes is what storing after costs once before is stored, both cut with key: the bytes
// of its chunks that before does not have.
func newBytes(t *testing.T, key, before, after []byte) int {
	t.Helper()
	buf := make([]byte, 2*chunkMax)
	stored := map[[32]byte]bool{}
	if err := chunk(bytes.NewReader(before), key, buf, func(c []byte) error { stored[sha256.Sum256(c)] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := chunk(bytes.NewReader(after), key, buf, func(c []byte) error {
		if !stored[sha256.Sum256(c)] {
			n += len(c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

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
	dump := sqlDump(100_000, 7) // about 8 MiB
	at := bytes.IndexByte(dump[4096:], '\n') + 4097
	grown := slices.Concat(dump[:at], sqlDump(3, 8), dump[at:])
	// The chunks after the new rows are those stored before: a few chunks are new, not the
	// whole dump again.
	for k, key := range testKeys() {
		if n := newBytes(t, key, dump, grown); n > 2<<20 {
			t.Errorf("key %d: rows inserted near the start of a %d-byte dump stored %d new bytes, want at most a few chunks", k, len(grown), n)
		}
	}
}

// Each overwritten region costs the chunks around it as well, until the cut points fall back
// in step with the old ones.
func TestOverwrittenRegionsStoreLittleMoreThanThemselves(t *testing.T) {
	const regions, regionSize, apart = 4, 2 << 20, 8 << 20
	rng := rand.New(rand.NewPCG(3, 4))
	before := make([]byte, regions*apart)
	for i := range before {
		before[i] = byte(rng.Uint32())
	}
	after := slices.Clone(before)
	for k := range regions {
		region := after[k*apart+apart/2:][:regionSize]
		for i := range region {
			region[i] = byte(rng.Uint32())
		}
	}
	keys := testKeys()
	extra := 0
	for _, key := range keys {
		extra += newBytes(t, key, before, after) - regions*regionSize
	}
	extra /= len(keys) * regions
	// 0.95 MiB beyond each region with these settings and keys; FastCDC's first masks, which
	// fall back in step slowly, 1.44 MiB.
	if extra > 1280<<10 {
		t.Errorf("2 MiB regions overwritten stored %d bytes more than each region on average, want about a chunk or two", extra)
	}
}
