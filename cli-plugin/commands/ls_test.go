package commands

import (
	"context"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

var day = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// estate fills a repository with a cluster's backups: a swarm backup, volume snapshots on two
// nodes, a set holding some of them, and a drill of the set. It returns the IDs' stable names.
func estate(t *testing.T, repo *repository.Repository) names {
	t.Helper()
	ctx := context.Background()
	n := names{}
	save := func(name string, sn *snapshot.Snapshot) *snapshot.Snapshot {
		if err := snapshot.Save(ctx, repo, sn); err != nil {
			t.Fatal(err)
		}
		n.add(sn.ID.String(), name)
		return sn
	}
	cp := save("swarm-1", &snapshot.Snapshot{Time: day, Kind: snapshot.KindSwarm, Source: "k7cluster0000000000000000", Hostname: "node1", Node: "n1node",
		Stats: snapshot.Stats{Files: 14, Bytes: 210_000}, Tags: map[string]string{"by": "cron", "env": "prod"}})
	db := save("db-1", &snapshot.Snapshot{Time: day.Add(time.Second), Kind: snapshot.KindVolume, Source: "shop_db", Hostname: "node1", Node: "n1node",
		Stats:   snapshot.Stats{Files: 1200, Bytes: 734_003_200},
		Quiesce: &snapshot.Quiesce{Mode: "pause", Containers: 2, Window: 84 * time.Millisecond}})
	web := save("web-1", &snapshot.Snapshot{Time: day.Add(2 * time.Second), Kind: snapshot.KindVolume, Source: "shop_uploads", Hostname: "node2-with-a-long-name", Node: "n2node",
		Stats: snapshot.Stats{Files: 31, Bytes: 5_242_880}})
	save("db-2", &snapshot.Snapshot{Time: day.Add(time.Hour), Kind: snapshot.KindVolume, Source: "shop_db", Hostname: "node1", Node: "n1node",
		Stats: snapshot.Stats{Files: 1210, Bytes: 740_003_200}})
	set := &backupset.Set{ID: "set0000000000000000000000000001", Time: day, Ended: day.Add(3 * time.Second), Cluster: "k7cluster0000000000000000",
		ControlPlane: cp.ID.String(), Nodes: 2, Members: []backupset.Member{
			{Node: "n1node", Host: "node1", Volume: "shop_db", Snapshot: db.ID.String(), CaptureStart: day, Files: 1200, Bytes: 734_003_200},
			{Node: "n2node", Host: "node2-with-a-long-name", Volume: "shop_uploads", Snapshot: web.ID.String(), CaptureStart: day, Files: 31, Bytes: 5_242_880},
		}}
	if err := backupset.Save(ctx, repo, set); err != nil {
		t.Fatal(err)
	}
	rec := &drill.Record{ID: "drill000000000000000000000001", Cluster: set.Cluster, Set: set.ID, SetTime: set.Time, Time: day.Add(2 * time.Hour),
		Took: 41 * time.Second, Host: "node1", Members: []drill.Member{{Volume: "shop_db", Bytes: 734_003_200}}}
	if err := drill.Save(ctx, repo, rec); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLsPrintsAsDockerListingsDo(t *testing.T) {
	repo := testRepo(t)
	ids := estate(t, repo)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"ls", []string{"ls"}},
		{"ls-no-trunc", []string{"ls", "--no-trunc"}},
		{"ls-quiet", []string{"ls", "-q"}},
		{"ls-kind-set", []string{"ls", "--kind", "set"}},
		{"ls-template", []string{"ls", "--format", "{{.ID}} {{.Kind}} {{.Size}}"}},
		{"ls-table-template", []string{"ls", "--kind", "volume", "--format", "table {{.Volume}}\t{{.Node}}\t{{.Quiesce}}\t{{.Tags}}"}},
		{"ls-json", []string{"ls", "--kind", "swarm", "--format", "json"}},
		{"volume-ls", []string{"volume", "ls"}},
		{"volume-ls-quiet-no-trunc", []string{"volume", "ls", "-q", "--no-trunc"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, errOut, err := run(t, &fakeEngine{}, tc.args...)
			if err != nil || errOut != "" {
				t.Fatalf("%v: %v %s", tc.args, err, errOut)
			}
			assertGolden(t, ids.apply(out), tc.golden)
		})
	}
}

func TestLsJSONIsOneObjectPerEntryWithTheWholeRecord(t *testing.T) {
	repo := testRepo(t)
	estate(t, repo)
	out, _, err := run(t, &fakeEngine{}, "ls", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	objs := jsonObjects(t, out)
	if len(objs) != 3 { // the set's own snapshots are listed with the set
		t.Fatalf("%d objects, want the set, the snapshot taken after it and the drill:\n%s", len(objs), out)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o["kind"].(string)]++
		if id, _ := o["id"].(string); len(id) < 29 {
			t.Errorf("json gives the whole ID, got %q", id)
		}
	}
	if kinds["set"] != 1 || kinds["drill"] != 1 || kinds["volume"] != 1 {
		t.Errorf("kinds %v", kinds)
	}
}

func TestListingsRefuseABrokenTemplateWithOneLine(t *testing.T) {
	testRepo(t)
	_, _, err := run(t, &fakeEngine{}, "ls", "--format", "{{.Nope")
	if err == nil || err.Error()[:8] != "--format" {
		t.Fatalf("a broken template: %v", err)
	}
}

func TestShellCompletionOffersBackupIDsAndVolumeNames(t *testing.T) {
	repo := testRepo(t)
	ids := estate(t, repo)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"complete-restore", []string{"__complete", "restore", ""}},
		{"complete-drill", []string{"__complete", "drill", ""}},
		{"complete-volume-restore", []string{"__complete", "volume", "restore", "shop_"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, _, err := run(t, &fakeEngine{}, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			assertGolden(t, ids.apply(out), tc.golden)
		})
	}
}
