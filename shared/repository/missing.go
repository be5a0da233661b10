package repository

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// ForgetMissingPacks takes out of this handle's index the packs it lists that storage does
// not hold: stored (from StoredPacks) lacks them, and asked for each, storage says it has no
// such object. An index file left behind by a prune killed midway, or put back from an old
// copy, lists packs removed since; reads of the blobs it shares with the current index would
// go to them and fail, and a backup would take their blobs as stored instead of storing them
// again. Call it under the exclusive lock; RewriteIndex makes the change last.
func (r *Repository) ForgetMissingPacks(ctx context.Context, stored map[ID]int64) ([]ID, error) {
	var missing []ID
	r.idx.eachPack(func(id ID, _ int64) {
		if _, ok := stored[id]; !ok {
			missing = append(missing, id)
		}
	})
	slices.SortFunc(missing, func(a, b ID) int { return slices.Compare(a[:], b[:]) })
	drop := map[ID]bool{}
	for _, id := range missing {
		// A listing that missed a pack must not cost it: taken out of the index, it would be
		// removed by the next prune as a pack no index lists.
		_, err := r.be.Stat(ctx, packName(id))
		switch {
		case errors.Is(err, storage.ErrNotFound):
			drop[id] = true
		case err != nil:
			return nil, fmt.Errorf("look for pack %s, which the index lists: %w", id.Short(), err)
		}
	}
	r.idx.drop(drop)
	return slices.DeleteFunc(missing, func(id ID) bool { return !drop[id] }), nil
}
