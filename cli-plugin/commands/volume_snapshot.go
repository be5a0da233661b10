package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
)

type volumeSnapshotOptions struct {
	quiet bool
}

func newVolumeSnapshotCommand(dockerCli command.Cli) *cobra.Command {
	var opts volumeSnapshotOptions
	cmd := &cobra.Command{
		Use:   "snapshot [OPTIONS] VOLUME",
		Short: "Snapshot a swarmbackup volume now, on the node that holds it",
		Long: "Snapshot a swarmbackup volume now. Run it against the engine of the node that holds the\n" +
			"volume: that node's plugin reads the volume and writes the snapshot to its repository.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVolumeSnapshot(cmd.Context(), dockerCli, opts, args[0])
		},
	}
	cmd.Flags().BoolVarP(&opts.quiet, "quiet", "q", false, "Only print the snapshot ID")
	return cmd
}

func runVolumeSnapshot(ctx context.Context, dockerCli command.Cli, opts volumeSnapshotOptions, volume string) error {
	agent, err := localAgent(ctx, dockerCli.Client())
	if err != nil {
		return err
	}
	job, err := agent.Snapshot(ctx, volume)
	if err != nil {
		return err
	}
	job, err = waitWithProgress(ctx, dockerCli, agent, job, opts.quiet, "snapshot "+volume)
	if err != nil {
		return err
	}
	if job.State == agentapi.JobFailed {
		return fmt.Errorf("snapshot of volume %s failed: %s", volume, job.Error)
	}
	if opts.quiet {
		_, err = fmt.Fprintln(dockerCli.Out(), job.Snapshot)
		return err
	}
	held := ""
	if job.Quiesce != "" {
		held = fmt.Sprintf(" (quiesce=%s held the containers for %s)", job.Quiesce, job.QuiesceWindow.Round(time.Millisecond))
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "%s\nvolume %s: %d files, %s, %s new, in %s%s\n", job.Snapshot, volume, job.Files,
		units.BytesSize(float64(job.Bytes)), units.BytesSize(float64(job.BytesNew)), job.Finished.Sub(job.Started).Round(time.Millisecond), held)
	return err
}
