// Package wire reads the repository's compact binary forms (index files, directory
// listings). A Reader's first failure sticks, so a decoder reads field after field and checks
// once; and every length and count is checked against what is left, so that no input makes a
// decoder allocate beyond the input's size.
package wire

import (
	"encoding/binary"
	"errors"
)

// ErrMalformed is what a Reader reports for input that ends early or holds a number out of
// its bounds.
var ErrMalformed = errors.New("truncated or malformed")

// Reader reads numbers and byte strings from the front of a buffer.
type Reader struct {
	rest []byte
	err  error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{rest: b} }

// Err is the first failure, or nil.
func (r *Reader) Err() error { return r.err }

// Len is how many bytes are left.
func (r *Reader) Len() int { return len(r.rest) }

// Fail records err as the reader's failure unless it has one.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 { return readVarint(r, binary.Uvarint) }

// Varint reads a signed varint.
func (r *Reader) Varint() int64 { return readVarint(r, binary.Varint) }

// readVarint reads one number with decode, one of encoding/binary's varint decoders.
func readVarint[T uint64 | int64](r *Reader, decode func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := decode(r.rest)
	if n <= 0 {
		r.err = ErrMalformed
		return 0
	}
	r.rest = r.rest[n:]
	return v
}

// UvarintAtMost reads an unsigned varint and fails when it exceeds limit.
func (r *Reader) UvarintAtMost(limit uint64) uint64 {
	v := r.Uvarint()
	if v > limit {
		r.Fail(ErrMalformed)
		return 0
	}
	return v
}

// Uint32 reads an unsigned varint that must fit 32 bits.
func (r *Reader) Uint32() uint32 { return uint32(r.UvarintAtMost(1<<32 - 1)) }

// Count reads how many items of at least size bytes each follow, and fails when the rest of
// the input cannot hold them.
func (r *Reader) Count(size int) int { return int(r.UvarintAtMost(uint64(len(r.rest) / size))) }

// Bytes returns the next n bytes, still part of the buffer.
func (r *Reader) Bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.rest)) {
		r.err = ErrMalformed
		return nil
	}
	b := r.rest[:n]
	r.rest = r.rest[n:]
	return b
}

// Byte returns the next byte, or zero after a failure.
func (r *Reader) Byte() byte {
	if b := r.Bytes(1); b != nil {
		return b[0]
	}
	return 0
}
