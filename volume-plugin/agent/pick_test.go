package agent

import (
	"strings"
	"testing"
	"time"

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
