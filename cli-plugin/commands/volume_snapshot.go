package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

type volumeSnapshotOptions struct {
	repo  repoOptions
	node  string
	quiet bool
}

func newVolumeSnapshotCommand(dockerCli command.Cli) *cobra.Command {
	var opts volumeSnapshotOptions
	cmd := &cobra.Command{
		Use:   "snapshot [OPTIONS] VOLUME",
		Short: "Snapshot a swarmbackup volume now, on the node that holds it",
		Long: "Snapshot a swarmbackup volume now: the plugin of the node that holds the volume reads it\n" +
			"and writes the snapshot to its repository. On that node's host the plugin is asked\n" +
			"directly; from anywhere else (a manager's engine through a context, say) the request\n" +
			"goes through the repository to the node whose agent reports the volume (or --node).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVolumeSnapshot(cmd.Context(), dockerCli, opts, args[0])
		},
	}
	cmd.Flags().BoolVarP(&opts.quiet, "quiet", "q", false, "Only print the snapshot ID")
	cmd.Flags().StringVar(&opts.node, "node", "", "The node that holds the volume (host name or node ID), when several do")
	cmd.ValidArgsFunction = completeVolumes(&opts.repo)
	opts.repo.addFlags(cmd.Flags())
	return cmd
}

func runVolumeSnapshot(ctx context.Context, dockerCli command.Cli, opts volumeSnapshotOptions, volume string) error {
	if !volumeopts.ValidVolumeName(volume) {
		return fmt.Errorf("%q is not a volume name", volume)
	}
	job, err := volumeJob(ctx, dockerCli, &opts.repo, opts.node, agentapi.RestoreRequest{Volume: volume}, true, opts.quiet)
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
