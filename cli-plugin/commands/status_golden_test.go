package commands

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
)

func node(id, host string) swarm.Node {
	var n swarm.Node
	n.ID, n.Description.Hostname, n.Status.State = id, host, swarm.NodeStateReady
	return n
}

func TestStatusPrintsTheEstateAndFailsOnItsProblems(t *testing.T) {
	repo := testRepo(t)
	ids := estate(t, repo)
	ctx := context.Background()
	at := day.Add(3 * time.Hour)
	clock = func() time.Time { return at }
	t.Cleanup(func() { clock = time.Now })
	for _, b := range []heartbeat.Beat{
		{Node: "n1node", Host: "node1", Version: "1.4.0", Time: at.Add(-20 * time.Second), Interval: time.Minute, Volumes: []heartbeat.Volume{
			{Name: "shop_db", Schedule: "@hourly", Quiesce: "pause", Mounts: 1, CreatedAt: day.Add(-time.Hour)},
		}},
		{Node: "n2node", Host: "node2-with-a-long-name", Version: "1.4.0", Time: at.Add(-30 * time.Second), Interval: time.Minute, Volumes: []heartbeat.Volume{
			{Name: "shop_uploads", Mounts: 1, CreatedAt: day.Add(-time.Hour), LastError: "repository unreachable", LastErrorTime: at.Add(-5 * time.Minute)},
		}},
	} {
		if err := heartbeat.Save(ctx, repo, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := backupset.SaveSchedule(ctx, repo, backupset.Schedule{Cluster: "k7cluster0000000000000000", Every: "@daily", Volumes: true, Drill: "@weekly"}); err != nil {
		t.Fatal(err)
	}
	engine := managerOf("k7cluster0000000000000000", node("n1node", "node1"), node("n2node", "node2-with-a-long-name"), node("n3node", "node3"))

	out, _, err := run(t, engine, "status")
	assertGolden(t, ids.apply(out), "status")
	if err == nil || !strings.Contains(err.Error(), "the last snapshot of volume shop_uploads on node2-with-a-long-name failed") ||
		!strings.Contains(err.Error(), "node node3 has never reported") {
		t.Errorf("status exits with %v, want the failed snapshot and the silent node named", err)
	}

	out, _, _ = run(t, engine, "status", "--no-trunc")
	assertGolden(t, ids.apply(out), "status-no-trunc")

	out, _, _ = run(t, engine, "status", "--format", "{{range .Volumes}}{{.Volume}}={{.State}} {{end}}")
	if got := strings.TrimSpace(out); got != "shop_db=ok shop_uploads=failing" {
		t.Errorf("status --format TEMPLATE printed %q", got)
	}
	out, _, _ = run(t, engine, "status", "--format", "json")
	if objs := jsonObjects(t, out); len(objs) != 1 || objs[0]["volumes"] == nil {
		t.Errorf("status --format json printed %s, want one object", out)
	}
}
