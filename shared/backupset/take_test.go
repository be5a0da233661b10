package backupset

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

func openRepo(t *testing.T) *repository.Repository {
	t.Helper()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.OpenOrInit(context.Background(), be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// agent answers the first request it reads, as a node's plugin does, with one volume.
func agent(ctx context.Context, repo *repository.Repository, node, volume string) {
	for ctx.Err() == nil {
		req, err := Poll(ctx, repo, "")
		if err != nil || req == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if SleepUntil(ctx, req.Start) != nil {
			return
		}
		_ = SaveReport(ctx, repo, Report{Set: req.Set, Node: node, Host: node, Time: time.Now(),
			Members: []Member{{Node: node, Host: node, Volume: volume, Snapshot: "s-" + volume, CaptureStart: time.Now(), Bytes: 10}}})
		return
	}
}

func TestASetNamesWhatItLacksAndHowLongItWaited(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	repo := openRepo(t)
	go agent(ctx, repo, "n1", "db")

	start := time.Now()
	set, err := Take(ctx, repo, Options{
		Cluster: "c",
		Nodes: []Node{
			{ID: "n1", Host: "n1", Volumes: []string{"db"}},
			{ID: "n2", Host: "n2", Volumes: []string{"files", "logs"}}, // silent
			{ID: "n3", Host: "n3", Down: true, Volumes: []string{"cache"}},
		},
		Lead: 200 * time.Millisecond, Timeout: time.Second, PollEvery: 20 * time.Millisecond,
		ControlPlane: func(_ context.Context, tags map[string]string) (*snapshot.Snapshot, error) {
			if tags[TagSet] == "" {
				t.Error("the control plane's backup is not tagged with the set")
			}
			return &snapshot.Snapshot{ID: repository.NewRandomID(), Time: time.Now()}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the set took %s with a 1s timeout", took)
	}
	if set.Complete() || len(set.Members) != 1 || set.Members[0].Volume != "db" || set.ControlPlane == "" {
		t.Fatalf("set: %+v", set)
	}
	var missing []string
	for _, m := range set.Missing {
		missing = append(missing, m.String())
	}
	want := []string{"node n3: the node is down", "volume cache on n3: the node is down",
		"node n2: no answer within 1s", "volume files on n2: no answer within 1s", "volume logs on n2: no answer within 1s"}
	if got := strings.Join(missing, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("missing:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	sets, problems, err := List(ctx, repo)
	if err != nil || len(problems) > 0 || len(sets) != 1 || sets[0].ID != set.ID {
		t.Fatalf("recorded sets: %v %v %v", sets, problems, err)
	}
	if found, err := Find(sets, set.ID[:8]); err != nil || found == nil {
		t.Errorf("find by prefix: %v %v", found, err)
	}
}
