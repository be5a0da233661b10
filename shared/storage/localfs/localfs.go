// Package localfs keeps a repository's objects as files in a local directory.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/swarmbackup/swarmbackup/shared/atomicfile"
	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// Backend is a directory; object names map to relative paths below it.
type Backend struct {
	root string
}

// New returns the backend for dir, creating the directory if needed.
func New(dir string) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("repository directory %s: %w", abs, err)
	}
	return &Backend{root: abs}, nil
}

func (b *Backend) Location() string { return b.root }

func (b *Backend) path(name string) (string, error) {
	clean := filepath.Clean("/" + name)
	if clean == "/" || strings.Contains(name, "..") || clean[1:] != name {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	return filepath.Join(b.root, filepath.FromSlash(name)), nil
}

func notFound(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", name, storage.ErrNotFound)
	}
	return err
}

// pathForWrite returns the file of an object about to be written, with its directory.
func (b *Backend) pathForWrite(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	p, err := b.path(name)
	if err != nil {
		return "", err
	}
	return p, os.MkdirAll(filepath.Dir(p), 0o700)
}

// Put writes through a temporary file, fsync and rename: a crash never leaves a partial object.
func (b *Backend) Put(ctx context.Context, name string, data []byte) error {
	p, err := b.pathForWrite(ctx, name)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, data, 0o600)
}

// Create links a fully written temporary file into place; the link fails if the name exists.
func (b *Backend) Create(ctx context.Context, name string, data []byte) error {
	p, err := b.pathForWrite(ctx, name)
	if err != nil {
		return err
	}
	err = atomicfile.Create(p, data, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", name, storage.ErrExists)
	}
	return err
}

func (b *Backend) Get(ctx context.Context, name string, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := b.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, notFound(name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, at most %d allowed: %w", name, fi.Size(), limit, storage.ErrTooLarge)
	}
	return readAll(f, name, limit)
}

// readAll reads r to its end, refusing more than limit bytes even when the object grew
// since its size was checked.
func readAll(r io.Reader, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes: %w", name, limit, storage.ErrTooLarge)
	}
	return data, nil
}

func (b *Backend) ReadAt(ctx context.Context, name string, offset int64, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return notFound(name, err)
	}
	defer f.Close()
	n, err := f.ReadAt(buf, offset)
	if err == io.EOF && n < len(buf) {
		return fmt.Errorf("%s: short read at %d: %d of %d bytes", name, offset, n, len(buf))
	}
	if err != nil && err != io.EOF {
		return err
	}
	return nil
}

func (b *Backend) Stat(ctx context.Context, name string) (int64, error) {
	p, err := b.path(name)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, notFound(name, err)
	}
	return fi.Size(), nil
}

func (b *Backend) List(ctx context.Context, prefix string, fn func(string, int64) error) error {
	// Walk from the deepest directory the prefix names, then filter by the full prefix.
	dir := b.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dir = filepath.Join(b.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(name, info.Size())
	})
	return err
}

func (b *Backend) Delete(ctx context.Context, name string) error {
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
