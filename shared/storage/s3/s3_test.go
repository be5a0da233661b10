package s3

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

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
