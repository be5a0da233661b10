package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/retention"
)

type pruneOptions struct {
	repo      repoOptions
	policy    retention.Policy
	dryRun    bool
	maxUnused string
	format    string
}

func newPruneCommand(dockerCli command.Cli) *cobra.Command {
	var opts pruneOptions
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Apply retention to swarm backups and volume snapshots, then remove data no backup needs",
		Long: "Apply retention to each swarm and each volume separately, then remove the data that no kept\n" +
			"backup needs. Waits for no backup: it refuses while one is running.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPrune(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	f := cmd.Flags()
	f.IntVar(&opts.policy.Last, "keep-last", 0, "Keep the N newest backups")
	f.IntVar(&opts.policy.Hourly, "keep-hourly", 0, "Keep the newest backup of each of the last N hours")
	f.IntVar(&opts.policy.Daily, "keep-daily", 0, "Keep the newest backup of each of the last N days")
	f.IntVar(&opts.policy.Weekly, "keep-weekly", 0, "Keep the newest backup of each of the last N weeks")
	f.IntVar(&opts.policy.Monthly, "keep-monthly", 0, "Keep the newest backup of each of the last N months")
	f.IntVar(&opts.policy.Yearly, "keep-yearly", 0, "Keep the newest backup of each of the last N years")
	f.StringVar(&opts.maxUnused, "max-unused", "5%", "Unneeded data partly used packs may keep, as a share of the needed data; beyond it they are repacked (0% repacks all; unlimited: none)")
	f.BoolVar(&opts.dryRun, "dry-run", false, "Show what would be removed, remove nothing")
	f.StringVar(&opts.format, "format", "", formatFlagUsage)
	return cmd
}

func runPrune(ctx context.Context, dockerCli command.Cli, opts pruneOptions) error {
	p := opts.policy
	for name, n := range map[string]int{"last": p.Last, "hourly": p.Hourly, "daily": p.Daily, "weekly": p.Weekly, "monthly": p.Monthly, "yearly": p.Yearly} {
		if n < 0 {
			return fmt.Errorf("--keep-%s %d: give a count of 0 or more", name, n)
		}
	}
	maxUnused, err := parseShare(opts.maxUnused)
	if err != nil {
		return fmt.Errorf("--max-unused %s: %w", opts.maxUnused, err)
	}
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	plan, err := pruner.Prune(ctx, repo, pruner.Options{Policy: opts.policy, DryRun: opts.dryRun, MaxUnused: maxUnused})
	if err != nil {
		return err
	}
	return writeFormatted(dockerCli.Out(), opts.format, plan, func(w io.Writer) error {
		verb := "removed"
		if opts.dryRun {
			verb = "would remove"
		}
		for _, e := range plan.Forget {
			fmt.Fprintf(w, "forget %s  %s  %s %s\n", e.ID, e.Time, e.Kind, e.Source)
		}
		for _, e := range plan.Keep {
			fmt.Fprintf(w, "keep   %s  %s  %s %s  (%s)\n", e.ID, e.Time, e.Kind, e.Source, strings.Join(e.Reasons, ", "))
		}
		if len(plan.Forged) > 0 {
			fmt.Fprintf(w, "%s %d forged record(s), sealed with a key that may not make them: %s\n", verb, len(plan.Forged), strings.Join(plan.Forged, ", "))
		}
		if plan.DataLeft {
			fmt.Fprintln(w, "data left in place: this key (volumes role) cannot see what control-plane backups need; prune with a full key")
		}
		if plan.PacksUnindexed > 0 {
			fmt.Fprintf(w, "%s %d pack(s) that no index lists (left by interrupted backups), %s\n", verb, plan.PacksUnindexed, units.BytesSize(float64(plan.BytesUnindexed)))
		}
		if plan.PacksRepacked > 0 {
			fmt.Fprintf(w, "%s %d partly used pack(s), %s, after copying the %s still needed into new packs\n", verb, plan.PacksRepacked, units.BytesSize(float64(plan.BytesRepackFreed)), units.BytesSize(float64(plan.BytesRepacked)))
		}
		if plan.PacksKeptPartly > 0 {
			fmt.Fprintf(w, "kept %d partly used pack(s) whole, %s of them unneeded (within --max-unused)\n", plan.PacksKeptPartly, units.BytesSize(float64(plan.BytesUnused)))
		}
		_, err := fmt.Fprintf(w, "%s %d backup(s) and %d pack(s), %s\n", verb, len(plan.Forget), plan.PacksRemoved, units.BytesSize(float64(plan.BytesRemoved)))
		return err
	})
}

// parseShare reads a share as users give it: a percentage (5%, 0.5%), or unlimited.
func parseShare(s string) (float64, error) {
	if s == "unlimited" {
		return math.Inf(1), nil
	}
	pct, ok := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(pct, 64)
	if !ok || err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, errors.New("give a percentage such as 5%, or unlimited")
	}
	return v / 100, nil
}
