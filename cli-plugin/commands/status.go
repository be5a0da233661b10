package commands

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

type statusOptions struct {
	repo    repoOptions
	format  string
	noTrunc bool
}

// statusReport is what `status` prints, and what --format json gives.
type statusReport struct {
	Agents   []agentStatus   `json:"agents"`
	Volumes  []volumeStatus  `json:"volumes"`
	Swarms   []swarmStatus   `json:"swarms"`
	Schedule *scheduleStatus `json:"schedule,omitempty"`
	Drill    *drillStatus    `json:"drill,omitempty"`
	// Immutable is set in an Object Lock bucket.
	Immutable *immutableStatus `json:"immutable,omitempty"`
	Problems  []string         `json:"problems"`
}

type immutableStatus struct {
	Period time.Duration `json:"period"`
	Until  time.Time     `json:"until,omitzero"`
}

type agentStatus struct {
	Node     string    `json:"node"`
	Host     string    `json:"host"`
	Version  string    `json:"version,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	Volumes  int       `json:"volumes"`
	State    string    `json:"state"`
}

type volumeStatus struct {
	Volume           string    `json:"volume"`
	Host             string    `json:"host"`
	Schedule         string    `json:"schedule,omitempty"`
	Mounts           int       `json:"mounts"`
	LastSnapshot     string    `json:"last_snapshot,omitempty"`
	LastSnapshotTime time.Time `json:"last_snapshot_time,omitzero"`
	State            string    `json:"state"`
}

type swarmStatus struct {
	Cluster    string    `json:"cluster"`
	LastBackup string    `json:"last_backup"`
	Time       time.Time `json:"time"`
	Host       string    `json:"host"`
}

// swarmNode is a node the engine lists, to find the ones whose agent never reported.
type swarmNode struct {
	ID, Host string
	Down     bool
}

func newStatusCommand(dockerCli command.Cli) *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status [OPTIONS]",
		Short: "Every node's agent, its volumes, their last snapshot and its age, the last error",
		Long: "Every node's agent, its volumes, their last snapshot and its age, the last error.\n" +
			"The agents report to the repository; status reads their reports and exits non-zero\n" +
			"when an agent is stale, a snapshot failed or is overdue, or a node has no agent.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.format, "format", "", formatFlagUsage)
	cmd.Flags().BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate node and backup IDs")
	return cmd
}

func runStatus(ctx context.Context, dockerCli command.Cli, opts statusOptions) error {
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	beats, problems, err := heartbeat.List(ctx, repo)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(dockerCli.Err(), "warning: an agent's report cannot be read: %v\n", p)
	}
	list, problems, err := snapshot.List(ctx, repo)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(dockerCli.Err(), "warning: %v (run `docker swarmbackup verify`)\n", p)
	}
	now := clock()
	report := assess(now, beats, list, listSwarmNodes(ctx, dockerCli.Client()))
	if cluster, err := clusterID(ctx, dockerCli.Client()); err == nil {
		if err := assessClusterSchedule(ctx, repo, now, cluster, &report); err != nil {
			return err
		}
	}
	im, err := repo.Immutability(ctx)
	if err != nil {
		return err
	}
	report.assessImmutability(now, im)
	err = writeFormatted(dockerCli.Out(), opts.format, report, func(w io.Writer) error { return report.table(w, !opts.noTrunc) })
	if err != nil {
		return err
	}
	if n := len(report.Problems); n > 0 {
		return fmt.Errorf("%d problem(s): %s", n, strings.Join(report.Problems, "; "))
	}
	return nil
}

// assessClusterSchedule adds the cluster's schedule, its last scheduled set and its last
// drill to a report.
func assessClusterSchedule(ctx context.Context, repo *repository.Repository, now time.Time, cluster string, r *statusReport) error {
	sched, err := backupset.LoadSchedule(ctx, repo, cluster)
	if err != nil {
		return err
	}
	drills, err := drill.List(ctx, repo)
	if err != nil {
		return err
	}
	r.Drill = assessDrills(now, sched, drill.Last(drills, cluster), &r.Problems)
	if sched == nil {
		return nil
	}
	sets, _, err := backupset.List(ctx, repo)
	if err != nil {
		return err
	}
	claims, err := backupset.Claims(ctx, repo)
	if err != nil {
		return err
	}
	r.Schedule = assessSchedule(now, sched, sets, claims, &r.Problems)
	return nil
}

// listSwarmNodes returns the swarm's nodes when this engine is a manager, else nothing.
func listSwarmNodes(ctx context.Context, api client.APIClient) []swarmNode {
	res, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil
	}
	var nodes []swarmNode
	for _, n := range res.Items {
		nodes = append(nodes, swarmNode{ID: n.ID, Host: n.Description.Hostname, Down: n.Status.State == "down"})
	}
	return nodes
}

// assess turns the agents' reports, the snapshots and the swarm's nodes into a report with
// every problem an operator must look at.
func assess(now time.Time, beats []heartbeat.Beat, list []*snapshot.Snapshot, nodes []swarmNode) statusReport {
	r := statusReport{Agents: []agentStatus{}, Volumes: []volumeStatus{}, Swarms: []swarmStatus{}, Problems: []string{}}
	member := map[string]bool{}
	for _, n := range nodes {
		member[n.ID] = true
	}
	reported := map[string]bool{}
	for _, b := range beats {
		// On a manager, agents of other clusters sharing the repository, and of nodes
		// removed from this one, are not this swarm's business.
		if len(nodes) > 0 && !member[b.Node] {
			continue
		}
		reported[b.Node] = true
		a := agentStatus{Node: b.Node, Host: b.Host, Version: b.Version, LastSeen: b.Time, Volumes: len(b.Volumes), State: "ok"}
		if b.Stale(now) {
			a.State = "stale"
			r.Problems = append(r.Problems, fmt.Sprintf("the agent on %s has not reported for %s (it reports every %s)", b.Host, age(now, b.Time), b.Interval))
		}
		r.Agents = append(r.Agents, a)
		for _, v := range b.Volumes {
			r.Volumes = append(r.Volumes, assessVolume(now, b.Host, b.Node, v, list, &r.Problems))
		}
	}
	for _, n := range nodes {
		if reported[n.ID] {
			continue
		}
		state := "no agent"
		if n.Down {
			state = "no agent, node down"
		}
		r.Agents = append(r.Agents, agentStatus{Node: n.ID, Host: n.Host, State: state})
		r.Problems = append(r.Problems, fmt.Sprintf("node %s has never reported: is the swarmbackup plugin installed and enabled there, with this repository?", n.Host))
	}
	seen := map[string]bool{}
	for i := len(list) - 1; i >= 0; i-- {
		sn := list[i]
		if sn.Kind == snapshot.KindSwarm && !seen[sn.Source] {
			seen[sn.Source] = true
			r.Swarms = append(r.Swarms, swarmStatus{Cluster: sn.Source, LastBackup: sn.ID.String(), Time: sn.Time, Host: sn.Hostname})
		}
	}
	return r
}

func assessVolume(now time.Time, host, node string, v heartbeat.Volume, list []*snapshot.Snapshot, problems *[]string) volumeStatus {
	s := volumeStatus{Volume: v.Name, Host: host, Schedule: v.Schedule, Mounts: v.Mounts, State: "ok"}
	chain := snapshot.Chain{Kind: snapshot.KindVolume, Source: v.Name}
	if v.Scope == snapshot.ScopeNode {
		chain.Node = node
	}
	last := snapshot.Latest(list, chain)
	since := v.CreatedAt
	if last != nil {
		s.LastSnapshot, s.LastSnapshotTime = last.ID.String(), last.Time
		since = last.Time
	}
	switch {
	case last == nil && v.Schedule == "" && v.LastError == "" && v.Job == "":
		// Never backed up, and nothing would: neither its own schedule nor a set covers it.
		s.State = "unprotected"
		*problems = append(*problems, fmt.Sprintf("volume %s on %s has never been backed up: give it a schedule, or the cluster a schedule with --volumes", v.Name, host))
	case v.LastError != "" && (last == nil || v.LastErrorTime.After(last.Time)):
		s.State = "failing"
		*problems = append(*problems, fmt.Sprintf("the last snapshot of volume %s on %s failed %s ago: %s", v.Name, host, age(now, v.LastErrorTime), v.LastError))
	case v.Job != "":
		s.State = v.Job + " running"
	case v.Schedule != "":
		sched, err := volumeopts.ParseSchedule(v.Schedule)
		if err != nil {
			break
		}
		// Overdue once a whole scheduled run was missed.
		if due := sched.Next(sched.Next(since)); now.After(due) {
			s.State = "overdue"
			*problems = append(*problems, fmt.Sprintf("volume %s on %s is overdue: schedule %q, last snapshot %s", v.Name, host, v.Schedule, describeAge(now, last)))
		}
	}
	return s
}

func describeAge(now time.Time, sn *snapshot.Snapshot) string {
	if sn == nil {
		return "never"
	}
	return age(now, sn.Time) + " ago"
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return units.HumanDuration(now.Sub(t))
}

func (r statusReport) table(w io.Writer, trunc bool) error {
	now := clock()
	shorten := func(s string, n int) string {
		if trunc {
			return shorten(s, n)
		}
		return s
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NODE\tHOST\tAGENT\tLAST REPORT\tVOLUMES\tSTATE")
	for _, a := range r.Agents {
		seen := "never"
		if !a.LastSeen.IsZero() {
			seen = age(now, a.LastSeen) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", shorten(a.Node, 12), a.Host, orDash(a.Version), seen, a.Volumes, a.State)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Volumes) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "VOLUME\tHOST\tSCHEDULE\tLAST SNAPSHOT\tAGE\tSTATE")
		for _, v := range r.Volumes {
			id, ago := "-", "-"
			if v.LastSnapshot != "" {
				id, ago = shorten(v.LastSnapshot, 12), age(now, v.LastSnapshotTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Volume, v.Host, orDash(v.Schedule), id, ago, v.State)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Swarms) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "CLUSTER\tLAST BACKUP\tHOST\tAGE")
		for _, s := range r.Swarms {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", shorten(s.Cluster, 12), shorten(s.LastBackup, 12), s.Host, age(now, s.Time))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if s := r.Schedule; s != nil {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "SCHEDULE\tVOLUMES\tLAST SET\tAGE\tNEXT\tSTATE")
		last, ago := "-", "-"
		if s.LastSet != "" {
			last, ago = shorten(s.LastSet, 12), age(now, s.LastTick)
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\n", s.Every, s.Volumes, last, ago, s.Next.Local().Format("15:04:05"), s.State)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if d := r.Drill; d != nil {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "DRILLS\tLAST DRILL\tOF SET\tAGE\tESTIMATED RECOVERY\tSTATE")
		last, set, ago, estimate := "-", "-", "-", "-"
		if d.Last != "" {
			last, set, ago, estimate = shorten(d.Last, 12), shorten(d.Set, 12), age(now, d.Time), d.Estimate.Round(100*time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", orDash(d.Schedule), last, set, ago, estimate, d.State)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if im := r.Immutable; im != nil {
		until := "no backup yet"
		if !im.Until.IsZero() {
			until = "until " + im.Until.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "\nObject Lock: every backup's objects retained %s (bucket default %s)\n", until, days(im.Period))
	}
	return nil
}

// assessImmutability adds an Object Lock bucket's retention; a horizon that has passed means
// the objects backups need can be destroyed: no writer ran within the bucket's period.
func (r *statusReport) assessImmutability(now time.Time, im repository.Immutability) {
	if im.Period <= 0 {
		return
	}
	r.Immutable = &immutableStatus{Period: im.Period, Until: im.Until}
	if !im.Until.IsZero() && im.Until.Before(now) {
		r.Problems = append(r.Problems, fmt.Sprintf("Object Lock retention ended %s ago: no backup ran to extend it", age(now, im.Until)))
	}
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clock tells the time of a status report; tests fix it.
var clock = time.Now
