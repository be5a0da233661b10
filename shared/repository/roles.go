package repository

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zeebo/blake3"
)

// Keys have roles. A full key reads and writes everything. A key of the volumes role, for the
// plugins of workers, holds only the shared key: it adds and restores volume snapshots, but
// cannot read control-plane backups (the swarm's secrets, node keys and raft key) nor make
// one an operator would accept. Control-plane backups are sealed and hashed with keys of
// their own, the control-plane compartment, which only full keys hold; index files and the
// other records stay shared, so that every writer deduplicates against every pack.
//
// Volumes that are each node's own (scope=node) are sealed in a compartment per node. A key
// of the volumes role may be given one node's: that node's plugin then reads and writes its
// own node-scoped volumes and the cluster-scoped ones, which follow their tasks anywhere, but
// neither reads another node's nor makes a snapshot another node would restore. Full keys
// derive every node's compartment from the control plane's, so they read them all.
type Role string

const (
	RoleFull    Role = ""
	RoleVolumes Role = "volumes"
)

func (r Role) known() bool { return r == RoleFull || r == RoleVolumes }

// ParseRole reads a role as users name it.
func ParseRole(s string) (Role, error) {
	switch s {
	case "full":
		return RoleFull, nil
	case string(RoleVolumes):
		return RoleVolumes, nil
	}
	return "", fmt.Errorf("unknown key role %q: full or volumes", s)
}

func (r Role) String() string {
	if r == RoleFull {
		return "full"
	}
	return string(r)
}

// ErrNoControlKey says the repository was opened with a key that does not hold the
// control-plane compartment.
var ErrNoControlKey = errors.New("this key cannot read or make control-plane backups (it has the volumes role): use a full key")

// ErrOtherNode says the repository was opened with a key that does not hold a node's
// compartment: a key of the volumes role for another node, or for none.
var ErrOtherNode = errors.New("this key does not hold that node's compartment: its own volumes (scope=node) are read and written only with its key (key add --role volumes --node) or a full key")

// maxNodeName bounds a node's name as compartments carry it; swarm node IDs have 25 characters.
const maxNodeName = 128

// compartment seals and hashes what one set of keys protects.
type compartment struct {
	crypt *crypter
	hash  hasher
	// chunkKey keys where content-defined chunks are cut, so that the sizes of a
	// compartment's blobs do not tell those without its keys which known files it holds.
	chunkKey []byte
	control  bool   // the control-plane compartment
	node     string // the compartment of this node's own volumes
}

func newCompartment(encrypt, hash []byte) (*compartment, error) {
	c, err := newCrypter(encrypt)
	if err != nil {
		return nil, err
	}
	h, err := newHasher(hash)
	if err != nil {
		return nil, err
	}
	return &compartment{crypt: c, hash: h, chunkKey: chunkKey(hash)}, nil
}

// chunkKey is derived from the compartment's hash key: every writer that holds the one
// holds the other, and the repository stores nothing more.
func chunkKey(hashKey []byte) []byte {
	key := make([]byte, 32)
	blake3.DeriveKey("swarmbackup 2026-12-01 chunk boundaries", hashKey, key)
	return key
}

// nodeKeys derives a node's compartment keys from the control plane's: whoever holds those
// holds every node's, and a node's own key reveals nothing of them.
func nodeKeys(mk masterKey, node string) (encrypt, hash []byte) {
	derive := func(key []byte, purpose string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("swarmbackup node " + purpose + "\x00" + node))
		return m.Sum(nil)
	}
	return derive(mk.ControlEncrypt, "encrypt"), derive(mk.ControlHash, "hash")
}

// derivedNodes keeps the node compartments a full key derived, for all handles of one open.
type derivedNodes struct {
	mu     sync.Mutex
	byNode map[string]*compartment
}

func (d *derivedNodes) get(mk masterKey, node string) (*compartment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.byNode[node]; ok {
		return c, nil
	}
	c, err := newCompartment(nodeKeys(mk, node))
	if err != nil {
		return nil, err
	}
	c.node = node
	d.byNode[node] = c
	return c, nil
}

// Role is the role of the key the repository was opened with.
func (r *Repository) Role() Role { return r.key.Role }

// Node is the node whose own volumes a key of the volumes role may read and write; empty
// for full keys and for volumes keys of no node.
func (r *Repository) Node() string { return r.key.Node }

// compartmented reports whether the repository seals what the control plane and each node
// own apart; one made before compartments existed, and never given a volumes key, does not.
func (r *Repository) compartmented() bool {
	return r.control != nil || r.key.Role == RoleVolumes
}

// nodeCompartment returns the keys of node's compartment, when this key holds them.
func (r *Repository) nodeCompartment(node string) (*compartment, error) {
	switch {
	case node == "" || len(node) > maxNodeName:
		return nil, fmt.Errorf("node name %q: empty or too long", node)
	case r.node != nil && r.node.node == node:
		return r.node, nil
	case r.derived != nil:
		return r.derived.get(r.key, node)
	}
	return nil, fmt.Errorf("node %s: %w", node, ErrOtherNode)
}

// compartmentOf returns the keys that open a blob.
func (r *Repository) compartmentOf(bi BlobInfo) (*compartment, error) {
	switch {
	case bi.Control:
		if r.control == nil {
			return nil, ErrNoControlKey
		}
		return r.control, nil
	case bi.Node != "":
		return r.nodeCompartment(bi.Node)
	}
	return r.shared, nil
}

// CanOpen reports whether this key opens a blob.
func (r *Repository) CanOpen(bi BlobInfo) bool {
	_, err := r.compartmentOf(bi)
	return err == nil
}

// ControlPlane returns a handle that writes into the control-plane compartment: its blobs,
// packs and snapshot records are sealed with the control-plane key. A repository made
// before compartments existed writes with the shared key, as before.
func (r *Repository) ControlPlane() (*Repository, error) {
	if r.key.Role == RoleVolumes {
		return nil, ErrNoControlKey
	}
	f, err := r.Fork()
	if err != nil {
		return nil, err
	}
	if f.control != nil {
		f.sealer = f.control
	}
	return f, nil
}

// ForNode returns a handle that writes the snapshots of node's own volumes (scope=node) into
// that node's compartment. A repository made before compartments existed writes them with
// the shared key, as before.
func (r *Repository) ForNode(node string) (*Repository, error) {
	if !r.compartmented() {
		return r, nil
	}
	keys, err := r.nodeCompartment(node)
	if err != nil {
		return nil, err
	}
	f, err := r.Fork()
	if err != nil {
		return nil, err
	}
	f.sealer = keys
	return f, nil
}

// Sealing says with which key a record was sealed.
type Sealing struct {
	Control bool   // the control-plane compartment
	Node    string // the compartment of a node's own volumes
}

var (
	SealedShared  = Sealing{}
	SealedControl = Sealing{Control: true}
)

// TrustControlPlane reports whether a control-plane record sealed as s and dated t is one
// only a full key could have made: sealed in the compartment, or made before the repository
// had one. A record a volumes key sealed with the shared key is a forgery.
func (r *Repository) TrustControlPlane(s Sealing, t time.Time) bool {
	if s.Control || r.control == nil {
		return true
	}
	return s == SealedShared && t.Before(r.key.ControlSince)
}

// TrustNode reports whether a record of node's own volume, sealed as s and dated t, is one
// only that node's key or a full key could have made: sealed in that node's compartment (or
// the control plane's), or with the shared key before keys for single nodes existed.
// Another node's key, sealing with its own compartment or the shared key, cannot make one.
func (r *Repository) TrustNode(s Sealing, node string, t time.Time) bool {
	switch {
	case s.Control || (s.Node != "" && s.Node == node) || !r.compartmented():
		return true
	case s == SealedShared:
		return r.key.NodesSince.IsZero() || t.Before(r.key.NodesSince)
	}
	return false
}

// AddKey adds a key file that opens with password and holds the keys of role; node, for the
// volumes role only, gives it the compartment of that node's own volumes. A repository made
// before compartments existed gets one first, when the first volumes key is added: the key
// file this handle was opened with is sealed again with it, and control-plane backups made
// from then on are out of reach of volumes keys (those made before are not). current is
// the password this handle was opened with.
func (r *Repository) AddKey(ctx context.Context, current, password string, role Role, node string) error {
	if r.key.Role != RoleFull {
		return fmt.Errorf("add a key: %w", ErrNoControlKey)
	}
	if password == "" {
		return errors.New("add a key: the new password is empty")
	}
	if node != "" && (role != RoleVolumes || len(node) > maxNodeName) {
		return fmt.Errorf("add a key for node %q: only keys of the volumes role are for one node", node)
	}
	if err := r.upgradeKey(ctx, current, role, node); err != nil {
		return err
	}
	mk := r.key
	if role == RoleVolumes {
		mk.ControlEncrypt, mk.ControlHash = nil, nil
	}
	if node != "" {
		mk.Node = node
		mk.NodeEncrypt, mk.NodeHash = nodeKeys(r.key, node)
	}
	mk.Role = role
	sealed, err := sealMasterKey(mk, password)
	if err != nil {
		return err
	}
	if err := r.be.Put(ctx, "keys/"+NewRandomID().String(), sealed); err != nil {
		return fmt.Errorf("store the new key file: %w", err)
	}
	return nil
}

// upgradeKey gives the key file this handle opened what a new key of role needs: the
// control-plane compartment for a volumes key, the time node compartments began for one of
// a node.
func (r *Repository) upgradeKey(ctx context.Context, current string, role Role, node string) error {
	upgraded, changed := r.key, false
	now := r.now().UTC()
	if role == RoleVolumes && r.control == nil {
		upgraded.addControl(now)
		changed = true
	}
	if node != "" && upgraded.NodesSince.IsZero() {
		upgraded.NodesSince = now
		changed = true
	}
	if !changed {
		return nil
	}
	sealed, err := sealMasterKey(upgraded, current)
	if err != nil {
		return err
	}
	if err := r.be.Put(ctx, r.keyName, sealed); err != nil {
		return fmt.Errorf("seal the key file again with what the new key needs: %w", err)
	}
	control, err := newCompartment(upgraded.ControlEncrypt, upgraded.ControlHash)
	if err != nil {
		return err
	}
	control.control = true
	r.key, r.control = upgraded, control
	r.derived = &derivedNodes{byNode: map[string]*compartment{}}
	return nil
}
