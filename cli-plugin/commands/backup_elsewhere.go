package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// runBackupElsewhere asks a manager's plugin for a hot backup of the control plane, from a
// machine that is not a manager's host (docker talks to a manager through a context), and
// waits for its answer.
func runBackupElsewhere(ctx context.Context, dockerCli command.Cli, opts backupOptions, cluster string, tags map[string]string) error {
	repo, err := opts.repo.openForWrite(ctx)
	if err != nil {
		return err
	}
	req := backupset.Request{ID: repository.NewRandomID().String(), Kind: backupset.KindBackup, Cluster: cluster,
		Tags: tags, Start: time.Now().UTC()}
	req.Deadline = req.Start.Add(pickUp)
	if err := backupset.Ring(ctx, repo, req); err != nil {
		return err
	}
	res, err := backupset.WaitResult(ctx, repo, req, remotePollEvery)
	if err != nil {
		return err
	}
	if res.Job.State == agentapi.JobFailed {
		return fmt.Errorf("the backup on %s failed: %s", res.Host, res.Job.Error)
	}
	if opts.quiet {
		_, err = fmt.Fprintln(dockerCli.Out(), res.Job.Snapshot)
		return err
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "%s\nswarm %s from %s, by its plugin: %s in %s (engine kept running)\n", res.Job.Snapshot, cluster, res.Host,
		units.BytesSize(float64(res.Job.Bytes)), res.Job.Finished.Sub(res.Job.Started).Round(time.Millisecond))
	return err
}
