package backupset

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
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
		reqs, err := Poll(ctx, repo, func(string) bool { return false })
		if err != nil || len(reqs) == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		req := reqs[0]
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
		ControlPlane: func(_ context.Context, tags map[string]string) (*controlplane.Taken, error) {
			if tags[TagSet] == "" {
				t.Error("the control plane's backup is not tagged with the set")
			}
			return &controlplane.Taken{Snapshot: &snapshot.Snapshot{ID: repository.NewRandomID()}, Started: time.Now()}, nil
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

// Requests rung close together are all read: the bell names the recent ones, not the last.
func TestEveryRecentRequestIsReadOnce(t *testing.T) {
	ctx := context.Background()
	repo := openRepo(t)
	for _, id := range []string{"r1", "r2", "r3"} {
		if err := Ring(ctx, repo, Request{ID: id, Kind: KindSnapshot, Volume: "v-" + id, Deadline: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{"r1": true}
	reqs, err := Poll(ctx, repo, func(id string) bool { return seen[id] })
	if err != nil || len(reqs) != 2 || reqs[0].ID != "r2" || reqs[1].ID != "r3" || reqs[1].Volume != "v-r3" {
		t.Fatalf("poll: %+v, %v; want r2 then r3", reqs, err)
	}
	if err := SaveResult(ctx, repo, Result{ID: "r2", Host: "node4"}); err != nil {
		t.Fatal(err)
	}
	if r, err := WaitResult(ctx, repo, reqs[0], time.Millisecond); err != nil || r.Host != "node4" {
		t.Fatalf("result: %+v, %v", r, err)
	}
	late := Request{ID: "r9", Start: time.Now(), Deadline: time.Now()}
	if _, err := WaitResult(ctx, repo, late, time.Millisecond); err == nil || !strings.Contains(err.Error(), "no agent answered") {
		t.Fatalf("a request nobody answers: %v", err)
	}
}

func TestOldRequestsAreForgottenAndTheBellStays(t *testing.T) {
	ctx := context.Background()
	repo := openRepo(t)
	old, recent := time.Now().Add(-48*time.Hour), time.Now()
	for id, at := range map[string]time.Time{"old": old, "recent": recent} {
		if err := Ring(ctx, repo, Request{ID: id, Start: at, Deadline: at.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if err := SaveReport(ctx, repo, Report{Set: id, Node: "n", Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ForgetOld(ctx, repo, time.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	reqs, err := Poll(ctx, repo, func(string) bool { return false })
	if err != nil || len(reqs) != 1 || reqs[0].ID != "recent" {
		t.Fatalf("after forgetting: %+v, %v; want the bell naming the recent request only", reqs, err)
	}
	if r, _ := LoadReport(ctx, repo, "old", "n"); r != nil {
		t.Error("the old report is still there")
	}
	if r, _ := LoadReport(ctx, repo, "recent", "n"); r == nil {
		t.Error("the recent report was forgotten")
	}
}
