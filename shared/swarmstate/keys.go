// Package swarmstate reads a copy of a manager's swarm directory offline: the raft keys
// kept in the node key's PEM headers, the raft snapshot and write-ahead log, and the store
// of objects (nodes, services, networks, secrets, configs) they describe. It reads only from
// a copy, never a live manager's files; its one writer, Unseal, rewrites a restored copy.
package swarmstate

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/swarmkit/v2/manager/encryption"
)

// Node key PEM headers that hold the raft data encryption keys (DEKs).
const (
	headerRaftDEK        = "raft-dek"
	headerRaftPendingDEK = "raft-dek-pending"
)

// Keys are the raft data encryption keys of a manager.
type Keys struct {
	Current []byte
	Pending []byte
}

// ErrAutolocked says the node key is sealed with an unlock key that was not given.
var ErrAutolocked = errors.New("the swarm is autolocked: give the unlock key that was current when the backup was taken (docker swarm unlock-key)")

// ErrWrongUnlockKey says the given unlock key does not open the node key.
var ErrWrongUnlockKey = errors.New("the unlock key does not open this swarm's keys")

// NodeKeyPath is the manager's TLS key inside a swarm directory.
func NodeKeyPath(swarmDir string) string {
	return filepath.Join(swarmDir, "certificates", "swarm-node.key")
}

// Autolocked reports whether the node key in swarmDir is sealed with an unlock key.
func Autolocked(swarmDir string) (bool, error) {
	block, err := readNodeKey(swarmDir)
	if err != nil {
		return false, err
	}
	return isSealed(block), nil
}

func isSealed(block *pem.Block) bool {
	return block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != ""
}

func readNodeKey(swarmDir string) (*pem.Block, error) {
	data, err := os.ReadFile(NodeKeyPath(swarmDir))
	if err != nil {
		return nil, fmt.Errorf("read the node key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM key", NodeKeyPath(swarmDir))
	}
	return block, nil
}

// ReadKeys returns the raft keys of the swarm directory. unlockKey is the human-readable
// key (SWMKEY-1-...) of an autolocked swarm, or empty.
func ReadKeys(swarmDir, unlockKey string) (Keys, error) {
	block, err := readNodeKey(swarmDir)
	if err != nil {
		return Keys{}, err
	}
	var decrypter encryption.Decrypter = encryption.NoopCrypter
	if unlockKey = strings.TrimSpace(unlockKey); unlockKey != "" {
		kek, err := encryption.ParseHumanReadableKey(unlockKey)
		if err != nil {
			return Keys{}, fmt.Errorf("the unlock key is not a swarm unlock key (SWMKEY-1-...)")
		}
		_, decrypter = encryption.Defaults(kek, false)
	}
	sealed := isSealed(block)
	if sealed && unlockKey == "" {
		return Keys{}, ErrAutolocked
	}
	var keys Keys
	for header, dst := range map[string]*[]byte{headerRaftDEK: &keys.Current, headerRaftPendingDEK: &keys.Pending} {
		v, ok := block.Headers[header]
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return Keys{}, fmt.Errorf("node key header %s: %w", header, err)
		}
		dek, err := encryption.Decrypt(raw, decrypter)
		if err != nil {
			if sealed {
				return Keys{}, ErrWrongUnlockKey
			}
			return Keys{}, fmt.Errorf("node key header %s: %w", header, err)
		}
		*dst = dek
	}
	if keys.Current == nil {
		return Keys{}, fmt.Errorf("the node key carries no raft key: is this a manager's swarm directory?")
	}
	return keys, nil
}

// decrypter opens raft data sealed with either key.
func (k Keys) decrypter() encryption.Decrypter {
	_, current := encryption.Defaults(k.Current, false)
	if k.Pending == nil {
		return current
	}
	_, pending := encryption.Defaults(k.Pending, false)
	return encryption.NewMultiDecrypter(current, pending)
}
