package repository

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"sort"
)

// blobTable is the bulk of the index: every blob the index files listed when they were
// read, as fixed-size records sorted by ID in one byte slice, with each pack named by its
// number in a short list. A Go map of the same blobs costs about four times as much per blob
// and gives the garbage collector millions of pointers to scan; the table gives it none.
// A table never changes once built; what is added later goes to the index's map, and from
// there to new tables.
type blobTable struct {
	recs []byte // records, sorted by blob ID
	// first[p]: the first record whose ID begins with the prefix p of bits bits, chosen so
	// that a prefix has a few records: IDs are hashes, spread evenly, so a lookup finds its
	// records within a few steps.
	first []uint32
	bits  uint
	packs []tablePack // by pack number
	file  bool        // recs is a mapped file
}

type tablePack struct {
	id      ID
	control bool
	node    string
}

// A record: the blob's ID, its pack's number (the top bit set for tree blobs), then its
// offset, sealed length and raw length.
const (
	recordSize = len(ID{}) + 4*4
	treeBit    = 1 << 31
)

// mapped reports whether the table lives in a mapped file.
func (t *blobTable) mapped() bool { return t.file }

func (t *blobTable) len() int {
	if t == nil {
		return 0
	}
	return len(t.recs) / recordSize
}

func (t *blobTable) id(i int) []byte { return t.recs[i*recordSize : i*recordSize+len(ID{})] }

// loc decodes record i.
func (t *blobTable) loc(i int) blobLoc {
	r := t.recs[i*recordSize+len(ID{}) : (i+1)*recordSize]
	num := binary.LittleEndian.Uint32(r)
	p := t.packs[num&^treeBit]
	typ := DataBlob
	if num&treeBit != 0 {
		typ = TreeBlob
	}
	return blobLoc{
		Pack: p.id, Type: typ, Control: p.control, Node: p.node != "",
		Offset:    binary.LittleEndian.Uint32(r[4:]),
		Length:    binary.LittleEndian.Uint32(r[8:]),
		RawLength: binary.LittleEndian.Uint32(r[12:]),
	}
}

// find calls fn with each record of a blob (a blob stored twice has two) until fn returns true.
func (t *blobTable) find(id ID, fn func(i int) bool) {
	if t == nil {
		return
	}
	p := t.prefix(id[:])
	lo, hi := int(t.first[p]), int(t.first[p+1])
	i := lo + sort.Search(hi-lo, func(k int) bool { return bytes.Compare(t.id(lo+k), id[:]) >= 0 })
	for ; i < hi && bytes.Equal(t.id(i), id[:]); i++ {
		if fn(i) {
			return
		}
	}
}

// prefix returns the first t.bits bits of an ID.
func (t *blobTable) prefix(id []byte) uint32 { return binary.BigEndian.Uint32(id) >> (32 - t.bits) }

// tableBuilder gathers the blobs of index files into a table. Given a directory, a builder
// whose records outgrow spillAt sorts them and writes them to a file there as a run, and
// merges the runs into the table in another file, mapped into memory: a large table then
// lives in the page cache, clean, which the kernel drops under a memory limit and reads
// again when needed, instead of on the heap.
type tableBuilder struct {
	recs  []byte
	packs []tablePack
	nums  map[ID]uint32
	dir   string
	spill *spillFile
	err   error // records lost on the way back from a file, reported by finish
}

// spillAt is the size of records beyond which a table goes to a file: about 350,000 blobs.
var spillAt = 16 << 20

func newTableBuilder(dir string) *tableBuilder { return &tableBuilder{nums: map[ID]uint32{}, dir: dir} }

func (b *tableBuilder) add(p indexPack) {
	num := b.packNum(p.ID, p.Control, p.Node)
	for _, bl := range p.Blobs {
		b.put(bl.ID, num, bl.Type, bl.Offset, bl.Length, bl.RawLength)
	}
}

// addLoc adds one blob the index holds in its map.
func (b *tableBuilder) addLoc(id ID, loc blobLoc, node string) {
	b.put(id, b.packNum(loc.Pack, loc.Control, node), loc.Type, loc.Offset, loc.Length, loc.RawLength)
}

// addTable adds every record of a table, as it is but for its pack's number here.
func (b *tableBuilder) addTable(t *blobTable) {
	nums := make([]uint32, len(t.packs))
	for i, p := range t.packs {
		nums[i] = b.packNum(p.id, p.control, p.node)
	}
	var rec [recordSize]byte
	for i := range t.len() {
		copy(rec[:], t.recs[i*recordSize:(i+1)*recordSize])
		num := binary.LittleEndian.Uint32(rec[32:])
		binary.LittleEndian.PutUint32(rec[32:], nums[num&^treeBit]|num&treeBit)
		b.append(rec[:])
	}
}

// reserve makes room for n more records on the heap, or for as many as are held there
// before the builder spills to a file.
func (b *tableBuilder) reserve(n int) {
	size := n * recordSize
	if b.dir != "" {
		size = min(size, spillAt+recordSize)
	}
	b.recs = slices.Grow(b.recs, size)
}

func (b *tableBuilder) packNum(id ID, control bool, node string) uint32 {
	num, ok := b.nums[id]
	if !ok {
		num = uint32(len(b.packs))
		b.nums[id] = num
		b.packs = append(b.packs, tablePack{id: id, control: control, node: node})
	}
	return num
}

func (b *tableBuilder) put(id ID, num uint32, typ BlobType, offset, length, raw uint32) {
	var rec [recordSize]byte
	copy(rec[:], id[:])
	if typ == TreeBlob {
		num |= treeBit
	}
	binary.LittleEndian.PutUint32(rec[32:], num)
	binary.LittleEndian.PutUint32(rec[36:], offset)
	binary.LittleEndian.PutUint32(rec[40:], length)
	binary.LittleEndian.PutUint32(rec[44:], raw)
	b.append(rec[:])
}

// append adds one encoded record, spilling the records held to a file when they are many.
func (b *tableBuilder) append(rec []byte) {
	if b.dir != "" && b.recs == nil {
		b.recs = make([]byte, 0, spillAt+recordSize) // never grown, never copied
	}
	b.recs = append(b.recs, rec...)
	if b.dir != "" && len(b.recs) >= spillAt {
		b.spillRun()
	}
}

// spillRun writes the records held, sorted, to the spill file as a run. A directory that
// cannot take them (a full disk) ends spilling: the table is built on the heap instead.
func (b *tableBuilder) spillRun() {
	sort.Sort(byID{b.recs})
	if b.spill == nil {
		spill, err := newSpillFile(b.dir)
		if err != nil {
			b.dir = ""
			return
		}
		b.spill = spill
	}
	if err := b.spill.writeRun(b.recs); err != nil {
		b.err = b.backToHeap()
		return
	}
	b.recs = b.recs[:0]
}

// backToHeap gives up the spill file, reading its runs back before the records held.
func (b *tableBuilder) backToHeap() error {
	spilled, err := b.spill.readBack()
	b.spill, b.dir = nil, ""
	if err != nil {
		return err
	}
	b.recs = append(spilled, b.recs...)
	return nil
}

// finish sorts what was added into a table, leaving out the records of packs live does not
// name (those only files that were replaced listed).
func (b *tableBuilder) finish(live func(ID) bool) (*blobTable, error) {
	if b.err != nil {
		return nil, b.err
	}
	alive := func(rec []byte) bool { return live(b.packs[binary.LittleEndian.Uint32(rec[32:])&^treeBit].id) }
	t := &blobTable{}
	if b.spill != nil && len(b.recs) > 0 {
		b.spillRun()
	}
	if b.spill != nil {
		merged, err := b.spill.merge(alive)
		if err == nil {
			t.recs, t.file = merged, true
			unmapWhenGone(t, merged)
		} else if err := b.backToHeap(); err != nil {
			return nil, err
		}
	}
	if t.recs == nil {
		n := 0
		for i := 0; i < len(b.recs); i += recordSize {
			if alive(b.recs[i : i+recordSize]) {
				n += copy(b.recs[n:], b.recs[i:i+recordSize])
			}
		}
		t.recs = b.recs[:n:n]
		sort.Sort(byID{t.recs})
	}
	t.packs = b.packs
	b.recs, b.packs = nil, nil
	t.bits = uint(min(max(bits.Len(uint(t.len()/8)), 8), 24))
	t.first = make([]uint32, 1<<t.bits+1)
	for i := 0; i < len(t.recs); i += recordSize {
		t.first[t.prefix(t.recs[i:])+1]++
	}
	for i := 1; i < len(t.first); i++ {
		t.first[i] += t.first[i-1]
	}
	return t, nil
}

// byID sorts records in place.
type byID struct{ recs []byte }

func (s byID) Len() int { return len(s.recs) / recordSize }
func (s byID) Less(i, j int) bool {
	return bytes.Compare(s.recs[i*recordSize:i*recordSize+32], s.recs[j*recordSize:j*recordSize+32]) < 0
}
func (s byID) Swap(i, j int) {
	var tmp [recordSize]byte
	a, b := s.recs[i*recordSize:(i+1)*recordSize], s.recs[j*recordSize:(j+1)*recordSize]
	copy(tmp[:], a)
	copy(a, b)
	copy(b, tmp[:])
}
