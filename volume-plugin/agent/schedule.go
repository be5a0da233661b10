package agent

import (
	"context"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/notify"
	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

// Scheduled lists the volumes whose options carry a schedule.
type Scheduled interface {
	Scheduled() map[string]volumeopts.Options
}

// RunSchedules takes each volume's snapshots on its schedule, and applies its keep rule
// after each, until ctx ends. A volume's first snapshot is due one period after the agent
// first sees it.
func (a *Agent) RunSchedules(ctx context.Context, volumes Scheduled) {
	next := map[string]time.Time{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			seen := map[string]bool{}
			for name, opts := range volumes.Scheduled() {
				seen[name] = true
				due, ok := next[name]
				if !ok {
					next[name] = opts.Cron.Next(now)
					continue
				}
				if now.Before(due) {
					continue
				}
				next[name] = opts.Cron.Next(now)
				a.scheduledSnapshot(name, opts)
			}
			for name := range next {
				if !seen[name] {
					delete(next, name) // removed, or its schedule dropped
				}
			}
		}
	}
}

func (a *Agent) scheduledSnapshot(volume string, opts volumeopts.Options) {
	job, err := a.Snapshot(volume)
	if err != nil {
		a.log.Error("scheduled snapshot not started", "volume", volume, "err", err)
		return
	}
	if opts.Keep.IsZero() {
		return
	}
	go func() {
		// Retention follows the snapshot it counts.
		if j, ok := a.waitJob(a.ctx, job.ID); ok && j.State == agentapi.JobDone {
			a.applyKeep(volume, opts)
		}
	}()
}

func (a *Agent) applyKeep(volume string, opts volumeopts.Options) {
	start := time.Now()
	forgotten, err := a.forget(volume, opts)
	a.jobEnded(notify.Event{Job: notify.JobPrune, Subject: volume, Err: err, Ended: time.Now(), Took: time.Since(start)})
	if err != nil {
		a.log.Error("apply keep", "volume", volume, "err", err)
		return
	}
	if forgotten > 0 {
		a.log.Info("retention applied", "volume", volume, "keep", opts.Keep.String(), "forgotten", forgotten)
	}
}

// forget applies the volume's keep option to its chain.
func (a *Agent) forget(volume string, opts volumeopts.Options) (int, error) {
	repo, err := a.openRepo(a.ctx)
	if err != nil {
		return 0, err
	}
	chain, err := a.chainOf(volume, opts.Scope)
	if err != nil {
		return 0, err
	}
	forgotten, err := pruner.Forget(a.ctx, repo, *chain, opts.Keep)
	return len(forgotten), err
}
