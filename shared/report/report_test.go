package report

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

var start = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// hourly is a volume snapshotted every hour of the given hours.
func hourly(volume string, hours ...int) []*snapshot.Snapshot {
	var out []*snapshot.Snapshot
	for _, h := range hours {
		out = append(out, &snapshot.Snapshot{ID: repository.NewRandomID(), Kind: snapshot.KindVolume, Source: volume, Hostname: "node1",
			Time: start.Add(time.Duration(h) * time.Hour), Took: 2 * time.Second, Stats: snapshot.Stats{Bytes: 1000, BytesNew: 100}})
	}
	return out
}

func TestTheEstateShowsGapsFailuresAndTheHorizon(t *testing.T) {
	now := start.Add(10 * time.Hour)
	list := append(hourly("steady", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), hourly("stalled", 0, 1, 2, 6, 7)...)
	list = append(list, &snapshot.Snapshot{ID: repository.NewRandomID(), Kind: snapshot.KindSwarm, Source: "k7cluster0000000000000000", Time: start})
	beats := []heartbeat.Beat{{Node: "n1", Host: "node1", Volumes: []heartbeat.Volume{
		{Name: "stalled", LastError: "repository unreachable", LastErrorTime: start.Add(9 * time.Hour)},
	}}}
	sets := []*backupset.Set{
		{ID: "s1", Time: start, ControlPlane: "x", Nodes: 1},
		{ID: "s2", Time: start.Add(5 * time.Hour), Nodes: 1, Missing: []backupset.Missing{{Host: "node2", Reason: "no answer"}}},
	}
	drills := []*drill.Record{{ID: "d1", Set: "s1", Time: start.Add(time.Hour), Problems: []string{"volume db: checksum mismatch"}}}

	e := Assemble(now, list, sets, drills, beats)
	rows := map[string]Row{}
	var names []string
	for _, r := range e.Rows {
		rows[r.Name] = r
		names = append(names, r.Name)
	}
	if want := "control plane k7cluster000,backup sets,drills,volume stalled,volume steady"; strings.Join(names, ",") != want {
		t.Errorf("rows %q, want %q", strings.Join(names, ","), want)
	}
	if r := rows["volume steady"]; len(r.Gaps) != 0 || r.Failures != 0 || r.Count != 10 || r.Dedup() != 10 || !r.Horizon.Equal(start) {
		t.Errorf("steady: %d gaps, %d failures, %d backups, dedup %.1f, horizon %s", len(r.Gaps), r.Failures, r.Count, r.Dedup(), r.Horizon)
	}
	stalled := rows["volume stalled"]
	if len(stalled.Gaps) != 2 || !stalled.Gaps[0].From.Equal(start.Add(2*time.Hour)) || !stalled.Gaps[1].To.Equal(now) {
		t.Errorf("stalled: gaps %v, want 02:00 to 06:00 and 07:00 to now", stalled.Gaps)
	}
	if stalled.Failures != 1 {
		t.Errorf("stalled: %d failures, want the one its agent reported", stalled.Failures)
	}
	if r := rows["backup sets"]; r.Failures != 1 || r.Count != 1 {
		t.Errorf("sets: %d failures, %d complete, want the partial set failed", r.Failures, r.Count)
	}
	if r := rows["drills"]; r.Failures != 1 {
		t.Errorf("drills: %d failures", r.Failures)
	}
	if e.Failures != 3 || e.Gaps != 2 {
		t.Errorf("totals: %d failures, %d gaps", e.Failures, e.Gaps)
	}

	var page strings.Builder
	if err := WriteHTML(&page, e); err != nil {
		t.Fatal(err)
	}
	html := page.String()
	for _, want := range []string{`class="failure"`, `class="gap"`, `class="horizon"`, "3 failures", "2 gaps", "no backup from 2026-11-20T02:00:00Z to 2026-11-20T06:00:00Z"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	for _, fetch := range []string{"<script", "src=", "url(", "https://", "<link"} {
		if strings.Contains(html, fetch) {
			t.Errorf("the page is not self-contained: %s", fetch)
		}
	}
	if strings.Count(html, "http://") != strings.Count(html, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("the page names a URL other than the SVG namespace")
	}
}
