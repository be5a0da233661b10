package agent

import (
	"context"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/buildinfo"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Inventory lists a node's volumes for its heartbeat.
type Inventory interface {
	Inventory() []heartbeat.Volume
}

// RunHeartbeat reports the agent's state to the repository now and every interval until ctx
// ends. An unreachable repository is logged once, and again when it changes. The repository
// stays open between beats, which only write one record: opening it derives the key and
// reads the index. It is opened again after a failed beat.
func (a *Agent) RunHeartbeat(ctx context.Context, volumes Inventory, interval time.Duration) {
	lastErr := ""
	t := time.NewTicker(interval)
	defer t.Stop()
	var repo *repository.Repository
	for {
		var err error
		if repo == nil {
			repo, err = a.openRepo(ctx)
		}
		if err == nil {
			if err = a.beat(ctx, repo, volumes, interval); err != nil {
				repo = nil
			}
		}
		a.metrics.Reported(time.Now(), err)
		switch {
		case err != nil && err.Error() != lastErr:
			a.log.Error("heartbeat not written", "err", err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			a.log.Info("heartbeat written again")
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) beat(ctx context.Context, repo *repository.Repository, volumes Inventory, interval time.Duration) error {
	host, node := a.engine.Node(ctx)
	if node == "" {
		node = host
	}
	b := heartbeat.Beat{Node: node, Host: host, Version: buildinfo.String(), Time: time.Now().UTC(), Interval: interval, Volumes: volumes.Inventory()}
	a.mu.Lock()
	a.forgetRemovedVolumes(b.Volumes)
	for i := range b.Volumes {
		v := &b.Volumes[i]
		if id, ok := a.active[v.Name]; ok {
			v.Job = a.jobs[id].Kind
		}
		if j, ok := a.last[v.Name]; ok && j.State == agentapi.JobFailed {
			v.LastError, v.LastErrorTime = j.Error, j.Finished
		}
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return heartbeat.Save(ctx, repo, b)
}
