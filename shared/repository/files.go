package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// FileKind is a directory of sealed records (as opposed to blobs in packs).
type FileKind string

const (
	SnapshotFile FileKind = "snapshots"
	IndexFile    FileKind = "index"
	LockFile     FileKind = "locks"
	// HeartbeatFile holds one record per agent, replaced at each beat.
	HeartbeatFile FileKind = "heartbeats"
)

func fileName(kind FileKind, id ID) string { return string(kind) + "/" + id.String() }

// Bounds on what is read whole from storage before it can be authenticated: a file anyone
// with write access to the bucket drops there must not make a reader allocate without end.
const (
	maxSmallObject = 64 << 10  // config, key files, leases
	maxRecord      = 64 << 20  // snapshot records, locks, heartbeats
	maxIndexFile   = 256 << 20 // one index file
	maxPackObject  = 64 << 20  // a pack read whole without the index's word for its size
)

func maxFileSize(kind FileKind) int64 {
	if kind == IndexFile {
		return maxIndexFile
	}
	return maxRecord
}

// sealFile is the stored form of a record: JSON, compressed and sealed, bound to its kind.
// Snapshot records go where the handle's blobs go (a control-plane handle seals them in its
// compartment); every other record is shared.
func (r *Repository) sealFile(kind FileKind, v any) ([]byte, error) {
	keys := r.shared
	if kind == SnapshotFile {
		keys = r.sealer
	}
	return r.sealWith(keys, kind, v)
}

// encoded is a record already in its stored form, which is not JSON (index files).
type encoded []byte

func (r *Repository) sealWith(keys *compartment, kind FileKind, v any) ([]byte, error) {
	plain, ok := v.(encoded)
	if !ok {
		var err error
		if plain, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	sealed := keys.crypt.seal(nil, r.enc.EncodeAll(plain, nil), []byte(kind))
	if keys.node == "" {
		return sealed, nil
	}
	// A record sealed in a node's compartment is wrapped, under the shared key, with the
	// node's name: full keys learn from it which node's keys to derive.
	envelope := make([]byte, 0, 1+len(keys.node)+len(sealed))
	envelope = append(envelope, byte(len(keys.node)))
	envelope = append(envelope, keys.node...)
	envelope = append(envelope, sealed...)
	return r.shared.crypt.seal(nil, envelope, envelopeAAD(kind)), nil
}

func envelopeAAD(kind FileKind) []byte { return []byte(string(kind) + "\x00node") }

// unseal opens a stored record: sealed with the shared key, in a node's compartment (inside
// an envelope naming the node), or in the control plane's.
func (r *Repository) unseal(kind FileKind, stored []byte) ([]byte, Sealing, error) {
	plain, err := r.shared.crypt.open(nil, stored, []byte(kind))
	if err == nil || kind != SnapshotFile {
		return plain, SealedShared, err
	}
	if envelope, err := r.shared.crypt.open(nil, stored, envelopeAAD(kind)); err == nil {
		if len(envelope) == 0 || len(envelope) < 1+int(envelope[0]) {
			return nil, Sealing{}, errors.New("the envelope of a node's record is cut short")
		}
		node, inner := string(envelope[1:1+envelope[0]]), envelope[1+envelope[0]:]
		keys, err := r.nodeCompartment(node)
		if err != nil {
			return nil, Sealing{Node: node}, err
		}
		plain, err := keys.crypt.open(nil, inner, []byte(kind))
		return plain, Sealing{Node: node}, err
	}
	if r.control != nil {
		if plain, err := r.control.crypt.open(nil, stored, []byte(kind)); err == nil {
			return plain, SealedControl, nil
		}
	}
	if r.key.Role == RoleVolumes {
		return nil, SealedControl, ErrNoControlKey
	}
	return nil, Sealing{}, err
}

// SaveFile stores v as JSON, compressed and sealed; its ID is the hash of the stored bytes.
func (r *Repository) SaveFile(ctx context.Context, kind FileKind, v any) (ID, error) {
	stored, err := r.sealFile(kind, v)
	if err != nil {
		return ID{}, err
	}
	return r.storeFile(ctx, kind, stored)
}

// SaveControlFile stores v like SaveFile, sealed in the control-plane compartment (with the
// shared key in a repository made before compartments existed).
func (r *Repository) SaveControlFile(ctx context.Context, kind FileKind, v any) (ID, error) {
	if r.key.Role == RoleVolumes {
		return ID{}, ErrNoControlKey
	}
	keys := r.shared
	if r.control != nil {
		keys = r.control
	}
	return r.saveWith(ctx, keys, kind, v)
}

// SaveNodeFile stores v like SaveFile, sealed in node's compartment (with the shared key in a
// repository made before compartments existed).
func (r *Repository) SaveNodeFile(ctx context.Context, node string, kind FileKind, v any) (ID, error) {
	keys := r.shared
	if r.compartmented() {
		var err error
		if keys, err = r.nodeCompartment(node); err != nil {
			return ID{}, err
		}
	}
	return r.saveWith(ctx, keys, kind, v)
}

// saveWith seals v with keys and stores it.
func (r *Repository) saveWith(ctx context.Context, keys *compartment, kind FileKind, v any) (ID, error) {
	stored, err := r.sealWith(keys, kind, v)
	if err != nil {
		return ID{}, err
	}
	return r.storeFile(ctx, kind, stored)
}

func (r *Repository) storeFile(ctx context.Context, kind FileKind, stored []byte) (ID, error) {
	id := contentID(stored)
	if err := r.be.Put(ctx, fileName(kind, id), stored); err != nil {
		return ID{}, fmt.Errorf("store %s %s: %w", kind, id.Short(), err)
	}
	return id, nil
}

// SaveNamedFile stores v like SaveFile, under an ID derived from key rather than from the
// content, replacing what was stored under the same key. The key is not revealed.
func (r *Repository) SaveNamedFile(ctx context.Context, kind FileKind, key string, v any) error {
	return r.storeNamedFile(ctx, kind, key, v, r.be.Put)
}

// CreateNamedFile stores v under key like SaveNamedFile, only when nothing is stored there
// yet: of several writers creating one key, exactly one succeeds; the others get an error
// wrapping storage.ErrExists.
func (r *Repository) CreateNamedFile(ctx context.Context, kind FileKind, key string, v any) error {
	return r.storeNamedFile(ctx, kind, key, v, r.be.Create)
}

func (r *Repository) storeNamedFile(ctx context.Context, kind FileKind, key string, v any, store func(context.Context, string, []byte) error) error {
	stored, err := r.sealFile(kind, v)
	if err != nil {
		return err
	}
	id := r.namedFileID(kind, key)
	if err := store(ctx, fileName(kind, id), stored); err != nil {
		return fmt.Errorf("store %s %s: %w", kind, id.Short(), err)
	}
	return nil
}

// namedFileID is where SaveNamedFile stores the record of a key.
func (r *Repository) namedFileID(kind FileKind, key string) ID {
	return r.shared.hash.sum([]byte("named\x00" + string(kind) + "\x00" + key))
}

// LoadNamedFile reads the record SaveNamedFile stored under key; one never stored fails with
// an error wrapping storage.ErrNotFound.
func (r *Repository) LoadNamedFile(ctx context.Context, kind FileKind, key string, v any) error {
	return r.LoadFile(ctx, kind, r.namedFileID(kind, key), v)
}

// LoadFile reads a record into v; damage is reported as ErrCorrupt.
func (r *Repository) LoadFile(ctx context.Context, kind FileKind, id ID, v any) error {
	_, err := r.LoadSealedFile(ctx, kind, id, v)
	return err
}

// LoadSealedFile reads a record into v like LoadFile, and says with which key it was sealed.
// A record this key cannot open at all is reported as ErrCorrupt, or as ErrNoControlKey or
// ErrOtherNode when it is sealed in a compartment this key does not hold.
func (r *Repository) LoadSealedFile(ctx context.Context, kind FileKind, id ID, v any) (Sealing, error) {
	stored, err := r.getFile(ctx, kind, id)
	if err != nil {
		return Sealing{}, fmt.Errorf("read %s %s: %w", kind, id.Short(), err)
	}
	return r.decodeFile(kind, id, stored, v)
}

// decodeFile opens a stored record into v.
func (r *Repository) decodeFile(kind FileKind, id ID, stored []byte, v any) (Sealing, error) {
	plain, sealing, err := r.openFile(kind, stored)
	if err != nil {
		return sealing, fmt.Errorf("%s %s: %w", kind, id.Short(), err)
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return sealing, fmt.Errorf("%s %s: %w: %v", kind, id.Short(), ErrCorrupt, err)
	}
	return sealing, nil
}

func (r *Repository) openFile(kind FileKind, stored []byte) ([]byte, Sealing, error) {
	compressed, sealing, err := r.unseal(kind, stored)
	switch {
	case errors.Is(err, ErrNoControlKey) || errors.Is(err, ErrOtherNode):
		return nil, sealing, err
	case err != nil:
		return nil, sealing, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	plain, err := r.dec.DecodeAll(compressed, nil)
	if err != nil {
		return nil, sealing, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
	}
	return plain, sealing, nil
}

// ListFiles calls fn with the ID of every record of a kind.
func (r *Repository) ListFiles(ctx context.Context, kind FileKind, fn func(ID) error) error {
	return r.be.List(ctx, string(kind)+"/", func(name string, _ int64) error {
		id, err := ParseID(name[len(kind)+1:])
		if err != nil {
			return nil // not ours
		}
		return fn(id)
	})
}

// LoadFiles reads every record of a kind, each into a fresh T handed to keep with its ID.
// Records that cannot be read are returned as errors, so that one damaged record hides
// nothing else; the error is for the listing itself.
func LoadFiles[T any](ctx context.Context, r *Repository, kind FileKind, keep func(ID, *T)) ([]error, error) {
	return LoadSealedFiles(ctx, r, kind, func(id ID, v *T, _ Sealing) { keep(id, v) })
}

// LoadSealedFiles is LoadFiles, saying with which key each record was sealed. Records sealed
// in a compartment this key does not hold are passed over: the control plane's, or another
// node's.
func LoadSealedFiles[T any](ctx context.Context, r *Repository, kind FileKind, keep func(ID, *T, Sealing)) ([]error, error) {
	var ids []ID
	if err := r.ListFiles(ctx, kind, func(id ID) error { ids = append(ids, id); return nil }); err != nil {
		return nil, err
	}
	if r.cache != nil && cachedKind(kind) {
		r.cache.keepOnly(kind, ids)
	}
	var b *bundles
	if kind == SnapshotFile {
		b = r.loadBundles(ctx, ids)
	}
	rebundle := b != nil && b.worthWriting(ids)
	var kept atomic.Int64 // bytes kept for the bundle: no more than it takes
	// Records are read a few at a time: thousands of them, one request each, would otherwise
	// take as many round trips. Each failure is its record's own and stops nothing.
	type loaded struct {
		v       *T
		sealing Sealing
		stored  []byte // kept for a new bundle
		err     error
	}
	out := make([]loaded, len(ids))
	var g errgroup.Group
	g.SetLimit(loadWorkers)
	for i, id := range ids {
		g.Go(func() error {
			stored, err := r.getListedFile(ctx, kind, id, b)
			if err != nil {
				out[i].err = fmt.Errorf("read %s %s: %w", kind, id.Short(), err)
				return nil
			}
			v := new(T)
			sealing, err := r.decodeFile(kind, id, stored, v)
			out[i] = loaded{v: v, sealing: sealing, err: err}
			if rebundle && contentID(stored) == id && kept.Add(int64(len(stored))) <= maxBundle {
				out[i].stored = stored
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rebundle {
		var records [][]byte
		for _, l := range out {
			if l.stored != nil {
				records = append(records, l.stored)
			}
		}
		r.writeBundle(ctx, b, records)
	}
	var problems []error
	for i, l := range out {
		switch {
		case errors.Is(l.err, ErrNoControlKey) || errors.Is(l.err, ErrOtherNode):
		case l.err != nil:
			problems = append(problems, l.err)
		default:
			keep(ids[i], l.v, l.sealing)
		}
	}
	return problems, nil
}

// Records read at once by LoadSealedFiles.
const loadWorkers = 16

// DeleteNamedFile removes the record SaveNamedFile stored under key.
func (r *Repository) DeleteNamedFile(ctx context.Context, kind FileKind, key string) error {
	return r.DeleteFile(ctx, kind, r.namedFileID(kind, key))
}

// DeleteFile removes a record.
func (r *Repository) DeleteFile(ctx context.Context, kind FileKind, id ID) error {
	return r.be.Delete(ctx, fileName(kind, id))
}

// IndexProblems lists the index files that could not be read when the repository was opened.
func (r *Repository) IndexProblems() []error { return r.indexProblems }

// ReloadIndex reads the index files written since the index was read, to see what other
// writers added; when files were removed or replaced (a prune), it reads the whole index
// again. Call it with no blob saves pending.
func (r *Repository) ReloadIndex(ctx context.Context) error {
	ids, oversized, err := r.listIndex(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	known := map[ID]bool{}
	for _, id := range r.indexFiles {
		known[id] = true
	}
	var added []ID
	listed := 0
	for _, id := range ids {
		switch {
		case known[id]:
			listed++
		case !r.supersededIndex[id]:
			added = append(added, id)
		}
	}
	gone, problems := listed < len(known), len(r.indexProblems) > 0
	r.mu.Unlock()
	if !gone && !problems {
		if len(added) == 0 {
			return nil
		}
		files, errs := r.readIndexFiles(ctx, added, nil)
		failed := slices.ContainsFunc(errs, func(err error) bool { return err != nil })
		replaces := slices.ContainsFunc(files, func(f *indexFile) bool { return f != nil && len(f.Supersedes) > 0 })
		if !failed && !replaces {
			r.addIndexFiles(added, files)
			return nil
		}
	}
	// A prune replaced files: what they listed may be gone, so start over.
	r.idx = newIndex()
	r.indexFiles, r.indexProblems, r.supersededIndex = nil, oversized, map[ID]bool{}
	return r.loadIndex(ctx, ids)
}

// listIndex lists the index files; those too large to be index files are left out unread,
// and said in the second list.
func (r *Repository) listIndex(ctx context.Context) ([]ID, []error, error) {
	var ids []ID
	var oversized []error
	err := r.be.List(ctx, string(IndexFile)+"/", func(name string, size int64) error {
		id, err := ParseID(name[len(IndexFile)+1:])
		switch {
		case err != nil: // not ours
		case size > maxIndexFile:
			oversized = append(oversized, fmt.Errorf("index %s left out: %d bytes, at most %d: %w", id.Short(), size, maxIndexFile, storage.ErrTooLarge))
		default:
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list index: %w", err)
	}
	return ids, oversized, nil
}

// loadIndex reads the index files ids, in parallel, into a new index whose blobs go to one
// table as each file is decoded, so that no more than a few decoded files are held at once.
func (r *Repository) loadIndex(ctx context.Context, ids []ID) error {
	dir := ""
	if r.cache != nil {
		dir = r.cache.dir
	}
	b := newTableBuilder(dir)
	files, errs := r.readIndexFiles(ctx, ids, func(f *indexFile) {
		for i, p := range f.Packs {
			b.add(p)
			f.Packs[i].Blobs = nil
		}
	})
	// A damaged index file must not lock the operator out of everything else: its packs
	// stay unknown, verify reports it, and the rest of the repository keeps working.
	for _, err := range errs {
		if err != nil {
			r.indexProblems = append(r.indexProblems, err)
		}
	}
	r.addIndexFiles(ids, files)
	table, err := b.finish(func(id ID) bool { _, ok := r.idx.packSize(id); return ok })
	if err != nil {
		return err
	}
	r.idx.setTable(table, dir)
	if table.mapped() {
		// Reading a large index leaves much garbage behind (the decoded files): hand it back
		// now, so that the page cache, which holds the table, has the room under a limit.
		debug.FreeOSMemory()
	}
	if r.cache != nil {
		r.keepTreePacks()
	}
	return nil
}

// addIndexFiles puts what index files list into the index, leaving out the files that one
// of them, or one read before, replaces: a prune killed before deleting them leaves them
// listed, naming packs it removed.
func (r *Repository) addIndexFiles(ids []ID, files []*indexFile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range files {
		if f != nil {
			for _, s := range f.Supersedes {
				r.supersededIndex[s] = true
			}
		}
	}
	for i, f := range files {
		if f == nil || r.supersededIndex[ids[i]] {
			continue
		}
		r.indexFiles = append(r.indexFiles, ids[i])
		for _, p := range f.Packs {
			r.idx.addPack(p)
		}
	}
}

// readIndexFiles reads and decodes index files in parallel, and hands each to take, when not
// nil, one at a time. A file removed meanwhile (by a prune, after it wrote its replacement)
// comes back nil without an error.
func (r *Repository) readIndexFiles(ctx context.Context, ids []ID, take func(*indexFile)) ([]*indexFile, []error) {
	files := make([]*indexFile, len(ids))
	errs := make([]error, len(ids))
	var taking sync.Mutex
	// Each file's failure is its own (reported beside the others), so no error stops the group.
	// Four at a time: enough to hide the storage's latency, few enough that the files being
	// decoded (about 20 MB each at their largest) stay a small part of a plugin's memory.
	var g errgroup.Group
	g.SetLimit(4)
	for i, id := range ids {
		g.Go(func() error {
			stored, err := r.getFile(ctx, IndexFile, id)
			if errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			if err != nil {
				errs[i] = fmt.Errorf("read index %s: %w", id.Short(), err)
				return nil
			}
			plain, _, err := r.openFile(IndexFile, stored)
			if err != nil {
				errs[i] = fmt.Errorf("index %s: %w", id.Short(), err)
				return nil
			}
			files[i], errs[i] = decodeIndexFile(plain)
			if files[i] != nil && take != nil {
				taking.Lock()
				take(files[i])
				taking.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return files, errs
}

// RewriteIndex replaces every index file that was read at open with one that lists all
// packs but drop. The new file names the ones it replaces, so a crash between writing it and
// deleting them leaves a consistent index. Index files that could not be read are left in
// place, for a later repair.
func (r *Repository) RewriteIndex(ctx context.Context, drop []ID) error {
	// Files an earlier file replaced, left by a prune that died before removing them, are
	// replaced again: only a stored file names them, and once the one that does is replaced
	// in its turn they would count again, listing packs removed since.
	listed, _, err := r.listIndex(ctx)
	if err != nil {
		return err
	}
	dropped := map[ID]bool{}
	for _, id := range drop {
		dropped[id] = true
	}
	byPack := map[ID][]indexBlob{}
	sealed := map[ID]indexPack{}
	r.idx.eachBlob(func(id ID, loc blobLoc, node string) {
		if !dropped[loc.Pack] {
			byPack[loc.Pack] = append(byPack[loc.Pack], indexBlob{ID: id, Type: loc.Type, Offset: loc.Offset, Length: loc.Length, RawLength: loc.RawLength})
			sealed[loc.Pack] = indexPack{Control: loc.Control, Node: node}
		}
	})
	r.mu.Lock()
	supersedes := append([]ID(nil), r.indexFiles...)
	for _, id := range listed {
		if r.supersededIndex[id] {
			supersedes = append(supersedes, id)
		}
	}
	r.mu.Unlock()
	var packs []indexPack
	for pack, blobs := range byPack {
		size, _ := r.idx.packSize(pack)
		packs = append(packs, indexPack{ID: pack, Size: size, Blobs: blobs, Control: sealed[pack].Control, Node: sealed[pack].Node})
	}

	// Only the last file names the ones it replaces: until it is stored, the new files and
	// the old ones are all read, and list the same blobs where they overlap.
	var written []ID
	parts := splitIndex(packs)
	if len(parts) == 0 {
		parts = [][]indexPack{nil}
	}
	for i, part := range parts {
		f := indexFile{Packs: part}
		if i == len(parts)-1 {
			f.Supersedes = supersedes
		}
		newID, err := r.SaveFile(ctx, IndexFile, encoded(encodeIndexFile(&f)))
		if err != nil {
			return fmt.Errorf("write the new index: %w", err)
		}
		written = append(written, newID)
	}
	for _, old := range supersedes {
		if err := r.DeleteFile(ctx, IndexFile, old); err != nil {
			return fmt.Errorf("remove replaced index %s: %w", old.Short(), err)
		}
	}
	r.mu.Lock()
	r.indexFiles = written
	for _, old := range supersedes {
		r.supersededIndex[old] = true
	}
	r.mu.Unlock()
	r.idx.drop(dropped)
	return nil
}

// DeletePack removes a pack from storage; call it only after RewriteIndex dropped it.
func (r *Repository) DeletePack(ctx context.Context, id ID) error {
	if err := r.be.Delete(ctx, packName(id)); err != nil {
		return fmt.Errorf("remove pack %s: %w", id.Short(), err)
	}
	return nil
}
