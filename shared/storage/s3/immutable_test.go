package s3

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/checker"
	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// In an Object Lock bucket every object a backup needs stays retained as long as the backup
// does: a pack written a day and a half ago, which today's backup reuses, is retained a period
// beyond today although the bucket's default ran out; prune leaves a whole repository, and
// what it removed stays behind as versions nobody can delete yet.
func TestObjectsStayRetainedAsLongAsTheBackupsThatNeedThem(t *testing.T) {
	ctx := context.Background()
	b, period := objectLockBucket(t)
	repo, err := repository.OpenOrInit(ctx, b, "pw")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	repo.SetClock(func() time.Time { return now })

	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "a"), 300000)
	run := func() *snapshot.Snapshot {
		t.Helper()
		sn, err := backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: src, Host: "node2"}, backup.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	run()
	packsOfA := b.names(t, "data/")
	b.assertRetained(t, now.Add(2*period))

	// A day and a half later the bucket's default no longer covers the first backup's pack;
	// the second backup, which reuses it, has it retained a period beyond its own time.
	now = now.Add(period * 3 / 2)
	writeRandom(t, filepath.Join(src, "b"), 300000)
	run()
	b.assertRetained(t, now.Add(2*period))
	im, err := repo.Immutability(ctx)
	if err != nil || im.Period != period || im.Until.Before(now.Add(period)) {
		t.Fatalf("immutability reported: %+v, %v", im, err)
	}

	if err := os.Remove(filepath.Join(src, "a")); err != nil {
		t.Fatal(err)
	}
	run()
	plan, err := pruner.Prune(ctx, repo, pruner.Options{Policy: retention.Policy{Last: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Forget) != 2 || plan.PacksRemoved == 0 {
		t.Fatalf("prune forgot %d backups and removed %d packs", len(plan.Forget), plan.PacksRemoved)
	}
	rep, err := checker.Check(ctx, repo, checker.Options{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after a prune in an Object Lock bucket: %v %v", err, rep)
	}
	// What prune removed is hidden behind delete markers, its versions still retained.
	for _, name := range packsOfA {
		if slices.Contains(b.names(t, "data/"), name) {
			continue
		}
		for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: b.key(name), WithVersions: true}) {
			if obj.IsDeleteMarker {
				continue
			}
			err := b.client.RemoveObject(ctx, b.cfg.Bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID})
			if err == nil {
				t.Fatalf("the pruned pack %s was destroyed before its time", name)
			}
		}
	}
}

// objectLockBucket is a new bucket with Object Lock and a default retention of one day in
// governance mode.
func objectLockBucket(t *testing.T) (*testBackend, time.Duration) {
	t.Helper()
	cfg := labMinIO(t)
	cfg.Prefix = "backups"
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{ObjectLocking: true}); err != nil {
		t.Fatal(err)
	}
	mode, validity, unit := minio.Governance, uint(1), minio.Days
	if err := b.client.SetObjectLockConfig(ctx, cfg.Bucket, &mode, &validity, &unit); err != nil {
		t.Fatal(err)
	}
	return &testBackend{b}, 24 * time.Hour
}

type testBackend struct{ *Backend }

func (b *testBackend) names(t *testing.T, prefix string) []string {
	t.Helper()
	var names []string
	if err := b.List(context.Background(), prefix, func(name string, _ int64) error { names = append(names, name); return nil }); err != nil {
		t.Fatal(err)
	}
	return names
}

// assertRetained fails unless every object backups need is retained at least until t
// (within a minute).
func (b *testBackend) assertRetained(t *testing.T, until time.Time) {
	t.Helper()
	checked := 0
	for _, name := range b.names(t, "") {
		if !(name == "config" || strings.HasPrefix(name, "keys/") || strings.HasPrefix(name, "data/") || strings.HasPrefix(name, "index/") || strings.HasPrefix(name, "snapshots/")) {
			continue
		}
		_, kept, err := b.client.GetObjectRetention(context.Background(), b.cfg.Bucket, b.key(name), "")
		if err != nil {
			t.Fatalf("retention of %s: %v", name, err)
		}
		if kept == nil || kept.Before(until.Add(-time.Minute)) {
			t.Errorf("%s is retained until %v, not %v", name, kept, until.UTC())
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d objects to check", checked)
	}
}

func writeRandom(t *testing.T, path string, size int) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
