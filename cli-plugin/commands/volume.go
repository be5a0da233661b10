package commands

import (
	"context"
	"fmt"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
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

// localAgent returns a client for the swarmbackup plugin of the engine the CLI talks to,
// which must run on this host: its socket is reached through the file system.
func localAgent(ctx context.Context, api client.APIClient) (*agentapi.Client, error) {
	p, err := api.PluginInspect(ctx, PluginName, client.PluginInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("the swarmbackup volume plugin is not installed in this engine: run `make install`")
	}
	if !p.Plugin.Enabled {
		return nil, fmt.Errorf("the swarmbackup volume plugin is disabled: run `docker plugin enable %s`", PluginName)
	}
	return agentapi.NewClient(agentapi.SocketPath(p.Plugin.ID)), nil
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
