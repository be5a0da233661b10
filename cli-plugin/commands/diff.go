package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

type diffOptions struct {
	repo repoOptions
	listFormat
}

func newDiffCommand(dockerCli command.Cli) *cobra.Command {
	var opts diffOptions
	cmd := &cobra.Command{
		Use:   "diff [OPTIONS] ID",
		Short: "Compare a swarm backup with the live cluster: objects added, removed, changed",
		Long: "Compare a swarm backup with the live cluster, by kind and name. \"removed\": in the backup,\n" +
			"gone from the cluster (restore can bring it back); \"added\": in the cluster only;\n" +
			"\"changed\": labels differ, or a service's spec.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), dockerCli, opts, args[0])
		},
	}
	cmd.ValidArgsFunction = completeIDs(&opts.repo, snapshot.KindSwarm)
	opts.repo.addFlags(cmd.Flags())
	opts.listFormat.addFlags(cmd.Flags(), "Only show the names of the objects that differ")
	return cmd
}

func runDiff(ctx context.Context, dockerCli command.Cli, opts diffOptions, id string) error {
	repo, sn, _, err := opts.repo.openSwarmBackup(ctx, id)
	if err != nil {
		return err
	}
	changes, err := controlplane.Diff(ctx, repo, sn, dockerCli.Client())
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []controlplane.Change{}
	}
	if len(changes) == 0 && !opts.quiet && (opts.format == "" || opts.format == formatTable) {
		_, err := fmt.Fprintf(dockerCli.Out(), "the cluster matches backup %s\n", sn.ID.Short())
		return err
	}
	return writeChanges(dockerCli.Out(), opts.listFormat, changes)
}

const diffTable = "table {{.Change}}\t{{.Kind}}\t{{.Name}}\t{{.Detail}}"

func writeChanges(out io.Writer, f listFormat, changes []controlplane.Change) error {
	return writeRows(out, f, diffTable, changes, func(c controlplane.Change, _ bool) row { return changeRow{c} })
}

// changeRow is a line of `diff`.
type changeRow struct{ c controlplane.Change }

func (r changeRow) FullHeader() any              { return nil }
func (r changeRow) MarshalJSON() ([]byte, error) { return json.Marshal(r.c) }
func (r changeRow) Change() string               { return r.c.Change }
func (r changeRow) ID() string                   { return r.c.Name } // what -q prints: swarm objects are known by name
func (r changeRow) Kind() string                 { return r.c.Kind }
func (r changeRow) Name() string                 { return r.c.Name }
func (r changeRow) Detail() string               { return r.c.Detail }
