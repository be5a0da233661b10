package commands

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/swarmbackup/swarmbackup/shared/config"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// repoOptions are the flags of every command that touches backups.
type repoOptions struct {
	repo         string
	passwordFile string
}

func (o *repoOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.repo, "repo", "", "Repository URL (default $SWARMBACKUP_REPO, else "+config.DefaultRepo+")")
	fs.StringVar(&o.passwordFile, "password-file", "", "File holding the repository password (default $SWARMBACKUP_PASSWORD_FILE, else $SWARMBACKUP_PASSWORD, else "+defaultPasswordFile+")")
}

// open opens the repository for reading; a missing repository is an error.
func (o *repoOptions) open(ctx context.Context) (*repository.Repository, error) {
	return o.openWith(ctx, repository.Open)
}

// openForWrite opens the repository, creating it when the location is empty.
func (o *repoOptions) openForWrite(ctx context.Context) (*repository.Repository, error) {
	return o.openWith(ctx, repository.OpenOrInit)
}

// defaultPasswordFile is where the volume plugin reads the password on each node; on a
// manager the CLI falls back to it, so both use the same repository out of the box.
const defaultPasswordFile = "/etc/swarmbackup/password"

func lookupEnv(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	if name == "SWARMBACKUP_PASSWORD_FILE" && v == "" && os.Getenv("SWARMBACKUP_PASSWORD") == "" {
		if _, err := os.Stat(defaultPasswordFile); err == nil {
			return defaultPasswordFile, true
		}
	}
	return v, ok
}

// password is the repository password the options name.
func (o *repoOptions) password() (string, error) { return config.Password(o.passwordFile, lookupEnv) }

func (o *repoOptions) openWith(ctx context.Context, open func(context.Context, storage.Backend, string, ...repository.Option) (*repository.Repository, error)) (*repository.Repository, error) {
	url := config.RepoURL(o.repo, lookupEnv)
	password, err := o.password()
	if err != nil {
		return nil, err
	}
	be, err := config.OpenBackend(ctx, url, lookupEnv)
	if err != nil {
		return nil, err
	}
	r, err := open(ctx, be, password, repository.WithCache(config.CacheDir(lookupEnv)))
	if errors.Is(err, repository.ErrNotInitialized) {
		return nil, fmt.Errorf("no backups at %s yet: take one with `docker swarmbackup backup`, or give --repo", be.Location())
	}
	if err != nil {
		return nil, err
	}
	// A killed command of this machine (a prune, say) left its lock; from here its process is
	// known to be gone, but the plugins, in other PID namespaces, would wait for the lock to
	// go stale. Removing it is best effort: a read-only bucket leaves it in place.
	_, _ = r.RemoveDeadLocks(ctx)
	return r, nil
}
