package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

type lsOptions struct {
	repo repoOptions
	listFormat
	kind string
}

// snapshotSummary is one row of `ls`, and what --format json prints.
type snapshotSummary struct {
	ID      string            `json:"id"`
	Time    time.Time         `json:"time"`
	Kind    string            `json:"kind"`
	Source  string            `json:"source"` // cluster ID or volume name
	Node    string            `json:"node"`
	Host    string            `json:"host"`
	Size    uint64            `json:"size"`
	Objects uint64            `json:"objects"`
	Tags    map[string]string `json:"tags,omitempty"`
	// Quiesce is how a volume's containers were held while it was captured.
	Quiesce *snapshot.Quiesce `json:"quiesce,omitempty"`
	// Of a set: how many nodes it covers, how many volumes it holds, whether it is complete.
	Nodes    int   `json:"nodes,omitempty"`
	Volumes  int   `json:"volumes,omitempty"`
	Complete *bool `json:"complete,omitempty"`
	// Of a drill: the set it restored, and whether all of it restored.
	Set    string `json:"set,omitempty"`
	Passed *bool  `json:"passed,omitempty"`
}

func summarizeDrill(d *drill.Record) snapshotSummary {
	passed := d.OK()
	return snapshotSummary{
		ID: d.ID, Time: d.Time, Kind: kindDrill, Source: d.Cluster, Host: d.Host, Size: d.Bytes(),
		Objects: uint64(len(d.Members)), Volumes: len(d.Members), Set: d.Set, Passed: &passed,
	}
}

// kindDrill is how ls names drills.
const kindDrill = "drill"

func summarizeSet(s *backupset.Set) snapshotSummary {
	complete := s.Complete()
	return snapshotSummary{
		ID: s.ID, Time: s.Time, Kind: kindSet, Source: s.Cluster, Size: s.Bytes(), Objects: uint64(len(s.Members)),
		Nodes: s.Nodes, Volumes: len(s.Members), Complete: &complete,
	}
}

// kindSet is how ls names backup sets beside the snapshot kinds.
const kindSet = "set"

func summarize(sn *snapshot.Snapshot) snapshotSummary {
	return snapshotSummary{
		ID: sn.ID.String(), Time: sn.Time, Kind: sn.Kind, Source: sn.Source, Node: sn.Node,
		Host: sn.Hostname, Size: sn.Stats.Bytes, Objects: sn.Stats.Files, Tags: sn.Tags,
		Quiesce: sn.Quiesce,
	}
}

func newLsCommand(dockerCli command.Cli) *cobra.Command {
	var opts lsOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List backups (sets, swarm state, volume snapshots) and drills",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLs(cmd.Context(), dockerCli, opts)
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVar(&opts.kind, "kind", "", `Only entries of this kind: "set", "swarm", "volume" or "drill" (a set's own snapshots are listed only with "swarm" and "volume")`)
	return cmd
}

func (opts *lsOptions) addFlags(cmd *cobra.Command) {
	opts.repo.addFlags(cmd.Flags())
	opts.listFormat.addFlags(cmd.Flags(), "Only show IDs")
}

func runLs(ctx context.Context, dockerCli command.Cli, opts lsOptions) error {
	switch opts.kind {
	case "", kindSet, kindDrill, snapshot.KindSwarm, snapshot.KindVolume:
	default:
		return fmt.Errorf("--kind %q: want set, swarm, volume or drill", opts.kind)
	}
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	list, problems, err := snapshot.List(ctx, repo)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(dockerCli.Err(), "warning: %v (run `docker swarmbackup verify`)\n", p)
	}
	sets, setProblems, err := backupset.List(ctx, repo)
	if err != nil {
		return err
	}
	for _, p := range setProblems {
		fmt.Fprintf(dockerCli.Err(), "warning: %v (run `docker swarmbackup verify`)\n", p)
	}
	// A set is one line: its snapshots show only when a kind of snapshot is asked for.
	inSet := backupset.Members(sets)
	rows := []snapshotSummary{}
	for _, sn := range list {
		_, member := inSet[sn.ID.String()]
		if (opts.kind == "" && !member) || sn.Kind == opts.kind {
			rows = append(rows, summarize(sn))
		}
	}
	if opts.kind == "" || opts.kind == kindSet {
		for _, s := range sets {
			rows = append(rows, summarizeSet(s))
		}
	}
	if opts.kind == "" || opts.kind == kindDrill {
		drills, err := drill.List(ctx, repo)
		if err != nil {
			return err
		}
		for _, d := range drills {
			rows = append(rows, summarizeDrill(d))
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Time.Before(rows[j].Time) })
	table := lsTable
	if opts.kind == snapshot.KindVolume {
		table = volumeLsTable
	}
	return writeRows(dockerCli.Out(), opts.listFormat, table, rows, newSnapshotRow)
}

// The default tables of `ls` and `volume ls`.
const (
	lsTable       = "table {{.ID}}\t{{.Time}}\t{{.Kind}}\t{{.Source}}\t{{.Node}}\t{{.State}}\t{{.Size}}\t{{.Objects}}"
	volumeLsTable = "table {{.ID}}\t{{.Time}}\t{{.Volume}}\t{{.Node}}\t{{.Size}}\t{{.Files}}\t{{.Quiesce}}"
)

// snapshotRow is an entry of `ls` as templates see it; "json" prints its summary whole.
type snapshotRow struct {
	s     snapshotSummary
	trunc bool
}

func newSnapshotRow(s snapshotSummary, trunc bool) row { return &snapshotRow{s: s, trunc: trunc} }

func (r *snapshotRow) FullHeader() any              { return nil }
func (r *snapshotRow) MarshalJSON() ([]byte, error) { return json.Marshal(r.s) }

func (r *snapshotRow) cut(s string, n int) string {
	if r.trunc {
		return shorten(s, n)
	}
	return s
}

func (r *snapshotRow) ID() string      { return r.cut(r.s.ID, 12) }
func (r *snapshotRow) Time() string    { return r.s.Time.Local().Format("2006-01-02 15:04:05") }
func (r *snapshotRow) Kind() string    { return r.s.Kind }
func (r *snapshotRow) Volume() string  { return r.s.Source }
func (r *snapshotRow) Size() string    { return units.BytesSize(float64(r.s.Size)) }
func (r *snapshotRow) Objects() uint64 { return r.s.Objects }
func (r *snapshotRow) Files() uint64   { return r.s.Objects }
func (r *snapshotRow) Set() string     { return r.cut(r.s.Set, 12) }
func (r *snapshotRow) Quiesce() string { return describeQuiesce(r.s.Quiesce) }

// Source is what the entry is of: a cluster, a volume, a set's extent, the set a drill restored.
func (r *snapshotRow) Source() string {
	switch r.s.Kind {
	case kindSet:
		return fmt.Sprintf("%d volumes on %d nodes", r.s.Volumes, r.s.Nodes)
	case kindDrill:
		return "of set " + r.Set()
	}
	return r.cut(r.s.Source, 25)
}

// Node is the host name, which reads better than the node ID that "json" also gives.
func (r *snapshotRow) Node() string {
	if r.s.Host != "" {
		return r.cut(r.s.Host, 12)
	}
	return r.cut(r.s.Node, 12)
}

// State says whether a set is complete and whether a drill passed.
func (r *snapshotRow) State() string {
	switch {
	case r.s.Complete != nil && *r.s.Complete:
		return "complete"
	case r.s.Complete != nil:
		return "partial"
	case r.s.Passed != nil && *r.s.Passed:
		return "passed"
	case r.s.Passed != nil:
		return "FAILED"
	}
	return ""
}

// Tags reads "k=v,k2=v2", sorted.
func (r *snapshotRow) Tags() string {
	tags := make([]string, 0, len(r.s.Tags))
	for k, v := range r.s.Tags {
		tags = append(tags, k+"="+v)
	}
	sort.Strings(tags)
	return strings.Join(tags, ",")
}

// describeQuiesce reads like "pause 2 for 84ms": the mode, the containers held, the window.
func describeQuiesce(q *snapshot.Quiesce) string {
	if q == nil {
		return "none"
	}
	return fmt.Sprintf("%s %d for %s", q.Mode, q.Containers, q.Window.Round(time.Millisecond))
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
