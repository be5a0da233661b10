package commands

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

type scheduleOptions struct {
	repo    repoOptions
	every   string
	volumes bool
	keep    string
	timeout time.Duration
	drill   string
	format  string
}

func newScheduleCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "The cluster's own schedule of backups, carried out by the plugins on managers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newScheduleSetCommand(dockerCli), newScheduleShowCommand(dockerCli), newScheduleRmCommand(dockerCli))
	return cmd
}

func newScheduleSetCommand(dockerCli command.Cli) *cobra.Command {
	var opts scheduleOptions
	cmd := &cobra.Command{
		Use:   "set --every CRON [--volumes] [--keep RULES] [--drill CRON]",
		Short: "Set the cluster's schedule: at each tick one manager takes a backup (a set with --volumes), and drills the newest set",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runScheduleSet(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.every, "every", "", "When: a cron expression, @hourly, @daily or @every DURATION")
	cmd.Flags().BoolVar(&opts.volumes, "volumes", false, "Take sets: the control plane and every swarmbackup volume on every node")
	cmd.Flags().StringVar(&opts.keep, "keep", "", "Retention applied to the cluster's sets after each one, such as last=24,daily=7")
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 2*time.Minute, "How long the nodes may take before a set is recorded without them")
	cmd.Flags().StringVar(&opts.drill, "drill", "", "When a manager drills the newest set: a cron expression, @daily, @weekly or @every DURATION")
	return cmd
}

func newScheduleShowCommand(dockerCli command.Cli) *cobra.Command {
	var opts scheduleOptions
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the cluster's schedule and its next tick",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runScheduleShow(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.format, "format", "", formatFlagUsage)
	return cmd
}

func newScheduleRmCommand(dockerCli command.Cli) *cobra.Command {
	var opts scheduleOptions
	cmd := &cobra.Command{
		Use:   "rm",
		Short: "Remove the cluster's schedule",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runScheduleRm(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	return cmd
}

// clusterID asks the engine, which must be a manager's, for its swarm's ID.
func clusterID(ctx context.Context, api client.APIClient) (string, error) {
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("ask the engine about its swarm: %w", err)
	}
	if !info.Info.Swarm.ControlAvailable || info.Info.Swarm.Cluster == nil {
		return "", fmt.Errorf("the engine is not a swarm manager (state %q): point docker at a manager", info.Info.Swarm.LocalNodeState)
	}
	return info.Info.Swarm.Cluster.ID, nil
}

func runScheduleSet(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	if opts.every == "" {
		return fmt.Errorf("--every is required: a cron expression, @hourly, @daily or @every DURATION")
	}
	if _, err := volumeopts.ParseSchedule(opts.every); err != nil {
		return fmt.Errorf("--every %w", err)
	}
	if opts.drill != "" {
		if _, err := volumeopts.ParseSchedule(opts.drill); err != nil {
			return fmt.Errorf("--drill %w", err)
		}
	}
	var keep retention.Policy
	if opts.keep != "" {
		var err error
		if keep, err = retention.ParsePolicy(opts.keep); err != nil {
			return fmt.Errorf("--keep %q: %w", opts.keep, err)
		}
	}
	if opts.timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", opts.timeout)
	}
	cluster, err := clusterID(ctx, dockerCli.Client())
	if err != nil {
		return err
	}
	repo, err := opts.repo.openForWrite(ctx)
	if err != nil {
		return err
	}
	s := backupset.Schedule{Cluster: cluster, Every: opts.every, Volumes: opts.volumes, Keep: keep, Timeout: opts.timeout, Drill: opts.drill, Updated: time.Now().UTC()}
	if err := backupset.SaveSchedule(ctx, repo, s); err != nil {
		return err
	}
	next, _ := s.Next(time.Now())
	_, err = fmt.Fprintf(dockerCli.Out(), "schedule of swarm %s: %s; next at %s (the managers read it within 30s)\n",
		cluster, describeSchedule(s), next.Local().Format("2006-01-02 15:04:05"))
	return err
}

func describeSchedule(s backupset.Schedule) string {
	what := "the control plane"
	if s.Volumes {
		what = "sets of the control plane and every volume"
	}
	out := fmt.Sprintf("%s %s", what, s.Every)
	if !s.Keep.IsZero() {
		out += ", keep " + s.Keep.String()
	}
	if s.Drill != "" {
		out += ", drills " + s.Drill
	}
	return out
}

// scheduleView is what `schedule show --format json` prints.
type scheduleView struct {
	backupset.Schedule
	Next time.Time `json:"next"`
}

func runScheduleShow(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	cluster, err := clusterID(ctx, dockerCli.Client())
	if err != nil {
		return err
	}
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	s, err := backupset.LoadSchedule(ctx, repo, cluster)
	if err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("swarm %s has no schedule: set one with `docker swarmbackup schedule set --every CRON`", cluster)
	}
	next, _ := s.Next(time.Now())
	return writeFormatted(dockerCli.Out(), opts.format, scheduleView{Schedule: *s, Next: next}, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Cluster:\t%s\n", s.Cluster)
		fmt.Fprintf(tw, "Every:\t%s\n", s.Every)
		fmt.Fprintf(tw, "Volumes:\t%v\n", s.Volumes)
		fmt.Fprintf(tw, "Keep:\t%s\n", orDash(s.Keep.String()))
		fmt.Fprintf(tw, "Timeout:\t%s\n", s.Timeout)
		fmt.Fprintf(tw, "Drill:\t%s\n", orDash(s.Drill))
		fmt.Fprintf(tw, "Next:\t%s\n", next.Local().Format("2006-01-02 15:04:05"))
		return tw.Flush()
	})
}

func runScheduleRm(ctx context.Context, dockerCli command.Cli, opts scheduleOptions) error {
	cluster, err := clusterID(ctx, dockerCli.Client())
	if err != nil {
		return err
	}
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	if err := backupset.DeleteSchedule(ctx, repo, cluster); err != nil {
		return err
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "schedule of swarm %s removed\n", cluster)
	return err
}
