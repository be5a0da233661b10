package repository

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// Bundles carry many snapshot records in one object, so that the first listing on a machine
// (an empty cache) reads a handful of objects instead of one per record; a machine whose cache
// is warm reads the bundle once, from then on from its cache. A bundle holds the
// records' stored bytes, still sealed, and nothing else: a record is taken from it only when
// the storage lists the record and the bytes hash to its name, so a stale or tampered bundle
// costs downloads, never a wrong answer. Any client that lists the records and finds more
// than bundleAfter of them outside the largest bundle writes a new one and removes the ones it
// covers; one that may not write (a read-only credential) only reads them.
const (
	bundlePrefix = "bundles/"
	bundleMagic  = "swarmbackup records 1\n"
	// bundleAfter is how many records may be outside the largest bundle before a lister
	// writes a new one (a thousand downloads take about a second); with fewer records in
	// all, there are no bundles.
	bundleAfter = 1000
	// maxBundle bounds a bundle (about 40,000 records of 800 bytes); records beyond it are
	// read one by one.
	maxBundle = 32 << 20
)

// bundles is what a listing of snapshot records learnt of the bundles: the records of the
// largest, by ID, for the listing to take instead of downloading them.
type bundles struct {
	records map[ID][]byte
	names   []string // every bundle listed
	largest string
}

// loadBundles reads the largest bundle when there are enough records for bundles to matter.
// Failures only cost the bundle: the records are read one by one instead.
func (r *Repository) loadBundles(ctx context.Context, listed []ID) *bundles {
	b := &bundles{}
	if len(listed) <= bundleAfter {
		return b
	}
	var size int64
	err := r.be.List(ctx, bundlePrefix, func(name string, n int64) error {
		b.names = append(b.names, name)
		if n > size && n <= maxBundle {
			b.largest, size = name, n
		}
		return nil
	})
	if err != nil {
		slog.Debug("list record bundles", "err", err)
		return b
	}
	if b.largest == "" {
		return b
	}
	stored, err := r.getBundle(ctx, b.largest)
	if err != nil {
		slog.Debug("read record bundle", "bundle", b.largest, "err", err)
		return b
	}
	b.records = decodeBundle(stored, listed)
	return b
}

// worthWriting reports whether enough listed records are outside the largest bundle for a
// lister to write a new one.
func (b *bundles) worthWriting(listed []ID) bool {
	if len(listed) <= bundleAfter {
		return false
	}
	outside := 0
	for _, id := range listed {
		if _, ok := b.records[id]; !ok {
			outside++
		}
	}
	return outside > bundleAfter
}

// getBundle reads a bundle, through the cache when there is one: bundles are named by the
// hash of their bytes, as records are.
func (r *Repository) getBundle(ctx context.Context, name string) ([]byte, error) {
	id, err := ParseID(strings.TrimPrefix(name, bundlePrefix))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: not named by its hash", name)
	}
	var path string
	if r.cache != nil {
		path = r.cache.bundlePath(id)
		if stored, err := os.ReadFile(path); err == nil && contentID(stored) == id {
			return stored, nil
		}
	}
	stored, err := r.be.Get(ctx, name, maxBundle)
	if err != nil {
		return nil, err
	}
	if contentID(stored) != id {
		return nil, fmt.Errorf("bundle %s: %w: its bytes do not match its name", name, ErrCorrupt)
	}
	if path != "" {
		r.cache.keepOnlyBundle(id)
		_ = writeCopy(path, stored)
	}
	return stored, nil
}

func (c *recordCache) bundlePath(id ID) string { return filepath.Join(c.dir, "bundles", id.String()) }

// keepOnlyBundle removes cached bundles other than id: a machine needs only the newest.
func (c *recordCache) keepOnlyBundle(id ID) {
	dir := filepath.Join(c.dir, "bundles")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != id.String() {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// decodeBundle returns the records of a bundle that are listed and whose bytes hash to their
// name; the rest is passed over, as is everything after a damaged length.
func decodeBundle(stored []byte, listed []ID) map[ID][]byte {
	if !bytes.HasPrefix(stored, []byte(bundleMagic)) {
		return nil
	}
	want := make(map[ID]bool, len(listed))
	for _, id := range listed {
		want[id] = true
	}
	out := map[ID][]byte{}
	rest := stored[len(bundleMagic):]
	for len(rest) > 0 {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) || n > uint64(maxFileSize(SnapshotFile)) {
			break
		}
		rec := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		if id := contentID(rec); want[id] {
			out[id] = rec
		}
	}
	return out
}

// encodeBundle packs records into a bundle, stopping before maxBundle.
func encodeBundle(records [][]byte) []byte {
	out := []byte(bundleMagic)
	for _, rec := range records {
		if len(out)+binary.MaxVarintLen64+len(rec) > maxBundle {
			break
		}
		out = binary.AppendUvarint(out, uint64(len(rec)))
		out = append(out, rec...)
	}
	return out
}

// writeBundle stores the records as a new bundle and removes the bundles listed before,
// which it covers. Best effort: a client that may not write leaves bundles as they are.
func (r *Repository) writeBundle(ctx context.Context, b *bundles, records [][]byte) {
	stored := encodeBundle(records)
	id := contentID(stored)
	name := bundlePrefix + id.String()
	if err := r.be.Put(ctx, name, stored); err != nil {
		slog.Debug("write record bundle", "err", err)
		return
	}
	if r.cache != nil {
		r.cache.keepOnlyBundle(id)
		_ = writeCopy(r.cache.bundlePath(id), stored)
	}
	for _, old := range b.names {
		if old == name {
			continue
		}
		if err := r.be.Delete(ctx, old); err != nil && !errors.Is(err, storage.ErrNotFound) {
			slog.Debug("remove record bundle", "bundle", old, "err", err)
		}
	}
}
