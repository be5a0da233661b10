package backupset

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Node is a node a set is to cover.
type Node struct {
	ID   string
	Host string
	// Down: the engine reports the node down; it is named missing without being waited for.
	Down bool
	// Volumes are its swarmbackup volumes as its agent last reported them, to name what a
	// silent node's absence leaves out.
	Volumes []string
}

// Options say what a set covers and how long it may take.
type Options struct {
	Cluster string
	Nodes   []Node
	// Lead is the time from the request to the common instant: enough for every agent to
	// read the request (its poll interval, and some).
	Lead time.Duration
	// Timeout is how long after the common instant the members may take.
	Timeout time.Duration
	// ControlPlane takes the control plane's backup with tags: Tags and the set's ID.
	ControlPlane func(ctx context.Context, tags map[string]string) (*controlplane.Taken, error)
	// Tags go on the control plane's backup.
	Tags map[string]string
	// PollEvery is how often the reports are looked for.
	PollEvery time.Duration
	// Progress, when set, is told of each node as it reports or is given up on.
	Progress func(n Node, r *Report, missing *Missing)
	// Tick is the schedule's tick the set is taken for, if any.
	Tick time.Time
	// ID, when set, is the set's ID (one asked for by a request); a new one otherwise.
	ID string
}

// Take asks every node for its part of a set, takes the control plane's backup at the same
// instant, waits for the reports until the timeout, and records the set: complete, or
// partial with every missing node and volume named. The error is for the set's record only.
func Take(ctx context.Context, repo *repository.Repository, opts Options) (*Set, error) {
	set := &Set{ID: opts.ID, Cluster: opts.Cluster, Nodes: len(opts.Nodes), Tick: opts.Tick}
	if set.ID == "" {
		set.ID = repository.NewRandomID().String()
	}
	set.Time = time.Now().Add(opts.Lead).UTC()
	req := Request{ID: repository.NewRandomID().String(), Kind: KindSetPart, Set: set.ID, Cluster: opts.Cluster,
		Start: set.Time, Deadline: set.Time.Add(opts.Timeout)}
	if err := Ring(ctx, repo, req); err != nil {
		return nil, err
	}

	var cp *controlplane.Taken
	var cpErr error
	var g errgroup.Group
	g.Go(func() error {
		if err := SleepUntil(ctx, set.Time); err != nil {
			cpErr = err
			return nil
		}
		tags := maps.Clone(opts.Tags)
		if tags == nil {
			tags = map[string]string{}
		}
		tags[TagSet] = set.ID
		cp, cpErr = opts.ControlPlane(ctx, tags)
		return nil
	})

	pending := map[string]Node{}
	for _, n := range opts.Nodes {
		if n.Down {
			set.missNode(n, "the node is down", opts.Progress)
			continue
		}
		pending[n.ID] = n
	}
	tick := time.NewTicker(opts.PollEvery)
	defer tick.Stop()
	for len(pending) > 0 && time.Now().Before(req.Deadline) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		for id, n := range pending {
			r, err := LoadReport(ctx, repo, set.ID, id)
			if err != nil || r == nil {
				continue // not yet, or a passing fault: looked for again at the next tick
			}
			delete(pending, id)
			set.Members = append(set.Members, r.Members...)
			set.Missing = append(set.Missing, r.Failed...)
			if opts.Progress != nil {
				opts.Progress(n, r, nil)
			}
		}
	}
	for _, n := range sortedNodes(pending) {
		set.missNode(n, fmt.Sprintf("no answer within %s", opts.Timeout), opts.Progress)
	}
	_ = g.Wait()
	if cpErr != nil {
		set.Missing = append(set.Missing, Missing{Reason: "control plane: " + cpErr.Error()})
	} else {
		set.ControlPlane = cp.Snapshot.ID.String()
	}
	set.Spread = spread(set, cp)
	set.Ended = time.Now().UTC()
	sort.Slice(set.Members, func(i, j int) bool {
		a, b := set.Members[i], set.Members[j]
		return a.Host < b.Host || (a.Host == b.Host && a.Volume < b.Volume)
	})
	// The record is written even when the context ended: what was taken is kept.
	if err := Save(context.WithoutCancel(ctx), repo, set); err != nil {
		return nil, err
	}
	return set, nil
}

// missNode names a node, and each volume it last reported, as missing.
func (s *Set) missNode(n Node, reason string, progress func(Node, *Report, *Missing)) {
	m := Missing{Node: n.ID, Host: n.Host, Reason: reason}
	s.Missing = append(s.Missing, m)
	for _, v := range n.Volumes {
		s.Missing = append(s.Missing, Missing{Node: n.ID, Host: n.Host, Volume: v, Reason: reason})
	}
	if progress != nil {
		progress(n, nil, &m)
	}
}

func spread(s *Set, cp *controlplane.Taken) time.Duration {
	var starts []time.Time
	if cp != nil {
		starts = append(starts, cp.Started)
	}
	for _, m := range s.Members {
		starts = append(starts, m.CaptureStart)
	}
	if len(starts) < 2 {
		return 0
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	return starts[len(starts)-1].Sub(starts[0])
}

func sortedNodes(m map[string]Node) []Node {
	out := make([]Node, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// SleepUntil waits for an instant, or until ctx ends: for a set's common instant.
func SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Nodes lists the swarm's nodes for a set, with the volumes each one's agent last reported.
func Nodes(ctx context.Context, api client.APIClient, repo *repository.Repository) ([]Node, error) {
	list, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the swarm's nodes: %w", err)
	}
	beats, _, err := heartbeat.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	volumes := map[string][]string{}
	for _, b := range beats {
		for _, v := range b.Volumes {
			volumes[b.Node] = append(volumes[b.Node], v.Name)
		}
	}
	nodes := make([]Node, 0, len(list.Items))
	for _, n := range list.Items {
		nodes = append(nodes, Node{
			ID: n.ID, Host: n.Description.Hostname, Down: n.Status.State == swarm.NodeStateDown, Volumes: volumes[n.ID],
		})
	}
	return nodes, nil
}
