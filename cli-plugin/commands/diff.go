package commands

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
)

type diffOptions struct {
	repo   repoOptions
	format string
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
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.format, "format", "", formatFlagUsage)
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
	return writeFormatted(dockerCli.Out(), opts.format, changes, func(w io.Writer) error {
		if len(changes) == 0 {
			_, err := fmt.Fprintf(w, "the cluster matches backup %s\n", sn.ID.Short())
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHANGE\tKIND\tNAME\tDETAIL")
		for _, c := range changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Change, c.Kind, c.Name, c.Detail)
		}
		return tw.Flush()
	})
}
