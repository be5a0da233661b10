package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

type volumeRestoreOptions struct {
	repo  repoOptions
	node  string
	to    string
	quiet bool
}

func newVolumeRestoreCommand(dockerCli command.Cli) *cobra.Command {
	var opts volumeRestoreOptions
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] VOLUME[@SNAPSHOT]",
		Short: "Fill a volume from a snapshot: the same volume (unmounted) or a new one",
		Long: "Fill a volume from a snapshot of VOLUME: the newest, or the one whose ID starts with\n" +
			"SNAPSHOT. Without --to the volume itself is replaced, which it refuses while containers\n" +
			"use it. The node that holds VOLUME restores it (or --node); on its host the plugin is\n" +
			"asked directly, from anywhere else through the repository. The data is written aside\n" +
			"and swapped in only once complete and verified.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVolumeRestore(cmd.Context(), dockerCli, opts, args[0])
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "Restore into this volume instead (created when missing)")
	cmd.Flags().BoolVarP(&opts.quiet, "quiet", "q", false, "Only print the restored snapshot's ID")
	cmd.Flags().StringVar(&opts.node, "node", "", "The node to restore on (host name or node ID); default: the one that holds VOLUME")
	cmd.ValidArgsFunction = completeVolumes(&opts.repo)
	opts.repo.addFlags(cmd.Flags())
	return cmd
}

func runVolumeRestore(ctx context.Context, dockerCli command.Cli, opts volumeRestoreOptions, arg string) error {
	volume, snap, _ := strings.Cut(arg, "@")
	for _, v := range []string{volume, opts.to} {
		if v != "" && !volumeopts.ValidVolumeName(v) {
			return fmt.Errorf("%q is not a volume name", v)
		}
	}
	job, err := volumeJob(ctx, dockerCli, &opts.repo, opts.node, agentapi.RestoreRequest{Volume: volume, Snapshot: snap, Target: opts.to}, false, opts.quiet)
	if err != nil {
		return err
	}
	if job.State == agentapi.JobFailed {
		return fmt.Errorf("%s", job.Error)
	}
	if job.PrivilegedCount > 0 {
		fmt.Fprintf(dockerCli.Err(), "warning: the restored data holds %d set-user/group-ID file(s) or device node(s): %s\n",
			job.PrivilegedCount, strings.Join(job.Privileged, ", "))
	}
	if opts.quiet {
		_, err = fmt.Fprintln(dockerCli.Out(), job.Snapshot)
		return err
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "volume %s restored from snapshot %s of %s: %d files, %s, in %s\n",
		job.Volume, job.Snapshot[:12], volume, job.Files, units.BytesSize(float64(job.Bytes)), job.Finished.Sub(job.Started).Round(1e6))
	return err
}
