package s3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/storagetest"
)

// labMinIO returns a config for the lab's MinIO (scripts/lab up), or skips the test.
func labMinIO(t *testing.T) Config {
	t.Helper()
	endpoint, envFile := os.Getenv("SWARMBACKUP_LAB_MINIO"), os.Getenv("SWARMBACKUP_LAB_MINIO_ENV")
	if endpoint == "" || envFile == "" {
		t.Skip("no MinIO: run within `make test-e2e`, or export the variables `scripts/lab env` prints")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(envFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return Config{
		Endpoint:  u.Host,
		Bucket:    "test-" + hex.EncodeToString(b),
		AccessKey: env["MINIO_ROOT_USER"],
		SecretKey: env["MINIO_ROOT_PASSWORD"],
	}
}

func TestBackendAgainstMinIO(t *testing.T) {
	cfg := labMinIO(t)
	cfg.Prefix = "repo/one"
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	storagetest.Run(t, b)
}

func TestWrongCredentialsAreNamedClearly(t *testing.T) {
	cfg := labMinIO(t)
	cfg.SecretKey = "not-the-secret"
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.EnsureBucket(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refused access") || !strings.Contains(err.Error(), cfg.Endpoint) {
		t.Errorf("wrong secret: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-the-secret") {
		t.Error("the error shows the secret")
	}
}

func TestUnreachableEndpointIsNamedClearly(t *testing.T) {
	b, err := New(Config{Endpoint: "127.0.0.1:1", Bucket: "bucket", AccessKey: "a", SecretKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Get(context.Background(), "config", 1<<20)
	if err == nil || !strings.Contains(err.Error(), "cannot reach S3 endpoint 127.0.0.1:1") {
		t.Errorf("unreachable: %v", err)
	}
}

// flipOnce damages the first body that passes through it: one flipped bit in transit.
type flipOnce struct {
	http.RoundTripper
	done bool
}

func (f *flipOnce) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.ContentLength > 0 && !f.done {
		f.done = true
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		body[len(body)/2] ^= 1
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	return f.RoundTripper.RoundTrip(req)
}

// The server checks what it receives against the checksum the upload names, so bytes damaged
// on the way are never stored: the upload fails, or a retry stores the bytes that were sent.
func TestBytesDamagedInTransitAreRefused(t *testing.T) {
	cfg := labMinIO(t)
	flip := &flipOnce{}
	b, err := newBackend(cfg, func(rt http.RoundTripper) http.RoundTripper {
		flip.RoundTripper = rt
		return flip
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	err = b.Put(ctx, "data/damaged", data)
	if !flip.done {
		t.Fatal("no upload body passed through the damaging transport")
	}
	stored, getErr := b.Get(ctx, "data/damaged", int64(len(data)))
	switch {
	case err != nil && !errors.Is(getErr, storage.ErrNotFound):
		t.Errorf("after the refused upload: %v, want no object", getErr)
	case err == nil && getErr != nil:
		t.Errorf("the upload succeeded but reading it back: %v", getErr)
	case err == nil && !bytes.Equal(stored, data):
		t.Error("a body damaged in transit was stored")
	}
}
