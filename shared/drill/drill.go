// Package drill restores a backup set into scratch space and checks it, without touching the
// cluster: the control plane is decoded and compared with the inventory recorded at backup
// time, every volume is restored and compared with its snapshot record (files, bytes, and
// every blob's content, which a restore authenticates), and all of it is removed again. The
// result, with how long the restore took, is recorded in the repository, so that an operator
// knows before the worst day that the set restores, and how long that would take.
package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/scratch"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// File holds the drills' records.
const File repository.FileKind = "drills"

// Options say where and how a drill runs.
type Options struct {
	// Dir is where the scratch directory is made; empty means the system's temporary directory.
	Dir string
	// UnlockKey decodes the control plane of an autolocked swarm; without it the copy is
	// restored and authenticated, not decoded.
	UnlockKey string
	// Host names where the drill ran, for the record.
	Host string
	// Scheduled marks drills the cluster's schedule ran.
	Scheduled bool
	// Nodes restore in parallel, as on the worst day; zero means four at a time.
	Nodes int
	// Progress, when set, hears of each part as it starts ("" volume: the control plane).
	Progress func(volume, host string)
}

// ControlPlane is what the drill found of the set's control-plane backup.
type ControlPlane struct {
	Snapshot string         `json:"snapshot"`
	Decoded  bool           `json:"decoded"`
	Objects  map[string]int `json:"objects,omitempty"`
	Took     time.Duration  `json:"took"`
	Problem  string         `json:"problem,omitempty"`
}

// Member is what the drill found of one volume of the set.
type Member struct {
	Volume   string        `json:"volume"`
	Host     string        `json:"host"`
	Snapshot string        `json:"snapshot"`
	Files    uint64        `json:"files"`
	Bytes    uint64        `json:"bytes"`
	Took     time.Duration `json:"took"`
	// Privileged names the set-user/group-ID files and device nodes the volume would bring back.
	Privileged      []string `json:"privileged,omitempty"`
	PrivilegedCount uint64   `json:"privileged_count,omitempty"`
	Problem         string   `json:"problem,omitempty"`
}

// Record is one drill's result.
type Record struct {
	ID      string        `json:"id"`
	Cluster string        `json:"cluster"`
	Set     string        `json:"set"`
	SetTime time.Time     `json:"set_time"`
	Time    time.Time     `json:"time"`
	Took    time.Duration `json:"took"`
	// Estimate is the recovery time of the whole set: the control plane, then each node's
	// volumes, nodes in parallel. Starting new machines and joining them come on top.
	Estimate     time.Duration `json:"estimate"`
	Host         string        `json:"host,omitempty"`
	Scheduled    bool          `json:"scheduled,omitempty"`
	ControlPlane *ControlPlane `json:"control_plane,omitempty"`
	Members      []Member      `json:"members"`
	// Problems name the damage, one line per part: empty when the set restores.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether everything of the set restored and checked out.
func (r *Record) OK() bool { return len(r.Problems) == 0 }

// Bytes adds up the volume data the drill restored.
func (r *Record) Bytes() uint64 {
	var n uint64
	for _, m := range r.Members {
		n += m.Bytes
	}
	return n
}

// Run drills set s and records the result; an error means the drill could not be carried
// out at all (no scratch space, the repository unreadable), not that the set is damaged:
// that is in the record's problems.
func Run(ctx context.Context, repo *repository.Repository, s *backupset.Set, opts Options) (*Record, error) {
	rec := &Record{ID: newID(), Cluster: s.Cluster, Set: s.ID, SetTime: s.Time, Time: time.Now().UTC(),
		Host: opts.Host, Scheduled: opts.Scheduled}
	dir, err := scratch.MkdirTemp(opts.Dir, "swarmbackup-drill-")
	if err != nil {
		return nil, fmt.Errorf("make scratch space for the drill: %w", err)
	}
	defer scratch.Remove(dir)
	list, _, err := snapshot.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	// A drill proves what the storage holds: it reads every listing from there, never from
	// the local copies a writer keeps of their packs (records, named by their hash, may come
	// from the cache: a copy is used only while it hashes to its name).
	if repo, err = repo.Fork(); err != nil {
		return nil, err
	}
	repo.UseCache("")
	if !s.Complete() {
		for _, m := range s.Missing {
			rec.Problems = append(rec.Problems, "the set lacks "+m.String())
		}
	}
	// The control plane and the volumes are independent: drilled side by side.
	if opts.Progress != nil && s.ControlPlane != "" {
		opts.Progress("", "")
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.ControlPlane != "" {
		g.Go(func() error {
			cp := controlPlane(gctx, repo, list, s.ControlPlane, dir, opts.UnlockKey)
			rec.ControlPlane = &cp
			return nil
		})
	}
	g.Go(func() error {
		var err error
		rec.Members, err = volumes(gctx, repo, list, s.Members, dir, opts)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if cp := rec.ControlPlane; cp != nil && cp.Problem != "" {
		rec.Problems = append(rec.Problems, "control plane "+short(cp.Snapshot)+": "+cp.Problem)
	}
	for _, m := range rec.Members {
		if m.Problem != "" {
			rec.Problems = append(rec.Problems, fmt.Sprintf("volume %s on %s, snapshot %s: %s", m.Volume, m.Host, short(m.Snapshot), m.Problem))
		}
	}
	rec.Took = time.Since(rec.Time)
	rec.Estimate = estimate(rec)
	return rec, Save(ctx, repo, rec)
}

// Save records a drill, replacing a record of the same ID.
func Save(ctx context.Context, repo *repository.Repository, rec *Record) error {
	if err := repo.SaveNamedFile(ctx, File, rec.ID, rec); err != nil {
		return fmt.Errorf("record the drill: %w", err)
	}
	return nil
}

// controlPlane restores and decodes the control-plane backup below dir and compares the
// decoded store with the inventory recorded when it was taken.
func controlPlane(ctx context.Context, repo *repository.Repository, list []*snapshot.Snapshot, id, dir, unlockKey string) (cp ControlPlane) {
	start := time.Now()
	cp.Snapshot = id
	defer func() { cp.Took = time.Since(start) }()
	sn, err := snapshot.Find(list, id)
	if err != nil {
		cp.Problem = "the backup is gone from the repository"
		return cp
	}
	meta, err := controlplane.ReadMeta(sn)
	if err != nil {
		cp.Problem = err.Error()
		return cp
	}
	recorded, err := controlplane.ReadInventory(ctx, repo, sn)
	if err != nil {
		cp.Problem = "its inventory does not read: " + err.Error()
		return cp
	}
	if meta.Autolock && unlockKey == "" {
		// Restored and authenticated, not decoded: the key was not given.
		if _, err := restorer.Restore(ctx, repo, sn.Tree, filepath.Join(dir, "control-plane"), restorer.Options{}); err != nil {
			cp.Problem = err.Error()
		}
		cp.Objects = controlplane.Count(recorded)
		return cp
	}
	b, err := controlplane.Open(ctx, repo, sn, dir, unlockKey)
	if err != nil {
		cp.Problem = err.Error()
		return cp
	}
	defer b.Close()
	cp.Decoded = true
	decoded := controlplane.InventoryOf(b.State)
	cp.Objects = controlplane.Count(decoded)
	if diff := compareInventories(recorded, decoded); diff != "" {
		cp.Problem = diff
	}
	return cp
}

// compareInventories names what the decoded store lacks or holds beyond the recorded list.
func compareInventories(recorded, decoded []controlplane.Object) string {
	key := func(o controlplane.Object) string { return o.Kind + " " + o.Name + " (" + o.ID + ")" }
	have := map[string]bool{}
	for _, o := range decoded {
		have[key(o)] = true
	}
	var lines []string
	for _, o := range recorded {
		if !have[key(o)] {
			lines = append(lines, "lacks "+key(o))
		}
		delete(have, key(o))
	}
	for k := range have {
		lines = append(lines, "holds an unrecorded "+k)
	}
	if len(lines) == 0 {
		return ""
	}
	sort.Strings(lines)
	return "the decoded store differs from the recorded inventory: " + strings.Join(lines, "; ")
}

// volumes restores every member, the members of one node one after another and the nodes in
// parallel, as the worst day would.
func volumes(ctx context.Context, repo *repository.Repository, list []*snapshot.Snapshot, members []backupset.Member, dir string, opts Options) ([]Member, error) {
	byHost := map[string][]int{}
	for i, m := range members {
		byHost[m.Host] = append(byHost[m.Host], i)
	}
	out := make([]Member, len(members))
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	limit := opts.Nodes
	if limit <= 0 {
		limit = 4
	}
	g.SetLimit(limit)
	for _, idx := range byHost {
		g.Go(func() error {
			for _, i := range idx {
				m := members[i]
				if opts.Progress != nil {
					mu.Lock()
					opts.Progress(m.Volume, m.Host)
					mu.Unlock()
				}
				res := volume(ctx, repo, list, m, filepath.Join(dir, fmt.Sprintf("volume-%d", i)))
				if ctx.Err() != nil {
					return ctx.Err()
				}
				out[i] = res
			}
			return nil
		})
	}
	return out, g.Wait()
}

// volume restores one member into dir, checks it against its snapshot record, and removes
// it. Took is the restore and the check: the removal is the drill's own cost.
func volume(ctx context.Context, repo *repository.Repository, list []*snapshot.Snapshot, m backupset.Member, dir string) Member {
	start := time.Now()
	res := Member{Volume: m.Volume, Host: m.Host, Snapshot: m.Snapshot}
	sn, err := snapshot.Find(list, m.Snapshot)
	if err != nil {
		res.Problem = "the snapshot is gone from the repository"
		return res
	}
	defer os.RemoveAll(dir) // inside the drill's scratch directory
	stats, err := restorer.Restore(ctx, repo, sn.Tree, dir, restorer.Options{Root: sn.Root})
	res.Files, res.Bytes, res.Took = stats.Files, stats.Bytes, time.Since(start)
	res.Privileged, res.PrivilegedCount = stats.Privileged, stats.PrivilegedCount
	switch {
	case err != nil:
		res.Problem = err.Error()
	case stats.Files != sn.Stats.Files || stats.Bytes != sn.Stats.Bytes:
		res.Problem = fmt.Sprintf("restored %d files, %d bytes; the snapshot recorded %d files, %d bytes",
			stats.Files, stats.Bytes, sn.Stats.Files, sn.Stats.Bytes)
	}
	return res
}

// estimate is the control plane's restore, then the slowest node's volumes.
func estimate(r *Record) time.Duration {
	perHost := map[string]time.Duration{}
	var slowest time.Duration
	for _, m := range r.Members {
		perHost[m.Host] += m.Took
		slowest = max(slowest, perHost[m.Host])
	}
	if r.ControlPlane != nil {
		slowest += r.ControlPlane.Took
	}
	return slowest
}

// List returns every drill's record, oldest first.
func List(ctx context.Context, repo *repository.Repository) ([]*Record, error) {
	var out []*Record
	if _, err := repository.LoadFiles(ctx, repo, File, func(_ repository.ID, r *Record) { out = append(out, r) }); err != nil {
		return nil, fmt.Errorf("list drills: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Last returns the newest drill of a cluster, nil when none ran.
func Last(drills []*Record, cluster string) *Record {
	for i := len(drills) - 1; i >= 0; i-- {
		if drills[i].Cluster == cluster {
			return drills[i]
		}
	}
	return nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func short(id string) string { return id[:min(len(id), 12)] }
