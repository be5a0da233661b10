package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
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
			if c.Cluster == s.Cluster && c.Tick.Equal(due) {
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
