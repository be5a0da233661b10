package e2e

import (
	"context"
	goimage "image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/report"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// estateRepo writes a repository of hourly volume snapshots over the last ten hours, a set
// and a drill; troubled adds a stalled volume whose agent reports a failed snapshot.
func estateRepo(t *testing.T, troubled bool) (dir, password string) {
	t.Helper()
	ctx := context.Background()
	dir, password = filepath.Join(t.TempDir(), "repo"), unique("pw")
	be, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, password)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	save := func(volume string, hoursAgo ...int) {
		for _, h := range hoursAgo {
			sn := &snapshot.Snapshot{Kind: snapshot.KindVolume, Source: volume, Hostname: "node1", Node: "n1",
				Time: now.Add(-time.Duration(h) * time.Hour), Took: time.Second, Stats: snapshot.Stats{Files: 3, Bytes: 5000, BytesNew: 700}}
			if err := snapshot.Save(ctx, repo, sn); err != nil {
				t.Fatal(err)
			}
		}
	}
	save("shop_db", 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	beat := heartbeat.Beat{Node: "n1", Host: "node1", Time: now, Interval: time.Minute}
	if troubled {
		save("shop_uploads", 10, 9, 8, 4, 3)
		beat.Volumes = append(beat.Volumes, heartbeat.Volume{Name: "shop_uploads", LastError: "repository unreachable", LastErrorTime: now.Add(-30 * time.Minute)})
	}
	if err := heartbeat.Save(ctx, repo, beat); err != nil {
		t.Fatal(err)
	}
	set := &backupset.Set{ID: "set" + unique("x"), Time: now.Add(-5 * time.Hour), Ended: now.Add(-5*time.Hour + time.Second), ControlPlane: "cp", Nodes: 1}
	if err := backupset.Save(ctx, repo, set); err != nil {
		t.Fatal(err)
	}
	if err := drill.Save(ctx, repo, &drill.Record{ID: "drill" + unique("x"), Set: set.ID, Time: now.Add(-4 * time.Hour), Took: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
	return dir, password
}

// screenshot renders a page in headless Chromium, as an operator's browser would show it.
func screenshot(t *testing.T, page string) goimage.Image {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: scripts/lab deps installs it")
	}
	shot := filepath.Join(t.TempDir(), "page.png")
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--window-size=1100,800", "--screenshot="+shot, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pixels counts the pixels of each colour ("#rrggbb") in an image.
func pixels(img goimage.Image, colours ...string) map[string]int {
	want := map[[3]uint32]string{}
	for _, c := range colours {
		rgb, _ := strconv.ParseUint(strings.TrimPrefix(c, "#"), 16, 32)
		want[[3]uint32{uint32(rgb >> 16), uint32(rgb >> 8 & 0xff), uint32(rgb & 0xff)}] = c
	}
	counts := map[string]int{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if c, ok := want[[3]uint32{r >> 8, g >> 8, b >> 8}]; ok {
				counts[c]++
			}
		}
	}
	return counts
}

func TestTheReportDrawsTheEstateInABrowser(t *testing.T) {
	l := newLab(t)
	n := l.node(1)
	colours := []string{report.ColorOK, report.ColorFailed, report.ColorGap, report.ColorHorizon}
	drawn := map[bool]map[string]int{}
	for _, troubled := range []bool{false, true} {
		dir, password := estateRepo(t, troubled)
		pwFile := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pwFile, []byte(password), 0o600); err != nil {
			t.Fatal(err)
		}
		page := filepath.Join(t.TempDir(), "estate.html")
		out := n.docker("swarmbackup", "report", "--html", page, "--repo", dir, "--password-file", pwFile)
		if want := map[bool]string{false: "0 failures, 0 gaps", true: "1 failures, 2 gaps"}[troubled]; !strings.Contains(out, want) {
			t.Errorf("report printed %q, want %s", out, want)
		}
		drawn[troubled] = pixels(screenshot(t, page), colours...)
		t.Logf("troubled=%v: %s; pixels %v", troubled, out, drawn[troubled])
	}
	healthy, troubled := drawn[false], drawn[true]
	// Both pages carry a legend with a swatch of each colour (a 12 px dot, under 150 pixels).
	if healthy[report.ColorOK] < 10*60 || healthy[report.ColorHorizon] < 1000 {
		t.Errorf("the healthy estate's ten backups and its restorable span are not drawn: %v", healthy)
	}
	if healthy[report.ColorFailed] > 150 || healthy[report.ColorGap] > 150 {
		t.Errorf("the healthy estate is drawn with failures or gaps: %v", healthy)
	}
	if troubled[report.ColorFailed] < healthy[report.ColorFailed]+100 {
		t.Errorf("the failed snapshot is not drawn: %d failure pixels against %d", troubled[report.ColorFailed], healthy[report.ColorFailed])
	}
	if troubled[report.ColorGap] < healthy[report.ColorGap]+1000 {
		t.Errorf("the stalled volume's gaps are not drawn: %d gap pixels against %d", troubled[report.ColorGap], healthy[report.ColorGap])
	}
}
