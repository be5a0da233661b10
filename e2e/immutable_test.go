package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// A node's plugin backs up into a bucket with S3 Object Lock; status shows how long the
// backups are retained. Someone with the S3 keys deletes every object and tries to destroy
// the versions behind them: they stay, undelete brings the repository back whole, and the
// volume is restored from it.
func TestAStolenS3KeyCannotDestroyBackupsInAnObjectLockBucket(t *testing.T) {
	l := newLab(t)
	n := l.node(2)
	endpoint, secrets := labMinIO(t)
	mc := labS3Client(t, endpoint, secrets)
	ctx := context.Background()
	bucket := unique("locked")
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{ObjectLocking: true}); err != nil {
		t.Fatal(err)
	}
	mode, validity, unit := minio.Governance, uint(1), minio.Days
	if err := mc.SetObjectLockConfig(ctx, bucket, &mode, &validity, &unit); err != nil {
		t.Fatal(err)
	}
	repoURL := "s3:" + endpoint + "/" + bucket + "/backups"
	n.configurePlugin("SWARMBACKUP_REPO="+repoURL, "etc.source="+secrets)
	env := bucketEnv(repoURL, secrets)

	vol := unique("ledger")
	n.createVolume(vol)
	n.makeFiles(vol, 200)
	want := n.run(vol, "cd /data && find . -type f | sort | xargs md5sum | md5sum")
	n.snapshot(vol)
	n.dockerEnv(env, "swarmbackup", "backup", "-q")
	status := n.tryEnv(env, "swarmbackup", "status")
	if !strings.Contains(status.stdout, "Object Lock: every backup's objects retained until") {
		t.Fatalf("status does not show the retention:\n%s", status)
	}
	t.Logf("status: %s", status.stdout[strings.Index(status.stdout, "Object Lock"):])

	// The thief deletes every object, then every version they can.
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if err := mc.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "backups/", Recursive: true, WithVersions: true}) {
		if obj.IsDeleteMarker || !durablePath(obj.Key) {
			continue
		}
		if mc.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID}) == nil {
			t.Errorf("version %s of %s was removed under its retention", obj.VersionID, obj.Key)
		}
	}
	if r := n.tryEnv(env, "swarmbackup", "ls"); r.err == nil {
		t.Fatalf("ls after every object was deleted: %s", r)
	}

	out := n.dockerEnv(env, "swarmbackup", "undelete")
	t.Logf("undelete: %s", out)
	n.dockerEnv(env, "swarmbackup", "verify", "--all", "--read-data")
	if got := n.dockerEnv(env, "swarmbackup", "ls", "--kind", "swarm", "-q"); got == "" {
		t.Fatal("the control plane's backup did not come back")
	}
	n.docker("swarmbackup", "volume", "restore", vol, "--to", vol+"-back")
	if got := n.run(vol+"-back", "cd /data && find . -type f | sort | xargs md5sum | md5sum"); got != want {
		t.Fatalf("the volume restored after undelete holds %q, want %q", got, want)
	}
}

// durablePath says whether an object of the repository below backups/ is one that backups
// need (locks, leases, heartbeats and requests are short-lived).
func durablePath(key string) bool {
	name := strings.TrimPrefix(key, "backups/")
	for _, prefix := range []string{"config", "keys/", "data/", "index/", "snapshots/"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
