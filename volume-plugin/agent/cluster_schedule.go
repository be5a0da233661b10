package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/notify"
	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Timing of the cluster's schedule on the managers.
const (
	// scheduleRefresh is how often a manager's agent reads the schedule again.
	scheduleRefresh = 30 * time.Second
	// leaderDefers is how long the leader waits at a tick before it tries to take it, so
	// that a non-leader takes it when there is one.
	leaderDefers = 3 * time.Second
	// claimsKept is how long the records of claimed ticks are kept.
	claimsKept = 24 * time.Hour
	// defaultSetTimeout bounds a scheduled set whose schedule says nothing.
	defaultSetTimeout = 2 * time.Minute
)

// scheduledJob is one kind of work the cluster's schedule asks for.
type scheduledJob struct {
	name string                           // backupset.JobSet or JobDrill: claims of one do not take the other's ticks
	when func(*backupset.Schedule) string // the schedule's expression for it; empty: none
	run  func(ctx context.Context, repo *repository.Repository, sched backupset.Schedule, tick time.Time)
}

// RunClusterSchedule carries out the cluster's own schedule on this node, when it is a
// manager: at each tick, the managers race to claim it in the repository, exactly one wins
// and takes the set (the control plane from swarmDir, a read-only mount of the engine's
// swarm directory, and every node's volumes), or drills the newest set; the next tick is
// free for any. It returns when ctx ends.
func (a *Agent) RunClusterSchedule(ctx context.Context, swarmDir string) {
	jobs := []scheduledJob{
		{name: backupset.JobSet, when: func(s *backupset.Schedule) string { return s.Every },
			run: func(ctx context.Context, repo *repository.Repository, sched backupset.Schedule, tick time.Time) {
				a.takeSet(ctx, repo, sched, tick, swarmDir)
			}},
		{name: backupset.JobDrill, when: func(s *backupset.Schedule) string { return s.Drill }, run: a.drill},
	}
	shared := &sharedSchedule{a: a}
	var g errgroup.Group
	for _, job := range jobs {
		g.Go(func() error {
			a.follow(ctx, job, shared)
			return nil
		})
	}
	_ = g.Wait()
}

// sharedSchedule reads the cluster's schedule for every job of it: one read per refresh,
// however many jobs follow it.
type sharedSchedule struct {
	a      *Agent
	mu     sync.Mutex
	repo   *repository.Repository
	sched  *backupset.Schedule
	loaded time.Time
}

// get returns the schedule as last read, read again when it is older than scheduleRefresh;
// nil when this node is no manager or the schedule cannot be read.
func (s *sharedSchedule) get(ctx context.Context) (*repository.Repository, *backupset.Schedule, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.loaded) < scheduleRefresh {
		return s.repo, s.sched, s.loaded
	}
	s.loaded = time.Now()
	cluster, err := s.a.managerOf(ctx)
	if err == nil && cluster != "" && s.repo == nil {
		s.repo, err = s.a.openRepo(ctx)
	}
	s.sched = nil
	if err == nil && cluster != "" {
		s.sched, err = backupset.LoadSchedule(ctx, s.repo, cluster)
	}
	if err != nil {
		s.a.log.Error("read the cluster's schedule", "err", err)
		s.repo, s.sched = nil, nil
	}
	return s.repo, s.sched, s.loaded
}

// follow waits for each tick of one job of the schedule and takes it when this manager wins
// the claim.
func (a *Agent) follow(ctx context.Context, job scheduledJob, shared *sharedSchedule) {
	var repo *repository.Repository
	var sched *backupset.Schedule
	var loaded time.Time
	var tick time.Time
	expr := "" // the expression the tick was computed from
	for ctx.Err() == nil {
		if time.Since(loaded) >= scheduleRefresh {
			repo, sched, loaded = shared.get(ctx)
			if sched != nil && job.when(sched) == "" {
				sched = nil
			}
			// A tick already computed stands, unless the schedule changed: reading it again
			// must not skip the tick that fell due meanwhile.
			if sched == nil || job.when(sched) != expr {
				tick = time.Time{}
			}
		}
		if sched == nil {
			sleep(ctx, scheduleRefresh)
			continue
		}
		if tick.IsZero() {
			next, err := backupset.NextTick(job.when(sched), time.Now())
			if err != nil {
				a.log.Error("the cluster's schedule", "job", job.name, "expression", job.when(sched), "err", err)
				sched = nil
				continue
			}
			tick, expr = next, job.when(sched)
		}
		if wait := time.Until(tick); wait > 0 {
			sleep(ctx, min(wait, time.Until(loaded.Add(scheduleRefresh))))
			continue
		}
		if a.claimTick(ctx, repo, job, *sched, tick) {
			// A handle of its own, which has read what other nodes wrote since the last tick.
			if jobRepo, err := a.openRepo(ctx); err != nil {
				a.log.Error("open the repository for a tick of the cluster's schedule", "job", job.name, "err", err)
			} else {
				job.run(ctx, jobRepo, *sched, tick)
			}
		}
		tick = time.Time{}
	}
}

// claimTick makes this manager the one that takes a tick, if it is the first to claim it. The
// leader lets the others go first when there are others.
func (a *Agent) claimTick(ctx context.Context, repo *repository.Repository, job scheduledJob, sched backupset.Schedule, tick time.Time) bool {
	if leader, managers := a.leadership(ctx, a.nodeIdentity()); leader && managers > 1 {
		sleep(ctx, leaderDefers)
	}
	// The schedule may have been changed or removed since it was read: one read per tick
	// makes sure no work is done for a schedule that is gone.
	if now, err := backupset.LoadSchedule(ctx, repo, sched.Cluster); err != nil || now == nil || job.when(now) != job.when(&sched) {
		return false
	}
	c := a.claim(ctx, sched.Cluster, tick)
	c.Job = job.name
	won, err := backupset.ClaimTick(ctx, repo, c)
	if err != nil {
		a.log.Error("claim a tick of the cluster's schedule", "job", job.name, "tick", tick, "err", err)
		return false
	}
	return won
}

// managerOf returns the cluster ID when this node is a manager, "" otherwise.
func (a *Agent) managerOf(ctx context.Context) (string, error) {
	api := a.engine.API()
	if api == nil {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", err
	}
	if !info.Info.Swarm.ControlAvailable || info.Info.Swarm.Cluster == nil {
		return "", nil
	}
	return info.Info.Swarm.Cluster.ID, nil
}

// takeSet takes the set of a tick this manager won, and applies the schedule's retention.
func (a *Agent) takeSet(ctx context.Context, repo *repository.Repository, sched backupset.Schedule, tick time.Time, swarmDir string) {
	start := time.Now()
	set, err := a.scheduledSet(ctx, repo, sched, tick, swarmDir)
	ev := notify.Event{Job: notify.JobSet, Err: err, Ended: time.Now(), Took: time.Since(start)}
	if set != nil {
		ev.Subject = set.ID
		for _, m := range set.Members {
			ev.Files, ev.Bytes, ev.BytesNew = ev.Files+m.Files, ev.Bytes+m.Bytes, ev.BytesNew+m.BytesNew
		}
		if !set.Complete() {
			ev.Err = fmt.Errorf("partial: %s", describeMissing(set))
		}
	}
	a.jobEnded(ev)
	if err != nil {
		a.log.Error("scheduled set", "tick", tick, "err", err)
		return
	}
	a.log.Info("scheduled set taken", "set", set.ID[:12], "tick", tick, "volumes", len(set.Members),
		"missing", len(set.Missing), "spread", set.Spread.Round(time.Millisecond).String())
	if !sched.Keep.IsZero() {
		start := time.Now()
		forgotten, err := pruner.ForgetSets(ctx, repo, sched.Cluster, sched.Keep)
		a.jobEnded(notify.Event{Job: notify.JobPrune, Subject: "sets", Err: err, Ended: time.Now(), Took: time.Since(start)})
		if err != nil {
			a.log.Error("apply the schedule's retention", "err", err)
		} else if len(forgotten) > 0 {
			a.log.Info("retention applied to sets", "keep", sched.Keep.String(), "forgotten", len(forgotten))
		}
	}
	if err := backupset.ForgetClaims(ctx, repo, time.Now().Add(-claimsKept)); err != nil {
		a.log.Warn("remove old claims", "err", err)
	}
}

// describeMissing names what a partial set lacks.
func describeMissing(s *backupset.Set) string {
	parts := make([]string, 0, len(s.Missing))
	for _, m := range s.Missing {
		parts = append(parts, m.String())
	}
	return strings.Join(parts, "; ")
}

// scheduledSet takes the set of a tick of the cluster's schedule.
func (a *Agent) scheduledSet(ctx context.Context, repo *repository.Repository, sched backupset.Schedule, tick time.Time, swarmDir string) (*backupset.Set, error) {
	api := a.engine.API()
	var err error
	timeout := sched.Timeout
	if timeout <= 0 {
		timeout = defaultSetTimeout
	}
	// The managers may be electing a leader (the one that stopped was it): the node list
	// comes back once they agree.
	var nodes []backupset.Node
	for try := 0; ; try++ {
		if nodes, err = backupset.Nodes(ctx, api, repo); err == nil || try == 10 || ctx.Err() != nil {
			break
		}
		sleep(ctx, 2*time.Second)
	}
	if err != nil {
		return nil, err
	}
	if !sched.Volumes {
		nodes = nil
	}
	return backupset.Take(ctx, repo, backupset.Options{
		Cluster: sched.Cluster, Nodes: nodes, Lead: backupset.DefaultLead, Timeout: timeout, PollEvery: time.Second, Tick: tick,
		ControlPlane: func(ctx context.Context, tags map[string]string) (*controlplane.Taken, error) {
			return controlplane.TakeBackup(ctx, api, repo, controlplane.BackupOptions{SwarmDir: swarmDir, Tags: tags})
		},
	})
}

// leadership says whether this node leads the managers, and how many managers are ready.
func (a *Agent) leadership(ctx context.Context, node string) (leader bool, managers int) {
	api := a.engine.API()
	if api == nil {
		return false, 0
	}
	list, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return false, 0
	}
	for _, n := range list.Items {
		if n.ManagerStatus == nil || n.Status.State != "ready" {
			continue
		}
		managers++
		if n.ID == node && n.ManagerStatus.Leader {
			leader = true
		}
	}
	return leader, managers
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) { _ = backupset.SleepUntil(ctx, time.Now().Add(d)) }
