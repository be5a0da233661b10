package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Waits on work asked of an agent through the repository.
const (
	// pickUp bounds how long the asked agent may take to read a request (its poll interval,
	// and some).
	pickUp = 2 * time.Minute
	// remoteJobLimit bounds a snapshot or restore carried out elsewhere.
	remoteJobLimit  = 24 * time.Hour
	remotePollEvery = 500 * time.Millisecond
)

// errNotOnThisHost says the engine's plugin is not reachable from here (a remote engine).
var errNotOnThisHost = errors.New("the engine's swarmbackup plugin is not on this host")

// volumeJob runs a snapshot or a restore through the plugin of the engine docker talks to,
// when it runs on this host and holds the volume; otherwise through the repository: the
// node that holds the volume (or --node) carries it out and reports back, which works from
// any machine that reaches the repository.
func volumeJob(ctx context.Context, dockerCli command.Cli, repoOpts *repoOptions, node string, req agentapi.RestoreRequest, snapshotOnly, quiet bool) (agentapi.Job, error) {
	api := dockerCli.Client()
	onANode := false // this host's plugin answered, and does not hold the volume
	if node == "" {
		agent, err := localAgent(ctx, api)
		if err != nil && !errors.Is(err, errNotOnThisHost) {
			return agentapi.Job{}, err
		}
		if agent != nil {
			var job agentapi.Job
			if snapshotOnly {
				job, err = agent.Snapshot(ctx, req.Volume)
			} else {
				job, err = agent.Restore(ctx, req)
			}
			if err == nil {
				what := "snapshot " + req.Volume
				if !snapshotOnly {
					what = "restore " + req.Volume
				}
				return waitWithProgress(ctx, dockerCli, agent, job, quiet, what)
			}
			if !strings.Contains(err.Error(), "no swarmbackup volume") {
				return agentapi.Job{}, err
			}
			onANode = true
		}
	}
	repo, err := repoOpts.openForWrite(ctx)
	if err != nil {
		return agentapi.Job{}, err
	}
	target, err := nodeFor(ctx, repo, node, req.Volume)
	if err != nil {
		return agentapi.Job{}, err
	}
	if target == "" && onANode {
		// Not here, and no other node reports it: a mistyped name, most likely.
		return agentapi.Job{}, errNoHolder(req.Volume)
	}
	r := backupset.Request{ID: repository.NewRandomID().String(), Kind: backupset.KindRestore, Node: target,
		Volume: req.Volume, Snapshot: req.Snapshot, Target: req.Target, Start: time.Now().UTC()}
	// Where the engine knows its cluster (a manager's does), only that cluster's nodes answer.
	if info, err := api.Info(ctx, client.InfoOptions{}); err == nil && info.Info.Swarm.Cluster != nil {
		r.Cluster = info.Info.Swarm.Cluster.ID
	}
	if snapshotOnly {
		r.Kind = backupset.KindSnapshot
	}
	r.Deadline = r.Start.Add(pickUp)
	if err := backupset.Ring(ctx, repo, r); err != nil {
		return agentapi.Job{}, err
	}
	if _, err := backupset.WaitResult(ctx, repo, r, remotePollEvery); err != nil {
		if target == "" && errors.Is(err, backupset.ErrNoAnswer) {
			return agentapi.Job{}, errNoHolder(req.Volume)
		}
		return agentapi.Job{}, err
	}
	// The agent says it started; its final word comes when the job ends.
	r.Deadline = time.Now().Add(remoteJobLimit)
	res, err := backupset.WaitFinal(ctx, repo, r, remotePollEvery)
	if err != nil {
		return agentapi.Job{}, err
	}
	return res.Job, nil
}

// errNoHolder names a volume no node answered for.
func errNoHolder(volume string) error {
	return fmt.Errorf("no swarmbackup volume %s on any node that reports to this repository: is it created, and its node's plugin enabled with this repository? (name the node with --node)", volume)
}

// nodeFor picks the node a volume's work is for: --node (a host name or node ID), else the
// one node whose agent reports the volume; "" when none reports it yet (the agents report
// their volumes every minute): the request then goes to whichever node holds it.
func nodeFor(ctx context.Context, repo *repository.Repository, node, volume string) (string, error) {
	beats, _, err := heartbeat.List(ctx, repo)
	if err != nil {
		return "", err
	}
	var holders []heartbeat.Beat
	for _, b := range beats {
		if node != "" && (b.Node == node || b.Host == node) {
			return b.Node, nil
		}
		for _, v := range b.Volumes {
			if v.Name == volume {
				holders = append(holders, b)
			}
		}
	}
	switch {
	case node != "":
		return "", fmt.Errorf("no agent of node %q reports to this repository: is the swarmbackup plugin enabled there, with this repository?", node)
	case len(holders) == 1:
		return holders[0].Node, nil
	case len(holders) == 0:
		return "", nil
	}
	hosts := make([]string, len(holders))
	for i, b := range holders {
		hosts[i] = b.Host
	}
	return "", fmt.Errorf("volume %s is on several nodes (%s): name one with --node", volume, strings.Join(hosts, ", "))
}

// localAgent returns a client for the swarmbackup plugin of the engine the CLI talks to;
// errNotOnThisHost when its socket is not on this host (a remote engine).
func localAgent(ctx context.Context, api client.APIClient) (*agentapi.Client, error) {
	p, err := api.PluginInspect(ctx, PluginName, client.PluginInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("the swarmbackup volume plugin is not installed in this engine: run `make install`")
	}
	if err != nil {
		return nil, fmt.Errorf("look up the swarmbackup volume plugin: %w", err)
	}
	if !p.Plugin.Enabled {
		return nil, fmt.Errorf("the swarmbackup volume plugin is disabled: run `docker plugin enable %s`", PluginName)
	}
	socket := agentapi.SocketPath(p.Plugin.ID)
	if _, err := os.Stat(socket); err != nil {
		return nil, errNotOnThisHost
	}
	return agentapi.NewClient(socket), nil
}
