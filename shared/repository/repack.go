package repository

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"
)

// RepackStats says what Repack copied.
type RepackStats struct {
	Packs int   // packs read
	Blobs int   // blobs copied into new packs
	Bytes int64 // their plaintext
}

// Packs read at once by Repack; each holds a whole pack in memory.
const repackWorkers = 4

// Repack copies the blobs of packs that keep wants into new packs, each sealed in the
// compartment it was sealed in, and stores an index file naming them; this handle's index
// then finds those blobs in the new packs. The old packs stay in storage and in the stored
// index until the caller rewrites the index without them (RewriteIndex) and deletes them: a
// crash before that leaves the blobs in two packs, which is harmless, and the next prune
// removes the packs no blob is found in. Call it under the exclusive lock.
func (r *Repository) Repack(ctx context.Context, packs []ID, keep func(ID) bool) (RepackStats, error) {
	selected := map[ID]bool{}
	for _, id := range packs {
		selected[id] = true
	}
	byPack := map[ID][]BlobInfo{}
	r.Blobs(func(bi BlobInfo) {
		if selected[bi.Pack] && keep(bi.ID) {
			byPack[bi.Pack] = append(byPack[bi.Pack], bi)
		}
	})
	// One writer per compartment, whose index leaves out the packs being repacked: it
	// stores their blobs again rather than finding them where they are.
	writers := map[*compartment]*Repository{}
	writerOf := map[ID]*Repository{}
	for pack, blobs := range byPack {
		keys, err := r.compartmentOf(blobs[0])
		if err != nil {
			return RepackStats{}, fmt.Errorf("repack pack %s: %w", pack.Short(), err)
		}
		w, ok := writers[keys]
		if !ok {
			if w, err = r.Fork(); err != nil {
				return RepackStats{}, err
			}
			w.sealer = keys
			w.idx.drop(selected)
			writers[keys] = w
		}
		writerOf[pack] = w
	}

	order := make([]ID, 0, len(byPack))
	for pack := range byPack {
		order = append(order, pack)
	}
	slices.SortFunc(order, func(a, b ID) int { return slices.Compare(a[:], b[:]) })
	stats := make([]RepackStats, len(order))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(repackWorkers)
	for i, pack := range order {
		g.Go(func() error {
			data, err := r.ReadPack(gctx, pack, nil)
			if err != nil {
				return fmt.Errorf("repack: %w", err)
			}
			w := writerOf[pack]
			for _, bi := range byPack[pack] {
				if err := gctx.Err(); err != nil {
					return err
				}
				plain, err := r.BlobInPack(bi, data, nil)
				if err != nil {
					return fmt.Errorf("repack pack %s: %w (run verify)", pack.Short(), err)
				}
				// Uploads outlive this goroutine, and the group's context with it: they
				// take the caller's, and Flush or the wait below ends them.
				id, _, err := w.SaveBlob(ctx, bi.Type, plain)
				if err != nil {
					return fmt.Errorf("repack pack %s: %w", pack.Short(), err)
				}
				if id != bi.ID {
					return fmt.Errorf("repack pack %s: blob %s: %w: stored again it hashes to %s", pack.Short(), bi.ID.Short(), ErrCorrupt, id.Short())
				}
				stats[i].Blobs++
				stats[i].Bytes += int64(len(plain))
			}
			stats[i].Packs++
			return nil
		})
	}
	err := g.Wait()
	var total RepackStats
	for _, s := range stats {
		total.Packs += s.Packs
		total.Blobs += s.Blobs
		total.Bytes += s.Bytes
	}
	if err != nil {
		// Uploads under way end before the lock is let go; what they stored no index lists,
		// and the next prune removes it.
		for _, w := range writers {
			w.uploads.Wait()
		}
		return total, err
	}
	for _, w := range writers {
		if err := w.Flush(ctx); err != nil {
			return total, fmt.Errorf("repack: %w", err)
		}
	}
	if err := r.ReloadIndex(ctx); err != nil {
		return total, fmt.Errorf("repack: read the new index: %w", err)
	}
	return total, nil
}
