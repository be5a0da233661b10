// Command docker-swarmbackup is the Docker CLI plugin behind `docker swarmbackup`.
package main

import (
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/cli-plugin/commands"
	"github.com/swarmbackup/swarmbackup/shared/buildinfo"
)

func main() {
	plugin.Run(func(dockerCli command.Cli) *cobra.Command {
		return commands.NewRootCommand(dockerCli)
	}, metadata.Metadata{
		SchemaVersion:    "0.1.0",
		Vendor:           "swarmbackup",
		Version:          buildinfo.Version,
		ShortDescription: "Back up and restore Docker Swarm state and volumes",
		URL:              "https://github.com/swarmbackup/swarmbackup",
	})
}
