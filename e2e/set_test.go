package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// setRecord is what `inspect SET --format json` prints.
type setRecord struct {
	ID           string
	ControlPlane string `json:"control_plane"`
	Nodes        int
	Spread       time.Duration
	Members      []struct {
		Node, Host, Volume, Snapshot string
		CaptureStart                 time.Time `json:"capture_start"`
	}
	Missing []struct{ Host, Volume, Reason string }
}

func (n *node) inspectSet(id string) setRecord {
	n.lab.t.Helper()
	var s setRecord
	out := n.docker("swarmbackup", "inspect", id, "--format", "json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		n.lab.t.Fatalf("inspect %s --format json: %v\n%s", id, err, out)
	}
	return s
}

// lsRow is a row of `ls --format json`, with what a set adds.
type lsRow struct {
	ID, Kind string
	Volumes  int
	Complete *bool
}

func (n *node) lsRows(args ...string) []lsRow {
	n.lab.t.Helper()
	var rows []lsRow
	jsonLines(n.lab.t, n.docker(append([]string{"swarmbackup", "ls", "--format", "json"}, args...)...), &rows)
	return rows
}

func TestABackupSetTakesTheControlPlaneAndEveryNodesVolumesAtOneInstant(t *testing.T) {
	l := newLab(t)
	manager, worker := l.node(2), l.worker()
	onManager, onWorker := unique("set-db"), unique("set-files")
	manager.createVolume(onManager, "quiesce=pause")
	manager.run(onManager, "echo the rows of the manager > /data/rows")
	worker.createVolume(onWorker)
	worker.run(onWorker, "echo the files of the worker > /data/files")

	start := time.Now()
	id := manager.docker("swarmbackup", "backup", "--volumes", "-q")
	took := time.Since(start)
	if !fullID.MatchString(id) {
		t.Fatalf("backup --volumes -q printed %q, want a set ID", id)
	}
	s := manager.inspectSet(id[:12])
	if s.ControlPlane == "" || len(s.Missing) > 0 {
		t.Fatalf("the set is not complete: control plane %q, missing %+v", s.ControlPlane, s.Missing)
	}
	members := map[string]string{} // volume -> host
	for _, m := range s.Members {
		members[m.Volume] = m.Host
	}
	if members[onManager] != "node2" || members[onWorker] != worker.String() {
		t.Fatalf("members %v: want %s on node2 and %s on %s", members, onManager, onWorker, worker)
	}
	if s.Nodes != l.engines() {
		t.Errorf("the set asked %d nodes, the lab has %d", s.Nodes, l.engines())
	}
	if s.Spread > time.Second {
		t.Errorf("capture starts spread over %s, want within 1s", s.Spread)
	}
	t.Logf("set of %d volumes on %d nodes: %s from the command, capture starts within %s", len(s.Members), s.Nodes, took.Round(time.Millisecond), s.Spread)

	// One line in ls, its snapshots not beside it; they show when volumes are asked for.
	var row *lsRow
	for _, r := range manager.lsRows() {
		switch {
		case r.ID == id:
			row = &r
		case r.ID == s.ControlPlane:
			t.Error("ls lists the set's control-plane backup beside the set")
		}
	}
	if row == nil || row.Kind != "set" || row.Complete == nil || !*row.Complete || row.Volumes != len(s.Members) {
		t.Fatalf("ls shows the set as %+v", row)
	}
	if out := manager.docker("swarmbackup", "verify", id[:12], "--read-data"); !strings.Contains(out, "intact") {
		t.Errorf("verify of the set: %s", out)
	}
	// The worker's member restores.
	var snap string
	for _, m := range s.Members {
		if m.Volume == onWorker {
			snap = m.Snapshot
		}
	}
	copyVol := unique("set-copy")
	worker.docker("swarmbackup", "volume", "restore", onWorker+"@"+snap[:12], "--to", copyVol)
	t.Cleanup(func() { worker.try("volume", "rm", "-f", copyVol) })
	if got := worker.run(copyVol, "cat /data/files"); got != "the files of the worker" {
		t.Errorf("the worker's volume restored from the set reads %q", got)
	}
}

func TestAStoppedNodeMakesTheSetPartialAndNamedWithinTheTimeout(t *testing.T) {
	l := newLab(t)
	manager, worker := l.node(1), l.worker()
	vol := unique("set-gone")
	worker.createVolume(vol)
	if out, err := exec.Command(labScript(), "stop", fmt.Sprint(worker.n)).CombinedOutput(); err != nil {
		t.Fatalf("stop the worker: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(labScript(), "start", fmt.Sprint(worker.n)).CombinedOutput(); err != nil {
			t.Errorf("start the worker again: %v\n%s", err, out)
		}
		l.eventually("the worker to be ready again", 90*time.Second, func() bool {
			return manager.try("node", "inspect", worker.String(), "--format", "{{.Status.State}}").stdout == "ready"
		})
	})

	start := time.Now()
	r := manager.try("swarmbackup", "backup", "--volumes", "--timeout", "15s")
	took := time.Since(start)
	if r.err == nil {
		t.Fatalf("a set without the stopped worker succeeded:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "partial") || !strings.Contains(r.stderr, "node "+worker.String()) {
		t.Fatalf("the failure does not name the missing worker:\n%s", r.stderr)
	}
	if took > time.Minute {
		t.Errorf("the partial set took %s with a 15s timeout", took)
	}
	id := strings.Fields(r.stdout)[0]
	for _, row := range manager.lsRows("--kind", "set") {
		if row.ID == id && (row.Complete == nil || *row.Complete) {
			t.Errorf("ls calls the partial set complete: %+v", row)
		}
	}
	t.Logf("partial set recorded %s after the command", took.Round(time.Millisecond))
}

// The cluster takes its own sets: one manager per tick, also while the leader changes; a
// tick no manager takes makes status fail.
func TestTheClusterTakesOneSetPerTickWhileTheLeaderChanges(t *testing.T) {
	l := newLab(t)
	manager := l.node(1)
	const every = 20 * time.Second
	manager.docker("swarmbackup", "schedule", "set", "--every", "@every 20s", "--volumes", "--timeout", "10s", "--keep", "last=50")
	t.Cleanup(func() {
		manager.try("swarmbackup", "schedule", "rm")
		// A set under way when the schedule went finishes: wait for it, so that it holds
		// no volume of the tests that follow.
		last, stable := "", time.Now()
		l.eventually("the last scheduled set to end", 90*time.Second, func() bool {
			now := manager.try("swarmbackup", "ls", "--kind", "set", "-q").stdout
			if now != last {
				last, stable = now, time.Now()
			}
			return time.Since(stable) > 15*time.Second
		})
	})
	if out := manager.docker("swarmbackup", "schedule", "show"); !strings.Contains(out, "@every 20s") {
		t.Fatalf("schedule show: %s", out)
	}
	since := time.Now()
	scheduled := func() map[time.Time][]string { // tick -> sets
		out := map[time.Time][]string{}
		for _, r := range manager.lsRows("--kind", "set") {
			s := manager.inspectSetTick(r.ID)
			if !s.Tick.IsZero() && s.Tick.After(since) {
				out[s.Tick] = append(out[s.Tick], r.ID)
			}
		}
		return out
	}
	l.eventually("the first scheduled set", 90*time.Second, func() bool { return len(scheduled()) >= 1 })

	// The leader goes away for a while; the others carry on.
	leader := l.leader()
	if out, err := exec.Command(labScript(), "restart", fmt.Sprint(leader.n)).CombinedOutput(); err != nil {
		t.Fatalf("restart the leader: %v\n%s", err, out)
	}
	l.eventually("three more scheduled sets", 4*every+60*time.Second, func() bool { return len(scheduled()) >= 4 })
	sets := scheduled()
	var ticks []time.Time
	for tick, ids := range sets {
		if len(ids) != 1 {
			t.Errorf("tick %s has %d sets, want exactly 1: %v", tick.Format("15:04:05"), len(ids), ids)
		}
		ticks = append(ticks, tick)
	}
	t.Logf("scheduled sets at %v (leader %s restarted)", ticks, leader)
	if r := manager.try("swarmbackup", "status", "--format", "{{if .Schedule}}{{.Schedule.Every}} {{.Schedule.State}}{{end}}"); !strings.HasPrefix(r.stdout, "@every 20s") {
		t.Errorf("status does not show the schedule: %s", r)
	}
}

// inspectSetTick reads a set's tick.
func (n *node) inspectSetTick(id string) struct{ Tick time.Time } {
	n.lab.t.Helper()
	var s struct{ Tick time.Time }
	out := n.docker("swarmbackup", "inspect", id, "--format", "json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		n.lab.t.Fatalf("inspect %s: %v", id, err)
	}
	return s
}

// A due tick that no manager takes (their plugins are all disabled) makes status fail,
// naming the overdue set.
func TestStatusFailsWhenNoManagerTakesATick(t *testing.T) {
	l := newLab(t)
	manager := l.node(1)
	for i := 1; i <= l.nodes; i++ {
		n := l.node(i)
		n.docker("plugin", "disable", "--force", "swarmbackup")
		t.Cleanup(func() { n.try("plugin", "enable", "swarmbackup") })
	}
	manager.docker("swarmbackup", "schedule", "set", "--every", "@every 10s", "--timeout", "1s")
	t.Cleanup(func() { manager.try("swarmbackup", "schedule", "rm") })
	var r result
	l.eventually("status to call the scheduled set overdue", 2*time.Minute, func() bool {
		r = manager.try("swarmbackup", "status")
		return r.err != nil && strings.Contains(r.stderr, "is overdue: no manager took the tick")
	})
	if !strings.Contains(r.stdout, "overdue") {
		t.Errorf("the status table does not show the schedule overdue:\n%s", r.stdout)
	}
}
