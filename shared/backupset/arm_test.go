package backupset

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAnArmedSetNamesEachVolumesSnapshotUntilItExpires(t *testing.T) {
	ctx := context.Background()
	repo := openRepo(t)
	set := &Set{ID: "5e7aa1", Cluster: "c1", Members: []Member{
		{Node: "n1", Host: "node1", Volume: "db", Snapshot: "snap-db"},
		{Node: "n2", Host: "node2", Volume: "cache", Snapshot: "snap-cache-2"},
		{Node: "n3", Host: "node3", Volume: "cache", Snapshot: "snap-cache-3"},
	}}
	now := time.Now()
	if a, err := LoadArmed(ctx, repo, "c1", now); err != nil || a != nil {
		t.Fatalf("before the restore: %v, %v", a, err)
	}
	if _, err := Arm(ctx, repo, set, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if a, _ := LoadArmed(ctx, repo, "another-cluster", now); a != nil {
		t.Fatal("another cluster finds the armed set")
	}
	a, err := LoadArmed(ctx, repo, "c1", now.Add(time.Minute))
	if err != nil || a == nil {
		t.Fatalf("armed set: %v, %v", a, err)
	}
	for _, tc := range []struct{ volume, host, snap string }{
		{"db", "any-new-host", "snap-db"},
		{"cache", "node3", "snap-cache-3"},
		{"logs", "node1", ""},
	} {
		m, ok, err := a.For(tc.volume, tc.host)
		if err != nil || ok != (tc.snap != "") || m.Snapshot != tc.snap {
			t.Errorf("%s on %s: %q, %v, %v; want %q", tc.volume, tc.host, m.Snapshot, ok, err, tc.snap)
		}
	}
	if _, _, err := a.For("cache", "node9"); err == nil || !strings.Contains(err.Error(), "node2, node3") {
		t.Errorf("a node-scoped volume on an unknown host: %v", err)
	}
	if a, _ := LoadArmed(ctx, repo, "c1", now.Add(2*time.Hour)); a != nil {
		t.Error("the armed set outlives its expiry")
	}
	if err := Disarm(ctx, repo, "c1"); err != nil {
		t.Fatal(err)
	}
	if a, _ := LoadArmed(ctx, repo, "c1", now); a != nil {
		t.Error("the disarmed set is still armed")
	}
}

func TestANodeThatCannotTellItsClusterTakesTheOnlyArmedSet(t *testing.T) {
	ctx := context.Background()
	repo := openRepo(t)
	now := time.Now()
	if a, err := ArmedAny(ctx, repo, now); a != nil || err != nil {
		t.Fatalf("nothing armed: %v, %v", a, err)
	}
	if _, err := Arm(ctx, repo, &Set{ID: "s1", Cluster: "c1"}, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if a, err := ArmedAny(ctx, repo, now); err != nil || a == nil || a.Set != "s1" {
		t.Fatalf("one armed: %v, %v", a, err)
	}
	if _, err := Arm(ctx, repo, &Set{ID: "s2", Cluster: "c2"}, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if a, err := ArmedAny(ctx, repo, now); err == nil {
		t.Fatalf("two clusters armed, and one was taken: %v", a.Set)
	}
}
