// Package s3 keeps a repository's objects in an S3-compatible bucket (AWS S3, MinIO, ...).
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// Config says where the bucket is and how to sign requests.
type Config struct {
	Endpoint  string // host[:port]
	Secure    bool   // https
	Region    string
	Bucket    string
	Prefix    string // object names are Prefix/name
	AccessKey string
	SecretKey string
}

// Backend is one bucket, below an optional prefix.
type Backend struct {
	cfg    Config
	client *minio.Client

	lock      sync.Mutex          // guards what Object Lock needs (immutable.go)
	lockMode  minio.RetentionMode // the bucket's default mode, read by ImmutablePeriod
	keepNew   time.Time
	keepNewOf func(name string) bool
}

// New returns a backend for cfg. It does not contact the endpoint.
func New(cfg Config) (*Backend, error) {
	return newBackend(cfg, nil)
}

// newBackend is New with every request passing through wrap, when it is not nil.
func newBackend(cfg Config, wrap func(http.RoundTripper) http.RoundTripper) (*Backend, error) {
	transport, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, err
	}
	// Fail fast on an unreachable endpoint instead of hanging on each of the retries.
	transport.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	transport.ResponseHeaderTimeout = 2 * time.Minute
	transport.MaxIdleConnsPerHost = 16
	var rt http.RoundTripper = transport
	if wrap != nil {
		rt = wrap(transport)
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewIAM("")
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      creds,
		Secure:     cfg.Secure,
		Region:     cfg.Region,
		Transport:  rt,
		MaxRetries: 4,
		// Checksums travel as trailers, computed while the body streams.
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", cfg.Endpoint, err)
	}
	// Until the bucket's configuration says otherwise, retentions are set in governance mode.
	return &Backend{cfg: cfg, client: client, lockMode: minio.Governance}, nil
}

func (b *Backend) Location() string {
	scheme := "http"
	if b.cfg.Secure {
		scheme = "https"
	}
	loc := fmt.Sprintf("s3:%s://%s/%s", scheme, b.cfg.Endpoint, b.cfg.Bucket)
	if b.cfg.Prefix != "" {
		loc += "/" + b.cfg.Prefix
	}
	return loc
}

func (b *Backend) key(name string) string {
	if b.cfg.Prefix == "" {
		return name
	}
	// Not path.Join: a trailing slash in a list prefix matters.
	return b.cfg.Prefix + "/" + name
}

// wrap turns client errors into one line that names the endpoint and bucket, and marks
// missing objects with storage.ErrNotFound.
func (b *Backend) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey":
		return fmt.Errorf("%s: %w", name, storage.ErrNotFound)
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("bucket %q does not exist at %s", b.cfg.Bucket, b.cfg.Endpoint)
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch" || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("S3 endpoint %s refused access to bucket %q (%s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", b.cfg.Endpoint, b.cfg.Bucket, resp.Code)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host") {
		return fmt.Errorf("cannot reach S3 endpoint %s (bucket %q): %v", b.cfg.Endpoint, b.cfg.Bucket, rootCause(err))
	}
	return fmt.Errorf("S3 %s %s in bucket %q at %s: %w", op, name, b.cfg.Bucket, b.cfg.Endpoint, err)
}

func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// EnsureBucket creates the bucket when it does not exist yet.
func (b *Backend) EnsureBucket(ctx context.Context) error {
	ok, err := b.client.BucketExists(ctx, b.cfg.Bucket)
	if err != nil {
		return b.wrap("check", "bucket", err)
	}
	if ok {
		return nil
	}
	err = b.client.MakeBucket(ctx, b.cfg.Bucket, minio.MakeBucketOptions{Region: b.cfg.Region})
	if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
		return b.wrap("create", "bucket", err)
	}
	return nil
}

func (b *Backend) Put(ctx context.Context, name string, data []byte) error {
	opts := putOptions(len(data))
	b.retain(name, &opts)
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, b.key(name), bytes.NewReader(data), int64(len(data)), opts)
	return b.wrap("put", name, err)
}

// Create is a conditional PUT (If-None-Match: *), which S3 and MinIO apply atomically.
func (b *Backend) Create(ctx context.Context, name string, data []byte) error {
	opts := putOptions(len(data))
	b.retain(name, &opts)
	opts.SetMatchETagExcept("*")
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, b.key(name), bytes.NewReader(data), int64(len(data)), opts)
	if resp := minio.ToErrorResponse(err); resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed" {
		return fmt.Errorf("%s: %w", name, storage.ErrExists)
	}
	return b.wrap("create", name, err)
}

// putOptions protect each upload with a CRC32C the server checks, instead of signing a
// SHA-256 of the body: the same protection in transit at a fraction of the CPU.
func putOptions(size int) minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		DisableMultipart:     size < 64<<20,
		DisableContentSha256: true,
		Checksum:             minio.ChecksumCRC32C,
	}
}

func (b *Backend) Get(ctx context.Context, name string, limit int64) ([]byte, error) {
	// One request: minio.Client's object reader would stat first and then read with If-Match,
	// which fails whenever a writer replaces the object in between (progress records are).
	body, info, _, err := minio.Core{Client: b.client}.GetObject(ctx, b.cfg.Bucket, b.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, b.wrap("get", name, err)
	}
	defer body.Close()
	if info.Size > limit {
		return nil, fmt.Errorf("%s: %d bytes, at most %d allowed: %w", name, info.Size, limit, storage.ErrTooLarge)
	}
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, b.wrap("get", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes: %w", name, limit, storage.ErrTooLarge)
	}
	return data, nil
}

func (b *Backend) ReadAt(ctx context.Context, name string, offset int64, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	// A transfer that breaks off mid-body (the endpoint went away, a connection reset) is
	// tried again, a little later each time; a missing endpoint fails the next try at once.
	var err error
	for try, wait := 0, 500*time.Millisecond; try < 3; try, wait = try+1, wait*2 {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		var broke bool
		if broke, err = b.readAt(ctx, name, offset, buf); !broke {
			return err
		}
	}
	return err
}

// readAt reads one range; broke says the transfer broke off and may be tried again.
func (b *Backend) readAt(ctx context.Context, name string, offset int64, buf []byte) (broke bool, err error) {
	var opts minio.GetObjectOptions
	if err := opts.SetRange(offset, offset+int64(len(buf))-1); err != nil {
		return false, err
	}
	body, info, _, err := minio.Core{Client: b.client}.GetObject(ctx, b.cfg.Bucket, b.key(name), opts)
	if err != nil {
		return false, b.wrap("get", name, err)
	}
	defer body.Close()
	n, err := io.ReadFull(body, buf)
	if err == io.ErrUnexpectedEOF || (err == io.EOF && n < len(buf)) {
		if info.Size < int64(len(buf)) {
			return false, fmt.Errorf("%s: short read at %d: %d of %d bytes", name, offset, n, len(buf))
		}
		return true, fmt.Errorf("read %s from S3 endpoint %s (bucket %q): the transfer broke off after %d of %d bytes", name, b.cfg.Endpoint, b.cfg.Bucket, n, len(buf))
	}
	if err != nil {
		return true, b.wrap("get", name, err)
	}
	return false, nil
}

func (b *Backend) Stat(ctx context.Context, name string) (int64, error) {
	info, err := b.client.StatObject(ctx, b.cfg.Bucket, b.key(name), minio.StatObjectOptions{})
	if err != nil {
		return 0, b.wrap("stat", name, err)
	}
	return info.Size, nil
}

func (b *Backend) List(ctx context.Context, prefix string, fn func(string, int64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full := b.key(prefix)
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: full, Recursive: true}) {
		if obj.Err != nil {
			return b.wrap("list", prefix, obj.Err)
		}
		name := obj.Key
		if b.cfg.Prefix != "" {
			name = strings.TrimPrefix(name, b.cfg.Prefix+"/")
		}
		if err := fn(name, obj.Size); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) Delete(ctx context.Context, name string) error {
	err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.key(name), minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil
	}
	return b.wrap("delete", name, err)
}
