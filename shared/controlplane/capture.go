// Package controlplane takes and reads backups of a swarm's control plane: a hot copy of a
// manager's swarm directory, accepted only once it decodes offline, and the inventory of
// objects in it.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/swarmstate"
)

// Capture is an accepted copy of a swarm directory.
type Capture struct {
	Dir        string            // the copy
	State      *swarmstate.State // nil when autolocked and no unlock key was given
	Autolocked bool
	Attempts   int
	Took       time.Duration
}

// maxAttempts bounds the retries of a copy that caught the log mid-write.
const maxAttempts = 8

// Take copies swarmDir into dst (created, must not exist) and decodes the copy, retrying a
// torn copy; fence is called before each attempt, so that everything the cluster did before
// the backup was asked for is provably committed in the copy. An autolocked swarm is decoded
// when unlockKey is given; otherwise only the log's framing and continuity are checked.
func Take(ctx context.Context, swarmDir, dst, unlockKey string, fence func(context.Context) error) (*Capture, error) {
	start := time.Now()
	var lastErr error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fence != nil {
			if err := fence(ctx); err != nil {
				return nil, fmt.Errorf("fence write: %w", err)
			}
		}
		_ = os.RemoveAll(dst)
		if err := copyTree(swarmDir, dst); err != nil {
			return nil, fmt.Errorf("copy %s: %w", swarmDir, err)
		}
		c, err := Validate(dst, unlockKey)
		if err == nil {
			c.Attempts, c.Took = attempt, time.Since(start)
			return c, nil
		}
		if !errors.Is(err, swarmstate.ErrTorn) {
			_ = os.RemoveAll(dst)
			return nil, err
		}
		lastErr = err
		time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
	}
	_ = os.RemoveAll(dst)
	return nil, fmt.Errorf("no consistent copy in %d attempts: %w", maxAttempts, lastErr)
}

// Validate decodes a copied swarm directory.
func Validate(dir, unlockKey string) (*Capture, error) {
	locked, err := swarmstate.Autolocked(dir)
	if err != nil {
		return nil, err
	}
	c := &Capture{Dir: dir, Autolocked: locked}
	if locked && unlockKey == "" {
		if err := swarmstate.CheckLog(dir); err != nil {
			return nil, err
		}
		return c, nil
	}
	keys, err := swarmstate.ReadKeys(dir, unlockKey)
	if err != nil {
		return nil, err
	}
	st, err := swarmstate.Load(dir, keys)
	if err != nil {
		return nil, err
	}
	c.State = st
	return c, nil
}

// copyTree copies regular files, directories and symlinks with their modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != src && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while copying (an old snapshot or log file)
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // sockets and the like are not state
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
