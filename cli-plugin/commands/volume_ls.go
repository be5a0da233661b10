package commands

import (
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

func newVolumeLsCommand(dockerCli command.Cli) *cobra.Command {
	var opts lsOptions
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volume snapshots, one entry per snapshot, with the volume's name",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.kind = snapshot.KindVolume
			return runLs(cmd.Context(), dockerCli, opts)
		},
	}
	opts.addFlags(cmd)
	return cmd
}
