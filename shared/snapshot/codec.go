package snapshot

import (
	"encoding/binary"
	"errors"
	"io/fs"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Trees are stored in a compact binary form: a backup of a million files writes, and its
// next backup reads, a listing per directory, and JSON cost a quarter of an incremental
// backup's time to decode. The form begins with treeFormat; a tree stored as JSON (by
// earlier versions) begins with '{' and is still read.
//
// After the format byte: the number of nodes, then for each node its name, type, mode,
// owner, times, inode, device, links, size, content IDs, subtree, link target and device
// number, integers as varints, strings and lists with their length first. The encoding is
// deterministic, so an unchanged directory keeps its tree's ID.
const treeFormat = 1

var typeCodes = []string{TypeFile, TypeDir, TypeSymlink, TypeDevice, TypeCharDev, TypeFIFO, TypeSocket}

func typeCode(t string) (byte, bool) {
	for i, s := range typeCodes {
		if s == t {
			return byte(i), true
		}
	}
	return 0, false
}

func (t *Tree) encodeBinary() ([]byte, error) {
	size := 1 + binary.MaxVarintLen64
	for i := range t.Nodes {
		n := &t.Nodes[i]
		size += len(n.Name) + len(n.LinkTarget) + 32*len(n.Content) + 32 + 14*binary.MaxVarintLen64
	}
	b := make([]byte, 0, size)
	b = append(b, treeFormat)
	b = binary.AppendUvarint(b, uint64(len(t.Nodes)))
	for i := range t.Nodes {
		n := &t.Nodes[i]
		code, ok := typeCode(n.Type)
		if !ok {
			return nil, errors.New("tree: unknown type " + n.Type)
		}
		b = appendString(b, n.Name)
		b = append(b, code)
		b = binary.AppendUvarint(b, uint64(n.Mode))
		b = binary.AppendUvarint(b, uint64(n.UID))
		b = binary.AppendUvarint(b, uint64(n.GID))
		b = binary.AppendVarint(b, n.ModTime)
		b = binary.AppendVarint(b, n.ChangeTime)
		b = binary.AppendVarint(b, n.AccessTime)
		b = binary.AppendUvarint(b, n.Inode)
		b = binary.AppendUvarint(b, n.DeviceID)
		b = binary.AppendUvarint(b, n.Links)
		b = binary.AppendUvarint(b, n.Size)
		b = binary.AppendUvarint(b, uint64(len(n.Content)))
		for _, id := range n.Content {
			b = append(b, id[:]...)
		}
		if n.Subtree != nil {
			b = append(b, 1)
			b = append(b, n.Subtree[:]...)
		} else {
			b = append(b, 0)
		}
		b = appendString(b, n.LinkTarget)
		b = binary.AppendUvarint(b, n.Rdev)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errTreeTruncated = errors.New("tree: truncated or malformed")

// treeReader reads the binary form; the first failure sticks, and every length is checked
// against what is left, so that no input makes it allocate more than the input's size.
type treeReader struct {
	b   []byte
	err error
}

func (r *treeReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errTreeTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *treeReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errTreeTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *treeReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errTreeTruncated
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *treeReader) uint32() uint32 {
	v := r.uvarint()
	if v > 1<<32-1 {
		r.err = errTreeTruncated
	}
	return uint32(v)
}

func (r *treeReader) id() (id repository.ID) {
	copy(id[:], r.bytes(uint64(len(id))))
	return id
}

func decodeBinary(data []byte) (*Tree, error) {
	r := &treeReader{b: data[1:]}
	count := r.uvarint()
	// Every node takes at least 17 bytes: no count beyond that is believed.
	if r.err != nil || count > uint64(len(r.b))/17 {
		return nil, errTreeTruncated
	}
	t := &Tree{Nodes: make([]Node, count)}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		n.Name = string(r.bytes(r.uvarint()))
		code := r.bytes(1)
		if r.err == nil && int(code[0]) >= len(typeCodes) {
			return nil, errors.New("tree: unknown type code")
		}
		if r.err == nil {
			n.Type = typeCodes[code[0]]
		}
		n.Mode = fs.FileMode(r.uint32())
		n.UID, n.GID = r.uint32(), r.uint32()
		n.ModTime, n.ChangeTime, n.AccessTime = r.varint(), r.varint(), r.varint()
		n.Inode, n.DeviceID, n.Links, n.Size = r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
		if blobs := r.uvarint(); blobs > 0 {
			if blobs > uint64(len(r.b))/32 {
				return nil, errTreeTruncated
			}
			n.Content = make([]repository.ID, blobs)
			for k := range n.Content {
				n.Content[k] = r.id()
			}
		}
		if sub := r.bytes(1); r.err == nil && sub[0] == 1 {
			id := r.id()
			n.Subtree = &id
		} else if r.err == nil && sub[0] != 0 {
			return nil, errTreeTruncated
		}
		n.LinkTarget = string(r.bytes(r.uvarint()))
		n.Rdev = r.uvarint()
		if r.err != nil {
			return nil, r.err
		}
	}
	if len(r.b) != 0 {
		return nil, errTreeTruncated
	}
	return t, nil
}
