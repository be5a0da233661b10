package s3

import (
	"context"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

var _ storage.Undeleter = (*Backend)(nil)

// Undelete brings back the objects below prefix whose newest version is a delete marker
// placed after since: the marker is removed, and the version it hid is current again. Only
// a versioned bucket (an Object Lock bucket is one) keeps what was deleted.
func (b *Backend) Undelete(ctx context.Context, prefix string, since time.Time, fn func(name string) error) (int, error) {
	versioning, err := b.client.GetBucketVersioning(ctx, b.cfg.Bucket)
	if err != nil {
		return 0, b.wrap("read the versioning of", b.cfg.Bucket, err)
	}
	if !versioning.Enabled() && !versioning.Suspended() {
		return 0, storage.ErrNotVersioned
	}
	root := b.key("")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the listing when this returns early
	n := 0
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: b.key(prefix), Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			return n, b.wrap("list the versions of", prefix, obj.Err)
		}
		if !obj.IsLatest || !obj.IsDeleteMarker || obj.LastModified.Before(since) {
			continue
		}
		err := b.client.RemoveObject(ctx, b.cfg.Bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID})
		if err != nil {
			return n, b.wrap("remove the delete marker of", obj.Key, err)
		}
		n++
		if err := fn(strings.TrimPrefix(obj.Key, root)); err != nil {
			return n, err
		}
	}
	return n, ctx.Err()
}
