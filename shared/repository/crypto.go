package repository

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/scrypt"
)

// masterKey encrypts everything in the repository and keys the content hash. It is created
// once, at init, and stored only wrapped by a password-derived key (keyFile).
type masterKey struct {
	Encrypt []byte `json:"encrypt"` // AES-256-GCM
	Hash    []byte `json:"hash"`    // keyed BLAKE3 for blob IDs
	RepoID  ID     `json:"repo"`    // the repository this key belongs to
	// The control-plane compartment (roles.go): control-plane backups are sealed and hashed
	// with these, which a key of the volumes role does not hold.
	ControlEncrypt []byte `json:"control_encrypt,omitempty"`
	ControlHash    []byte `json:"control_hash,omitempty"`
	// ControlSince is when the repository got its compartment: control-plane backups made
	// before were sealed with the shared key.
	ControlSince time.Time `json:"control_since,omitzero"`
	Role         Role      `json:"role,omitempty"`
	// A key of the volumes role for one node holds that node's compartment (roles.go).
	Node        string `json:"node,omitempty"`
	NodeEncrypt []byte `json:"node_encrypt,omitempty"`
	NodeHash    []byte `json:"node_hash,omitempty"`
	// NodesSince is when node-scoped volumes got a compartment per node: such records sealed
	// with the shared key are trusted only when older. Zero: no key for one node was added
	// with this key file (it was made before they existed).
	NodesSince time.Time `json:"nodes_since,omitzero"`
}

func newMasterKey() masterKey {
	k := masterKey{Encrypt: randomKey(), Hash: randomKey(), NodesSince: fromTheStart}
	k.addControl(time.Time{})
	return k
}

// addControl gives the key a control-plane compartment, in use since since.
func (k *masterKey) addControl(since time.Time) {
	k.ControlEncrypt, k.ControlHash, k.ControlSince = randomKey(), randomKey(), since
}

// fromTheStart is when a new repository's node compartments began: before any record, so
// that no shared-sealed record of a node's volume is trusted there, however it is dated.
var fromTheStart = time.Unix(0, 0).UTC()

func randomKey() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func (k masterKey) valid() bool {
	if len(k.Encrypt) != 32 || len(k.Hash) != 32 || !k.Role.known() {
		return false
	}
	if k.Node != "" {
		if k.Role != RoleVolumes || len(k.NodeEncrypt) != 32 || len(k.NodeHash) != 32 {
			return false
		}
	} else if len(k.NodeEncrypt)+len(k.NodeHash) != 0 {
		return false
	}
	if k.Role == RoleVolumes {
		return len(k.ControlEncrypt) == 0
	}
	return len(k.ControlEncrypt) == len(k.ControlHash) && (len(k.ControlEncrypt) == 0 || len(k.ControlEncrypt) == 32)
}

// keyFile is stored under keys/: the master key sealed with a key derived from the password.
type keyFile struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	KDF     string    `json:"kdf"`
	N       int       `json:"n"`
	R       int       `json:"r"`
	P       int       `json:"p"`
	Salt    []byte    `json:"salt"`
	Sealed  []byte    `json:"sealed"`
}

// scrypt cost: about 0.1 s and 32 MiB, once per open.
const (
	scryptN = 1 << 15
	scryptR = 8
	scryptP = 1
)

// Bounds on a key file's scrypt parameters, checked before anything is allocated: scrypt
// needs 128·N·r bytes and N·r·p units of work, and a hostile key file sets them.
const (
	maxScryptMemory = 64 << 20 // twice what this version writes
	maxScryptWork   = 1 << 22  // sixteen times what this version writes
)

func plausibleKDF(n, r, p int) bool {
	return n >= 2 && n&(n-1) == 0 && n <= 1<<20 && r >= 1 && r <= 64 && p >= 1 && p <= 16 &&
		int64(128)*int64(n)*int64(r) <= maxScryptMemory && int64(n)*int64(r)*int64(p) <= maxScryptWork
}

// ErrWrongPassword is returned when no key file opens with the password.
var ErrWrongPassword = errors.New("wrong repository password")

func sealMasterKey(mk masterKey, password string) ([]byte, error) {
	kf := keyFile{Version: 1, Created: time.Now().UTC(), KDF: "scrypt", N: scryptN, R: scryptR, P: scryptP, Salt: make([]byte, 32)}
	if _, err := rand.Read(kf.Salt); err != nil {
		return nil, err
	}
	c, err := kf.cipher(password)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(mk)
	if err != nil {
		return nil, err
	}
	kf.Sealed = c.seal(nil, plain, []byte("swarmbackup key"))
	return json.Marshal(kf)
}

func (kf keyFile) cipher(password string) (*crypter, error) {
	if kf.KDF != "scrypt" {
		return nil, fmt.Errorf("key file uses KDF %q; this version knows scrypt", kf.KDF)
	}
	if !plausibleKDF(kf.N, kf.R, kf.P) || len(kf.Salt) < 16 || len(kf.Salt) > 1024 {
		return nil, fmt.Errorf("key file has implausible KDF parameters (n=%d r=%d p=%d)", kf.N, kf.R, kf.P)
	}
	kek, err := scrypt.Key([]byte(password), kf.Salt, kf.N, kf.R, kf.P, 32)
	if err != nil {
		return nil, err
	}
	return newCrypter(kek)
}

// openKeyFile decodes a key file and unseals the master key with password.
func openKeyFile(data []byte, password string) (masterKey, error) {
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return masterKey{}, fmt.Errorf("key file is damaged: %w", err)
	}
	if kf.Version != 1 {
		return masterKey{}, fmt.Errorf("key file version %d is not supported", kf.Version)
	}
	c, err := kf.cipher(password)
	if err != nil {
		return masterKey{}, err
	}
	plain, err := c.open(nil, kf.Sealed, []byte("swarmbackup key"))
	if err != nil {
		return masterKey{}, ErrWrongPassword
	}
	var mk masterKey
	if err := json.Unmarshal(plain, &mk); err != nil || !mk.valid() {
		return masterKey{}, errors.New("key file holds a damaged master key")
	}
	return mk, nil
}

// crypter seals with AES-256-GCM: a random 12-byte nonce, then ciphertext and tag.
type crypter struct {
	aead cipher.AEAD
}

// sealOverhead is what sealing adds to a plaintext.
const sealOverhead = 12 + 16

func newCrypter(key []byte) (*crypter, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &crypter{aead: aead}, nil
}

// seal appends nonce || ciphertext || tag to dst. aad binds the ciphertext to its name.
func (c *crypter) seal(dst, plaintext, aad []byte) []byte {
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	dst = append(dst, nonce...)
	return c.aead.Seal(dst, nonce, plaintext, aad)
}

var errAuth = errors.New("authentication failed: the data was changed or damaged")

// openInPlace decrypts over the ciphertext in sealed, saving an allocation and a copy.
func (c *crypter) openInPlace(sealed, aad []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	if len(sealed) < ns+c.aead.Overhead() {
		return nil, errAuth
	}
	return c.open(sealed[ns:ns], sealed, aad)
}

func (c *crypter) open(dst, sealed, aad []byte) ([]byte, error) {
	ns := c.aead.NonceSize()
	if len(sealed) < ns+c.aead.Overhead() {
		return nil, errAuth
	}
	out, err := c.aead.Open(dst, sealed[:ns], sealed[ns:], aad)
	if err != nil {
		return nil, errAuth
	}
	return out, nil
}

// hasher computes blob IDs: keyed BLAKE3, so that IDs say nothing outside this repository.
// Keying a hasher costs more than hashing a small chunk, so keyed hashers are reused.
type hasher struct {
	pool *sync.Pool
}

func newHasher(key []byte) (hasher, error) {
	proto, err := blake3.NewKeyed(key)
	if err != nil {
		return hasher{}, err
	}
	return hasher{pool: &sync.Pool{New: func() any { return proto.Clone() }}}, nil
}

func (h hasher) sum(data []byte) ID {
	hh := h.pool.Get().(*blake3.Hasher)
	defer h.pool.Put(hh)
	hh.Reset()
	_, _ = hh.Write(data)
	var id ID
	hh.Sum(id[:0])
	return id
}

// contentID names packs and other whole objects by their stored bytes, so that anyone can
// check an object's integrity without the key and the name reveals nothing about content.
func contentID(data []byte) ID {
	return ID(blake3.Sum256(data))
}
