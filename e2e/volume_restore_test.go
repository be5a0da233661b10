package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestVolumeRestoresIntoANewVolumeInPlaceAndOnAnotherNode(t *testing.T) {
	l := newLab(t)
	node2, node3 := l.node(2), l.node(3)
	vol, copyVol := unique("app"), unique("app-copy")
	node2.createVolume(vol)
	node2.run(vol, "mkdir -p /data/sub && echo first > /data/sub/state && ln -s sub/state /data/link")
	first := node2.snapshot(vol)
	node2.run(vol, "echo second > /data/sub/state")

	// Into a new volume on the same node.
	node2.docker("swarmbackup", "volume", "restore", vol+"@"+first[:12], "--to", copyVol)
	t.Cleanup(func() { node2.try("volume", "rm", "-f", copyVol) })
	if got := node2.run(copyVol, "cat /data/link"); got != "first" {
		t.Errorf("the new volume holds %q", got)
	}
	if got := node2.run(vol, "cat /data/sub/state"); got != "second" {
		t.Errorf("restoring into a new volume changed the original: %q", got)
	}

	// In place: refused while a container uses the volume, done once it stopped.
	holder := node2.docker("run", "-d", "-v", vol+":/data", image, "sleep", "3600")
	stderr := node2.dockerFails("swarmbackup", "volume", "restore", vol+"@"+first[:12])
	if !strings.Contains(stderr, "mounted by 1") {
		t.Errorf("in-place restore of a mounted volume: %s", stderr)
	}
	node2.docker("rm", "-f", holder)
	node2.docker("swarmbackup", "volume", "restore", vol+"@"+first[:12])
	if got := node2.run(vol, "cat /data/sub/state"); got != "first" {
		t.Errorf("after the in-place restore: %q", got)
	}

	// Anywhere: the newest snapshot onto a node that never had the volume.
	node3.docker("swarmbackup", "volume", "restore", vol)
	t.Cleanup(func() { node3.try("volume", "rm", "-f", vol) })
	if got := node3.run(vol, "cat /data/sub/state"); got != "first" {
		t.Errorf("on node3: %q", got)
	}

	for _, c := range []struct{ arg, want string }{
		{unique("never-snapshotted"), "holds no snapshot of the volume"},
		{vol + "@0123456789ab", `no snapshot "0123456789ab"`},
		{"../etc", "is not a volume name"},
	} {
		if stderr := node2.dockerFails("swarmbackup", "volume", "restore", c.arg); !strings.Contains(stderr, c.want) {
			t.Errorf("restore %s: %s", c.arg, stderr)
		}
	}
}

func TestCorruptSnapshotDataFailsTheRestoreAndLeavesTheTargetAlone(t *testing.T) {
	l := newLab(t)
	endpoint, secrets := labMinIO(t)
	node3 := l.node(3)
	bucket := unique("e2e")
	repo := "s3:" + endpoint + "/" + bucket + "/backups"
	node3.configurePlugin("SWARMBACKUP_REPO="+repo, "etc.source="+secrets)

	vol, target := unique("ledger"), unique("ledger-copy")
	node3.createVolume(vol)
	node3.run(vol, "head -c 3000000 /dev/urandom > /data/entries")
	node3.snapshot(vol)
	node3.createVolume(target)
	node3.run(target, "echo untouched > /data/marker")

	// Flip a byte in every pack in the bucket.
	mc := labS3Client(t, endpoint, secrets)
	ctx := context.Background()
	damaged := 0
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "backups/data/", Recursive: true}) {
		o, err := mc.GetObject(ctx, bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(o)
		o.Close()
		b := buf.Bytes()
		b[len(b)/2] ^= 0x10
		if _, err := mc.PutObject(ctx, bucket, obj.Key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		damaged++
	}
	if damaged == 0 {
		t.Fatal("no pack in the bucket")
	}

	stderr := node3.dockerFails("swarmbackup", "volume", "restore", vol, "--to", target)
	if lines := nonEmptyLines(stderr); len(lines) != 1 || !strings.Contains(stderr, "corrupt") {
		t.Errorf("restore of corrupt data: %q", stderr)
	}
	if got := node3.run(target, "cat /data/marker; ls /data"); got != "untouched\nmarker" {
		t.Errorf("a failed restore changed the target: %q", got)
	}
}

func TestADrainedNodesServiceComesBackElsewhereWithItsData(t *testing.T) {
	l := newLab(t)
	vol := unique("pgdata")
	mount := "type=volume,source=" + vol + ",target=/data,volume-driver=swarmbackup,volume-opt=restore=latest"
	// A token written once, on the first start: a task that started on an empty volume
	// would write a different one.
	l.removeVolumeAfterwards(vol)
	svc := l.createService(unique("db"), []string{"--mount", mount},
		"sh", "-c", "[ -f /data/token ] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > /data/token; sleep 3600")
	first, c := svc.runningTask()
	var token string
	l.eventually("the first task to write its token", 30*time.Second, func() bool {
		token = first.try("exec", c, "cat", "/data/token").stdout
		return len(token) == 32
	})
	first.snapshot(vol)

	id := first.nodeID()
	l.node(1).docker("node", "update", "--availability", "drain", id)
	t.Cleanup(func() { l.node(1).try("node", "update", "--availability", "active", id) })

	var moved *node
	var container string
	l.eventually("the task to run on another node", 120*time.Second, func() bool {
		for i := 1; i <= l.engines(); i++ {
			n := l.node(i)
			if n.n == first.n {
				continue
			}
			r := n.try("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc.name, "--filter", "status=running")
			if r.err == nil && r.stdout != "" {
				moved, container = n, strings.Fields(r.stdout)[0]
				return true
			}
		}
		return false
	})
	if got := moved.docker("exec", container, "cat", "/data/token"); got != token {
		t.Fatalf("on %s the task reads token %q, want %q from %s: it started on a volume without its data", moved, got, token, first)
	}
}

func TestAWriterServicesScheduledSnapshotsAccumulateAndRetentionTrimsThem(t *testing.T) {
	l := newLab(t)
	vol := unique("sched")
	mount := "type=volume,source=" + vol + ",target=/data,volume-driver=swarmbackup," +
		"volume-opt=schedule=@every 10s,volume-opt=keep=last=2"
	l.removeVolumeAfterwards(vol)
	svc := l.createService(unique("writer"), []string{"--mount", mount},
		"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /data/counter; sleep 0.2; done")
	n, _ := svc.runningTask()

	seen := map[string]bool{}
	var current []listed
	list := func() {
		current = nil
		for _, s := range n.listSnapshots(nil, "--kind", "volume") {
			if s.Source == vol {
				current = append(current, s)
				seen[s.ID] = true
			}
		}
	}
	l.eventually("three scheduled snapshots", 90*time.Second, func() bool { list(); return len(seen) >= 3 })
	// Retention runs right after each snapshot: between the two, three may show.
	l.eventually("retention to keep two", 15*time.Second, func() bool { list(); return len(current) == 2 })
	// The newest snapshot holds what the writer wrote by then: restored, the counter is there.
	restored := unique("sched-r")
	n.docker("swarmbackup", "volume", "restore", vol+"@"+current[1].ID, "--to", restored)
	t.Cleanup(func() { n.try("volume", "rm", "-f", restored) })
	if got := n.run(restored, "cat /data/counter"); got == "" || got == "0" {
		t.Errorf("the newest scheduled snapshot holds counter %q", got)
	}

	svc.remove()
	n.docker("volume", "rm", vol)
	time.Sleep(11 * time.Second)
	after := 0
	for _, s := range n.listSnapshots(nil, "--kind", "volume") {
		if s.Source == vol && !seen[s.ID] {
			after++
		}
	}
	if after > 1 {
		t.Errorf("%d snapshots taken after the volume was removed", after)
	}
}
