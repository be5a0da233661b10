package controlplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A node's certificate names it (common name) and its cluster (organization), as swarmkit
// issues them: this is how a command tells the swarm directory here is the manager's it talks
// to, and how a worker's agent knows its cluster.
func TestTheNodeCertificateTellsTheNodeAndItsCluster(t *testing.T) {
	dir := t.TempDir()
	if OnThisHost(dir, "node1") || NodeCluster(dir) != "" {
		t.Fatal("a directory without a certificate is taken for a node's")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "node1", OrganizationalUnit: []string{"swarm-worker"}, Organization: []string{"cluster7"}},
		NotBefore:    time.Now(), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "certificates"), 0o700); err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "certificates", "swarm-node.crt"), pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if !OnThisHost(dir, "node1") || OnThisHost(dir, "node2") {
		t.Error("OnThisHost does not go by the certificate's common name")
	}
	if got := NodeCluster(dir); got != "cluster7" {
		t.Errorf("NodeCluster = %q, want cluster7", got)
	}
}
