package commands

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/config"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

type undeleteOptions struct {
	repo   repoOptions
	before string
}

func newUndeleteCommand(dockerCli command.Cli) *cobra.Command {
	var opts undeleteOptions
	cmd := &cobra.Command{
		Use:   "undelete [--before TIME]",
		Short: "Bring back the repository's deleted objects, in a versioned or Object Lock bucket",
		Long: "In a bucket that keeps deleted objects (S3 versioning, which Object Lock turns on), bring\n" +
			"back what was deleted after TIME (default: everything ever deleted), whoever deleted it: a\n" +
			"stolen key, a bad prune. The repository need not open first. Then `verify` tells what is whole.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUndelete(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.before, "before", "", "Bring the repository back to how it was before TIME: 2026-11-30T12:00:00Z, 2026-11-30 12:00, 2026-11-30, or a duration ago such as 24h")
	return cmd
}

func runUndelete(ctx context.Context, dockerCli command.Cli, opts undeleteOptions) error {
	since, err := parseBefore(opts.before, time.Now())
	if err != nil {
		return err
	}
	be, err := config.OpenBackend(ctx, config.RepoURL(opts.repo.repo, lookupEnv), lookupEnv)
	if err != nil {
		return err
	}
	back, err := repository.Undelete(ctx, be, since)
	if err != nil {
		return err
	}
	total := 0
	var parts []string
	for prefix, n := range back {
		if n > 0 {
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimSuffix(prefix, "/"), n))
		}
	}
	sort.Strings(parts)
	out := dockerCli.Out()
	when := "ever"
	if !since.IsZero() {
		when = "since " + since.Local().Format("2006-01-02 15:04:05")
	}
	if total == 0 {
		fmt.Fprintf(out, "nothing of the repository at %s was deleted %s\n", be.Location(), when)
		return nil
	}
	fmt.Fprintf(out, "brought back %d objects deleted %s (%s); `docker swarmbackup verify` tells what is whole\n", total, when, strings.Join(parts, ", "))
	return nil
}

// parseBefore reads --before: a time, or a duration meaning that long ago; empty is the
// zero time (everything).
func parseBefore(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--before %q: want a time (2026-11-30T12:00:00Z, 2026-11-30 12:00, 2026-11-30) or a duration ago (24h)", s)
}
