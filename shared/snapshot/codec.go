package snapshot

import (
	"encoding/binary"
	"errors"
	"io/fs"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/wire"
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

func decodeBinary(data []byte) (*Tree, error) {
	r := wire.NewReader(data[1:])
	// Every node takes at least 17 bytes: no count beyond that is believed.
	count := r.Count(17)
	if r.Err() != nil {
		return nil, errTreeTruncated
	}
	t := &Tree{Nodes: make([]Node, count)}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		n.Name = string(r.Bytes(r.Uvarint()))
		if code := r.Byte(); r.Err() == nil {
			if int(code) >= len(typeCodes) {
				return nil, errors.New("tree: unknown type code")
			}
			n.Type = typeCodes[code]
		}
		n.Mode = fs.FileMode(r.Uint32())
		n.UID, n.GID = r.Uint32(), r.Uint32()
		n.ModTime, n.ChangeTime, n.AccessTime = r.Varint(), r.Varint(), r.Varint()
		n.Inode, n.DeviceID, n.Links, n.Size = r.Uvarint(), r.Uvarint(), r.Uvarint(), r.Uvarint()
		if blobs := r.Count(32); blobs > 0 {
			n.Content = make([]repository.ID, blobs)
			for k := range n.Content {
				copy(n.Content[k][:], r.Bytes(32))
			}
		}
		switch r.Byte() {
		case 1:
			var id repository.ID
			copy(id[:], r.Bytes(uint64(len(id))))
			n.Subtree = &id
		case 0:
		default:
			r.Fail(errTreeTruncated)
		}
		n.LinkTarget = string(r.Bytes(r.Uvarint()))
		n.Rdev = r.Uvarint()
		if r.Err() != nil {
			return nil, errTreeTruncated
		}
	}
	if r.Len() != 0 {
		return nil, errTreeTruncated
	}
	return t, nil
}
