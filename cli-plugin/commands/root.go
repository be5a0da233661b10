// Package commands holds the `docker swarmbackup` command tree: one file per subcommand, each
// with an options struct, a newXCommand that wires its flags and a runX that does the work.
package commands

import (
	"fmt"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

// PluginName is both the CLI plugin's command and the managed volume plugin's name.
const PluginName = "swarmbackup"

// NewRootCommand returns the `swarmbackup` command with every subcommand attached.
func NewRootCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   PluginName,
		Short: "Back up and restore Docker Swarm state and volumes",
		// The plugin framework prints errors once, as one line.
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	// One line for a mistyped flag, like every other error.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	cmd.AddCommand(
		newBackupCommand(dockerCli),
		newDiffCommand(dockerCli),
		newDrillCommand(dockerCli),
		newHooksCommand(dockerCli),
		newInspectCommand(dockerCli),
		newLsCommand(dockerCli),
		newPruneCommand(dockerCli),
		newReportCommand(dockerCli),
		newRestoreCommand(dockerCli),
		newKeyCommand(dockerCli),
		newScheduleCommand(dockerCli),
		newVerifyCommand(dockerCli),
		newStatusCommand(dockerCli),
		newUndeleteCommand(dockerCli),
		newVersionCommand(dockerCli),
		newVolumeCommand(dockerCli),
	)
	return cmd
}
