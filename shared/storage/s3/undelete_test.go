package s3

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/checker"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// A stolen key deletes every object of a repository in an Object Lock bucket (default
// retention, governance mode): the versions stay, undelete brings the repository back whole,
// and the versions themselves cannot be deleted before their time.
func TestAnObjectLockBucketBringsBackARepositoryAStolenKeyDeleted(t *testing.T) {
	ctx := context.Background()
	cfg := labMinIO(t)
	cfg.Prefix = "backups"
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{ObjectLocking: true}); err != nil {
		t.Fatal(err)
	}
	mode, validity, unit := minio.Governance, uint(1), minio.Days
	if err := b.client.SetObjectLockConfig(ctx, cfg.Bucket, &mode, &validity, &unit); err != nil {
		t.Fatal(err)
	}
	repo, err := repository.OpenOrInit(ctx, b, "pw")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "rows"), make([]byte, 300000), 0o644); err != nil {
		t.Fatal(err)
	}
	sn, err := backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "db", Path: src, Host: "node2"}, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}

	deleted := time.Now()
	var names []string
	if err := b.List(ctx, "", func(name string, _ int64) error { names = append(names, name); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := b.Delete(ctx, name); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	if _, err := repository.Open(ctx, b, "pw"); !errors.Is(err, repository.ErrNotInitialized) {
		t.Fatalf("after every object was deleted the repository opens: %v", err)
	}
	// Nor can the thief remove the versions behind the delete markers.
	for obj := range b.client.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if !obj.IsDeleteMarker {
			err := b.client.RemoveObject(ctx, cfg.Bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID})
			if err == nil {
				t.Fatalf("version %s of %s was removed under its retention", obj.VersionID, obj.Key)
			}
			break
		}
	}

	back, err := repository.Undelete(ctx, b, deleted.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if back["snapshots/"] != 1 || back["config"] != 1 || back["data/"] == 0 {
		t.Errorf("brought back %v", back)
	}
	repo, err = repository.Open(ctx, b, "pw")
	if err != nil {
		t.Fatalf("the repository after undelete: %v", err)
	}
	rep, err := checker.Check(ctx, repo, checker.Options{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after undelete: %v %v", err, rep)
	}
	list, _, err := snapshot.List(ctx, repo)
	if err != nil || len(list) != 1 || list[0].ID != sn.ID {
		t.Fatalf("snapshots after undelete: %d, %v", len(list), err)
	}
	// What was deleted before the time given stays deleted: nothing is left to bring back.
	if again, err := repository.Undelete(ctx, b, deleted); err != nil || total(again) != 0 {
		t.Errorf("a second undelete: %v, %v", again, err)
	}
}

func TestABucketWithoutVersionsSaysItCannotUndelete(t *testing.T) {
	cfg := labMinIO(t)
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Undelete(context.Background(), b, time.Time{}); !errors.Is(err, storage.ErrNotVersioned) {
		t.Fatalf("undelete in a plain bucket: %v", err)
	}
}

func total(u repository.Undeleted) int {
	n := 0
	for _, v := range u {
		n += v
	}
	return n
}
