package wire

import (
	"encoding/binary"
	"errors"
	"testing"
)

// Numbers and strings read back; a count the rest cannot hold, a number past its bound and a
// read past the end fail, and the first failure sticks.
func TestAReaderChecksEveryLengthAndKeepsItsFirstFailure(t *testing.T) {
	b := binary.AppendUvarint(nil, 300)
	b = binary.AppendVarint(b, -7)
	b = append(b, 3, 'a', 'b', 'c')
	r := NewReader(b)
	if v, s := r.Uvarint(), r.Varint(); v != 300 || s != -7 {
		t.Fatalf("read %d %d", v, s)
	}
	if got := string(r.Bytes(uint64(r.Byte()))); got != "abc" || r.Err() != nil || r.Len() != 0 {
		t.Fatalf("read %q, err %v, %d left", got, r.Err(), r.Len())
	}
	if r.Byte(); !errors.Is(r.Err(), ErrMalformed) {
		t.Fatalf("read past the end: %v", r.Err())
	}

	r = NewReader(binary.AppendUvarint(nil, 5))
	if n := r.Count(1); n != 0 || !errors.Is(r.Err(), ErrMalformed) {
		t.Fatalf("a count of 5 items in no bytes: %d, %v", n, r.Err())
	}
	r = NewReader(binary.AppendUvarint(nil, 1<<32))
	if v := r.Uint32(); v != 0 || r.Err() == nil {
		t.Fatalf("2^32 as a uint32: %d, %v", v, r.Err())
	}
	other := errors.New("other")
	r.Fail(other)
	if !errors.Is(r.Err(), ErrMalformed) {
		t.Fatalf("a later failure replaced the first: %v", r.Err())
	}
}
