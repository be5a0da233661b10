package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/atomicfile"
	"github.com/swarmbackup/swarmbackup/shared/report"
)

type reportOptions struct {
	repo repoOptions
	html string
}

func newReportCommand(dockerCli command.Cli) *cobra.Command {
	var opts reportOptions
	cmd := &cobra.Command{
		Use:   "report --html FILE",
		Short: "Draw the backup estate: timelines of backups, sets and drills per volume and for the control plane",
		Long: "Draw the backup estate as one self-contained HTML page (no script, nothing fetched):\n" +
			"for the control plane, the sets, the drills and every volume, a timeline of the backups\n" +
			"with sizes, new bytes and durations, the failures the agents reported, the gaps in each\n" +
			"rhythm and the retention horizon, with a table of the same figures.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReport(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.html, "html", "", "Write the page to FILE")
	return cmd
}

func runReport(ctx context.Context, dockerCli command.Cli, opts reportOptions) error {
	if opts.html == "" {
		return errors.New("say where the page goes with --html FILE")
	}
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	estate, err := report.Build(ctx, repo, repo.Backend().Location(), clock())
	if err != nil {
		return err
	}
	var page bytes.Buffer
	if err := report.WriteHTML(&page, estate); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(opts.html, page.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", opts.html, err)
	}
	fmt.Fprintf(dockerCli.Out(), "%s: %d timelines, %d backups, %d failures, %d gaps\n",
		opts.html, len(estate.Rows), estate.Snapshots, estate.Failures, estate.Gaps)
	return nil
}
