package agent

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
	"github.com/swarmbackup/swarmbackup/shared/notify"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// drill drills the cluster's newest set for a tick of the schedule this manager won. The
// plugin holds no unlock key: an autolocked swarm's control plane is restored and
// authenticated, not decoded.
func (a *Agent) drill(ctx context.Context, repo *repository.Repository, sched backupset.Schedule, tick time.Time) {
	sets, _, err := backupset.List(ctx, repo)
	if err != nil {
		a.log.Error("scheduled drill", "tick", tick, "err", err)
		return
	}
	var newest *backupset.Set
	for _, s := range sets {
		if s.Cluster == sched.Cluster {
			newest = s
		}
	}
	if newest == nil {
		a.log.Warn("scheduled drill: the cluster has no set yet", "tick", tick)
		return
	}
	host, _ := a.engine.Node(ctx)
	start := time.Now()
	rec, err := drill.Run(ctx, repo, newest, drill.Options{Dir: os.TempDir(), Host: host, Scheduled: true})
	ev := notify.Event{Job: notify.JobDrill, Subject: newest.ID, Host: host, Err: err, Ended: time.Now(), Took: time.Since(start)}
	if rec != nil {
		ev.Bytes = rec.Bytes()
		if err == nil && !rec.OK() {
			ev.Err = errors.New(strings.Join(rec.Problems, "; "))
		}
	}
	a.jobEnded(ev)
	if err != nil {
		a.log.Error("scheduled drill", "set", newest.ID[:12], "err", err)
		return
	}
	if !rec.OK() {
		a.log.Error("scheduled drill failed", "set", newest.ID[:12], "problems", rec.Problems)
		return
	}
	a.log.Info("scheduled drill passed", "set", newest.ID[:12], "volumes", len(rec.Members),
		"took", rec.Took.Round(time.Millisecond).String(), "estimate", rec.Estimate.Round(time.Millisecond).String())
}
