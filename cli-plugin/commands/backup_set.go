package commands

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/moby/moby/client"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// setPollEvery is how often the command looks for the nodes' reports.
const setPollEvery = 250 * time.Millisecond

// runBackupSet takes a set: the control plane here, every volume on every node through its
// agent, all at one instant.
func runBackupSet(ctx context.Context, dockerCli command.Cli, opts backupOptions, tags map[string]string, unlockKey string) error {
	api := dockerCli.Client()
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("ask the engine about this node: %w", err)
	}
	if !info.Info.Swarm.ControlAvailable {
		return fmt.Errorf("this node is not a swarm manager (state %q): run the backup on a manager", info.Info.Swarm.LocalNodeState)
	}
	if _, err := os.Stat(filepath.Join(info.Info.DockerRootDir, "swarm")); err != nil {
		return fmt.Errorf("cannot read the swarm directory: run the backup on the manager's host, as root (%v)", err)
	}
	repo, err := opts.repo.openForWrite(ctx)
	if err != nil {
		return err
	}
	nodes, err := backupset.Nodes(ctx, api, repo)
	if err != nil {
		return err
	}
	errOut := dockerCli.Err()
	progress := func(n backupset.Node, r *backupset.Report, missing *backupset.Missing) {
		if opts.quiet {
			return
		}
		switch {
		case missing != nil:
			fmt.Fprintf(errOut, "%-12s missing: %s\n", n.Host, missing.Reason)
		default:
			var bytes uint64
			for _, m := range r.Members {
				bytes += m.Bytes
			}
			fmt.Fprintf(errOut, "%-12s %d volume(s), %s", n.Host, len(r.Members), units.BytesSize(float64(bytes)))
			if len(r.Failed) > 0 {
				fmt.Fprintf(errOut, ", %d failed", len(r.Failed))
			}
			fmt.Fprintln(errOut)
		}
	}
	if !opts.quiet {
		fmt.Fprintf(errOut, "asking %d node(s) for a set at %s\n", len(nodes), time.Now().Add(backupset.DefaultLead).Format("15:04:05"))
	}
	var cp *controlPlaneBackup
	set, err := backupset.Take(ctx, repo, backupset.Options{
		Cluster: info.Info.Swarm.Cluster.ID, Nodes: nodes, Lead: backupset.DefaultLead, Timeout: opts.timeout, PollEvery: setPollEvery,
		Progress: progress, Tags: tags,
		ControlPlane: func(ctx context.Context, tags map[string]string) (*controlplane.Taken, error) {
			var err error
			cp, err = backupControlPlane(ctx, dockerCli, opts, repo, tags, unlockKey)
			if err != nil {
				return nil, err
			}
			return cp.Taken, nil
		},
	})
	if err != nil {
		return err
	}
	if cp != nil {
		cp.warnAutolock(dockerCli)
	}
	return printSet(dockerCli, opts, set)
}

// printSet prints a set's ID and, unless quiet, what it holds; a partial set is an error
// with one line per missing member.
func printSet(dockerCli command.Cli, opts backupOptions, set *backupset.Set) error {
	out := dockerCli.Out()
	if opts.quiet {
		fmt.Fprintln(out, set.ID)
	} else {
		state := "complete"
		if !set.Complete() {
			state = "partial"
		}
		fmt.Fprintf(out, "%s\nset of the control plane and %d volume(s) on %d node(s), %s, capture starts within %s: %s\n",
			set.ID, len(set.Members), set.Nodes, units.BytesSize(float64(set.Bytes())), set.Spread.Round(time.Millisecond), state)
	}
	if set.Complete() {
		return nil
	}
	lines := make([]string, len(set.Missing))
	for i, m := range set.Missing {
		lines[i] = "missing " + m.String()
	}
	return cli.StatusError{StatusCode: 1, Status: fmt.Sprintf("set %s is partial:\n%s", set.ID[:12], strings.Join(lines, "\n"))}
}

// runBackupSetElsewhere asks a manager's plugin to take the set, from a machine that is not
// a manager's host, and waits for its record.
func runBackupSetElsewhere(ctx context.Context, dockerCli command.Cli, opts backupOptions, cluster string, tags map[string]string) error {
	repo, err := opts.repo.openForWrite(ctx)
	if err != nil {
		return err
	}
	req := backupset.Request{ID: repository.NewRandomID().String(), Set: repository.NewRandomID().String(), Kind: backupset.KindSet, Cluster: cluster,
		Volumes: true, Timeout: opts.timeout, Tags: tags, Start: time.Now().UTC()}
	req.Deadline = req.Start.Add(pickUp)
	if err := backupset.Ring(ctx, repo, req); err != nil {
		return err
	}
	if !opts.quiet {
		fmt.Fprintln(dockerCli.Err(), "asking a manager's plugin for a set")
	}
	// A manager reads the request within its poll interval, then waits for the nodes.
	deadline := req.Deadline.Add(backupset.DefaultLead + opts.timeout)
	set, err := backupset.WaitSet(ctx, repo, req.Set, deadline, remotePollEvery)
	if err != nil {
		return err
	}
	return printSet(dockerCli, opts, set)
}
