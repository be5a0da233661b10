package repository

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// slowPacks stores packs slowly, as a remote bucket does, honouring the context.
type slowPacks struct{ storage.Backend }

func (s slowPacks) Put(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, "data/") {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Backend.Put(ctx, name, data)
}

// Uploads a repack starts last are still under way when its readers are done: they must
// finish, not be cancelled with the readers' context.
func TestARepacksLastUploadsAreNotCancelled(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	r, err := Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	for range 24 {
		data := make([]byte, 1<<20)
		_, _ = rand.Read(data)
		id, _, err := r.SaveBlob(ctx, DataBlob, data)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r, err = Open(ctx, slowPacks{be}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var packs []ID
	for id := range r.Packs() {
		packs = append(packs, id)
	}
	// More than a pack's worth is kept: packs fill, and upload, while blobs are copied.
	keep := map[ID]bool{}
	for _, id := range ids[:20] {
		keep[id] = true
	}
	stats, err := r.Repack(ctx, packs, func(id ID) bool { return keep[id] })
	if err != nil {
		t.Fatalf("repack: %v", err)
	}
	if stats.Blobs != len(keep) {
		t.Fatalf("repacked %d blobs, want %d", stats.Blobs, len(keep))
	}
	for id := range keep {
		bi, ok := r.LookupBlob(id)
		if !ok || bi.Pack == (ID{}) || slices.Contains(packs, bi.Pack) {
			t.Fatalf("blob %s is not in a new pack", id.Short())
		}
		if _, err := r.LoadBlob(ctx, DataBlob, id); err != nil {
			t.Fatal(err)
		}
	}
}
