package repository

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// ID names a blob, pack, index file or snapshot: 32 bytes, shown as hex.
type ID [32]byte

// String is the full hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the 8-character form users see.
func (id ID) Short() string { return id.String()[:8] }

// IsNull reports whether id is all zeros.
func (id ID) IsNull() bool { return id == ID{} }

func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

func (id *ID) UnmarshalText(b []byte) error {
	parsed, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseID parses the full hex form.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid ID %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: %w", s, err)
	}
	return id, nil
}

// NewRandomID returns an ID that says nothing about any content.
func NewRandomID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic(err) // the system's random source failing leaves nothing safe to do
	}
	return id
}
