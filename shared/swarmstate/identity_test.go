package swarmstate

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/swarmkit/v2/manager/encryption"
)

// writeCertificates gives a swarm directory a root CA and a manager certificate for key, and
// returns the CA's certificate and key.
func writeCertificates(t *testing.T, dir string, key crypto.Signer) (caDER []byte, caKey *ecdsa.PrivateKey) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "swarm-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err = x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	nodeTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "node-1", OrganizationalUnit: []string{"swarm-manager"}},
		DNSNames:     []string{"swarm-manager"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	nodeDER, err := x509.CreateCertificate(rand.Reader, nodeTmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, der := range map[string][]byte{"swarm-root-ca.crt": caDER, "swarm-node.crt": nodeDER} {
		data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, "certificates", name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caDER, caKey
}

func TestIdentityOfAnUnsealedCopyIsTheManagersCertificate(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(map[bool]string{false: "pkcs8", true: "legacy PEM"}[legacy], func(t *testing.T) {
			kek := bytes.Repeat([]byte{7}, 32)
			dir, der := sealedSwarmDir(t, kek, bytes.Repeat([]byte{9}, 32), legacy)
			var key crypto.Signer
			var err error
			if legacy {
				key, err = x509.ParseECPrivateKey(der)
			} else {
				var k any
				k, err = x509.ParsePKCS8PrivateKey(der)
				key, _ = k.(crypto.Signer)
			}
			if err != nil {
				t.Fatal(err)
			}
			writeCertificates(t, dir, key)

			if _, err := ReadIdentity(dir); !errors.Is(err, ErrAutolocked) {
				t.Fatalf("the identity of a sealed copy: %v, want ErrAutolocked", err)
			}
			if err := Unseal(dir, encryption.HumanReadableKey(kek)); err != nil {
				t.Fatal(err)
			}
			id, err := ReadIdentity(dir)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := x509.ParseCertificate(id.Certificate.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: id.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("the node certificate does not chain to the root CA read with it: %v", err)
			}
			if !key.Public().(*ecdsa.PublicKey).Equal(id.Certificate.PrivateKey.(crypto.Signer).Public()) {
				t.Error("the identity's key is not the node key")
			}
		})
	}
}
