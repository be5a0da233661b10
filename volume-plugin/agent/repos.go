package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/swarmbackup/swarmbackup/shared/config"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Repos hands out the repository the plugin's settings name, a handle per job. It is opened
// once (the key derived, every index file read) and kept; each job gets a fork that has read
// the index files written since, so it sees what other nodes wrote and pruned meanwhile. The
// plugin serves volumes even while the repository is unreachable: a failure is retried at
// the next job.
type Repos struct {
	env      config.Env
	cacheDir string

	mu   sync.Mutex
	base *repository.Repository
}

// NewRepos reads settings from the plugin's environment, with the secrets as files in
// secretsDir (the `etc` mount): password, aws_access_key_id, aws_secret_access_key.
func NewRepos(secretsDir string) *Repos {
	files := map[string]string{
		"SWARMBACKUP_PASSWORD_FILE":  filepath.Join(secretsDir, "password"),
		"AWS_ACCESS_KEY_ID_FILE":     filepath.Join(secretsDir, "aws_access_key_id"),
		"AWS_SECRET_ACCESS_KEY_FILE": filepath.Join(secretsDir, "aws_secret_access_key"),
	}
	env := func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			return v, true
		}
		if f, ok := files[name]; ok {
			if _, err := os.Stat(f); err == nil {
				return f, true
			}
		}
		return "", false
	}
	return &Repos{env: env}
}

// UseCache keeps local copies of snapshot records and index files below dir, so that a
// repository with thousands of snapshots is listed from one listing and local files.
func (r *Repos) UseCache(dir string) { r.cacheDir = dir }

// Open returns a handle on the repository for one job, creating the repository when the
// location is empty.
func (r *Repos) Open(ctx context.Context) (*repository.Repository, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.base != nil {
		same, err := r.base.StillThere(ctx)
		if err == nil && same {
			err = r.base.ReloadIndex(ctx)
		}
		if err != nil {
			r.base = nil
			return nil, err
		}
		if same {
			return r.base.Fork()
		}
		r.base = nil // a repository created anew in its place: open that one
	}
	base, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	r.base = base
	return base.Fork()
}

func (r *Repos) open(ctx context.Context) (*repository.Repository, error) {
	password, err := config.Password("", r.env)
	if errors.Is(err, config.ErrNoPassword) {
		return nil, errors.New("no repository password: write it to the file password in the plugin's etc directory (default /etc/swarmbackup on the host; `make install` creates one)")
	}
	if err != nil {
		return nil, err
	}
	be, err := config.OpenBackend(ctx, config.RepoURL("", r.env), r.env)
	if err != nil {
		return nil, err
	}
	return repository.OpenOrInit(ctx, be, password, repository.WithCache(r.cacheDir))
}
