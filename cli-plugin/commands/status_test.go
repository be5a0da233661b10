package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

func TestStatusNamesEveryProblemAndNothingElse(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	volumeSnap := func(name string, at time.Time) *snapshot.Snapshot {
		return &snapshot.Snapshot{ID: repository.NewRandomID(), Kind: snapshot.KindVolume, Source: name, Time: at}
	}
	list := []*snapshot.Snapshot{
		volumeSnap("fresh", now.Add(-5*time.Minute)),
		volumeSnap("late", now.Add(-3*time.Hour)),
		volumeSnap("broken", now.Add(-2*time.Hour)),
	}
	beats := []heartbeat.Beat{
		{Node: "n1", Host: "node1", Time: now.Add(-30 * time.Second), Interval: time.Minute, Volumes: []heartbeat.Volume{
			{Name: "fresh", Schedule: "@hourly"},
			{Name: "late", Schedule: "@hourly"},
			{Name: "broken", LastError: "repository unreachable", LastErrorTime: now.Add(-time.Hour)},
			{Name: "manual", CreatedAt: now.Add(-48 * time.Hour)},
		}},
		{Node: "n2", Host: "node2", Time: now.Add(-10 * time.Minute), Interval: time.Minute},
		// A node of another cluster, or one removed: not this swarm's problem.
		{Node: "elsewhere", Host: "node1", Time: now.Add(-time.Hour), Interval: time.Minute},
	}
	nodes := []swarmNode{{ID: "n1", Host: "node1"}, {ID: "n2", Host: "node2"}, {ID: "n3", Host: "node3", Down: true}}

	r := assess(now, beats, list, nodes)
	want := []string{
		"volume manual on node1 has never been backed up",
		"volume late on node1 is overdue",
		"the last snapshot of volume broken on node1 failed",
		"the agent on node2 has not reported",
		"node node3 has never reported",
	}
	if len(r.Problems) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(r.Problems, "\n"), len(want))
	}
	all := strings.Join(r.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("problems:\n%s\nwant one about %q", all, w)
		}
	}
	states := map[string]string{}
	for _, v := range r.Volumes {
		states[v.Volume] = v.State
	}
	for name, state := range map[string]string{"fresh": "ok", "late": "overdue", "broken": "failing", "manual": "unprotected"} {
		if states[name] != state {
			t.Errorf("volume %s is %q, want %q", name, states[name], state)
		}
	}

	// A snapshot after the error clears it.
	list = append(list, volumeSnap("broken", now.Add(-time.Minute)))
	for _, p := range assess(now, beats, list, nodes).Problems {
		if strings.Contains(p, "broken") {
			t.Errorf("a snapshot newer than the error still reports: %s", p)
		}
	}
}

func TestStatusTellsWhetherTheClusterScheduleIsKept(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 30, 0, time.UTC)
	sched := &backupset.Schedule{Cluster: "c", Every: "@every 1m", Timeout: 30 * time.Second, Updated: now.Add(-time.Hour)}
	// 11:59 is the last tick whose set must have been recorded by 12:00:30.
	due := time.Date(2026, 11, 30, 11, 59, 0, 0, time.UTC)
	complete := &backupset.Set{ID: "aaaaaaaaaaaaaaaa", Cluster: "c", Tick: due, ControlPlane: "cp"}
	partial := &backupset.Set{ID: "bbbbbbbbbbbbbbbb", Cluster: "c", Tick: due, ControlPlane: "cp",
		Missing: []backupset.Missing{{Host: "node4", Reason: "the node is down"}}}
	older := &backupset.Set{ID: "cccccccccccccccc", Cluster: "c", Tick: due.Add(-time.Minute), ControlPlane: "cp"}
	for _, c := range []struct {
		name   string
		sets   []*backupset.Set
		claims []backupset.Claim
		state  string
		says   string
	}{
		{"kept", []*backupset.Set{older, complete}, nil, "ok", ""},
		{"partial", []*backupset.Set{partial}, nil, "partial", "node node4: the node is down"},
		{"no manager took the tick", []*backupset.Set{older}, nil, "overdue", "overdue"},
		{"taken and lost", []*backupset.Set{older}, []backupset.Claim{{Cluster: "c", Tick: due, Host: "node2"}}, "failed", "node2 took the tick"},
	} {
		var problems []string
		st := assessSchedule(now, sched, c.sets, c.claims, &problems)
		if st.State != c.state || (c.says == "") != (len(problems) == 0) || (c.says != "" && !strings.Contains(strings.Join(problems, "\n"), c.says)) {
			t.Errorf("%s: state %q, problems %q; want %q saying %q", c.name, st.State, problems, c.state, c.says)
		}
	}
}

func TestStatusFailsWhenTheLastDrillFailedOrNoneRanWithinTwoPeriods(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	daily := &backupset.Schedule{Cluster: "c1", Every: "@hourly", Drill: "@daily", Updated: now.Add(-30 * 24 * time.Hour)}
	passed := &drill.Record{ID: "d1", Set: "s1", Time: now.Add(-20 * time.Hour)}
	failed := &drill.Record{ID: "d2", Set: "s2", Time: now.Add(-time.Hour), Problems: []string{"volume db on node2, snapshot 44bde9461171: corrupt"}}
	old := &drill.Record{ID: "d3", Set: "s0", Time: now.Add(-50 * time.Hour)}
	for _, tc := range []struct {
		name  string
		sched *backupset.Schedule
		last  *drill.Record
		state string
		want  string
	}{
		{"neither schedule nor drill", nil, nil, "", ""},
		{"a drill by hand that passed", nil, passed, "ok", ""},
		{"a failed drill by hand", nil, failed, "failed", "volume db on node2"},
		{"scheduled, passed yesterday", daily, passed, "ok", ""},
		{"scheduled, last one 50 hours ago", daily, old, "overdue", "the last drill ran"},
		{"scheduled, never ran", daily, nil, "overdue", "no drill ran"},
		{"scheduled, just set", &backupset.Schedule{Drill: "@daily", Updated: now.Add(-time.Hour)}, nil, "ok", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var problems []string
			st := assessDrills(now, tc.sched, tc.last, &problems)
			if (st == nil) != (tc.state == "") || (st != nil && st.State != tc.state) {
				t.Fatalf("status %+v, want state %q", st, tc.state)
			}
			if tc.want == "" && len(problems) > 0 || tc.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tc.want)) {
				t.Errorf("problems %q, want one naming %q", problems, tc.want)
			}
		})
	}
}

// In an Object Lock bucket status shows how long backups are retained, and fails once that
// horizon has passed: from then on a stolen credential can destroy them.
func TestStatusShowsObjectLockRetentionAndFailsWhenItEnded(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		until   time.Time
		problem string
	}{
		{now.Add(36 * time.Hour), ""},
		{now.Add(-3 * time.Hour), "Object Lock retention ended 3 hours ago: no backup ran to extend it"},
	} {
		r := statusReport{Problems: []string{}}
		r.assessImmutability(now, repository.Immutability{Period: 24 * time.Hour, Until: tc.until})
		if got := strings.Join(r.Problems, "; "); got != tc.problem {
			t.Errorf("until %v: problems %q, want %q", tc.until, got, tc.problem)
		}
		var out strings.Builder
		clock = func() time.Time { return now }
		if err := r.table(&out, true); err != nil {
			t.Fatal(err)
		}
		clock = time.Now
		if want := "Object Lock: every backup's objects retained until " + tc.until.Format(time.RFC3339) + " (bucket default 1d)"; !strings.Contains(out.String(), want) {
			t.Errorf("status prints:\n%s\nwithout %q", out.String(), want)
		}
	}
	r := statusReport{Problems: []string{}}
	r.assessImmutability(now, repository.Immutability{})
	if r.Immutable != nil {
		t.Error("a bucket without Object Lock shows a retention")
	}
}
