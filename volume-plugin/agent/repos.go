package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/swarmbackup/swarmbackup/shared/config"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Repos opens the repository the plugin's settings name, afresh for every job: the plugin
// serves volumes even while the repository is unreachable, and each job sees what other
// nodes wrote and pruned meanwhile.
type Repos struct {
	env config.Env
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

// Open opens the repository, creating it when the location is empty.
func (r *Repos) Open(ctx context.Context) (*repository.Repository, error) {
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
	return repository.OpenOrInit(ctx, be, password)
}
