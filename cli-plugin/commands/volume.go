package commands

import (
	"context"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/cli-plugin/progress"
	"github.com/swarmbackup/swarmbackup/shared/agentapi"
)

func newVolumeCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Snapshot, list and restore swarmbackup volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(
		newVolumeLsCommand(dockerCli),
		newVolumeRestoreCommand(dockerCli),
		newVolumeSnapshotCommand(dockerCli),
	)
	return cmd
}

// waitWithProgress waits for an agent's job, with a progress bar on a terminal.
func waitWithProgress(ctx context.Context, dockerCli command.Cli, agent *agentapi.Client, job agentapi.Job, quiet bool, what string) (agentapi.Job, error) {
	bar := progress.New(dockerCli.Err(), quiet, what, -1, true)
	defer bar.Done()
	return agent.Wait(ctx, job, func(j agentapi.Job) {
		total := int64(j.BytesTotal)
		if total == 0 {
			total = -1
		}
		bar.Set(int64(j.BytesDone), total)
	})
}
