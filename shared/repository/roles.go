package repository

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Keys have roles. A full key reads and writes everything. A key of the volumes role, for the
// plugins of workers, holds only the shared key: it adds and restores volume snapshots, but
// cannot read control-plane backups (the swarm's secrets, node keys and raft key) nor make
// one an operator would accept. Control-plane backups are sealed and hashed with keys of
// their own, the control-plane compartment, which only full keys hold; index files and the
// other records stay shared, so that every writer deduplicates against every pack.
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

// compartment seals and hashes what one set of keys protects.
type compartment struct {
	crypt *crypter
	hash  hasher
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
	return &compartment{crypt: c, hash: h}, nil
}

// Role is the role of the key the repository was opened with.
func (r *Repository) Role() Role { return r.key.Role }

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

// Sealing says with which key a record was sealed.
type Sealing uint8

const (
	SealedShared Sealing = iota
	SealedControl
)

// TrustControlPlane reports whether a control-plane record sealed as s and dated t is one
// only a full key could have made: sealed in the compartment, or made before the repository
// had one. A record a volumes key sealed with the shared key is a forgery.
func (r *Repository) TrustControlPlane(s Sealing, t time.Time) bool {
	if s == SealedControl || r.control == nil {
		return true
	}
	return t.Before(r.key.ControlSince)
}

// AddKey adds a key file that opens with password and holds the keys of role. A repository
// made before compartments existed gets one first, when the first volumes key is added:
// the key file this handle was opened with is sealed again with it, and control-plane
// backups made from then on are out of reach of volumes keys (those made before are not).
// current is the password this handle was opened with.
func (r *Repository) AddKey(ctx context.Context, current, password string, role Role) error {
	if r.key.Role != RoleFull {
		return fmt.Errorf("add a key: %w", ErrNoControlKey)
	}
	if password == "" {
		return errors.New("add a key: the new password is empty")
	}
	if role == RoleVolumes && r.control == nil {
		upgraded := r.key
		upgraded.addControl(r.now().UTC())
		sealed, err := sealMasterKey(upgraded, current)
		if err != nil {
			return err
		}
		if err := r.be.Put(ctx, r.keyName, sealed); err != nil {
			return fmt.Errorf("seal the key file with a control-plane compartment: %w", err)
		}
		control, err := newCompartment(upgraded.ControlEncrypt, upgraded.ControlHash)
		if err != nil {
			return err
		}
		r.key, r.control = upgraded, control
	}
	mk := r.key
	if role == RoleVolumes {
		mk.ControlEncrypt, mk.ControlHash = nil, nil
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
