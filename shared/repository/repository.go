// Package repository is swarmbackup's storage format: content-defined blobs, deduplicated by
// a keyed hash, compressed with zstd, sealed with AES-256-GCM and bundled into large packs,
// plus sealed index files and records (snapshots) that name trees of blobs.
//
// Layout on a storage backend:
//
//	config                 plaintext: format version and repository ID
//	keys/<random>          the master key, sealed with a key derived from the password (scrypt)
//	data/<xx>/<packID>     packs; a pack's ID is the BLAKE3 hash of its bytes
//	index/<ID>             sealed lists of packs and the blobs in them
//	snapshots/<ID>         sealed snapshot records
//	locks/<ID>             sealed leases
//	immutable/<ID>         sealed: how long an Object Lock bucket retains everything (immutable.go)
//
// Every name is random or a hash of sealed bytes: names reveal nothing about content.
// A snapshot is written only after its packs and index are stored, so a crash at any point
// leaves no partial snapshot, only unreferenced packs that prune removes.
package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// FormatVersion is the version of the layout above; a repository of another version is refused.
const FormatVersion = 1

// Target pack size: large enough that object count stays small, small enough that a few
// packs in flight keep memory modest.
const packSize = 8 << 20

// Uploads in flight at once; a full queue makes writers wait, which bounds memory.
const maxUploads = 2

// ErrNotInitialized says the backend holds no repository yet.
var ErrNotInitialized = errors.New("no repository here yet")

type repoConfig struct {
	Version int `json:"version"`
	ID      ID  `json:"id"`
}

// Repository is an open repository. Its methods are safe for concurrent use.
type Repository struct {
	agent string // see SetAgent
	now   func() time.Time
	be    storage.Backend
	cfg   repoConfig
	key   masterKey // what the key file opened held (roles.go)
	// keyName is the key file the password opened.
	keyName string
	shared  *compartment  // the shared key: index files, records, volume data
	control *compartment  // nil: this key holds no control-plane compartment
	node    *compartment  // a volumes key's own node's compartment, or nil
	derived *derivedNodes // every node's compartment, for keys that hold the control plane's
	sealer  *compartment  // where this handle's blobs and snapshot records go
	idx     *index
	enc     *zstd.Encoder
	dec     *zstd.Decoder

	mu       sync.Mutex
	inflight map[ID]struct{} // blobs in a packer or an upload, not yet indexed
	written  []indexPack     // packs stored since the last Flush
	// writtenBlobs counts the blobs of written.
	writtenBlobs int
	pools        map[BlobType]chan *packer
	uploads      sync.WaitGroup
	slots        chan struct{}
	uploadErr    error
	packBufs     sync.Pool // *[]byte of packBufSize capacity
	scratch      sync.Pool // *[]byte for compression

	warnings      []error // see Warnings
	indexProblems []error
	indexFiles    []ID // the index files read at open (or written since by RewriteIndex)
	// supersededIndex holds index files that another one replaces, listed or not.
	supersededIndex map[ID]bool
	horizon         time.Time // see keepImmutable
	cache           *recordCache
}

// Backend returns the storage the repository lives on.
func (r *Repository) Backend() storage.Backend { return r.be }

// ID identifies the repository.
func (r *Repository) ID() ID { return r.cfg.ID }

// StillThere reports whether the storage still holds the repository this handle opened, and
// not one initialised anew in its place, whose keys this handle does not have.
func (r *Repository) StillThere(ctx context.Context) (bool, error) {
	raw, err := r.be.Get(ctx, "config", maxSmallObject)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var cfg repoConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return false, fmt.Errorf("%s: the repository config is damaged: %w", r.be.Location(), err)
	}
	return cfg.ID == r.cfg.ID, nil
}

// Option adjusts how a repository is opened.
type Option func(*Repository)

// WithCache keeps copies of snapshot records and index files below dir (cache.go).
func WithCache(dir string) Option { return func(r *Repository) { r.UseCache(dir) } }

// Open opens an existing repository with password.
func Open(ctx context.Context, be storage.Backend, password string, opts ...Option) (*Repository, error) {
	raw, err := be.Get(ctx, "config", maxSmallObject)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", be.Location(), ErrNotInitialized)
	}
	if err != nil {
		return nil, err
	}
	var cfg repoConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: the repository config is damaged: %w", be.Location(), err)
	}
	if cfg.Version != FormatVersion {
		return nil, fmt.Errorf("%s: repository format %d; this version reads format %d", be.Location(), cfg.Version, FormatVersion)
	}
	mk, keyName, warnings, err := findKey(ctx, be, password, cfg.ID)
	if err != nil {
		return nil, err
	}
	r, err := newRepository(be, cfg, mk, keyName)
	if err != nil {
		return nil, err
	}
	r.warnings = warnings
	for _, o := range opts {
		o(r)
	}
	ids, oversized, err := r.listIndex(ctx)
	if err != nil {
		return nil, err
	}
	r.indexProblems = oversized
	if err := r.loadIndex(ctx, ids); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenOrInit opens the repository, initialising it first when the backend is empty: the
// first write to an empty repository creates it.
func OpenOrInit(ctx context.Context, be storage.Backend, password string, opts ...Option) (*Repository, error) {
	r, err := Open(ctx, be, password, opts...)
	if !errors.Is(err, ErrNotInitialized) {
		return r, err
	}
	return Init(ctx, be, password, opts...)
}

// Init creates a repository. When another writer initialises the same backend at the same
// moment, the config is created by exactly one of them and the others open that repository.
func Init(ctx context.Context, be storage.Backend, password string, opts ...Option) (*Repository, error) {
	cfg := repoConfig{Version: FormatVersion, ID: NewRandomID()}
	mk := newMasterKey()
	mk.RepoID = cfg.ID
	sealed, err := sealMasterKey(mk, password)
	if err != nil {
		return nil, err
	}
	keyName := "keys/" + NewRandomID().String()
	if err := be.Put(ctx, keyName, sealed); err != nil {
		return nil, fmt.Errorf("initialise repository at %s: %w", be.Location(), err)
	}
	raw, _ := json.Marshal(cfg)
	err = be.Create(ctx, "config", raw)
	if errors.Is(err, storage.ErrExists) {
		_ = be.Delete(ctx, keyName)
		return Open(ctx, be, password, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("initialise repository at %s: %w", be.Location(), err)
	}
	r, err := newRepository(be, cfg, mk, keyName)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// findKey finds the key file the password opens. Key files that cannot be used (damaged,
// too large, asking for a KDF beyond the bounds) are passed over and returned as warnings:
// one bad file in the bucket must not lock everyone out.
func findKey(ctx context.Context, be storage.Backend, password string, repoID ID) (masterKey, string, []error, error) {
	type listed struct {
		name string
		size int64
	}
	var keys []listed
	err := be.List(ctx, "keys/", func(name string, size int64) error {
		keys = append(keys, listed{name, size})
		return nil
	})
	if err != nil {
		return masterKey{}, "", nil, err
	}
	if len(keys) == 0 {
		return masterKey{}, "", nil, fmt.Errorf("%s: the repository has no key", be.Location())
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	var warnings []error
	var otherRepo ID
	for _, k := range keys {
		data, err := be.Get(ctx, k.name, maxSmallObject)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			continue
		case errors.Is(err, storage.ErrTooLarge):
			warnings = append(warnings, fmt.Errorf("key file %s passed over: %w", k.name, err))
			continue
		case err != nil:
			return masterKey{}, "", nil, err
		}
		mk, err := openKeyFile(data, password)
		switch {
		case errors.Is(err, ErrWrongPassword):
			continue
		case err != nil:
			warnings = append(warnings, fmt.Errorf("key file %s passed over: %w", k.name, err))
			continue
		case mk.RepoID != repoID:
			otherRepo = mk.RepoID
			continue
		}
		return mk, k.name, warnings, nil
	}
	if !otherRepo.IsNull() {
		return masterKey{}, "", nil, fmt.Errorf("%s: the password opens a key of repository %s, but the config names repository %s: the config was changed or replaced", be.Location(), otherRepo.Short(), repoID.Short())
	}
	return masterKey{}, "", nil, fmt.Errorf("%s: %w", be.Location(), ErrWrongPassword)
}

// Warnings lists what was passed over when the repository was opened (unusable key files).
func (r *Repository) Warnings() []error { return r.warnings }

func newRepository(be storage.Backend, cfg repoConfig, mk masterKey, keyName string) (*Repository, error) {
	shared, err := newCompartment(mk.Encrypt, mk.Hash)
	if err != nil {
		return nil, err
	}
	r, err := newHandle(be, cfg, shared)
	if err != nil {
		return nil, err
	}
	r.key, r.keyName = mk, keyName
	if len(mk.ControlEncrypt) > 0 {
		if r.control, err = newCompartment(mk.ControlEncrypt, mk.ControlHash); err != nil {
			return nil, err
		}
		r.control.control = true
		r.derived = &derivedNodes{byNode: map[string]*compartment{}}
	}
	if mk.Node != "" {
		if r.node, err = newCompartment(mk.NodeEncrypt, mk.NodeHash); err != nil {
			return nil, err
		}
		r.node.node = mk.Node
	}
	return r, nil
}

// newHandle builds a handle on an opened repository, with an empty index and buffers of its own.
func newHandle(be storage.Backend, cfg repoConfig, shared *compartment) (*Repository, error) {
	// Two encoders, made on first use (about 300 KiB each): the archiver's two file workers
	// compress at once instead of queueing for one.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(2))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, err
	}
	r := &Repository{
		be: be, cfg: cfg, shared: shared, sealer: shared,
		idx: newIndex(), enc: enc, dec: dec, now: time.Now,
		inflight: map[ID]struct{}{}, supersededIndex: map[ID]bool{},
		pools: map[BlobType]chan *packer{},
		slots: make(chan struct{}, maxUploads),
	}
	r.packBufs.New = func() any { b := make([]byte, 0, packBufSize); return &b }
	r.scratch.New = func() any { b := make([]byte, 0, 1<<20); return &b }
	for t, n := range map[BlobType]int{DataBlob: 2, TreeBlob: 1} {
		pool := make(chan *packer, n)
		for range n {
			pool <- r.newPacker()
		}
		r.pools[t] = pool
	}
	return r, nil
}

// A pack buffer holds a full pack, a largest last blob (1 MiB chunks) and the header
// without growing.
const packBufSize = packSize + 1<<20 + 256<<10

// newPacker returns an empty packer; its buffer is taken at its first blob, so that a handle
// that never saves a blob holds none.
func (r *Repository) newPacker() *packer { return &packer{} }

// Fork returns a new handle on the repository for one writer: it shares the keys and the
// storage, starts from a copy of this handle's index, and has buffers of its own. Unlike
// Open it neither derives the key from the password nor reads the index files again.
func (r *Repository) Fork() (*Repository, error) {
	f, err := newHandle(r.be, r.cfg, r.shared)
	if err != nil {
		return nil, err
	}
	f.agent, f.now = r.agent, r.now
	f.key, f.keyName, f.control, f.node, f.derived = r.key, r.keyName, r.control, r.node, r.derived
	f.sealer, f.cache = r.sealer, r.cache
	r.mu.Lock()
	f.idx = r.idx.layer()
	f.indexFiles = slices.Clone(r.indexFiles)
	f.indexProblems = slices.Clone(r.indexProblems)
	f.supersededIndex = maps.Clone(r.supersededIndex)
	f.horizon = r.horizon
	r.mu.Unlock()
	return f, nil
}

// Hash returns the ID data would have as a blob.
func (r *Repository) Hash(data []byte) ID { return r.sealer.hash.sum(data) }

// ChunkKey is the key content-defined chunking uses for what this handle stores.
func (r *Repository) ChunkKey() []byte { return r.sealer.chunkKey }

// HasBlob reports whether a blob is stored or on its way.
func (r *Repository) HasBlob(id ID) bool {
	if _, ok := r.idx.lookup(id); ok {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.inflight[id]
	return ok
}

// SaveBlob stores data as a blob unless the repository has it already; it reports whether
// the blob was new. The blob is durable only after Flush.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte) (ID, bool, error) {
	id := r.sealer.hash.sum(data)
	if _, ok := r.idx.lookup(id); ok {
		return id, false, nil
	}
	r.mu.Lock()
	if _, ok := r.inflight[id]; ok {
		r.mu.Unlock()
		return id, false, nil
	}
	r.inflight[id] = struct{}{}
	err := r.uploadErr
	r.mu.Unlock()
	if err != nil {
		return id, false, err
	}

	// Compress outside the packer, so that workers compress in parallel; sealing is cheap
	// and writes straight into the pack buffer.
	scratch := r.scratch.Get().(*[]byte)
	defer r.scratch.Put(scratch)
	payload, compressed := r.compress(data, (*scratch)[:0])
	if compressed {
		*scratch = payload[:0] // keep the grown buffer; never alias the caller's data
	}

	pool := r.pools[t]
	var p *packer
	select {
	case p = <-pool:
	case <-ctx.Done():
		return id, false, ctx.Err()
	}
	if p.bufp == nil {
		p.bufp = r.packBufs.Get().(*[]byte)
		p.buf = (*p.bufp)[:0]
	}
	p.add(r.sealer.crypt, t, id, payload, len(data))
	if p.size() >= packSize {
		if err := r.upload(ctx, p); err != nil {
			pool <- r.newPacker()
			return id, false, err
		}
		pool <- r.newPacker()
		return id, true, r.storeIndexEarly(ctx)
	}
	pool <- p
	return id, true, nil
}

func blobAAD(t BlobType, id ID) []byte {
	aad := make([]byte, 0, 33)
	aad = append(aad, byte(t))
	return append(aad, id[:]...)
}

// compress returns the zstd form of data in dst, or data itself when compression would save
// less than 1/32: a blob is stored raw exactly when its plaintext length equals its raw length.
func (r *Repository) compress(data, dst []byte) ([]byte, bool) {
	// A sample tells random data apart cheaply, before compressing all of it.
	if len(data) > 4*sampleSize {
		sample := r.enc.EncodeAll(data[:sampleSize], dst)
		if len(sample) >= sampleSize-sampleSize/64 {
			return data, false
		}
	}
	out := r.enc.EncodeAll(data, dst)
	if len(out) >= len(data)-len(data)/32 {
		return data, false
	}
	return out, true
}

const sampleSize = 16 << 10

// upload seals the pack's header and stores it in the background; at most maxUploads run at
// once, and a later Flush reports any failure.
func (r *Repository) upload(ctx context.Context, p *packer) error {
	data := p.finish(r.sealer.crypt)
	control, node := r.sealer.control, r.sealer.node
	id := contentID(data)
	entries := p.entries
	bufp := p.bufp
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.uploads.Add(1)
	go func() {
		defer r.uploads.Done()
		defer func() { <-r.slots }()
		err := r.be.Put(ctx, packName(id), data)
		if err == nil && r.cache != nil && entries[0].Type == TreeBlob {
			_ = r.cache.putTreePack(id, data)
		}
		r.packBufs.Put(bufp)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			if r.uploadErr == nil {
				r.uploadErr = fmt.Errorf("store pack %s: %w", id.Short(), err)
			}
			return
		}
		ip := packToIndex(id, int64(len(data)), entries)
		ip.Control, ip.Node = control, node
		r.idx.addPack(ip)
		r.written = append(r.written, ip)
		r.writtenBlobs += len(entries)
		for _, e := range entries {
			delete(r.inflight, e.ID)
		}
	}()
	return nil
}

func packName(id ID) string {
	s := id.String()
	return "data/" + s[:2] + "/" + s
}

// Flush stores every pending pack and then an index file naming them. After Flush returns
// nil, every blob saved before it is durable and findable.
func (r *Repository) Flush(ctx context.Context) error {
	// Take every packer, so that no blob is added meanwhile; each goes back afterwards,
	// emptied by an upload or as it was.
	for _, pool := range r.pools {
		taken := make([]*packer, 0, cap(pool))
		for range cap(pool) {
			select {
			case p := <-pool:
				taken = append(taken, p)
			case <-ctx.Done():
				for _, p := range taken {
					pool <- p
				}
				return ctx.Err()
			}
		}
		var uploadErr error
		for _, p := range taken {
			if len(p.entries) > 0 && uploadErr == nil {
				if uploadErr = r.upload(ctx, p); uploadErr == nil {
					p = r.newPacker()
				}
			}
			pool <- p
		}
		if uploadErr != nil {
			return uploadErr
		}
	}
	r.uploads.Wait()
	r.mu.Lock()
	err, written := r.uploadErr, r.written
	r.written, r.writtenBlobs = nil, 0
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.storeIndex(ctx, written)
}

// storeIndexEarly stores index files for the packs uploaded so far once they list enough
// blobs: a backup of millions of files would otherwise hold them all until its Flush.
func (r *Repository) storeIndexEarly(ctx context.Context) error {
	r.mu.Lock()
	if r.writtenBlobs < indexFileBlobs {
		r.mu.Unlock()
		return nil
	}
	written := r.written
	r.written, r.writtenBlobs = nil, 0
	r.mu.Unlock()
	return r.storeIndex(ctx, written)
}

// storeIndex stores index files listing packs; what could not be stored is kept for the
// next Flush to try again.
func (r *Repository) storeIndex(ctx context.Context, packs []indexPack) error {
	for _, part := range splitIndex(packs) {
		id, err := r.SaveFile(ctx, IndexFile, encoded(encodeIndexFile(&indexFile{Packs: part})))
		r.mu.Lock()
		if err != nil {
			r.written = append(packs, r.written...)
			for _, p := range packs {
				r.writtenBlobs += len(p.Blobs)
			}
			r.mu.Unlock()
			return fmt.Errorf("store index: %w", err)
		}
		r.indexFiles = append(r.indexFiles, id)
		packs = packs[len(part):]
		r.mu.Unlock()
	}
	return nil
}

// indexFileBlobs bounds the blobs an index file lists (about 11 MB of JSON), so that reading
// one stays small however large a backup or a repository is.
var indexFileBlobs = 100_000

// splitIndex cuts packs, in order, into runs of at most indexFileBlobs blobs (or one pack).
func splitIndex(packs []indexPack) [][]indexPack {
	var parts [][]indexPack
	start, blobs := 0, 0
	for i, p := range packs {
		if i > start && blobs+len(p.Blobs) > indexFileBlobs {
			parts = append(parts, packs[start:i])
			start, blobs = i, 0
		}
		blobs += len(p.Blobs)
	}
	if start < len(packs) {
		parts = append(parts, packs[start:])
	}
	return parts
}

// BlobInfo says where a blob is stored.
type BlobInfo struct {
	ID        ID
	Type      BlobType
	Pack      ID
	Offset    uint32
	Length    uint32
	RawLength uint32
	Control   bool   // sealed in the control-plane compartment
	Node      string // sealed in this node's compartment
}

// Compressed reports whether the blob is stored compressed: a raw blob's sealed length is
// its plaintext length plus the seal.
func (bi BlobInfo) Compressed() bool { return bi.Length-sealOverhead != bi.RawLength }

// LookupBlob returns where the index says a blob is.
func (r *Repository) LookupBlob(id ID) (BlobInfo, bool) {
	loc, ok := r.idx.lookup(id)
	if !ok {
		return BlobInfo{}, false
	}
	node := ""
	if loc.Node {
		node = r.idx.packNode(loc.Pack)
	}
	return blobInfo(id, loc, node), true
}

func blobInfo(id ID, loc blobLoc, node string) BlobInfo {
	return BlobInfo{ID: id, Type: loc.Type, Pack: loc.Pack, Offset: loc.Offset, Length: loc.Length, RawLength: loc.RawLength, Control: loc.Control, Node: node}
}

// ErrBlobMissing says the index does not know a blob.
var ErrBlobMissing = errors.New("blob is not in the repository")

// LoadBlob reads, authenticates, decompresses and re-hashes one blob.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID) ([]byte, error) {
	bi, ok := r.LookupBlob(id)
	if !ok {
		return nil, fmt.Errorf("%s blob %s: %w", t, id.Short(), ErrBlobMissing)
	}
	if t == TreeBlob && r.cache != nil {
		if data, err := r.loadCachedTree(ctx, bi); err == nil {
			return data, nil
		}
	}
	sealed := make([]byte, bi.Length)
	if err := r.be.ReadAt(ctx, packName(bi.Pack), int64(bi.Offset), sealed); err != nil {
		return nil, fmt.Errorf("read %s blob %s from pack %s: %w", t, id.Short(), bi.Pack.Short(), err)
	}
	return r.OpenBlob(bi, sealed)
}

// ReadPack reads a whole pack, for readers that need most of its blobs, into buf when it
// is large enough, and returns the pack's bytes.
func (r *Repository) ReadPack(ctx context.Context, id ID, buf []byte) ([]byte, error) {
	size, ok := r.idx.packSize(id)
	if !ok {
		data, err := r.be.Get(ctx, packName(id), maxPackObject)
		if err != nil {
			return nil, fmt.Errorf("read pack %s: %w", id.Short(), err)
		}
		return data, nil
	}
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if err := r.be.ReadAt(ctx, packName(id), 0, buf); err != nil {
		return nil, fmt.Errorf("read pack %s: %w", id.Short(), err)
	}
	return buf, nil
}

// BlobInPack opens one blob of a pack that ReadPack returned; the blob's bytes in the pack
// are overwritten, so each blob of a pack can be opened once. Compressed blobs are
// decompressed into scratch when it is large enough.
func (r *Repository) BlobInPack(bi BlobInfo, pack, scratch []byte) ([]byte, error) {
	end := int64(bi.Offset) + int64(bi.Length)
	if end > int64(len(pack)) {
		return nil, fmt.Errorf("%s blob %s: pack %s is %d bytes, shorter than the index says", bi.Type, bi.ID.Short(), bi.Pack.Short(), len(pack))
	}
	return r.openBlob(bi, pack[bi.Offset:end], scratch)
}

// ErrCorrupt marks data that failed authentication, decompression or its hash check.
var ErrCorrupt = errors.New("corrupt")

// OpenBlob authenticates and decodes a sealed blob and checks that its content has its ID.
// It decrypts in place: sealed is overwritten.
func (r *Repository) OpenBlob(bi BlobInfo, sealed []byte) ([]byte, error) {
	return r.openBlob(bi, sealed, nil)
}

func (r *Repository) openBlob(bi BlobInfo, sealed, scratch []byte) ([]byte, error) {
	keys, err := r.compartmentOf(bi)
	if err != nil {
		return nil, fmt.Errorf("%s blob %s: %w", bi.Type, bi.ID.Short(), err)
	}
	// Decrypt in place: the sealed bytes are not needed afterwards.
	payload, err := keys.crypt.openInPlace(sealed, blobAAD(bi.Type, bi.ID))
	if err != nil {
		return nil, fmt.Errorf("%s blob %s in pack %s: %w: %v", bi.Type, bi.ID.Short(), bi.Pack.Short(), ErrCorrupt, err)
	}
	data := payload
	if bi.Compressed() {
		if uint32(cap(scratch)) < bi.RawLength {
			scratch = make([]byte, 0, bi.RawLength)
		}
		data, err = r.dec.DecodeAll(payload, scratch[:0])
		if err != nil {
			return nil, fmt.Errorf("%s blob %s in pack %s: %w: decompress: %v", bi.Type, bi.ID.Short(), bi.Pack.Short(), ErrCorrupt, err)
		}
	}
	if keys.hash.sum(data) != bi.ID {
		return nil, fmt.Errorf("%s blob %s in pack %s: %w: content does not match its ID", bi.Type, bi.ID.Short(), bi.Pack.Short(), ErrCorrupt)
	}
	return data, nil
}

// PackContents lists the blobs a stored pack's own header names, for checks that do not
// trust the index.
func (r *Repository) PackContents(pack []byte) ([]BlobInfo, error) {
	data, sealedHdr, err := splitPack(pack)
	if err != nil {
		return nil, err
	}
	// A pack is sealed whole in one compartment: the one whose key opens its header.
	id := contentID(pack)
	candidates := []*compartment{r.shared, r.control, r.node}
	if node := r.idx.packNode(id); node != "" {
		if keys, err := r.nodeCompartment(node); err == nil {
			candidates = append(candidates, keys)
		}
	}
	var keys *compartment
	var hdr []byte
	err = errors.New("no key of this repository opens it")
	for _, c := range candidates {
		if c == nil {
			continue
		}
		if hdr, err = c.crypt.open(nil, sealedHdr, headerAAD); err == nil {
			keys = c
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pack header: %w", err)
	}
	entries, err := decodePackHeader(hdr, int64(len(data)))
	if err != nil {
		return nil, err
	}
	out := make([]BlobInfo, len(entries))
	for i, e := range entries {
		out[i] = BlobInfo{ID: e.ID, Type: e.Type, Pack: id, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength, Control: keys.control, Node: keys.node}
	}
	return out, nil
}

// Packs returns every pack the index knows, with its size.
func (r *Repository) Packs() map[ID]int64 {
	out := map[ID]int64{}
	r.idx.eachPack(func(id ID, size int64) { out[id] = size })
	return out
}

// Blobs calls fn for every indexed blob.
func (r *Repository) Blobs(fn func(BlobInfo)) {
	r.idx.eachBlob(func(id ID, loc blobLoc, node string) { fn(blobInfo(id, loc, node)) })
}

// StoredPacks lists the packs storage holds, with their sizes, whatever the index says.
func (r *Repository) StoredPacks(ctx context.Context) (map[ID]int64, error) {
	stored := map[ID]int64{}
	err := r.be.List(ctx, "data/", func(name string, size int64) error {
		if id, ok := PackIDFromName(name); ok {
			stored[id] = size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	return stored, nil
}

// PackIDFromName parses a stored pack's object name.
func PackIDFromName(name string) (ID, bool) {
	rest, ok := strings.CutPrefix(name, "data/")
	if !ok || len(rest) != 67 || rest[2] != '/' || rest[:2] != rest[3:5] {
		return ID{}, false
	}
	id, err := ParseID(rest[3:])
	return id, err == nil
}

// VerifyPackName checks that a pack's bytes hash to its name.
func VerifyPackName(id ID, pack []byte) bool { return contentID(pack) == id }
