package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
)

// scheduleStatus is the cluster's schedule and how it has been kept.
type scheduleStatus struct {
	Every    string    `json:"every"`
	Volumes  bool      `json:"volumes"`
	LastSet  string    `json:"last_set,omitempty"`
	LastTick time.Time `json:"last_tick,omitzero"`
	Complete bool      `json:"complete"`
	Next     time.Time `json:"next,omitzero"`
	State    string    `json:"state"`
}

// setGrace is how long after its tick a scheduled set may still be under way: the leader's
// deferral, the lead to the common instant and a margin, beside the set's own timeout.
const setGrace = 45 * time.Second

// assessSchedule says whether the cluster's schedule is kept: its last due tick has a set,
// complete; a tick claimed without a set is a failure, one nobody claimed an overdue set.
func assessSchedule(now time.Time, s *backupset.Schedule, sets []*backupset.Set, claims []backupset.Claim, problems *[]string) *scheduleStatus {
	if s == nil {
		return nil
	}
	st := &scheduleStatus{Every: s.Every, Volumes: s.Volumes, State: "ok"}
	st.Next, _ = s.Next(now)
	var last *backupset.Set
	for _, set := range sets {
		if set.Cluster == s.Cluster && !set.Tick.IsZero() && (last == nil || set.Tick.After(last.Tick)) {
			last = set
		}
	}
	if last != nil {
		st.LastSet, st.LastTick, st.Complete = last.ID, last.Tick, last.Complete()
	}
	due := lastDueTick(s, now.Add(-(s.Timeout + setGrace)))
	switch {
	case !due.IsZero() && (last == nil || last.Tick.Before(due)):
		st.State = "overdue"
		claimedBy := ""
		for _, c := range claims {
			if c.Cluster == s.Cluster && c.Job == backupset.JobSet && c.Tick.Equal(due) {
				claimedBy = c.Host
			}
		}
		if claimedBy != "" {
			st.State = "failed"
			*problems = append(*problems, fmt.Sprintf("the scheduled set of %s failed: %s took the tick and recorded no set", due.Local().Format("15:04:05"), claimedBy))
		} else {
			*problems = append(*problems, fmt.Sprintf("the scheduled set of %s is overdue: no manager took the tick (are the plugins on the managers enabled, with this repository?)", due.Local().Format("15:04:05")))
		}
	case last != nil && !last.Complete():
		st.State = "partial"
		missing := make([]string, len(last.Missing))
		for i, m := range last.Missing {
			missing[i] = m.String()
		}
		*problems = append(*problems, fmt.Sprintf("the last scheduled set %s is partial: %s", last.ID[:12], strings.Join(missing, "; ")))
	}
	return st
}

// lastDueTick returns the schedule's last tick at or before t that the schedule existed for;
// zero when there is none.
func lastDueTick(s *backupset.Schedule, t time.Time) time.Time {
	var due time.Time
	tick, err := s.Next(s.Updated)
	for i := 0; err == nil && !tick.After(t) && i < 100000; i++ {
		due = tick
		tick, err = s.Next(tick)
	}
	return due
}

// drillStatus is the cluster's last drill and how the drill schedule is kept.
type drillStatus struct {
	Schedule string        `json:"schedule,omitempty"`
	Last     string        `json:"last,omitempty"`
	Set      string        `json:"set,omitempty"`
	Time     time.Time     `json:"time,omitzero"`
	Passed   bool          `json:"passed"`
	Estimate time.Duration `json:"estimate,omitempty"`
	State    string        `json:"state"`
}

// assessDrills says whether the last drill passed and, with drills on the schedule, whether
// one ran within the last two drill periods. Nil when there is neither schedule nor drill.
func assessDrills(now time.Time, s *backupset.Schedule, last *drill.Record, problems *[]string) *drillStatus {
	scheduled := s != nil && s.Drill != ""
	if !scheduled && last == nil {
		return nil
	}
	st := &drillStatus{State: "ok"}
	if scheduled {
		st.Schedule = s.Drill
	}
	if last != nil {
		st.Last, st.Set, st.Time, st.Passed, st.Estimate = last.ID, last.Set, last.Time, last.OK(), last.Estimate
		if !last.OK() {
			st.State = "failed"
			*problems = append(*problems, fmt.Sprintf("the last drill (%s, of set %s) failed: %s",
				last.Time.Local().Format("2006-01-02 15:04"), shorten(last.Set, 12), strings.Join(last.Problems, "; ")))
			return st
		}
	}
	if !scheduled {
		return st
	}
	// Two periods of the drill schedule, measured where it ticks next.
	next, err := backupset.NextTick(s.Drill, now)
	after, err2 := backupset.NextTick(s.Drill, next)
	if err != nil || err2 != nil {
		return st
	}
	since := s.Updated
	if last != nil && last.Time.After(since) {
		since = last.Time
	}
	if now.Sub(since) > 2*after.Sub(next) {
		st.State = "overdue"
		what := "no drill ran"
		if last != nil {
			what = "the last drill ran " + age(now, last.Time) + " ago"
		}
		*problems = append(*problems, fmt.Sprintf("drills are scheduled %s and %s: are the plugins on the managers enabled, with this repository?", s.Drill, what))
	}
	return st
}
