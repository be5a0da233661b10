package e2e

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minio starts or stops the lab's MinIO: an outage of the storage.
func (l *lab) minio(action string) {
	l.t.Helper()
	cmd := map[string]string{"stop": "minio-stop", "start": "minio"}[action]
	if out, err := exec.Command(labScript(), cmd).CombinedOutput(); err != nil {
		l.t.Fatalf("%s MinIO: %v\n%s", action, err, out)
	}
}

// written adds up the bytes of the files below a pattern's matches.
func written(pattern string) int64 {
	var n int64
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		_ = filepath.WalkDir(m, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					n += info.Size()
				}
			}
			return nil
		})
	}
	return n
}

// The storage goes away in the middle of a snapshot and of a restore: each fails with one
// line naming the endpoint, leaves nothing half-made that looks whole (no snapshot listed,
// the new volume without data), and once the storage is back the next run succeeds and
// verify finds everything intact.
func TestAStorageOutageMidSnapshotAndMidRestoreLosesNothing(t *testing.T) {
	l := newLab(t)
	node2 := l.node(2)
	repoURL, env := l.bucketRepo(t, "outage")
	endpoint := strings.TrimPrefix(os.Getenv("SWARMBACKUP_LAB_MINIO"), "http://")
	t.Cleanup(func() { l.minio("start") })
	vol := unique("ledger")
	node2.createVolume(vol)
	node2.run(vol, "head -c 300000000 /dev/urandom > /data/big && echo v1 > /data/version")
	first := node2.snapshot(vol)
	node2.run(vol, "head -c 300000000 /dev/urandom > /data/big && echo v2 > /data/version")

	// Mid-snapshot: MinIO stops once the snapshot's first new pack is in the bucket.
	be := bucket(t, repoURL, env)
	packs := func() int {
		n := 0
		_ = be.List(context.Background(), "data/", func(string, int64) error { n++; return nil })
		return n
	}
	before := packs()
	snap := exec.Command("docker", "swarmbackup", "volume", "snapshot", "-q", vol)
	snap.Env = node2.env()
	var stderr strings.Builder
	snap.Stderr = &stderr
	if err := snap.Start(); err != nil {
		t.Fatal(err)
	}
	l.eventually("the snapshot to write its first pack", 60*time.Second, func() bool { return packs() > before })
	l.minio("stop")
	if err := snap.Wait(); err == nil {
		t.Fatal("the snapshot succeeded although the storage went away in the middle")
	}
	if msg := strings.TrimSpace(stderr.String()); !strings.Contains(msg, endpoint) || strings.Contains(msg, "\n") {
		t.Errorf("the failed snapshot says %q, want one line naming the endpoint", msg)
	}
	l.minio("start")
	for _, s := range node2.listSnapshots(env) {
		if s.ID != first {
			t.Errorf("snapshot %s is listed after the outage: a half-made snapshot is visible", s.ID[:12])
		}
	}
	second := node2.snapshot(vol)

	// Mid-restore: MinIO stops once the restore has written into its staging directory.
	staging := filepath.Join(node2.dataDir(), "volumes", vol+"-copy", ".restore-*")
	restore := exec.Command("docker", "swarmbackup", "volume", "restore", vol+"@"+second[:12], "--to", vol+"-copy")
	restore.Env = node2.env()
	stderr.Reset()
	restore.Stderr = &stderr
	t.Cleanup(func() { node2.try("volume", "rm", "-f", vol+"-copy") })
	if err := restore.Start(); err != nil {
		t.Fatal(err)
	}
	// The restore of 300 MB takes about a second here: watch closely, or it may have ended
	// before the storage goes away.
	ended := make(chan error, 1)
	go func() { ended <- restore.Wait() }()
	switch met, done, err := untilOrEnded(ended, 60*time.Second, func() bool { return written(staging) > 0 }); {
	case done:
		t.Fatalf("the restore ended (%v) before it wrote into its staging directory: %s", err, stderr.String())
	case !met:
		t.Fatal("timed out after 1m0s waiting for the restore to write its first bytes")
	}
	l.minio("stop")
	if err := <-ended; err == nil {
		t.Fatal("the restore succeeded although the storage went away in the middle")
	}
	if msg := strings.TrimSpace(stderr.String()); !strings.Contains(msg, endpoint) || strings.Contains(msg, "\n") {
		t.Errorf("the failed restore says %q, want one line naming the endpoint", msg)
	}
	if n := written(filepath.Join(node2.dataDir(), "volumes", vol+"-copy", "data")); n != 0 {
		t.Errorf("the failed restore left %d bytes in the new volume, as if restored", n)
	}
	if n := written(staging); n != 0 {
		t.Errorf("the failed restore left %d bytes in its staging directory", n)
	}
	l.minio("start")
	node2.docker("swarmbackup", "volume", "restore", vol+"@"+second[:12], "--to", vol+"-copy")
	if got := node2.run(vol+"-copy", "cat /data/version"); got != "v2" {
		t.Errorf("the restore after the outage holds version %q", got)
	}
	if r := node2.tryEnv(env, "swarmbackup", "verify", "--all", "--read-data"); r.err != nil {
		t.Errorf("verify after the outages: %s", r)
	}
}
