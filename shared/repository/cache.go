package repository

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sync/singleflight"
)

// A repository can keep a local cache of the records whose names are the hash of their
// stored bytes: snapshot records and index files. Such a record never changes, and a cached
// copy is checked against its name before it is used, so a stale, torn or tampered cache
// costs a download, never a wrong answer. Copies stay sealed, as in the bucket. With it,
// listing thousands of snapshots reads one listing from the storage and local files.
type recordCache struct {
	dir   string             // <dir>/<repository ID>/<kind>/<ID>
	packs singleflight.Group // downloads of tree packs, one per pack at a time
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
	if stored, ok := c.get(kind, id); ok {
		return stored, nil
	}
	stored, err := r.be.Get(ctx, fileName(kind, id), maxFileSize(kind))
	if err == nil && contentID(stored) == id {
		c.put(kind, id, stored)
	}
	return stored, err
}

// get returns the cached copy of a record when it is whole.
func (c *recordCache) get(kind FileKind, id ID) ([]byte, bool) {
	stored, err := os.ReadFile(c.path(kind, id))
	if err != nil || int64(len(stored)) > maxFileSize(kind) || contentID(stored) != id {
		return nil, false
	}
	return stored, true
}

// getListedFile reads a listed record like getFile, taking it from the bundle when the bundle
// carries it: the bundle is cached whole, so its records need no copies of their own.
func (r *Repository) getListedFile(ctx context.Context, kind FileKind, id ID, b *bundles) ([]byte, error) {
	if b != nil {
		if stored, ok := b.records[id]; ok {
			return stored, nil
		}
	}
	return r.getFile(ctx, kind, id)
}

// put stores a copy, best effort: a cache that cannot be written only costs downloads. No
// sync: a torn copy fails its check and is fetched again.
func (c *recordCache) put(kind FileKind, id ID, stored []byte) {
	_ = writeCopy(c.path(kind, id), stored)
}

// writeCopy writes a file of the cache through a temporary name, so that readers see it
// whole or not at all.
func writeCopy(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp-" + NewRandomID().Short()
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
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

// Tree packs are cached whole as well: an incremental backup reads its parent's listings,
// and a restore its snapshot's, one small tree blob per directory, and a request each costs
// a round trip. A writer keeps a copy of each tree pack it stores, so the next backup of a
// volume reads its parent from local files; a reader on another machine downloads each tree
// pack once. Blobs read from a copy are authenticated as they are from the bucket, and a
// copy that fails is dropped and the blob read from the bucket.
func (c *recordCache) treePackPath(id ID) string { return filepath.Join(c.dir, "trees", id.String()) }

// loadCachedTree opens a tree blob from the cached copy of its pack, downloading the pack
// first when there is none.
func (r *Repository) loadCachedTree(ctx context.Context, bi BlobInfo) ([]byte, error) {
	c := r.cache
	path := c.treePackPath(bi.Pack)
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		_, err, _ = c.packs.Do(bi.Pack.String(), func() (any, error) { return nil, r.cacheTreePack(ctx, bi.Pack) })
		if err != nil {
			return nil, err
		}
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sealed := make([]byte, bi.Length)
	if _, err := f.ReadAt(sealed, int64(bi.Offset)); err != nil {
		_ = os.Remove(path)
		return nil, err
	}
	data, err := r.OpenBlob(bi, sealed)
	if err != nil {
		_ = os.Remove(path)
	}
	return data, err
}

func (r *Repository) cacheTreePack(ctx context.Context, id ID) error {
	if _, err := os.Stat(r.cache.treePackPath(id)); err == nil {
		return nil // another caller's download just ended
	}
	size, ok := r.idx.packSize(id)
	if !ok {
		return fmt.Errorf("pack %s: %w", id.Short(), ErrBlobMissing)
	}
	data := make([]byte, size)
	if err := r.be.ReadAt(ctx, packName(id), 0, data); err != nil {
		return err
	}
	if contentID(data) != id {
		return fmt.Errorf("pack %s does not match its name", id.Short())
	}
	return r.cache.putTreePack(id, data)
}

// putTreePack stores a copy of a tree pack, best effort.
func (c *recordCache) putTreePack(id ID, data []byte) error {
	return writeCopy(c.treePackPath(id), data)
}

// keepTreePacks removes the copies of tree packs the index no longer has.
func (r *Repository) keepTreePacks() {
	dir := filepath.Join(r.cache.dir, "trees")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		id, err := ParseID(e.Name())
		if _, known := r.idx.packSize(id); err != nil || !known {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
