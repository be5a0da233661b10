package commands

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/docker/cli/cli-plugins/hooks"
	"github.com/docker/cli/cli-plugins/metadata"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

// HookedCommand is the builtin command after which the docker CLI asks this plugin for a
// hint: operators type `docker swarm backup`, which the builtin `swarm` cannot host. The CLI
// reports that as a failure of `swarm` with an unknown command, so the hook is on `swarm`
// and the verb is read from the error.
const HookedCommand = "swarm"

var swarmVerb = regexp.MustCompile(`docker swarm (backup|restore)\b`)

// newHooksCommand answers the docker CLI's hook call with a pointer to the command meant.
func newHooksCommand(dockerCli command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:    metadata.HookSubcommandName + " REQUEST",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req hooks.Request
			if err := json.Unmarshal([]byte(args[0]), &req); err != nil {
				return fmt.Errorf("hook request: %w", err)
			}
			m := swarmVerb.FindStringSubmatch(req.CommandError)
			if m == nil {
				return json.NewEncoder(dockerCli.Out()).Encode(hooks.Response{})
			}
			verb := m[1]
			return json.NewEncoder(dockerCli.Out()).Encode(hooks.Response{
				Type:     hooks.NextSteps,
				Template: fmt.Sprintf("Swarm %ss are done by `docker swarmbackup %s` (see `docker swarmbackup %s --help`).", verb, verb, verb),
			})
		},
	}
}
