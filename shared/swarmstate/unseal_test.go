package swarmstate

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/swarmkit/v2/ca/pkcs8"
	"github.com/moby/swarmkit/v2/manager/encryption"
)

// sealedSwarmDir writes a node key sealed the way an autolocked manager seals it: PKCS#8
// with PBES2, or, as older managers did, legacy PEM encryption.
func sealedSwarmDir(t *testing.T, kek, dek []byte, legacy bool) (dir string, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if legacy {
		der, err = x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block, err = x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, kek, x509.PEMCipherAES256) //nolint:staticcheck // as older managers sealed
	} else {
		der, err = x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block, err = pkcs8.EncryptPEMBlock(der, kek)
	}
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := encryption.Defaults(kek, false)
	record, err := encryption.Encrypt(dek, enc)
	if err != nil {
		t.Fatal(err)
	}
	block.Headers[headerRaftDEK] = base64.StdEncoding.EncodeToString(record)
	block.Headers["kek-version"] = "3"
	dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "certificates"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(NodeKeyPath(dir), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, der
}

func TestUnsealOpensTheNodeKeyAndKeepsTheRaftKey(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(map[bool]string{false: "pkcs8", true: "legacy PEM"}[legacy], func(t *testing.T) { testUnseal(t, legacy) })
	}
}

func testUnseal(t *testing.T, legacy bool) {
	kek := bytes.Repeat([]byte{7}, 32)
	dek := bytes.Repeat([]byte{9}, 32)
	dir, der := sealedSwarmDir(t, kek, dek, legacy)
	unlockKey := encryption.HumanReadableKey(kek)

	if _, err := ReadKeys(dir, ""); !errors.Is(err, ErrAutolocked) {
		t.Fatalf("reading a sealed key without the unlock key: %v, want ErrAutolocked", err)
	}
	wrong := encryption.HumanReadableKey(bytes.Repeat([]byte{8}, 32))
	if err := Unseal(dir, wrong); !errors.Is(err, ErrWrongUnlockKey) {
		t.Fatalf("Unseal with the wrong key: %v, want ErrWrongUnlockKey", err)
	}
	if locked, _ := Autolocked(dir); !locked {
		t.Fatal("a failed Unseal changed the key")
	}

	if err := Unseal(dir, unlockKey); err != nil {
		t.Fatal(err)
	}
	if locked, _ := Autolocked(dir); locked {
		t.Fatal("the key is still sealed")
	}
	keys, err := ReadKeys(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.Current, dek) {
		t.Error("the raft key changed")
	}
	block, err := readNodeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantType := map[bool]string{false: "PRIVATE KEY", true: "EC PRIVATE KEY"}[legacy]
	if !bytes.Equal(block.Bytes, der) || block.Type != wantType {
		t.Errorf("the unsealed key is %s, want the original key as %s", block.Type, wantType)
	}
	if v, ok := block.Headers["kek-version"]; ok {
		t.Errorf("the unsealed key keeps kek-version %s: the manager would refuse the cluster's KEK", v)
	}
}
