package archiver_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

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
