// Package backup runs one backup of a directory into a repository from start to end: find
// the parent snapshot, archive, make the data durable, then (and only then) record the
// snapshot. It is what the volume plugin and the CLI both call.
package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/archiver"
	"github.com/swarmbackup/swarmbackup/shared/buildinfo"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Source says what is backed up.
type Source struct {
	Kind string // snapshot.KindVolume or snapshot.KindSwarm
	Name string // the volume's name, or the swarm's cluster ID
	Path string // the directory to read
	Host string // the node's host name; this machine's when empty
	Node string // swarm node ID, when known; needed for ScopeNode
	// Scope is snapshot.ScopeNode when the source's snapshots chain per node; empty (or
	// snapshot.ScopeCluster) when they chain across nodes.
	Scope string
	Tags  map[string]string
	Meta  []byte // kind-specific metadata, stored with the record
}

// Options tune a backup.
type Options struct {
	Workers  int
	Progress func(archiver.Progress)
	Skipped  func(path string, err error)
	// Hold, when set, runs capture while the source's users are held still (paused, stopped,
	// told to flush), releases them, and says how. The capture lists the tree and copies what
	// changed into CaptureDir; the slow part, chunking and upload, runs after the release.
	// When nothing uses the source, Hold returns without calling capture and the live tree
	// is read, as without Hold: copying it first would only cost time and space.
	Hold       func(ctx context.Context, capture func() error) (*snapshot.Quiesce, error)
	CaptureDir string
	// CaptureTimeout bounds the capture, and so the hold; zero means DefaultCaptureTimeout.
	CaptureTimeout time.Duration
}

// DefaultCaptureTimeout bounds a capture when the caller sets no bound: containers are held
// at most this long, whatever is found in the volume.
const DefaultCaptureTimeout = 10 * time.Minute

// maxWarnings bounds the skipped entries a record names.
const maxWarnings = 100

func captureTimeout(opts Options) time.Duration {
	if opts.CaptureTimeout > 0 {
		return opts.CaptureTimeout
	}
	return DefaultCaptureTimeout
}

// Run backs up src and returns the stored snapshot.
func Run(ctx context.Context, repo *repository.Repository, src Source, opts Options) (*snapshot.Snapshot, error) {
	start := time.Now().UTC()
	chain := snapshot.Chain{Kind: src.Kind, Source: src.Name}
	scope := ""
	if src.Scope == snapshot.ScopeNode {
		if src.Node == "" {
			return nil, fmt.Errorf("back up %s %s: its snapshots chain per node, and this node's identity is unknown", src.Kind, src.Name)
		}
		chain.Node, scope = src.Node, snapshot.ScopeNode
	}
	lock, err := repo.Lock(ctx, false, fmt.Sprintf("backup of %s %s", src.Kind, src.Name))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(ctx)
	if src.Kind == snapshot.KindSwarm {
		// The control plane's secrets go into the compartment keys of workers cannot open.
		if repo, err = repo.ControlPlane(); err != nil {
			return nil, fmt.Errorf("back up %s %s: %w", src.Kind, src.Name, err)
		}
	}
	if scope == snapshot.ScopeNode {
		// A node's own volume goes into its compartment, out of other nodes' reach.
		if repo, err = repo.ForNode(src.Node); err != nil {
			return nil, fmt.Errorf("back up %s %s: %w", src.Kind, src.Name, err)
		}
	}
	host := src.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	lease, err := repo.TakeLease(ctx, chain.String(), host)
	if err != nil {
		return nil, fmt.Errorf("refusing to back up: %w", err)
	}
	defer lease.Release(ctx)
	// A prune may have run between opening the repository and taking the lock; under the
	// lock none can, so what the index says now stays true until the snapshot is saved.
	if err := repo.ReloadIndex(ctx); err != nil {
		return nil, err
	}
	list, _, err := snapshot.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	parentSnap := snapshot.Latest(list, chain)
	parent := archiver.NewParent(repo, parentSnap)
	var source archiver.Source
	var held *snapshot.Quiesce
	var captured *archiver.Capture
	if opts.Hold != nil {
		if err := parent.Preload(ctx); err != nil {
			return nil, err
		}
		held, err = opts.Hold(ctx, func() error {
			// A capture reads what containers can change under it: it must end however
			// they behave, and the hold with it.
			cctx, cancel := context.WithTimeout(ctx, captureTimeout(opts))
			defer cancel()
			c, err := archiver.CaptureTree(cctx, repo, src.Path, opts.CaptureDir, parent)
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("the capture took longer than %s: %w", captureTimeout(opts), err)
			}
			captured = c
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("back up %s %s: %w", src.Kind, src.Name, err)
		}
		if captured != nil {
			source = captured
			for _, s := range captured.Skipped {
				if opts.Skipped != nil {
					opts.Skipped(s.Path, s.Err)
				}
			}
		}
	}
	if source == nil {
		live, err := archiver.Dir(src.Path)
		if err != nil {
			return nil, fmt.Errorf("back up %s %s: %w", src.Kind, src.Name, err)
		}
		defer live.Close()
		source = live
	}
	res, err := archiver.SnapshotFrom(ctx, repo, source, archiver.Options{
		Parent: parent, Workers: opts.Workers, Progress: opts.Progress, Skipped: opts.Skipped,
	})
	if err != nil {
		return nil, fmt.Errorf("back up %s %s: %w", src.Kind, src.Name, err)
	}
	if captured != nil {
		res.Stats.Skipped += uint64(len(captured.Skipped))
		for _, s := range captured.Skipped {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: %v", s.Path, s.Err))
		}
		res.Warnings = res.Warnings[:min(len(res.Warnings), maxWarnings)]
	}
	if err := repo.Flush(ctx); err != nil {
		return nil, fmt.Errorf("back up %s %s: %w", src.Kind, src.Name, err)
	}
	sn := &snapshot.Snapshot{
		Time: start, Kind: src.Kind, Source: src.Name, Hostname: host, Node: src.Node, Scope: scope,
		Tree: res.Tree, Root: &res.Root, Tags: src.Tags, Program: buildinfo.String(), Stats: res.Stats,
		Warnings: res.Warnings, Meta: src.Meta, Quiesce: held, Took: time.Since(start),
	}
	if parentSnap != nil {
		sn.Parent = &parentSnap.ID
	}
	if err := snapshot.Save(ctx, repo, sn); err != nil {
		return nil, fmt.Errorf("record the snapshot of %s %s: %w", src.Kind, src.Name, err)
	}
	return sn, nil
}
