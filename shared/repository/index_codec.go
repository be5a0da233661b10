package repository

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/swarmbackup/swarmbackup/shared/wire"
)

// Index files are stored in a binary form: decoding JSON cost about 3.6 µs a blob, most of an
// open's time after the key derivation, and ten million blobs took half a minute. The form
// starts with a zero byte, which no JSON text does, so files written in JSON by earlier
// versions still read. After the magic, all numbers are unsigned varints:
//
//	packs, then for each: ID (32 bytes), size, flags (1: control), node name (length, bytes),
//	blobs, then for each: type (1 byte), ID (32 bytes), offset, length, raw length;
//	superseded files, then their IDs (32 bytes each).
var indexMagic = []byte{0, 's', 'b', 'i', 1}

// Bounds a decoder checks before it allocates: the least a pack and a blob take.
const (
	minPackBytes = len(ID{}) + 4
	minBlobBytes = 1 + len(ID{}) + 3
)

const packControl = 1

// encodeIndexFile is the stored form of f.
func encodeIndexFile(f *indexFile) []byte {
	n := len(indexMagic) + binary.MaxVarintLen64
	for _, p := range f.Packs {
		n += minPackBytes + 3*binary.MaxVarintLen64 + len(p.Node) + len(p.Blobs)*(minBlobBytes+3*binary.MaxVarintLen32)
	}
	out := make([]byte, 0, n+len(f.Supersedes)*len(ID{})+binary.MaxVarintLen64)
	out = append(out, indexMagic...)
	out = binary.AppendUvarint(out, uint64(len(f.Packs)))
	for _, p := range f.Packs {
		out = append(out, p.ID[:]...)
		out = binary.AppendUvarint(out, uint64(p.Size))
		var flags uint64
		if p.Control {
			flags |= packControl
		}
		out = binary.AppendUvarint(out, flags)
		out = binary.AppendUvarint(out, uint64(len(p.Node)))
		out = append(out, p.Node...)
		out = binary.AppendUvarint(out, uint64(len(p.Blobs)))
		for _, b := range p.Blobs {
			out = append(out, byte(b.Type))
			out = append(out, b.ID[:]...)
			out = binary.AppendUvarint(out, uint64(b.Offset))
			out = binary.AppendUvarint(out, uint64(b.Length))
			out = binary.AppendUvarint(out, uint64(b.RawLength))
		}
	}
	out = binary.AppendUvarint(out, uint64(len(f.Supersedes)))
	for _, id := range f.Supersedes {
		out = append(out, id[:]...)
	}
	return out
}

// decodeIndexFile reads an index file in either form and checks that every blob fits its pack.
func decodeIndexFile(plain []byte) (*indexFile, error) {
	var f *indexFile
	if bytes.HasPrefix(plain, indexMagic) {
		var err error
		if f, err = decodeBinaryIndex(plain[len(indexMagic):]); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
	} else {
		f = &indexFile{}
		if err := json.Unmarshal(plain, f); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
	}
	for _, p := range f.Packs {
		if len(p.Node) > maxNodeName || p.Node != "" && p.Control {
			return nil, fmt.Errorf("index: pack %s names an impossible compartment", p.ID.Short())
		}
		for _, b := range p.Blobs {
			if b.Type > TreeBlob || b.Length < sealOverhead || int64(b.Offset)+int64(b.Length) > p.Size {
				return nil, fmt.Errorf("index: blob %s does not fit pack %s", b.ID.Short(), p.ID.Short())
			}
		}
	}
	return f, nil
}

func decodeBinaryIndex(data []byte) (*indexFile, error) {
	r := wire.NewReader(data)
	f := &indexFile{Packs: make([]indexPack, r.Count(minPackBytes))}
	for i := range f.Packs {
		p := &f.Packs[i]
		copy(p.ID[:], r.Bytes(uint64(len(p.ID))))
		p.Size = int64(r.UvarintAtMost(1 << 62))
		p.Control = r.UvarintAtMost(packControl)&packControl != 0
		p.Node = string(r.Bytes(r.UvarintAtMost(maxNodeName)))
		p.Blobs = make([]indexBlob, r.Count(minBlobBytes))
		for j := range p.Blobs {
			b := &p.Blobs[j]
			b.Type = BlobType(r.Byte())
			copy(b.ID[:], r.Bytes(uint64(len(b.ID))))
			b.Offset, b.Length, b.RawLength = r.Uint32(), r.Uint32(), r.Uint32()
		}
		if r.Err() != nil {
			return nil, r.Err()
		}
	}
	if n := r.Count(len(ID{})); n > 0 {
		f.Supersedes = make([]ID, n)
		for i := range f.Supersedes {
			copy(f.Supersedes[i][:], r.Bytes(uint64(len(ID{}))))
		}
	}
	if r.Err() == nil && r.Len() > 0 {
		r.Fail(fmt.Errorf("%d bytes after the end", r.Len()))
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	return f, nil
}
