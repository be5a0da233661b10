// Package report draws the backup estate: for the control plane, the sets, the drills and
// every volume, a timeline of its backups with their sizes, new bytes and durations, the
// failures, the gaps in the rhythm, and how far back a restore can reach.
package report

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Estate is what the report shows.
type Estate struct {
	Generated time.Time
	Location  string // the repository
	From, To  time.Time
	Rows      []Row
	Problems  []string
	// Totals over every row.
	Snapshots, Failures, Gaps int
}

// Row is one timeline: the control plane of a cluster, the sets, the drills, or a volume.
type Row struct {
	Kind  string // snapshot.KindSwarm, "set", "drill" or snapshot.KindVolume
	Name  string
	Where string // the host of the newest entry
	Marks []Mark
	Gaps  []Gap
	// Horizon is the oldest point a restore can go back to; Last the newest.
	Horizon, Last time.Time
	Count         int
	LastBytes     uint64 // the newest entry's size
	StoredBytes   uint64 // the sizes of every entry, added
	NewBytes      uint64 // what the entries added to the repository
	LastTook      time.Duration
	Failures      int
}

// Dedup is how many bytes the entries cover for each byte they added; 0 when unknown.
func (r Row) Dedup() float64 {
	if r.NewBytes == 0 {
		return 0
	}
	return float64(r.StoredBytes) / float64(r.NewBytes)
}

// Mark is one entry on a timeline: a backup, a set, a drill, or a failure.
type Mark struct {
	Time     time.Time
	Failed   bool
	Bytes    uint64
	NewBytes uint64
	Took     time.Duration
	Label    string // what a pointer over the mark shows
}

// Gap is a stretch with no successful backup where the row's rhythm wanted one.
type Gap struct {
	From, To time.Time
}

// Kinds of rows besides the snapshot kinds.
const (
	KindSet   = "set"
	KindDrill = "drill"
)

// Build reads the repository's snapshots, sets, drills and the agents' reports.
func Build(ctx context.Context, repo *repository.Repository, location string, now time.Time) (*Estate, error) {
	list, problems, err := snapshot.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	sets, setProblems, err := backupset.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	drills, err := drill.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	beats, beatProblems, err := heartbeat.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	e := Assemble(now, list, sets, drills, beats)
	e.Location = location
	for _, p := range append(append(problems, setProblems...), beatProblems...) {
		e.Problems = append(e.Problems, p.Error())
	}
	return e, nil
}

// Assemble lays out the estate from what the repository holds.
func Assemble(now time.Time, list []*snapshot.Snapshot, sets []*backupset.Set, drills []*drill.Record, beats []heartbeat.Beat) *Estate {
	e := &Estate{Generated: now, To: now}
	chains := map[snapshot.Chain][]*snapshot.Snapshot{}
	for _, sn := range list {
		chains[sn.Chain()] = append(chains[sn.Chain()], sn)
	}
	order := make([]snapshot.Chain, 0, len(chains))
	for c := range chains {
		order = append(order, c)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.Kind != b.Kind {
			return a.Kind == snapshot.KindSwarm // the control plane first
		}
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Node < b.Node
	})
	failures := volumeFailures(beats)
	var volumes []Row
	for _, c := range order {
		r := chainRow(c, chains[c])
		if c.Kind == snapshot.KindVolume {
			for _, f := range failures[c.Source] {
				if c.Node == "" || c.Node == f.node {
					r.Marks = append(r.Marks, Mark{Time: f.at, Failed: true, Label: fmt.Sprintf("%s: snapshot failed on %s: %s", f.at.Format(time.RFC3339), f.host, f.err)})
				}
			}
			volumes = append(volumes, r)
			continue
		}
		e.Rows = append(e.Rows, r)
	}
	if len(sets) > 0 {
		e.Rows = append(e.Rows, setRow(sets))
	}
	if len(drills) > 0 {
		e.Rows = append(e.Rows, drillRow(drills))
	}
	e.Rows = append(e.Rows, volumes...)
	e.From = now
	for i := range e.Rows {
		r := &e.Rows[i]
		sort.Slice(r.Marks, func(a, b int) bool { return r.Marks[a].Time.Before(r.Marks[b].Time) })
		for _, m := range r.Marks {
			if m.Failed {
				r.Failures++
			}
			if m.Time.Before(e.From) {
				e.From = m.Time
			}
		}
		r.Gaps = gaps(r.Marks, now)
		e.Snapshots += r.Count
		e.Failures += r.Failures
		e.Gaps += len(r.Gaps)
	}
	if span := e.To.Sub(e.From); span < time.Hour {
		e.From = e.To.Add(-time.Hour)
	} else {
		e.From = e.From.Add(-span / 50) // room for the first mark
	}
	return e
}

func chainRow(c snapshot.Chain, list []*snapshot.Snapshot) Row {
	r := Row{Kind: c.Kind, Name: c.Source}
	if c.Kind == snapshot.KindSwarm {
		r.Name = "control plane " + short(c.Source)
	} else {
		r.Name = "volume " + c.Source
	}
	for _, sn := range list {
		r.Marks = append(r.Marks, Mark{Time: sn.Time, Bytes: sn.Stats.Bytes, NewBytes: sn.Stats.BytesNew, Took: sn.Took,
			Label: fmt.Sprintf("%s %s: %s, %s new, took %s", sn.Time.Format(time.RFC3339), sn.ID.Short(), size(sn.Stats.Bytes), size(sn.Stats.BytesNew), sn.Took.Round(time.Millisecond))})
		r.StoredBytes += sn.Stats.Bytes
		r.NewBytes += sn.Stats.BytesNew
	}
	newest := list[len(list)-1]
	if c.Node != "" {
		r.Name += " on " + newest.Hostname // one of several same-named volumes, each its node's own
	}
	r.Count, r.Where, r.Horizon, r.Last = len(list), newest.Hostname, list[0].Time, newest.Time
	r.LastBytes, r.LastTook = newest.Stats.Bytes, newest.Took
	return r
}

func setRow(sets []*backupset.Set) Row {
	r := Row{Kind: KindSet, Name: "backup sets"}
	for _, s := range sets {
		m := Mark{Time: s.Time, Bytes: s.Bytes(), Took: max(0, s.Ended.Sub(s.Time)), Failed: !s.Complete()}
		for _, mem := range s.Members {
			m.NewBytes += mem.BytesNew
		}
		m.Label = fmt.Sprintf("%s set %s: %d volumes on %d nodes, %s", s.Time.Format(time.RFC3339), short(s.ID), len(s.Members), s.Nodes, size(m.Bytes))
		if m.Failed {
			m.Label += ", partial"
		}
		r.Marks = append(r.Marks, m)
		r.StoredBytes += m.Bytes
		r.NewBytes += m.NewBytes
		if s.Complete() {
			r.Count++
			if r.Horizon.IsZero() || s.Time.Before(r.Horizon) {
				r.Horizon = s.Time
			}
			if s.Time.After(r.Last) {
				r.Last, r.LastBytes, r.LastTook = s.Time, m.Bytes, m.Took
			}
		}
	}
	return r
}

func drillRow(drills []*drill.Record) Row {
	r := Row{Kind: KindDrill, Name: "drills"}
	for _, d := range drills {
		m := Mark{Time: d.Time, Bytes: d.Bytes(), Took: d.Took, Failed: !d.OK()}
		m.Label = fmt.Sprintf("%s drill of set %s: %s restored in %s, recovery estimated at %s", d.Time.Format(time.RFC3339), short(d.Set), size(m.Bytes), d.Took.Round(time.Second), d.Estimate.Round(time.Second))
		if m.Failed {
			m.Label += ", FAILED: " + fmt.Sprint(d.Problems)
		}
		r.Marks = append(r.Marks, m)
		if d.OK() {
			r.Count++
			if d.Time.After(r.Last) {
				r.Last, r.Where, r.LastBytes, r.LastTook = d.Time, d.Host, m.Bytes, d.Took
			}
		}
	}
	return r
}

type failure struct {
	at              time.Time
	node, host, err string
}

// volumeFailures are the last failed snapshots the agents report, by volume.
func volumeFailures(beats []heartbeat.Beat) map[string][]failure {
	out := map[string][]failure{}
	for _, b := range beats {
		for _, v := range b.Volumes {
			if v.LastError != "" {
				out[v.Name] = append(out[v.Name], failure{at: v.LastErrorTime, node: b.Node, host: b.Host, err: v.LastError})
			}
		}
	}
	return out
}

// gaps finds the stretches between successes (and from the last one to now) longer than
// twice the row's usual interval, the median of its intervals. A row needs three successes
// to have a rhythm.
func gaps(marks []Mark, now time.Time) []Gap {
	var ok []time.Time
	for _, m := range marks {
		if !m.Failed {
			ok = append(ok, m.Time)
		}
	}
	if len(ok) < 3 {
		return nil
	}
	intervals := make([]time.Duration, 0, len(ok)-1)
	for i := 1; i < len(ok); i++ {
		intervals = append(intervals, ok[i].Sub(ok[i-1]))
	}
	sorted := append([]time.Duration(nil), intervals...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	usual := sorted[len(sorted)/2]
	if usual <= 0 {
		return nil
	}
	var out []Gap
	for i, d := range intervals {
		if d > 2*usual {
			out = append(out, Gap{From: ok[i], To: ok[i+1]})
		}
	}
	if last := ok[len(ok)-1]; now.Sub(last) > 2*usual {
		out = append(out, Gap{From: last, To: now})
	}
	return out
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
