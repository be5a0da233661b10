package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// TestManySnapshots measures, in a repository in MinIO holding 10,000 snapshot records
// (SWARMBACKUP_MANY=N for another count) of 200 volumes over a year, how long `ls`,
// `status` and a new volume snapshot take: with the CLI's cache empty (the first command on
// a machine) and filled, and the plugin's; and the very first listing, which finds no bundle
// of the records yet and writes one. Not part of `make test`: `make bench-many`.
func TestManySnapshots(t *testing.T) {
	count, _ := strconv.Atoi(os.Getenv("SWARMBACKUP_MANY"))
	if count <= 0 {
		t.Skip("set SWARMBACKUP_MANY (make bench-many)")
	}
	l := newLab(t)
	n := l.node(2)
	repoURL, env := l.bucketRepo(t, "many")
	vol := unique("many")
	n.createVolume(vol)
	n.makeFiles(vol, 100)
	first := n.snapshot(vol)

	ctx := context.Background()
	repo := openRepo(t, repoURL, env)
	real, _, err := snapshot.List(ctx, repo)
	if err != nil || len(real) != 1 || real[0].ID.String() != first {
		t.Fatalf("the real snapshot: %v %v", real, err)
	}
	start := time.Now()
	year := time.Now().Add(-365 * 24 * time.Hour)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range count {
		g.Go(func() error {
			sn := *real[0]
			sn.Source = fmt.Sprintf("synthetic-%03d", i%200)
			sn.Time = year.Add(time.Duration(i) * (365 * 24 * time.Hour / time.Duration(count)))
			sn.Parent = nil
			return snapshot.Save(gctx, repo, &sn)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d synthetic snapshot records written in %s", count, time.Since(start).Round(time.Millisecond))

	cache := t.TempDir()
	withCache := func(dir string) []string { return append(slices.Clone(env), "SWARMBACKUP_CACHE_DIR="+dir) }
	timed := func(cacheDir string, args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		r := n.tryEnv(withCache(cacheDir), args...)
		took := time.Since(start)
		if r.err != nil && args[1] != "status" { // status fails: the synthetic volumes have no agent
			t.Fatalf("%s", r)
		}
		return took
	}
	median := func(f func() time.Duration) time.Duration {
		var d []time.Duration
		for range 3 {
			d = append(d, f())
		}
		slices.Sort(d)
		return d[1]
	}
	// The first listing after the records were written reads each of them and leaves a
	// bundle of them; later first listings on other machines read the bundle.
	lsFirst := timed(filepath.Join(t.TempDir(), "cold"), "swarmbackup", "ls", "-q")
	lsCold := median(func() time.Duration { return timed(filepath.Join(t.TempDir(), "cold"), "swarmbackup", "ls", "-q") })
	timed(cache, "swarmbackup", "ls", "-q")
	lsWarm := median(func() time.Duration { return timed(cache, "swarmbackup", "ls", "-q") })
	statusCold := median(func() time.Duration { return timed(filepath.Join(t.TempDir(), "cold"), "swarmbackup", "status") })
	statusWarm := median(func() time.Duration { return timed(cache, "swarmbackup", "status") })
	snap := func() time.Duration {
		n.writeRandom(vol, unique("new"), 4096)
		return timed(cache, "swarmbackup", "volume", "snapshot", "-q", vol)
	}
	snapFirst := snap() // the plugin's cache fills
	snapWarm := median(snap)
	if got := n.dockerEnv(env, "swarmbackup", "ls", "-q"); len(got) < count*13 {
		t.Fatalf("ls lists %d bytes of IDs for %d records", len(got), count)
	}
	t.Logf("many: records=%d ls_first=%.2fs ls_cold=%.2fs ls_warm=%.2fs status_cold=%.2fs status_warm=%.2fs snapshot_first=%.2fs snapshot_warm=%.2fs",
		count+1, lsFirst.Seconds(), lsCold.Seconds(), lsWarm.Seconds(), statusCold.Seconds(), statusWarm.Seconds(), snapFirst.Seconds(), snapWarm.Seconds())
}
