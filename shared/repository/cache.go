package repository

import (
	"context"
	"os"
	"path/filepath"
)

// A repository can keep a local cache of the records whose names are the hash of their
// stored bytes: snapshot records and index files. Such a record never changes, and a cached
// copy is checked against its name before it is used, so a stale, torn or tampered cache
// costs a download, never a wrong answer. Copies stay sealed, as in the bucket. With it,
// listing thousands of snapshots reads one listing from the storage and local files.
type recordCache struct {
	dir string // <dir>/<repository ID>/<kind>/<ID>
}

// UseCache keeps copies of snapshot records and index files below dir.
func (r *Repository) UseCache(dir string) {
	if dir == "" {
		r.cache = nil
		return
	}
	r.cache = &recordCache{dir: filepath.Join(dir, r.cfg.ID.String())}
}

func cachedKind(kind FileKind) bool { return kind == SnapshotFile || kind == IndexFile }

func (c *recordCache) path(kind FileKind, id ID) string {
	return filepath.Join(c.dir, string(kind), id.String())
}

// getFile reads a stored record, from the cache when it holds a good copy.
func (r *Repository) getFile(ctx context.Context, kind FileKind, id ID) ([]byte, error) {
	c := r.cache
	if c == nil || !cachedKind(kind) {
		return r.be.Get(ctx, fileName(kind, id), maxFileSize(kind))
	}
	if stored, err := os.ReadFile(c.path(kind, id)); err == nil && int64(len(stored)) <= maxFileSize(kind) && contentID(stored) == id {
		return stored, nil
	}
	stored, err := r.be.Get(ctx, fileName(kind, id), maxFileSize(kind))
	if err == nil && contentID(stored) == id {
		c.put(kind, id, stored)
	}
	return stored, err
}

// put stores a copy, best effort: a cache that cannot be written only costs downloads. No
// sync: a torn copy fails its check and is fetched again.
func (c *recordCache) put(kind FileKind, id ID, stored []byte) {
	path := c.path(kind, id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return
	}
	tmp := path + ".tmp-" + NewRandomID().Short()
	if err := os.WriteFile(tmp, stored, 0o600); err != nil {
		return
	}
	if os.Rename(tmp, path) != nil {
		_ = os.Remove(tmp)
	}
}

// keepOnly removes the copies of records of a kind the storage no longer lists.
func (c *recordCache) keepOnly(kind FileKind, listed []ID) {
	entries, err := os.ReadDir(filepath.Join(c.dir, string(kind)))
	if err != nil {
		return
	}
	keep := make(map[string]bool, len(listed))
	for _, id := range listed {
		keep[id.String()] = true
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			_ = os.Remove(filepath.Join(c.dir, string(kind), e.Name()))
		}
	}
}
