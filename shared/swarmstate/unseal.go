package swarmstate

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/moby/swarmkit/v2/ca/pkcs8"
	"github.com/moby/swarmkit/v2/manager/encryption"

	"github.com/swarmbackup/swarmbackup/shared/atomicfile"
)

// Unseal rewrites the node key of an autolocked swarm directory so that it opens without the
// unlock key: the TLS key is decrypted and the raft keys in its headers are stored as a
// manager that was never locked stores them. It is the one writer in this package, meant for
// a restored copy before it is put in place: a locked manager refuses --force-new-cluster.
// The cluster's own setting still says autolock, so the manager seals the key again, with the
// cluster's unlock key, as soon as it runs.
func Unseal(swarmDir, unlockKey string) error {
	block, err := readNodeKey(swarmDir)
	if err != nil {
		return err
	}
	if !isSealed(block) {
		return nil
	}
	keys, err := ReadKeys(swarmDir, unlockKey)
	if err != nil {
		return err
	}
	kek, err := encryption.ParseHumanReadableKey(strings.TrimSpace(unlockKey))
	if err != nil {
		return fmt.Errorf("the unlock key is not a swarm unlock key (SWMKEY-1-...)")
	}
	var der []byte
	plain := &pem.Block{Type: block.Type, Headers: map[string]string{}}
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		// What swarmkit writes: PKCS#8 sealed with PBES2 (PBKDF2, AES-256-CBC).
		der, err = pkcs8.DecryptPEMBlock(block, kek)
		plain.Type = "PRIVATE KEY"
	} else {
		// Older managers sealed their key with PEM's own encryption, which the standard
		// library still opens, though it deprecates it for new keys.
		der, err = x509.DecryptPEMBlock(block, kek) //nolint:staticcheck // the format older managers wrote
	}
	if err != nil {
		return ErrWrongUnlockKey
	}
	plain.Bytes = der
	for k, v := range block.Headers {
		switch strings.ToLower(k) {
		// The KEK version goes too: a manager refuses a key whose version matches the
		// cluster's but whose KEK (now none) differs; without one it takes the cluster's.
		case "proc-type", "dek-info", headerRaftDEK, headerRaftPendingDEK, "kek-version":
		default:
			plain.Headers[k] = v
		}
	}
	for header, dek := range map[string][]byte{headerRaftDEK: keys.Current, headerRaftPendingDEK: keys.Pending} {
		if dek == nil {
			continue
		}
		record, err := encryption.Encrypt(dek, encryption.NoopCrypter)
		if err != nil {
			return fmt.Errorf("store the raft key: %w", err)
		}
		plain.Headers[header] = base64.StdEncoding.EncodeToString(record)
	}
	if err := atomicfile.WriteFile(NodeKeyPath(swarmDir), pem.EncodeToMemory(plain), 0o600); err != nil {
		return fmt.Errorf("write the unsealed node key: %w", err)
	}
	return nil
}
