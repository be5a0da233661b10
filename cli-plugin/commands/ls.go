package commands

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

type lsOptions struct {
	repo   repoOptions
	format string
	quiet  bool
	kind   string
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
	cmd.Flags().StringVar(&opts.format, "format", "", formatFlagUsage)
	cmd.Flags().BoolVarP(&opts.quiet, "quiet", "q", false, "Only show IDs")
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
	out := dockerCli.Out()
	if opts.quiet {
		for _, r := range rows {
			fmt.Fprintln(out, r.ID[:12])
		}
		return nil
	}
	return writeFormatted(out, opts.format, rows, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		volumes := opts.kind == snapshot.KindVolume
		if volumes {
			fmt.Fprintln(tw, "ID\tTIME\tVOLUME\tNODE\tSIZE\tFILES\tQUIESCE")
		} else {
			fmt.Fprintln(tw, "ID\tTIME\tKIND\tCLUSTER/VOLUME\tNODE/STATE\tSIZE\tOBJECTS")
		}
		for _, r := range rows {
			// The host name reads better than the node ID, which --format json also gives.
			node := r.Host
			if node == "" {
				node = r.Node
			}
			when := r.Time.Local().Format("2006-01-02 15:04:05")
			if volumes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID[:12], when, r.Source, shorten(node, 12),
					units.BytesSize(float64(r.Size)), r.Objects, describeQuiesce(r.Quiesce))
				continue
			}
			if r.Kind == kindDrill {
				state := "passed"
				if !*r.Passed {
					state = "FAILED"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID[:12], when, r.Kind,
					"of set "+shorten(r.Set, 12), state, units.BytesSize(float64(r.Size)), r.Objects)
				continue
			}
			if r.Kind == kindSet {
				state := "complete"
				if !*r.Complete {
					state = "partial"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID[:12], when, r.Kind,
					fmt.Sprintf("%d volumes on %d nodes", r.Volumes, r.Nodes), state, units.BytesSize(float64(r.Size)), r.Objects)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID[:12], when,
				r.Kind, shorten(r.Source, 25), shorten(node, 12), units.BytesSize(float64(r.Size)), r.Objects)
		}
		return tw.Flush()
	})
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
