package backupset

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// Kinds of request an agent answers.
const (
	// KindSetPart asks every node for its volumes' part of a set, at the common instant.
	KindSetPart = ""
	// KindSet asks one manager (the first to claim it) to take a whole set, control plane
	// and every node's volumes: a set asked for from a machine that is no manager's host.
	KindSet = "set"
	// KindBackup asks one manager for a backup of the control plane.
	KindBackup = "backup"
	// KindSnapshot asks Node for a snapshot of Volume.
	KindSnapshot = "snapshot"
	// KindRestore asks Node to restore Volume (at Snapshot) into Target.
	KindRestore = "restore"
)

// Request asks the agents for work.
type Request struct {
	ID   string `json:"id"`
	Kind string `json:"kind,omitempty"`
	// Set is the ID of the set a request is for (KindSetPart, KindSet).
	Set     string    `json:"set,omitempty"`
	Cluster string    `json:"cluster"`
	Start   time.Time `json:"start"` // the common instant at which every capture starts
	// Deadline is when the asker stops waiting: an agent that sees the request later leaves
	// it alone.
	Deadline time.Time `json:"deadline"`
	// Node is the node a snapshot or restore is for; "" for the node that holds Volume.
	Node     string            `json:"node,omitempty"`
	Volume   string            `json:"volume,omitempty"`
	Snapshot string            `json:"snapshot,omitempty"`
	Target   string            `json:"target,omitempty"`
	Volumes  bool              `json:"volumes,omitempty"` // KindSet: with every node's volumes
	Timeout  time.Duration     `json:"timeout,omitempty"` // KindSet: how long the nodes may take
	Tags     map[string]string `json:"tags,omitempty"`
}

// DefaultLead is how far ahead of a request its common instant is set: agents read the
// requests every SWARMBACKUP_POLL (5s by default), and all of them must have read it by then.
const DefaultLead = 7 * time.Second

// bell is the one small object every agent reads to learn of new requests: an idle agent
// costs one read of it per poll, whatever the repository holds. It names the recent ones.
type bell struct {
	Requests []rung `json:"requests"`
}

type rung struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

const (
	bellKey = "bell"
	// The bell names requests of the last bellWindow, at most bellSize of them.
	bellWindow = 15 * time.Minute
	bellSize   = 32
)

// Ring stores a request and rings the bell for it.
func Ring(ctx context.Context, repo *repository.Repository, req Request) error {
	if err := repo.SaveNamedFile(ctx, RequestFile, req.ID, req); err != nil {
		return fmt.Errorf("ask the agents (request %s): %w", short(req.ID), err)
	}
	var b bell
	if err := repo.LoadNamedFile(ctx, RequestFile, bellKey, &b); err != nil && !notFound(err) {
		return fmt.Errorf("ask the agents (request %s): %w", short(req.ID), err)
	}
	now := time.Now().UTC()
	kept := []rung{{ID: req.ID, Time: now}}
	for _, r := range b.Requests {
		if now.Sub(r.Time) < bellWindow && len(kept) < bellSize {
			kept = append(kept, r)
		}
	}
	if err := repo.SaveNamedFile(ctx, RequestFile, bellKey, bell{Requests: kept}); err != nil {
		return fmt.Errorf("ask the agents (request %s): %w", short(req.ID), err)
	}
	return nil
}

// Poll returns the requests the bell names that seen does not know, oldest first; the
// caller remembers them.
func Poll(ctx context.Context, repo *repository.Repository, seen func(id string) bool) ([]Request, error) {
	var b bell
	err := repo.LoadNamedFile(ctx, RequestFile, bellKey, &b)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the requests: %w", err)
	}
	var out []Request
	read := map[string]bool{}
	for i := len(b.Requests) - 1; i >= 0; i-- {
		id := b.Requests[i].ID
		if seen(id) || read[id] {
			continue
		}
		read[id] = true
		var req Request
		err := repo.LoadNamedFile(ctx, RequestFile, id, &req)
		if notFound(err) {
			continue // forgotten already
		}
		if err != nil {
			return out, fmt.Errorf("read request %s: %w", short(id), err)
		}
		out = append(out, req)
	}
	return out, nil
}

// ClaimRequest makes this agent the one that carries out a request meant for one manager:
// of the agents that try, exactly one gets true.
func ClaimRequest(ctx context.Context, repo *repository.Repository, c Claim, id string) (bool, error) {
	err := repo.CreateNamedFile(ctx, ClaimFile, "request\x00"+id, c)
	if errors.Is(err, storage.ErrExists) {
		return false, nil
	}
	return err == nil, err
}

// Result is an agent's answer to a request for one job: the job as the agent ran it.
type Result struct {
	ID   string       `json:"id"`
	Node string       `json:"node"`
	Host string       `json:"host"`
	Job  agentapi.Job `json:"job"`
	Time time.Time    `json:"time"` // when it was written
}

// SaveResult stores an agent's answer.
func SaveResult(ctx context.Context, repo *repository.Repository, r Result) error {
	r.Time = time.Now().UTC()
	if err := repo.SaveNamedFile(ctx, ReportFile, "result\x00"+r.ID, r); err != nil {
		return fmt.Errorf("answer request %s: %w", short(r.ID), err)
	}
	return nil
}

// WaitResult waits for the answer to a request until its deadline.
func WaitResult(ctx context.Context, repo *repository.Repository, req Request, every time.Duration) (*Result, error) {
	var r Result
	err := pollRecord(ctx, repo, ReportFile, "result\x00"+req.ID, &r, req.Deadline, every, func() bool { return true })
	if errors.Is(err, errTooLate) {
		return nil, fmt.Errorf("%w within %s: is the swarmbackup plugin enabled where the request is for, with this repository?", ErrNoAnswer, req.Deadline.Sub(req.Start).Round(time.Second))
	}
	return &r, err
}

// ErrNoAnswer says no agent answered a request before its deadline.
var ErrNoAnswer = errors.New("no agent answered")

// WaitFinal waits, until the request's deadline, for an answer that is not a running job.
func WaitFinal(ctx context.Context, repo *repository.Repository, req Request, every time.Duration) (*Result, error) {
	var r Result
	err := pollRecord(ctx, repo, ReportFile, "result\x00"+req.ID, &r, req.Deadline, every, func() bool { return r.Job.State != agentapi.JobRunning })
	if errors.Is(err, errTooLate) {
		return nil, fmt.Errorf("the job on %s did not end within %s", r.Host, req.Deadline.Sub(req.Start).Round(time.Second))
	}
	return &r, err
}

// WaitSet waits for the record of a set a manager takes, until deadline.
func WaitSet(ctx context.Context, repo *repository.Repository, id string, deadline time.Time, every time.Duration) (*Set, error) {
	var s Set
	err := pollRecord(ctx, repo, SetFile, id, &s, deadline, every, func() bool { return true })
	if errors.Is(err, errTooLate) {
		return nil, fmt.Errorf("no manager recorded set %s in time: are the swarmbackup plugins on the managers enabled, with this repository?", short(id))
	}
	return &s, err
}

var errTooLate = errors.New("deadline passed")

// pollRecord reads a named record every interval until it exists and done says so, the
// deadline passes (errTooLate) or ctx ends.
func pollRecord(ctx context.Context, repo *repository.Repository, kind repository.FileKind, key string, v any, deadline time.Time, every time.Duration, done func() bool) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		err := repo.LoadNamedFile(ctx, kind, key, v)
		switch {
		case err == nil && done():
			return nil
		case err != nil && !notFound(err):
			return err
		case time.Now().After(deadline):
			return errTooLate
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
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

// ForgetOld removes the requests, reports, answers and claims of work that ended before t:
// they matter while the work goes on and for status a while after, not forever. The bell
// stays.
func ForgetOld(ctx context.Context, repo *repository.Repository, before time.Time) error {
	type dated struct {
		Start    time.Time `json:"start"`
		Time     time.Time `json:"time"`
		Requests []rung    `json:"requests"` // the bell's
	}
	for _, kind := range []repository.FileKind{RequestFile, ReportFile} {
		var old []repository.ID
		_, err := repository.LoadFiles(ctx, repo, kind, func(id repository.ID, d *dated) {
			when := d.Start
			if d.Time.After(when) {
				when = d.Time
			}
			if d.Requests == nil && !when.IsZero() && when.Before(before) {
				old = append(old, id)
			}
		})
		if err != nil {
			return err
		}
		for _, id := range old {
			if err := repo.DeleteFile(ctx, kind, id); err != nil {
				return err
			}
		}
	}
	return ForgetClaims(ctx, repo, before)
}
