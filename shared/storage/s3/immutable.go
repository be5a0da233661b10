package s3

import (
	"context"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

var _ storage.Immutable = (*Backend)(nil)

// ImmutablePeriod reads the bucket's Object Lock default retention; a bucket without Object
// Lock, or without a default, keeps nothing. So does one whose configuration these
// credentials may not read: backups go on, without extending retention (README: the policy).
func (b *Backend) ImmutablePeriod(ctx context.Context) (time.Duration, error) {
	enabled, mode, validity, unit, err := b.client.GetObjectLockConfig(ctx, b.cfg.Bucket)
	switch resp := minio.ToErrorResponse(err); {
	case resp.Code == "ObjectLockConfigurationNotFoundError", resp.Code == "NotImplemented",
		resp.Code == "AccessDenied", resp.StatusCode == http.StatusForbidden:
		return 0, nil
	}
	if err != nil {
		return 0, b.wrap("read the Object Lock configuration of", b.cfg.Bucket, err)
	}
	if enabled != "Enabled" || mode == nil || validity == nil || unit == nil {
		return 0, nil
	}
	period := time.Duration(*validity) * 24 * time.Hour
	if *unit == minio.Years {
		period *= 365
	}
	b.lock.Lock()
	b.lockMode = *mode
	b.lock.Unlock()
	return period, nil
}

// KeepUntil extends the retention of the object's current version, in the bucket's default
// mode. Retention only grows: a version kept longer already is left as it is.
func (b *Backend) KeepUntil(ctx context.Context, name string, t time.Time) error {
	mode := b.retentionMode()
	t = t.UTC().Truncate(time.Second)
	err := b.client.PutObjectRetention(ctx, b.cfg.Bucket, b.key(name), minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &t})
	if err == nil {
		return nil
	}
	// Shortening is refused; whether that is what happened, the current date says.
	if _, until, gerr := b.client.GetObjectRetention(ctx, b.cfg.Bucket, b.key(name), ""); gerr == nil && until != nil && !until.Before(t) {
		return nil
	}
	return b.wrap("keep until "+t.Format(time.RFC3339), name, err)
}

// KeepNewUntil makes Put and Create send a retention with every object keep accepts.
func (b *Backend) KeepNewUntil(t time.Time, keep func(name string) bool) {
	b.lock.Lock()
	defer b.lock.Unlock()
	if t.After(b.keepNew) {
		b.keepNew = t.UTC().Truncate(time.Second)
	}
	b.keepNewOf = keep
}

func (b *Backend) retentionMode() minio.RetentionMode {
	b.lock.Lock()
	defer b.lock.Unlock()
	return b.lockMode
}

// retain adds the retention KeepNewUntil asked for to the options of an upload of name.
func (b *Backend) retain(name string, opts *minio.PutObjectOptions) {
	b.lock.Lock()
	defer b.lock.Unlock()
	if b.keepNew.IsZero() || b.keepNewOf == nil || !b.keepNewOf(name) {
		return
	}
	opts.Mode, opts.RetainUntilDate = b.lockMode, b.keepNew
}
