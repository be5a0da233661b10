// Package heartbeat is how the agents on every node report to the operator without a port
// of their own: each writes its state into the repository from time to time, and
// `docker swarmbackup status` reads them all.
package heartbeat

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Beat is one agent's report.
type Beat struct {
	Node     string        `json:"node"` // swarm node ID; the host name when not in a swarm
	Host     string        `json:"host"`
	Version  string        `json:"version"`
	Time     time.Time     `json:"time"`
	Interval time.Duration `json:"interval"` // until the next beat
	Volumes  []Volume      `json:"volumes"`
}

// Volume is what an agent knows of one of its volumes.
type Volume struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Schedule  string    `json:"schedule,omitempty"`
	Quiesce   string    `json:"quiesce,omitempty"`
	Scope     string    `json:"scope,omitempty"` // snapshot.ScopeNode or ScopeCluster
	Mounts    int       `json:"mounts"`
	// Job is the work running on the volume, if any: "snapshot" or "restore".
	Job string `json:"job,omitempty"`
	// LastError is the error of the last job, when it failed, and when.
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitempty"`
}

// StaleAfter is how many missed beats make an agent stale.
const StaleAfter = 3

// Stale reports whether the agent has missed StaleAfter beats by now.
func (b Beat) Stale(now time.Time) bool {
	return now.Sub(b.Time) > StaleAfter*b.Interval
}

// Save writes an agent's beat, replacing its previous one.
func Save(ctx context.Context, repo *repository.Repository, b Beat) error {
	if err := repo.SaveNamedFile(ctx, repository.HeartbeatFile, b.Node, b); err != nil {
		return fmt.Errorf("report to the repository: %w", err)
	}
	return nil
}

// List returns every agent's last beat, by host name; records that cannot be read are
// returned as errors beside the others.
func List(ctx context.Context, repo *repository.Repository) ([]Beat, []error, error) {
	var beats []Beat
	problems, err := repository.LoadFiles(ctx, repo, repository.HeartbeatFile, func(_ repository.ID, b *Beat) {
		beats = append(beats, *b)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list the agents' reports: %w", err)
	}
	sort.Slice(beats, func(i, j int) bool { return beats[i].Host < beats[j].Host })
	return beats, problems, nil
}
