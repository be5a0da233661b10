package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// setVolumesAtOnce bounds the volumes of one node snapshotted at the same time for a set.
const setVolumesAtOnce = 4

// RunRequests answers what commands ask of the agents through the repository (sets, and
// backups, snapshots and restores asked for from machines that are no node's host): every
// interval it reads the repository's doorbell, one small object, and carries out each new
// request meant for this node whose deadline has not passed, each in its own goroutine, all
// ended before it returns. swarmDir is the engine's swarm directory (read-only), for the
// control plane on managers.
func (a *Agent) RunRequests(ctx context.Context, volumes Inventory, interval time.Duration, swarmDir string) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var running errgroup.Group
	defer running.Wait()
	seen := map[string]time.Time{}
	var repo *repository.Repository
	lastErr := ""
	for {
		var err error
		if repo == nil {
			repo, err = a.openRepo(ctx)
		}
		var reqs []backupset.Request
		if err == nil {
			reqs, err = backupset.Poll(ctx, repo, func(id string) bool { _, ok := seen[id]; return ok })
			if err != nil {
				repo = nil
			}
		}
		switch {
		case err != nil && err.Error() != lastErr:
			a.log.Error("read the requests", "err", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
		now := time.Now()
		for _, req := range reqs {
			seen[req.ID] = req.Deadline
			if now.Before(req.Deadline) {
				running.Go(func() error {
					a.carryOut(ctx, repo, req, volumes, swarmDir)
					return nil
				})
			}
		}
		for id, deadline := range seen {
			if now.Sub(deadline) > time.Hour {
				delete(seen, id) // long gone from the bell
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// carryOut does what a request asks of this node, if anything.
func (a *Agent) carryOut(ctx context.Context, repo *repository.Repository, req backupset.Request, volumes Inventory, swarmDir string) {
	// Several clusters may share a repository: a request names the one it is for.
	cluster := a.cluster(ctx, swarmDir)
	if req.Cluster != "" && cluster != "" && cluster != req.Cluster {
		return
	}
	switch req.Kind {
	case backupset.KindSetPart:
		a.answer(ctx, repo, req, volumes)
	case backupset.KindSet, backupset.KindBackup:
		a.takeForRequest(ctx, repo, req, swarmDir)
	case backupset.KindSnapshot, backupset.KindRestore:
		switch req.Node {
		case a.nodeIdentity():
		case "":
			// For whichever node holds the volume: the first of them to claim it.
			if !a.volumes.Exists(req.Volume) {
				return
			}
			if won, err := backupset.ClaimRequest(ctx, repo, a.claim(ctx, req.Cluster, time.Time{}), req.ID); err != nil || !won {
				return
			}
		default:
			return
		}
		a.jobForRequest(ctx, repo, req)
	}
}

// claim describes this node taking a request, or a tick of the schedule.
func (a *Agent) claim(ctx context.Context, cluster string, tick time.Time) backupset.Claim {
	host, _ := a.engine.Node(ctx)
	return backupset.Claim{Cluster: cluster, Tick: tick, Node: a.nodeIdentity(), Host: host, Time: time.Now().UTC()}
}

// takeForRequest takes a set or a control-plane backup asked for from elsewhere, when this
// node is a manager of the request's cluster and the first to claim it.
func (a *Agent) takeForRequest(ctx context.Context, repo *repository.Repository, req backupset.Request, swarmDir string) {
	if cluster, err := a.managerOf(ctx); err != nil || cluster != req.Cluster {
		return
	}
	claim := a.claim(ctx, req.Cluster, time.Time{})
	won, err := backupset.ClaimRequest(ctx, repo, claim, req.ID)
	if err != nil || !won {
		return
	}
	node, host := claim.Node, claim.Host
	api := a.engine.API()
	controlPlane := func(ctx context.Context, tags map[string]string) (*controlplane.Taken, error) {
		return controlplane.TakeBackup(ctx, api, repo, controlplane.BackupOptions{SwarmDir: swarmDir, Tags: tags})
	}
	if req.Kind == backupset.KindBackup {
		res := backupset.Result{ID: req.ID, Node: node, Host: host,
			Job: agentapi.Job{ID: req.ID, Kind: "backup", State: agentapi.JobRunning, Started: time.Now().UTC()}}
		taken, err := controlPlane(ctx, req.Tags)
		res.Job.Finished = time.Now().UTC()
		if err != nil {
			res.Job.State, res.Job.Error = agentapi.JobFailed, err.Error()
		} else {
			sn := taken.Snapshot
			res.Job.State, res.Job.Snapshot = agentapi.JobDone, sn.ID.String()
			res.Job.Files, res.Job.Bytes, res.Job.BytesNew = sn.Stats.Files, sn.Stats.Bytes, sn.Stats.BytesNew
		}
		if err := backupset.SaveResult(context.WithoutCancel(ctx), repo, res); err != nil {
			a.log.Error("answer a backup request", "err", err)
		}
		return
	}
	var nodes []backupset.Node
	if req.Volumes {
		if nodes, err = backupset.Nodes(ctx, api, repo); err != nil {
			a.log.Error("set asked for", "set", req.Set, "err", err)
			return
		}
	}
	set, err := backupset.Take(ctx, repo, backupset.Options{
		ID: req.Set, Cluster: req.Cluster, Nodes: nodes, Lead: backupset.DefaultLead, Timeout: req.Timeout,
		PollEvery: time.Second, ControlPlane: controlPlane, Tags: req.Tags,
	})
	if err != nil {
		a.log.Error("set asked for", "set", req.Set, "err", err)
		return
	}
	a.log.Info("set taken", "set", set.ID[:12], "volumes", len(set.Members), "missing", len(set.Missing))
}

// jobForRequest runs a snapshot or restore asked for from elsewhere and reports the job.
func (a *Agent) jobForRequest(ctx context.Context, repo *repository.Repository, req backupset.Request) {
	var job agentapi.Job
	var err error
	if req.Kind == backupset.KindSnapshot {
		job, err = a.Snapshot(req.Volume)
	} else {
		job, err = a.Restore(agentapi.RestoreRequest{Volume: req.Volume, Snapshot: req.Snapshot, Target: req.Target})
	}
	host, _ := a.engine.Node(ctx)
	answer := func(job agentapi.Job) {
		res := backupset.Result{ID: req.ID, Node: a.nodeIdentity(), Host: host, Job: job}
		if err := backupset.SaveResult(context.WithoutCancel(ctx), repo, res); err != nil {
			a.log.Error("answer a request", "kind", req.Kind, "volume", req.Volume, "err", err)
		}
	}
	if err != nil {
		answer(agentapi.Job{Kind: req.Kind, Volume: req.Volume, State: agentapi.JobFailed, Error: err.Error()})
		return
	}
	answer(job) // started: the asker waits for the end from here on
	if ended, ok := a.waitJob(ctx, job.ID); ok {
		job = ended
	}
	answer(job)
}

// answer takes this node's part of a set and reports it.
func (a *Agent) answer(ctx context.Context, repo *repository.Repository, req backupset.Request, volumes Inventory) {
	node := a.nodeIdentity()
	host, _ := a.engine.Node(ctx)
	if done, err := backupset.LoadReport(ctx, repo, req.Set, node); err != nil || done != nil {
		return // answered already, by this agent before a restart
	}
	if err := backupset.SleepUntil(ctx, req.Start); err != nil {
		return
	}
	report := backupset.Report{Set: req.Set, Node: node, Host: host}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(setVolumesAtOnce)
	for _, v := range volumes.Inventory() {
		g.Go(func() error {
			m, err := a.snapshotForSet(ctx, v.Name, req.Set)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				report.Failed = append(report.Failed, backupset.Missing{Node: node, Host: host, Volume: v.Name, Reason: err.Error()})
				return nil
			}
			m.Node, m.Host = node, host
			report.Members = append(report.Members, m)
			return nil
		})
	}
	_ = g.Wait()
	report.Time = time.Now().UTC()
	if err := backupset.SaveReport(context.WithoutCancel(ctx), repo, report); err != nil {
		a.log.Error("report a set", "set", req.Set, "err", err)
		return
	}
	a.log.Info("set answered", "set", req.Set, "volumes", len(report.Members), "failed", len(report.Failed))
}

// snapshotForSet snapshots a volume for a set, tagged with it; a snapshot already running
// on the volume (its schedule's) is waited for first, since its record is not the set's.
func (a *Agent) snapshotForSet(ctx context.Context, volume, set string) (backupset.Member, error) {
	var taken *snapshot.Snapshot
	for range 3 {
		job, err := a.startSnapshot(volume, map[string]string{backupset.TagSet: set}, func(sn *snapshot.Snapshot) { taken = sn })
		if err != nil {
			return backupset.Member{}, err
		}
		if ended, ok := a.waitJob(ctx, job.ID); ok {
			job = ended
		}
		if job.State == agentapi.JobFailed {
			return backupset.Member{}, fmt.Errorf("%s", job.Error)
		}
		if taken != nil {
			m := backupset.Member{Volume: volume, Snapshot: taken.ID.String(), CaptureStart: taken.Time,
				Files: taken.Stats.Files, Bytes: taken.Stats.Bytes, BytesNew: taken.Stats.BytesNew}
			if q := taken.Quiesce; q != nil {
				m.Quiesce, m.Window = q.Mode, q.Window
			}
			return m, nil
		}
		if err := ctx.Err(); err != nil {
			return backupset.Member{}, err
		}
	}
	return backupset.Member{}, fmt.Errorf("volume %s stayed busy with other snapshots", volume)
}
