package agent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Without a chain to go by, a name shared by several nodes' volumes does not pick one of
// them: another node's data must never fill this node's volume.
func TestLatestOfANameSharedByNodesIsNotGuessed(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rec := func(node string, minute int) *snapshot.Snapshot {
		return &snapshot.Snapshot{ID: repository.NewRandomID(), Kind: snapshot.KindVolume, Source: "db",
			Node: node, Scope: snapshot.ScopeNode, Time: at.Add(time.Duration(minute) * time.Minute)}
	}
	onA, onB := rec("A", 2), rec("B", 1)
	list := []*snapshot.Snapshot{onB, onA}

	_, err := pickVolumeSnapshot(list, "db", "", nil)
	if err == nil || !strings.Contains(err.Error(), "on node A") || !strings.Contains(err.Error(), "on node B") {
		t.Fatalf("an ambiguous latest: %v", err)
	}
	got, err := pickVolumeSnapshot(list, "db", "", &snapshot.Chain{Kind: snapshot.KindVolume, Source: "db", Node: "B"})
	if err != nil || got != onB {
		t.Fatalf("B's latest: %v, %v", got, err)
	}
	if _, err := pickVolumeSnapshot(list, "db", "", &snapshot.Chain{Kind: snapshot.KindVolume, Source: "db"}); err == nil {
		t.Fatal("a volume that follows its task was filled from node-scoped snapshots")
	}
}

// A plugin runs for months: the jobs it finished long ago are forgotten, and so is the last
// job of a volume that was removed.
func TestFinishedJobsAreForgotten(t *testing.T) {
	a := New(context.Background(), nil, nil, nil, nil, slog.New(slog.DiscardHandler))
	var ids []string
	for _, volume := range []string{"kept", "removed"} {
		job, err := a.start("snapshot", volume, func(*agentapi.Job, func(done, total uint64)) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Job(context.Background(), job.ID, agentapi.MaxJobWait); !ok {
			t.Fatal("the job is unknown right after it ended")
		}
		ids = append(ids, job.ID)
	}
	a.mu.Lock()
	a.forgetOldJobs(time.Now().Add(finishedJobTTL + time.Second))
	a.forgetRemovedVolumes([]heartbeat.Volume{{Name: "kept"}})
	jobs, ended, last := len(a.jobs), len(a.ended), len(a.last)
	a.mu.Unlock()
	if jobs != 0 || ended != 0 || last != 1 {
		t.Errorf("after the TTL: %d jobs, %d end signals, %d last jobs; want 0, 0 and the kept volume's", jobs, ended, last)
	}
}
