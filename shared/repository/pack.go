package repository

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// BlobType says what a blob holds.
type BlobType uint8

const (
	DataBlob BlobType = iota // file content
	TreeBlob                 // a directory listing
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// A pack is many sealed blobs back to back, then the sealed header listing them, then the
// header's length as 4 little-endian bytes. Small files never become small objects.
//
// Header entry: type (1 byte), blob ID (32), sealed length (4), plaintext length (4).
const packEntrySize = 1 + 32 + 4 + 4

// packEntry locates one blob in its pack.
type packEntry struct {
	Type      BlobType
	ID        ID
	Offset    uint32
	Length    uint32 // as stored: sealed
	RawLength uint32 // plaintext, before compression
}

var headerAAD = []byte("swarmbackup pack header")

func encodePackHeader(entries []packEntry) []byte {
	buf := make([]byte, 0, len(entries)*packEntrySize)
	for _, e := range entries {
		buf = append(buf, byte(e.Type))
		buf = append(buf, e.ID[:]...)
		buf = binary.LittleEndian.AppendUint32(buf, e.Length)
		buf = binary.LittleEndian.AppendUint32(buf, e.RawLength)
	}
	return buf
}

// decodePackHeader parses a plaintext header for a pack whose blobs take dataLen bytes.
func decodePackHeader(buf []byte, dataLen int64) ([]packEntry, error) {
	if len(buf)%packEntrySize != 0 {
		return nil, fmt.Errorf("pack header: %d bytes is not a whole number of entries", len(buf))
	}
	entries := make([]packEntry, 0, len(buf)/packEntrySize)
	var offset int64
	for len(buf) > 0 {
		e := packEntry{Type: BlobType(buf[0])}
		if e.Type > TreeBlob {
			return nil, fmt.Errorf("pack header: unknown blob type %d", buf[0])
		}
		copy(e.ID[:], buf[1:33])
		e.Length = binary.LittleEndian.Uint32(buf[33:37])
		e.RawLength = binary.LittleEndian.Uint32(buf[37:41])
		if e.Length < sealOverhead {
			return nil, fmt.Errorf("pack header: blob %s is shorter than its seal", e.ID.Short())
		}
		e.Offset = uint32(offset)
		offset += int64(e.Length)
		if offset > dataLen {
			return nil, errors.New("pack header: blobs run past the end of the pack")
		}
		entries = append(entries, e)
		buf = buf[packEntrySize:]
	}
	if offset != dataLen {
		return nil, fmt.Errorf("pack header: blobs cover %d of %d bytes", offset, dataLen)
	}
	return entries, nil
}

// splitPack finds the sealed header at the end of a whole pack.
func splitPack(pack []byte) (data, sealedHeader []byte, err error) {
	if len(pack) < 4 {
		return nil, nil, errors.New("pack is too short to hold a header")
	}
	hl := int64(binary.LittleEndian.Uint32(pack[len(pack)-4:]))
	if hl < sealOverhead || hl > int64(len(pack)-4) {
		return nil, nil, fmt.Errorf("pack header length %d does not fit a %d-byte pack", hl, len(pack))
	}
	end := int64(len(pack)) - 4
	return pack[:end-hl], pack[end-hl : end], nil
}

// packer collects sealed blobs in memory until the pack is big enough to upload.
type packer struct {
	buf     []byte
	bufp    *[]byte // where buf came from, to be returned after the upload
	entries []packEntry
}

// add seals payload onto the end of the pack.
func (p *packer) add(c *crypter, t BlobType, id ID, payload []byte, rawLen int) {
	start := len(p.buf)
	p.buf = c.seal(p.buf, payload, blobAAD(t, id))
	p.entries = append(p.entries, packEntry{Type: t, ID: id, Offset: uint32(start), Length: uint32(len(p.buf) - start), RawLength: uint32(rawLen)})
}

func (p *packer) size() int { return len(p.buf) }

// finish seals the header onto the pack and returns the bytes to store.
func (p *packer) finish(c *crypter) []byte {
	hdr := c.seal(nil, encodePackHeader(p.entries), headerAAD)
	out := append(p.buf, hdr...)
	return binary.LittleEndian.AppendUint32(out, uint32(len(hdr)))
}
