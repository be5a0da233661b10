package pruner

import (
	"cmp"
	"slices"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// usage is how much of a pack kept snapshots need.
type usage struct {
	usedBlobs, unusedBlobs int
	used, unused           int64 // sealed bytes
}

// packUse measures every indexed pack against the blobs kept snapshots need.
func packUsage(repo *repository.Repository, needed map[repository.ID]bool) map[repository.ID]usage {
	out := map[repository.ID]usage{}
	repo.Blobs(func(bi repository.BlobInfo) {
		u := out[bi.Pack]
		if needed[bi.ID] {
			u.usedBlobs++
			u.used += int64(bi.Length)
		} else {
			u.unusedBlobs++
			u.unused += int64(bi.Length)
		}
		out[bi.Pack] = u
	})
	return out
}

// pickRepacks chooses the partly used packs to repack: the emptiest first, until what the
// others hold unneeded is at most maxUnused times what kept packs hold needed.
func (plan *Plan) pickRepacks(packs map[repository.ID]int64, usages map[repository.ID]usage, maxUnused float64) []repository.ID {
	var partly []repository.ID
	var needed, unneeded int64
	for id := range packs {
		u := usages[id]
		if u.usedBlobs == 0 {
			continue // removed whole
		}
		needed += u.used
		if u.unusedBlobs > 0 {
			partly = append(partly, id)
			unneeded += u.unused
		}
	}
	emptiness := func(id repository.ID) float64 { return float64(usages[id].unused) / float64(packs[id]) }
	slices.SortFunc(partly, func(a, b repository.ID) int {
		if c := cmp.Compare(emptiness(b), emptiness(a)); c != 0 {
			return c
		}
		return slices.Compare(a[:], b[:])
	})
	var repack []repository.ID
	for _, id := range partly {
		if float64(unneeded) <= maxUnused*float64(needed) {
			break
		}
		repack = append(repack, id)
		unneeded -= usages[id].unused
		plan.PacksRepacked++
		plan.BytesRepacked += usages[id].used
		plan.BytesRepackFreed += packs[id]
	}
	plan.PacksKeptPartly = len(partly) - len(repack)
	plan.BytesUnused = unneeded
	return repack
}
