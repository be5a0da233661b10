package backupset

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

// The cluster's schedule is stored once, in the repository: every manager's agent reads it
// there (the repository is what every agent reaches already), it needs no engine API to
// change, and it outlives the cluster, so that a cluster restored after a total loss finds
// its schedule again.
const (
	ScheduleFile repository.FileKind = "schedules"
	ClaimFile    repository.FileKind = "ticks"
)

// Schedule is a cluster's own schedule of backup sets.
type Schedule struct {
	Cluster string           `json:"cluster"`
	Every   string           `json:"every"`             // cron expression or @every D
	Volumes bool             `json:"volumes"`           // sets with every volume, or the control plane alone
	Keep    retention.Policy `json:"keep"`              // applied to the cluster's sets after each one; empty: none
	Timeout time.Duration    `json:"timeout,omitempty"` // how long the nodes may take
	// Drill is when a manager drills the newest set (cron expression or @every D); empty: never.
	Drill   string    `json:"drill,omitempty"`
	Updated time.Time `json:"updated"`
}

// Next returns the first tick of the schedule after t. Every manager computes the same
// ticks: cron expressions follow the clock, and @every D falls on multiples of D.
func (s *Schedule) Next(t time.Time) (time.Time, error) { return NextTick(s.Every, t) }

// NextDrill returns the first drill tick after t; zero when the schedule has no drills.
func (s *Schedule) NextDrill(t time.Time) (time.Time, error) {
	if s.Drill == "" {
		return time.Time{}, nil
	}
	return NextTick(s.Drill, t)
}

// NextTick returns the first tick of a cron expression (or @every D) after t.
func NextTick(expr string, t time.Time) (time.Time, error) {
	sched, err := volumeopts.ParseSchedule(expr)
	if err != nil {
		return time.Time{}, err
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		return t.Truncate(every.Delay).Add(every.Delay), nil
	}
	return sched.Next(t), nil
}

// SaveSchedule stores a cluster's schedule, replacing the one it had.
func SaveSchedule(ctx context.Context, repo *repository.Repository, s Schedule) error {
	if err := repo.SaveNamedFile(ctx, ScheduleFile, s.Cluster, s); err != nil {
		return fmt.Errorf("store the schedule: %w", err)
	}
	return nil
}

// LoadSchedule reads a cluster's schedule; nil when it has none.
func LoadSchedule(ctx context.Context, repo *repository.Repository, cluster string) (*Schedule, error) {
	var s Schedule
	err := repo.LoadNamedFile(ctx, ScheduleFile, cluster, &s)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the schedule: %w", err)
	}
	return &s, nil
}

// DeleteSchedule removes a cluster's schedule.
func DeleteSchedule(ctx context.Context, repo *repository.Repository, cluster string) error {
	return repo.DeleteNamedFile(ctx, ScheduleFile, cluster)
}

// Jobs of the schedule a tick is claimed for.
const (
	JobSet   = ""
	JobDrill = "drill"
)

// Claim is the record of the manager that took a tick of the schedule.
type Claim struct {
	Cluster string    `json:"cluster"`
	Job     string    `json:"job,omitempty"`
	Tick    time.Time `json:"tick"`
	Node    string    `json:"node"`
	Host    string    `json:"host"`
	Time    time.Time `json:"time"`
}

// ClaimTick makes this manager the one that takes a tick: of the managers that try, exactly
// one gets true.
func ClaimTick(ctx context.Context, repo *repository.Repository, c Claim) (bool, error) {
	key := fmt.Sprintf("%s\x00%d", c.Cluster, c.Tick.Unix())
	if c.Job != JobSet {
		key += "\x00" + c.Job
	}
	err := repo.CreateNamedFile(ctx, ClaimFile, key, c)
	if errors.Is(err, storage.ErrExists) {
		return false, nil
	}
	return err == nil, err
}

// ForgetClaims removes the claims of ticks before t: they are kept a while for status, not
// forever.
func ForgetClaims(ctx context.Context, repo *repository.Repository, before time.Time) error {
	var old []repository.ID
	_, err := repository.LoadFiles(ctx, repo, ClaimFile, func(id repository.ID, c *Claim) {
		if c.Tick.Before(before) {
			old = append(old, id)
		}
	})
	if err != nil {
		return err
	}
	for _, id := range old {
		if err := repo.DeleteFile(ctx, ClaimFile, id); err != nil {
			return err
		}
	}
	return nil
}

// Claims lists the claimed ticks of every cluster, oldest first.
func Claims(ctx context.Context, repo *repository.Repository) ([]Claim, error) {
	var out []Claim
	if _, err := repository.LoadFiles(ctx, repo, ClaimFile, func(_ repository.ID, c *Claim) { out = append(out, *c) }); err != nil {
		return nil, err
	}
	sortClaims(out)
	return out, nil
}
