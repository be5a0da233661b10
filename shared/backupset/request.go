package backupset

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Request asks every node's agent for its part of a set.
type Request struct {
	Set     string    `json:"set"`
	Cluster string    `json:"cluster"`
	Start   time.Time `json:"start"` // the common instant at which every capture starts
	// Deadline is when the set is recorded without the members that have not reported:
	// an agent that sees the request later leaves it alone.
	Deadline time.Time `json:"deadline"`
}

// DefaultLead is how far ahead of a request its common instant is set: agents read the
// requests every SWARMBACKUP_POLL (5s by default), and all of them must have read it by then.
const DefaultLead = 7 * time.Second

// bell is the one small object every agent reads to learn of a new request: an idle agent
// costs one read of it per poll, whatever the repository holds.
type bell struct {
	Set  string    `json:"set"`
	Time time.Time `json:"time"`
}

const bellKey = "bell"

// Ring stores a request and rings the bell for it.
func Ring(ctx context.Context, repo *repository.Repository, req Request) error {
	if err := repo.SaveNamedFile(ctx, RequestFile, req.Set, req); err != nil {
		return fmt.Errorf("ask the agents for set %s: %w", short(req.Set), err)
	}
	if err := repo.SaveNamedFile(ctx, RequestFile, bellKey, bell{Set: req.Set, Time: time.Now().UTC()}); err != nil {
		return fmt.Errorf("ask the agents for set %s: %w", short(req.Set), err)
	}
	return nil
}

// Poll returns the newest request when it is not the one last seen; nil when there is none.
func Poll(ctx context.Context, repo *repository.Repository, lastSeen string) (*Request, error) {
	var b bell
	err := repo.LoadNamedFile(ctx, RequestFile, bellKey, &b)
	if notFound(err) || (err == nil && b.Set == lastSeen) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the set requests: %w", err)
	}
	var req Request
	if err := repo.LoadNamedFile(ctx, RequestFile, b.Set, &req); err != nil {
		return nil, fmt.Errorf("read set request %s: %w", short(b.Set), err)
	}
	return &req, nil
}

// Report is one node's answer to a request.
type Report struct {
	Set     string    `json:"set"`
	Node    string    `json:"node"`
	Host    string    `json:"host"`
	Members []Member  `json:"members"`
	Failed  []Missing `json:"failed,omitempty"`
	Time    time.Time `json:"time"`
}

func reportKey(set, node string) string { return set + "\x00" + node }

// SaveReport stores a node's answer.
func SaveReport(ctx context.Context, repo *repository.Repository, r Report) error {
	if err := repo.SaveNamedFile(ctx, ReportFile, reportKey(r.Set, r.Node), r); err != nil {
		return fmt.Errorf("report set %s: %w", short(r.Set), err)
	}
	return nil
}

// LoadReport reads a node's answer; nil when it has not answered yet.
func LoadReport(ctx context.Context, repo *repository.Repository, set, node string) (*Report, error) {
	var r Report
	err := repo.LoadNamedFile(ctx, ReportFile, reportKey(set, node), &r)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}
