// Package pruner applies retention to snapshots and removes the data no remaining snapshot
// needs. It runs under the repository's exclusive lock, so no backup is running meanwhile,
// and orders its writes so that a crash at any point loses nothing that is still needed:
// snapshot records go first, then a new index replaces the old ones, and packs go last.
package pruner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Options say what to keep.
type Options struct {
	Policy retention.Policy
	// Kind and Source, when set, limit retention to those snapshots; data removal always
	// considers the whole repository.
	Kind, Source string
	DryRun       bool
	// MaxUnused bounds what kept packs may hold that no kept snapshot needs, as a share of
	// what they hold that one does: beyond it, partly used packs are repacked, the emptiest
	// first, until the rest is within it. Zero repacks every partly used pack; +Inf none.
	MaxUnused float64
}

// Plan is what a prune removes (or would, with DryRun).
type Plan struct {
	Keep   []Entry `json:"keep"`
	Forget []Entry `json:"forget"`
	// PacksRemoved and BytesRemoved count packs no kept snapshot needs at all.
	PacksRemoved int   `json:"packs_removed"`
	BytesRemoved int64 `json:"bytes_removed"`
	// PacksRepacked held unneeded blobs beside needed ones: the needed ones were copied into
	// new packs (BytesRepacked of them) and the old packs removed (BytesRepackFreed).
	PacksRepacked    int   `json:"packs_repacked"`
	BytesRepacked    int64 `json:"bytes_repacked"`
	BytesRepackFreed int64 `json:"bytes_repack_freed"`
	// PacksKeptPartly hold some unneeded blobs beside needed ones, BytesUnused in all, within
	// Options.MaxUnused; they are kept whole.
	PacksKeptPartly int   `json:"packs_kept_partly"`
	BytesUnused     int64 `json:"bytes_unused"`
	// PacksUnindexed and BytesUnindexed count stored packs no index lists, left by backups
	// killed before they wrote their index; they are removed too.
	PacksUnindexed int   `json:"packs_unindexed"`
	BytesUnindexed int64 `json:"bytes_unindexed"`
	// KeepSets and ForgetSets are the backup sets kept and forgotten, each with all its
	// snapshots (listed in Keep and Forget).
	KeepSets   []*backupset.Set `json:"keep_sets,omitempty"`
	ForgetSets []*backupset.Set `json:"forget_sets,omitempty"`
	// DataLeft says the prune only forgot snapshots: its key (of the volumes role) cannot see
	// what control-plane backups need, so data is removed by a prune with a full key.
	DataLeft bool `json:"data_left,omitempty"`
	// Forged lists records sealed with a key that may not make them (a worker's key making a
	// control-plane backup, or another node's volume snapshot), which prune removes.
	Forged []string `json:"forged,omitempty"`
}

// applyToSets applies the policy to the sets of each cluster, as units: a kept set keeps
// every snapshot it holds, a forgotten one forgets them all.
func (plan *Plan) applyToSets(sets []*backupset.Set, list []*snapshot.Snapshot, opts Options) error {
	byID := map[string]*snapshot.Snapshot{}
	for _, sn := range list {
		byID[sn.ID.String()] = sn
	}
	byCluster := map[string][]*backupset.Set{}
	for _, s := range sets {
		byCluster[s.Cluster] = append(byCluster[s.Cluster], s)
	}
	for _, group := range byCluster {
		decisions, err := retention.Apply(group, opts.Policy)
		if err != nil {
			return err
		}
		if opts.Kind != "" || opts.Source != "" {
			for i := range decisions {
				decisions[i] = retention.Decision{Keep: true, Reasons: []string{"not selected"}}
			}
		}
		for i, d := range decisions {
			s := group[i]
			if d.Keep {
				plan.KeepSets = append(plan.KeepSets, s)
			} else {
				plan.ForgetSets = append(plan.ForgetSets, s)
			}
			for _, id := range s.Snapshots() {
				sn, ok := byID[id]
				switch {
				case !ok: // gone already
				case d.Keep:
					plan.Keep = append(plan.Keep, entry(sn, append([]string{"in set " + s.ID[:12]}, d.Reasons...)))
				default:
					plan.Forget = append(plan.Forget, entry(sn, []string{"in set " + s.ID[:12]}))
				}
			}
		}
	}
	return nil
}

// Entry is one snapshot and the rules that keep it.
type Entry struct {
	Snapshot *snapshot.Snapshot `json:"-"`
	ID       string             `json:"id"`
	Kind     string             `json:"kind"`
	Source   string             `json:"source"`
	Time     string             `json:"time"`
	Reasons  []string           `json:"reasons,omitempty"`
}

type timed struct{ sn *snapshot.Snapshot }

// requestsKept is how long the records of requests to the agents outlive their work.
const requestsKept = 24 * time.Hour

func (t timed) When() time.Time { return t.sn.Time }

// Prune applies the policy to each chain separately.
func Prune(ctx context.Context, repo *repository.Repository, opts Options) (*Plan, error) {
	lock, err := repo.Lock(ctx, true, "prune")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(ctx)
	if err := repo.ReloadIndex(ctx); err != nil {
		return nil, err
	}

	list, problems, err := snapshot.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	plan := &Plan{}
	for _, p := range problems {
		// A forged record is no backup: it is removed, and needs nothing. Any other record
		// that cannot be read might need data this prune would remove.
		var forged *snapshot.Forged
		if !errors.As(p, &forged) {
			return nil, fmt.Errorf("prune stopped: %w (run verify)", p)
		}
		plan.Forged = append(plan.Forged, forged.ID.Short())
		if !opts.DryRun {
			if err := repo.DeleteFile(ctx, repository.SnapshotFile, forged.ID); err != nil {
				return nil, fmt.Errorf("remove forged record %s: %w", forged.ID.Short(), err)
			}
		}
	}
	sets, setProblems, err := backupset.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	if len(setProblems) > 0 {
		return nil, fmt.Errorf("prune stopped: %w (run verify)", setProblems[0])
	}
	// A set is kept or forgotten whole: its snapshots follow it, not their chains.
	inSet := backupset.Members(sets)
	groups := map[snapshot.Chain][]timed{}
	for _, sn := range list {
		if _, ok := inSet[sn.ID.String()]; ok {
			continue
		}
		if (opts.Kind != "" && sn.Kind != opts.Kind) || (opts.Source != "" && sn.Source != opts.Source) {
			plan.Keep = append(plan.Keep, entry(sn, []string{"not selected"}))
			continue
		}
		groups[sn.Chain()] = append(groups[sn.Chain()], timed{sn})
	}
	// A key of the volumes role sees no control-plane backups: sets, which hold them, are
	// left to a full key, and so is the removal of data, since it cannot tell what they need.
	restricted := repo.Role() == repository.RoleVolumes
	if !restricted {
		if err := plan.applyToSets(sets, list, opts); err != nil {
			return nil, err
		}
	}
	for _, g := range groups {
		decisions, err := retention.Apply(g, opts.Policy)
		if err != nil {
			return nil, err
		}
		for i, d := range decisions {
			if d.Keep {
				plan.Keep = append(plan.Keep, entry(g[i].sn, d.Reasons))
			} else {
				plan.Forget = append(plan.Forget, entry(g[i].sn, nil))
			}
		}
	}
	sortEntries(plan.Keep)
	sortEntries(plan.Forget)
	if restricted {
		plan.DataLeft = true
		if opts.DryRun {
			return plan, nil
		}
		return plan, forget(ctx, repo, plan.Forget)
	}

	used, err := usedBlobs(ctx, repo, plan.Keep)
	if err != nil {
		return nil, err
	}
	packs := repo.Packs()
	usages := packUsage(repo, used)
	var remove []repository.ID
	for id, size := range packs {
		if usages[id].usedBlobs == 0 {
			remove = append(remove, id)
			plan.PacksRemoved++
			plan.BytesRemoved += size
		}
	}
	repack := plan.pickRepacks(packs, usages, opts.MaxUnused)
	// Under the exclusive lock no backup is running: a pack no index lists belongs to none
	// that can still write its index. Unless an index file could not be read, which may be
	// the very one that lists it.
	var unindexed []repository.ID
	if len(repo.IndexProblems()) == 0 {
		stored, err := repo.StoredPacks(ctx)
		if err != nil {
			return nil, err
		}
		for id, size := range stored {
			if _, ok := packs[id]; !ok {
				unindexed = append(unindexed, id)
				plan.PacksUnindexed++
				plan.BytesUnindexed += size
			}
		}
	}
	if opts.DryRun {
		return plan, nil
	}
	for _, s := range plan.ForgetSets {
		if err := backupset.Delete(ctx, repo, s); err != nil {
			return nil, fmt.Errorf("forget set %s: %w", s.ID[:12], err)
		}
	}
	if err := forget(ctx, repo, plan.Forget); err != nil {
		return nil, err
	}
	if len(repack) > 0 {
		// The needed blobs are in new packs, and indexed, before the old packs go.
		if _, err := repo.Repack(ctx, repack, func(id repository.ID) bool { return used[id] }); err != nil {
			return nil, err
		}
		remove = append(remove, repack...)
	}
	if err := repo.RewriteIndex(ctx, remove); err != nil {
		return nil, err
	}
	for _, id := range append(remove, unindexed...) {
		if err := repo.DeletePack(ctx, id); err != nil {
			return nil, err
		}
	}
	if err := backupset.ForgetOld(ctx, repo, time.Now().Add(-requestsKept)); err != nil {
		return nil, fmt.Errorf("remove old requests: %w", err)
	}
	return plan, nil
}

func forget(ctx context.Context, repo *repository.Repository, entries []Entry) error {
	for _, e := range entries {
		if err := repo.DeleteFile(ctx, repository.SnapshotFile, e.Snapshot.ID); err != nil {
			return fmt.Errorf("forget snapshot %s: %w", e.ID, err)
		}
	}
	return nil
}

func entry(sn *snapshot.Snapshot, reasons []string) Entry {
	return Entry{Snapshot: sn, ID: sn.ID.Short(), Kind: sn.Kind, Source: sn.Source, Time: sn.Time.Format("2006-01-02 15:04:05"), Reasons: reasons}
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Snapshot.Time.Before(es[j].Snapshot.Time) })
}

// usedBlobs walks the trees of every kept snapshot.
func usedBlobs(ctx context.Context, repo *repository.Repository, keep []Entry) (map[repository.ID]bool, error) {
	used := map[repository.ID]bool{}
	var walk func(id repository.ID) error
	walk = func(id repository.ID) error {
		if used[id] {
			return nil // a shared subtree: walked already
		}
		used[id] = true
		tree, err := snapshot.LoadTree(ctx, repo, id)
		if err != nil {
			return err
		}
		for _, n := range tree.Nodes {
			for _, c := range n.Content {
				used[c] = true
			}
			if n.Subtree != nil {
				if err := walk(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, e := range keep {
		if err := walk(e.Snapshot.Tree); err != nil {
			return nil, fmt.Errorf("prune stopped: snapshot %s: %w (run verify)", e.ID, err)
		}
	}
	return used, nil
}

// Forget applies a policy to the snapshots of one chain (a volume, a swarm) and removes the
// records it does not keep. It takes no lock and removes no data: the data stays until a
// prune, which waits for running backups. A volume's schedule calls it after each snapshot.
func Forget(ctx context.Context, repo *repository.Repository, of snapshot.Chain, policy retention.Policy) ([]Entry, error) {
	list, _, err := snapshot.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	var chain []timed
	for _, sn := range list {
		// A set's snapshots are kept or forgotten with their set, by prune.
		if sn.Chain() == of && sn.Tags[backupset.TagSet] == "" {
			chain = append(chain, timed{sn})
		}
	}
	if len(chain) == 0 {
		return nil, nil
	}
	decisions, err := retention.Apply(chain, policy)
	if err != nil {
		return nil, err
	}
	var forgotten []Entry
	for i, d := range decisions {
		if d.Keep {
			continue
		}
		if err := repo.DeleteFile(ctx, repository.SnapshotFile, chain[i].sn.ID); err != nil {
			return forgotten, fmt.Errorf("forget snapshot %s: %w", chain[i].sn.ID.Short(), err)
		}
		forgotten = append(forgotten, entry(chain[i].sn, nil))
	}
	return forgotten, nil
}

// ForgetSets applies a policy to a cluster's sets and removes the records of those it does
// not keep, each with every snapshot it holds; like Forget, it takes no lock and removes no
// data. The cluster's schedule calls it after each set. A set's record goes first: a crash
// after it leaves snapshots that no set claims, which retention then treats as their chains'.
func ForgetSets(ctx context.Context, repo *repository.Repository, cluster string, policy retention.Policy) ([]*backupset.Set, error) {
	sets, _, err := backupset.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	var mine []*backupset.Set
	for _, s := range sets {
		if s.Cluster == cluster {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return nil, nil
	}
	decisions, err := retention.Apply(mine, policy)
	if err != nil {
		return nil, err
	}
	var forgotten []*backupset.Set
	for i, d := range decisions {
		if d.Keep {
			continue
		}
		s := mine[i]
		if err := backupset.Delete(ctx, repo, s); err != nil {
			return forgotten, fmt.Errorf("forget set %s: %w", s.ID[:12], err)
		}
		for _, id := range s.Snapshots() {
			sid, err := repository.ParseID(id)
			if err != nil {
				continue
			}
			if err := repo.DeleteFile(ctx, repository.SnapshotFile, sid); err != nil {
				return forgotten, fmt.Errorf("forget snapshot %s of set %s: %w", sid.Short(), s.ID[:12], err)
			}
		}
		forgotten = append(forgotten, s)
	}
	return forgotten, nil
}
