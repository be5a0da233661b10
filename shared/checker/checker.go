// Package checker verifies a repository: every record and index decrypts and
// authenticates, every tree decodes, every blob a snapshot needs is indexed and its pack is
// present; with ReadData, every pack is read back, matched against its name and every blob
// in it is authenticated and re-hashed. Damage is reported by snapshot and path.
package checker

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Options choose how deep to look.
type Options struct {
	// ReadData reads and re-hashes all data, not only the structure.
	ReadData bool
	// Snapshots limits the check of trees to these snapshots; empty means all.
	Snapshots []*snapshot.Snapshot
	// Progress, when set, is told about each pack read.
	Progress func(packsDone, packsTotal int)
}

// Problem is one thing found damaged or missing.
type Problem struct {
	Snapshot string `json:"snapshot,omitempty"` // short ID
	Path     string `json:"path,omitempty"`
	What     string `json:"what"`
}

func (p Problem) String() string {
	switch {
	case p.Snapshot != "" && p.Path != "":
		return fmt.Sprintf("snapshot %s: %s: %s", p.Snapshot, p.Path, p.What)
	case p.Snapshot != "":
		return fmt.Sprintf("snapshot %s: %s", p.Snapshot, p.What)
	}
	return p.What
}

// Report is the outcome of a check.
type Report struct {
	Snapshots int       `json:"snapshots"`
	Packs     int       `json:"packs"`
	PacksRead int       `json:"packs_read"`
	Problems  []Problem `json:"problems"`
	// UnindexedPacks are stored packs no index lists: left by a backup that was killed
	// before it wrote its index. They damage nothing; prune removes them.
	UnindexedPacks int   `json:"unindexed_packs,omitempty"`
	UnindexedBytes int64 `json:"unindexed_bytes,omitempty"`
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

type check struct {
	repo *repository.Repository
	opts Options
	rep  Report
	bad  map[repository.ID]string // blob -> what is wrong with it
}

// Check runs the check. An error means the check itself could not run (storage
// unreachable); damage is reported in the Report.
func Check(ctx context.Context, repo *repository.Repository, opts Options) (*Report, error) {
	c := &check{repo: repo, opts: opts, bad: map[repository.ID]string{}}
	for _, err := range repo.IndexProblems() {
		c.problem(Problem{What: err.Error()})
	}
	snaps := opts.Snapshots
	if len(snaps) == 0 {
		list, problems, err := snapshot.List(ctx, repo)
		if err != nil {
			return nil, err
		}
		for _, err := range problems {
			c.problem(Problem{What: err.Error()})
		}
		snaps = list
	}
	c.rep.Snapshots = len(snaps)
	if err := c.checkPacks(ctx); err != nil {
		return nil, err
	}
	for _, sn := range snaps {
		if err := c.walk(ctx, sn, sn.Tree, "/"); err != nil {
			return nil, err
		}
	}
	return &c.rep, nil
}

func (c *check) problem(p Problem) { c.rep.Problems = append(c.rep.Problems, p) }

// checkPacks compares the index with what storage holds and, with ReadData, reads every pack.
func (c *check) checkPacks(ctx context.Context) error {
	indexed := c.repo.Packs()
	stored, err := c.repo.StoredPacks(ctx)
	if err != nil {
		return err
	}
	c.rep.Packs = len(indexed)
	for id, size := range stored {
		if _, ok := indexed[id]; !ok {
			c.rep.UnindexedPacks++
			c.rep.UnindexedBytes += size
		}
	}
	blobsOf := map[repository.ID][]repository.BlobInfo{}
	c.repo.Blobs(func(bi repository.BlobInfo) { blobsOf[bi.Pack] = append(blobsOf[bi.Pack], bi) })

	var toRead []repository.ID
	for id, size := range indexed {
		got, ok := stored[id]
		switch {
		case !ok:
			// Reported even when no snapshot needs it: a backup takes what the index lists as
			// stored, and would refer to blobs in it without storing them again.
			what := fmt.Sprintf("pack %s is missing", id.Short())
			c.markPack(blobsOf[id], what)
			if len(blobsOf[id]) > 0 {
				c.problem(Problem{What: fmt.Sprintf("%s (the index lists %d blobs in it)", what, len(blobsOf[id]))})
			}
		case got != size:
			c.markPack(blobsOf[id], fmt.Sprintf("pack %s is %d bytes, the index says %d", id.Short(), got, size))
		case c.opts.ReadData && c.canRead(blobsOf[id]):
			toRead = append(toRead, id)
		}
	}
	if !c.opts.ReadData {
		return nil
	}
	sort.Slice(toRead, func(i, j int) bool { return toRead[i].String() < toRead[j].String() })
	// A few packs are read at a time; their findings are merged as they come.
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for _, id := range toRead {
		g.Go(func() error {
			found, err := c.readPack(gctx, id, blobsOf[id])
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			c.rep.PacksRead++
			if c.opts.Progress != nil {
				c.opts.Progress(c.rep.PacksRead, len(toRead))
			}
			for id, what := range found {
				if id.IsNull() {
					c.problem(Problem{What: what})
					continue
				}
				c.bad[id] = what
			}
			return nil
		})
	}
	return g.Wait()
}

// canRead says whether this key can open a pack's blobs: a key of the volumes role cannot
// open the control plane's, nor other nodes' own, nor does it see the backups that need them.
func (c *check) canRead(blobs []repository.BlobInfo) bool {
	return len(blobs) == 0 || c.repo.CanOpen(blobs[0])
}

func (c *check) markPack(blobs []repository.BlobInfo, what string) {
	for _, bi := range blobs {
		c.bad[bi.ID] = what
	}
	if len(blobs) == 0 {
		c.problem(Problem{What: what})
	}
}

// readPack reads a pack and returns the blobs found damaged in it.
func (c *check) readPack(ctx context.Context, id repository.ID, blobs []repository.BlobInfo) (map[repository.ID]string, error) {
	pack, err := c.repo.ReadPack(ctx, id, nil)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, err
		}
		out := map[repository.ID]string{}
		for _, bi := range blobs {
			out[bi.ID] = err.Error()
		}
		return out, nil
	}
	out := map[repository.ID]string{}
	nameOK := repository.VerifyPackName(id, pack) // before blobs are decrypted in place
	_, headerErr := c.repo.PackContents(pack)
	for _, bi := range blobs {
		if _, err := c.repo.BlobInPack(bi, pack, nil); err != nil {
			out[bi.ID] = err.Error()
		}
	}
	if !nameOK && len(out) == 0 {
		// Damage outside every indexed blob, such as in the header: reported once, under
		// the null ID, since no snapshot's data is affected.
		if headerErr != nil {
			out[repository.ID{}] = fmt.Sprintf("pack %s: %v", id.Short(), headerErr)
		} else {
			out[repository.ID{}] = fmt.Sprintf("pack %s does not match its name", id.Short())
		}
	}
	return out, nil
}

// walk checks a snapshot's trees and reports every path that depends on a bad blob.
func (c *check) walk(ctx context.Context, sn *snapshot.Snapshot, treeID repository.ID, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if what, ok := c.bad[treeID]; ok {
		c.problem(Problem{Snapshot: sn.ID.Short(), Path: dir, What: "listing: " + what})
		return nil
	}
	tree, err := snapshot.LoadTree(ctx, c.repo, treeID)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.problem(Problem{Snapshot: sn.ID.Short(), Path: dir, What: "listing: " + err.Error()})
		return nil
	}
	for _, n := range tree.Nodes {
		p := path.Join(dir, n.Name)
		switch n.Type {
		case snapshot.TypeDir:
			if err := c.walk(ctx, sn, *n.Subtree, p); err != nil {
				return err
			}
		case snapshot.TypeFile:
			for _, id := range n.Content {
				if what, ok := c.bad[id]; ok {
					c.problem(Problem{Snapshot: sn.ID.Short(), Path: p, What: what})
					break
				}
				if _, ok := c.repo.LookupBlob(id); !ok {
					c.problem(Problem{Snapshot: sn.ID.Short(), Path: p, What: fmt.Sprintf("content blob %s is not in the index", id.Short())})
					break
				}
			}
		}
	}
	return nil
}
