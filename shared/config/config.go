// Package config resolves the settings users give through flags, environment and files
// (names fixed in the user-facing contract): where the repository is, its password, and the
// S3 credentials. Secret values are read here and never echoed in errors.
package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
	"github.com/swarmbackup/swarmbackup/shared/storage/s3"
)

// DefaultRepo is the embedded default repository: a local directory.
const DefaultRepo = "/var/lib/swarmbackup/repo"

// Env looks up a variable; os.LookupEnv in the CLI, the plugin's settings in the plugin.
type Env func(string) (string, bool)

// RepoURL picks the repository: the --repo flag, else SWARMBACKUP_REPO, else DefaultRepo.
func RepoURL(flag string, env Env) string {
	if flag != "" {
		return flag
	}
	if v, ok := env("SWARMBACKUP_REPO"); ok && v != "" {
		return v
	}
	return DefaultRepo
}

// CacheDir is where the CLI keeps its local copies of snapshot records and index files:
// SWARMBACKUP_CACHE_DIR ("off": none), else $XDG_CACHE_HOME/swarmbackup, else
// ~/.cache/swarmbackup. Empty means no cache.
func CacheDir(env Env) string {
	if v, ok := env("SWARMBACKUP_CACHE_DIR"); ok && v != "" {
		if v == "off" {
			return ""
		}
		return v
	}
	if v, ok := env("XDG_CACHE_HOME"); ok && v != "" {
		return filepath.Join(v, "swarmbackup")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "swarmbackup")
	}
	return ""
}

// ErrNoPassword says that no repository password was given anywhere.
var ErrNoPassword = errors.New("no repository password: give --password-file, or set SWARMBACKUP_PASSWORD_FILE or SWARMBACKUP_PASSWORD")

// Password reads the repository password: --password-file, else SWARMBACKUP_PASSWORD_FILE,
// else SWARMBACKUP_PASSWORD.
func Password(flagFile string, env Env) (string, error) {
	file := flagFile
	if file == "" {
		file, _ = env("SWARMBACKUP_PASSWORD_FILE")
	}
	if file != "" {
		pw, err := readSecretFile(file)
		if err != nil {
			return "", fmt.Errorf("repository password: %w", err)
		}
		return pw, nil
	}
	if pw, ok := env("SWARMBACKUP_PASSWORD"); ok && pw != "" {
		return pw, nil
	}
	return "", ErrNoPassword
}

// SecretFile reads a secret from a file, as passwords are read.
func SecretFile(path string) (string, error) { return readSecretFile(path) }

// readSecretFile returns a file's content without its trailing newline; errors name the file,
// never its content.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, errors.Unwrap(err))
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// secret reads NAME, or the file NAME_FILE names.
func secret(name string, env Env) (string, error) {
	if file, ok := env(name + "_FILE"); ok && file != "" {
		v, err := readSecretFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return v, nil
	}
	v, _ := env(name)
	return v, nil
}

// OpenBackend returns the storage backend a repository URL names:
//
//	/path or file:///path                         a local directory
//	s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]       an S3-compatible endpoint
//	s3://BUCKET[/PREFIX]                           AWS S3, region from AWS_REGION
func OpenBackend(ctx context.Context, repoURL string, env Env) (storage.Backend, error) {
	if shown, ok := withoutCredentials(repoURL); !ok {
		return nil, fmt.Errorf("repository %q: credentials do not belong in the URL (it shows in process lists and shell history): give them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or their _FILE forms", shown)
	}
	switch {
	case strings.HasPrefix(repoURL, "s3:http://"), strings.HasPrefix(repoURL, "s3:https://"):
		u, err := url.Parse(strings.TrimPrefix(repoURL, "s3:"))
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("repository %q: want s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]", repoURL)
		}
		return openS3(ctx, u.Host, u.Scheme == "https", u.Path, repoURL, env)
	case strings.HasPrefix(repoURL, "s3://"):
		region, _ := env("AWS_REGION")
		endpoint := "s3.amazonaws.com"
		if region != "" {
			endpoint = "s3." + region + ".amazonaws.com"
		}
		return openS3(ctx, endpoint, true, strings.TrimPrefix(repoURL, "s3://"), repoURL, env)
	case strings.HasPrefix(repoURL, "file://"):
		u, err := url.Parse(repoURL)
		if err != nil || u.Path == "" || (u.Host != "" && u.Host != "localhost") {
			return nil, fmt.Errorf("repository %q: want file:///PATH", repoURL)
		}
		return localfs.New(u.Path)
	case strings.Contains(repoURL, "://"):
		return nil, fmt.Errorf("repository %q: unknown scheme (use a path, file:///PATH, s3:http[s]://HOST/BUCKET or s3://BUCKET)", repoURL)
	}
	return localfs.New(repoURL)
}

// withoutCredentials returns the URL with any user information in its authority cut out,
// and whether it had none.
func withoutCredentials(repoURL string) (string, bool) {
	scheme, rest, ok := strings.Cut(repoURL, "://")
	if !ok {
		return repoURL, true
	}
	authority, path, _ := strings.Cut(rest, "/")
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return repoURL, true
	}
	shown := scheme + "://" + authority[at+1:]
	if path != "" || strings.Contains(rest, "/") {
		shown += "/" + path
	}
	return shown, false
}

func openS3(ctx context.Context, endpoint string, secure bool, bucketPath, repoURL string, env Env) (storage.Backend, error) {
	bucket, prefix, _ := strings.Cut(strings.Trim(bucketPath, "/"), "/")
	if bucket == "" {
		return nil, fmt.Errorf("repository %q names no bucket", repoURL)
	}
	access, err := secret("AWS_ACCESS_KEY_ID", env)
	if err != nil {
		return nil, err
	}
	secretKey, err := secret("AWS_SECRET_ACCESS_KEY", env)
	if err != nil {
		return nil, err
	}
	region, _ := env("AWS_REGION")
	be, err := s3.New(s3.Config{
		Endpoint: endpoint, Secure: secure, Region: region,
		Bucket: bucket, Prefix: strings.Trim(prefix, "/"),
		AccessKey: access, SecretKey: secretKey,
	})
	if err != nil {
		return nil, err
	}
	if err := be.EnsureBucket(ctx); err != nil {
		return nil, err
	}
	return be, nil
}
