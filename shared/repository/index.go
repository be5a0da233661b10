package repository

import (
	"sync"
)

// blobLoc is where the index says a blob is stored.
type blobLoc struct {
	Pack      ID
	Type      BlobType
	Offset    uint32
	Length    uint32
	RawLength uint32
	Control   bool // sealed in the control-plane compartment
	Node      bool // sealed in a node's compartment: the index's nodes say which
}

// index maps every stored blob to its pack. It is the union of all index files. A fork's
// index is a layer over the index it was forked from: it shares that one (read-only from
// here; its owner may add to it) instead of copying it, and holds what the fork adds, and
// the packs the fork dropped, itself. A plugin running many jobs keeps one index in memory.
type index struct {
	mu   sync.RWMutex
	base *index // nil for an index of its own
	// tables hold the blobs of the index files read at once, and what was added since, once
	// there was enough of it to sort into a table (the newest last); blobs holds the rest.
	// A table's blobs count only while their pack is in packs.
	tables  []*blobTable
	blobs   map[ID]blobLoc
	dir     string       // where a large table may spill to a file, or ""
	packs   map[ID]int64 // pack ID -> size in bytes
	dropped map[ID]bool  // packs of base this layer no longer has
	// nodes names the node of each pack sealed in a node's compartment: a few packs, kept
	// apart from the many blobs.
	nodes map[ID]string
}

func newIndex() *index {
	return &index{blobs: map[ID]blobLoc{}, packs: map[ID]int64{}, dropped: map[ID]bool{}, nodes: map[ID]string{}}
}

// setTable gives an index with no blobs of its own yet its table, and the directory its
// later tables may spill to.
func (x *index) setTable(t *blobTable, dir string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.tables, x.dir = []*blobTable{t}, dir
}

// layer returns an index that starts as x and changes apart from it.
func (x *index) layer() *index {
	l := newIndex()
	l.base, l.dir = x, x.dir
	return l
}

func (x *index) lookup(id ID) (blobLoc, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if loc, ok := x.blobs[id]; ok {
		return loc, true
	}
	if loc, ok := x.fromTables(id, 0); ok || x.base == nil {
		return loc, ok
	}
	loc, ok := x.base.lookup(id)
	if !ok || x.dropped[loc.Pack] {
		return blobLoc{}, false
	}
	return loc, true
}

// fromTables finds a blob in the tables from the one numbered from, the newest first, in a
// pack the index still has; x.mu is held.
func (x *index) fromTables(id ID, from int) (loc blobLoc, found bool) {
	for k := len(x.tables) - 1; k >= from && !found; k-- {
		t := x.tables[k]
		t.find(id, func(i int) bool {
			loc = t.loc(i)
			_, found = x.packs[loc.Pack]
			return found
		})
	}
	return loc, found
}

func (x *index) packSize(id ID) (int64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if size, ok := x.packs[id]; ok {
		return size, true
	}
	if x.base == nil || x.dropped[id] {
		return 0, false
	}
	return x.base.packSize(id)
}

// packNode returns the node in whose compartment a pack is sealed, or "".
func (x *index) packNode(id ID) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if node, ok := x.nodes[id]; ok {
		return node
	}
	if x.base == nil || x.dropped[id] {
		return ""
	}
	return x.base.packNode(id)
}

func (x *index) addPack(p indexPack) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.packs[p.ID] = p.Size
	delete(x.dropped, p.ID)
	if p.Node != "" {
		x.nodes[p.ID] = p.Node
	}
	for _, b := range p.Blobs {
		x.blobs[b.ID] = blobLoc{Pack: p.ID, Type: b.Type, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Control: p.Control, Node: p.Node != ""}
	}
	if len(x.blobs) >= compactAt {
		x.compact()
	}
}

// compactAt is how many blobs the map holds before they are sorted into a table: a backup
// of millions of files adds as many blobs, which a map would hold at four times the cost.
var compactAt = 1 << 16

// compact moves the map's blobs into a new table, merged with the newest tables while the
// new one is at least as large, so that there are few tables and each blob is merged a few
// times only; x.mu is held. A table that fails to build leaves the blobs where they were.
func (x *index) compact() {
	keep, n := len(x.tables), len(x.blobs)
	for keep > 0 && x.tables[keep-1].len() <= n {
		n += x.tables[keep-1].len()
		keep--
	}
	b := newTableBuilder(x.dir)
	b.reserve(n)
	for id, loc := range x.blobs {
		b.addLoc(id, loc, x.nodes[loc.Pack])
	}
	for _, t := range x.tables[keep:] {
		b.addTable(t)
	}
	tables := x.tables[:keep:keep]
	t, err := b.finish(func(id ID) bool { _, ok := x.packs[id]; return ok })
	if err != nil {
		return
	}
	x.tables = append(tables, t)
	x.blobs = map[ID]blobLoc{}
}

// eachBlob calls fn for every blob the index knows, once each, with the node in whose
// compartment its pack is sealed (or ""): read here, under the lock already held, since fn
// must not take it again (a writer waiting between two read locks would block both).
func (x *index) eachBlob(fn func(ID, blobLoc, string)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, loc := range x.blobs {
		fn(id, loc, x.nodes[loc.Pack])
	}
	// A blob stored twice has adjacent records in a table, or records in two tables: the
	// one lookup finds counts.
	for k, t := range x.tables {
		var last ID
		for i := range t.len() {
			id := ID(t.id(i))
			if _, shadowed := x.blobs[id]; shadowed || i > 0 && id == last {
				continue
			}
			loc := t.loc(i)
			if _, ok := x.packs[loc.Pack]; !ok {
				continue
			}
			last = id
			if _, newer := x.fromTables(id, k+1); !newer {
				fn(id, loc, x.nodes[loc.Pack])
			}
		}
	}
	if x.base != nil {
		x.base.eachBlob(func(id ID, loc blobLoc, node string) {
			if _, shadowed := x.blobs[id]; shadowed || x.dropped[loc.Pack] {
				return
			}
			if _, shadowed := x.fromTables(id, 0); !shadowed {
				fn(id, loc, node)
			}
		})
	}
}

// eachPack calls fn for every pack the index knows, once each.
func (x *index) eachPack(fn func(ID, int64)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for id, size := range x.packs {
		fn(id, size)
	}
	if x.base != nil {
		x.base.eachPack(func(id ID, size int64) {
			if _, shadowed := x.packs[id]; !shadowed && !x.dropped[id] {
				fn(id, size)
			}
		})
	}
}

// drop forgets packs, and every blob in them.
func (x *index) drop(packs map[ID]bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, loc := range x.blobs {
		if packs[loc.Pack] {
			delete(x.blobs, id)
		}
	}
	for id := range packs {
		delete(x.packs, id)
		delete(x.nodes, id)
		if x.base != nil {
			x.dropped[id] = true
		}
	}
}

// indexFile is the stored form: the packs one writer added, and the blobs in each.
type indexFile struct {
	Packs []indexPack `json:"packs"`
	// Supersedes lists index files this one replaces (written by prune).
	Supersedes []ID `json:"supersedes,omitempty"`
}

type indexPack struct {
	ID    ID          `json:"id"`
	Size  int64       `json:"size"`
	Blobs []indexBlob `json:"blobs"`
	// Control marks a pack sealed in the control-plane compartment.
	Control bool `json:"control,omitempty"`
	// Node names the node in whose compartment a pack is sealed.
	Node string `json:"node,omitempty"`
}

type indexBlob struct {
	ID        ID       `json:"id"`
	Type      BlobType `json:"t"`
	Offset    uint32   `json:"o"`
	Length    uint32   `json:"l"`
	RawLength uint32   `json:"r"`
}

func packToIndex(packID ID, size int64, entries []packEntry) indexPack {
	p := indexPack{ID: packID, Size: size, Blobs: make([]indexBlob, len(entries))}
	for i, e := range entries {
		p.Blobs[i] = indexBlob{ID: e.ID, Type: e.Type, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength}
	}
	return p
}
