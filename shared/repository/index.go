package repository

import (
	"encoding/json"
	"fmt"
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
}

// index maps every stored blob to its pack. It is the union of all index files.
type index struct {
	mu    sync.RWMutex
	blobs map[ID]blobLoc
	packs map[ID]int64 // pack ID -> size in bytes
}

func newIndex() *index {
	return &index{blobs: map[ID]blobLoc{}, packs: map[ID]int64{}}
}

func (x *index) lookup(id ID) (blobLoc, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	loc, ok := x.blobs[id]
	return loc, ok
}

func (x *index) packSize(id ID) (int64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	size, ok := x.packs[id]
	return size, ok
}

func (x *index) addPack(p indexPack) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.packs[p.ID] = p.Size
	for _, b := range p.Blobs {
		x.blobs[b.ID] = blobLoc{Pack: p.ID, Type: b.Type, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Control: p.Control}
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

func decodeIndexFile(plain []byte) (*indexFile, error) {
	var f indexFile
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	for _, p := range f.Packs {
		for _, b := range p.Blobs {
			if b.Type > TreeBlob || b.Length < sealOverhead || int64(b.Offset)+int64(b.Length) > p.Size {
				return nil, fmt.Errorf("index: blob %s does not fit pack %s", b.ID.Short(), p.ID.Short())
			}
		}
	}
	return &f, nil
}
