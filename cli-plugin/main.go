// Command docker-swarmbackup is the Docker CLI plugin behind `docker swarmbackup`.
package main

import (
	"context"
	"time"

	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/cli-plugin/commands"
	"github.com/swarmbackup/swarmbackup/shared/buildinfo"
	"github.com/swarmbackup/swarmbackup/shared/scratch"
)

// interruptGrace is how long an interrupted command has to stop by itself before what it
// decrypted is removed under it and it exits.
const interruptGrace = 10 * time.Second

func main() {
	// A Ctrl-C reaches this process as well as docker's: the command stops through its
	// context, and the secrets it decrypted into temporary directories go with it.
	ctx, stop := scratch.HandleSignals(context.Background(), interruptGrace)
	defer stop()
	plugin.Run(func(dockerCli command.Cli) *cobra.Command {
		root := commands.NewRootCommand(dockerCli)
		setContext(root, ctx)
		return root
	}, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "swarmbackup",
		Version:          buildinfo.Version,
		ShortDescription: "Back up and restore Docker Swarm state and volumes",
		URL:              "https://github.com/swarmbackup/swarmbackup",
	})
}

// setContext gives every command the context: cobra hands a command its root's context
// only when it has none, and the plugin framework's root is not ours.
func setContext(cmd *cobra.Command, ctx context.Context) {
	cmd.SetContext(ctx)
	for _, sub := range cmd.Commands() {
		setContext(sub, ctx)
	}
}
