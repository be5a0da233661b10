package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// setVolumesAtOnce bounds the volumes of one node snapshotted at the same time for a set.
const setVolumesAtOnce = 4

// RunSets answers the requests for backup sets: every interval it reads the repository's
// doorbell, one small object; a request it has not answered yet, and whose deadline has
// not passed, is answered by snapshotting each of this node's volumes at the request's
// common instant, and reporting what was taken.
func (a *Agent) RunSets(ctx context.Context, volumes Inventory, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var repo *repository.Repository
	last, lastErr := "", ""
	for {
		var err error
		if repo == nil {
			repo, err = a.openRepo(ctx)
		}
		var req *backupset.Request
		if err == nil {
			if req, err = backupset.Poll(ctx, repo, last); err != nil {
				repo = nil
			}
		}
		switch {
		case err != nil && err.Error() != lastErr:
			a.log.Error("read the set requests", "err", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
		if req != nil {
			last = req.Set
			if time.Now().Before(req.Deadline) {
				a.answer(ctx, repo, *req, volumes)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
		for job.State == agentapi.JobRunning && ctx.Err() == nil {
			job, _ = a.Job(ctx, job.ID, agentapi.MaxJobWait)
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
