package repository

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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

var errIndexTruncated = errors.New("truncated")

// indexReader reads the binary form, remembering the first failure.
type indexReader struct {
	rest []byte
	err  error
}

func (r *indexReader) uvarint(limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.rest)
	if n <= 0 {
		r.err = errIndexTruncated
		return 0
	}
	if v > limit {
		r.err = fmt.Errorf("a number (%d) beyond %d", v, limit)
		return 0
	}
	r.rest = r.rest[n:]
	return v
}

// count reads how many items of at least size bytes follow, refusing more than the rest holds.
func (r *indexReader) count(size int) int {
	return int(r.uvarint(uint64(len(r.rest) / size)))
}

func (r *indexReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.rest) {
		r.err = errIndexTruncated
		return nil
	}
	b := r.rest[:n]
	r.rest = r.rest[n:]
	return b
}

func (r *indexReader) id() (id ID) {
	copy(id[:], r.bytes(len(id)))
	return id
}

func decodeBinaryIndex(data []byte) (*indexFile, error) {
	r := &indexReader{rest: data}
	f := &indexFile{Packs: make([]indexPack, r.count(minPackBytes))}
	for i := range f.Packs {
		p := &f.Packs[i]
		p.ID = r.id()
		p.Size = int64(r.uvarint(1 << 62))
		p.Control = r.uvarint(packControl)&packControl != 0
		p.Node = string(r.bytes(int(r.uvarint(maxNodeName))))
		p.Blobs = make([]indexBlob, r.count(minBlobBytes))
		for j := range p.Blobs {
			b := &p.Blobs[j]
			t := r.bytes(1)
			if t != nil {
				b.Type = BlobType(t[0])
			}
			b.ID = r.id()
			b.Offset = uint32(r.uvarint(1<<32 - 1))
			b.Length = uint32(r.uvarint(1<<32 - 1))
			b.RawLength = uint32(r.uvarint(1<<32 - 1))
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	if n := r.count(len(ID{})); n > 0 {
		f.Supersedes = make([]ID, n)
		for i := range f.Supersedes {
			f.Supersedes[i] = r.id()
		}
	}
	if r.err == nil && len(r.rest) > 0 {
		r.err = fmt.Errorf("%d bytes after the end", len(r.rest))
	}
	if r.err != nil {
		return nil, r.err
	}
	return f, nil
}
