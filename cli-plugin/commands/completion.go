package commands

import (
	"context"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Shell completion, served through cobra's __complete (which docker's plugin completion calls):
// backup IDs and volume names come from the repository the command's flags and environment name.

// completeFrom completes a command's first argument with what list finds in the repository.
func completeFrom(repo *repoOptions, list func(ctx context.Context, r *repository.Repository, toComplete string) ([]cobra.Completion, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := commandContext(cmd)
		r, err := repo.open(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		out, err := list(ctx, r, toComplete)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeIDs offers the short IDs of the backups of the given kinds ("set" for sets), newest
// first, each with what it is.
func completeIDs(repo *repoOptions, kinds ...string) cobra.CompletionFunc {
	return completeFrom(repo, func(ctx context.Context, r *repository.Repository, _ string) ([]cobra.Completion, error) {
		want := map[string]bool{}
		for _, k := range kinds {
			want[k] = true
		}
		var out []cobra.Completion
		if want[kindSet] {
			sets, _, err := backupset.List(ctx, r)
			if err != nil {
				return nil, err
			}
			for i := len(sets) - 1; i >= 0; i-- {
				s := summarizeSet(sets[i])
				out = append(out, cobra.CompletionWithDesc(shorten(s.ID, 12), describe(s)))
			}
		}
		list, _, err := snapshot.List(ctx, r)
		if err != nil {
			return nil, err
		}
		for i := len(list) - 1; i >= 0; i-- {
			if sn := list[i]; want[sn.Kind] {
				s := summarize(sn)
				out = append(out, cobra.CompletionWithDesc(shorten(s.ID, 12), describe(s)))
			}
		}
		return out, nil
	})
}

// describe reads like "volume shop_db, 2026-11-21 12:00".
func describe(s snapshotSummary) string {
	r := snapshotRow{s: s, trunc: true}
	return s.Kind + " " + r.Source() + ", " + s.Time.Local().Format("2006-01-02 15:04")
}

// completeVolumes offers the names of the volumes the repository holds snapshots of.
func completeVolumes(repo *repoOptions) cobra.CompletionFunc {
	return completeFrom(repo, func(ctx context.Context, r *repository.Repository, toComplete string) ([]cobra.Completion, error) {
		list, _, err := snapshot.List(ctx, r)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		var out []cobra.Completion
		for _, sn := range list {
			if sn.Kind == snapshot.KindVolume && !seen[sn.Source] && strings.HasPrefix(sn.Source, toComplete) {
				seen[sn.Source] = true
				out = append(out, sn.Source)
			}
		}
		sort.Strings(out)
		return out, nil
	})
}

func commandContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
