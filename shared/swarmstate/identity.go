package swarmstate

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// Identity is what a manager presents to other managers: its node certificate and key, and
// the cluster's root CA that signed them.
type Identity struct {
	Certificate tls.Certificate
	RootCAs     *x509.CertPool
}

// ReadIdentity reads the node certificate, key and root CA of a swarm directory whose key
// is not sealed (an autolocked copy is unsealed first).
func ReadIdentity(swarmDir string) (Identity, error) {
	certDir := filepath.Join(swarmDir, "certificates")
	certPEM, err := os.ReadFile(filepath.Join(certDir, "swarm-node.crt"))
	if err != nil {
		return Identity{}, fmt.Errorf("read the node certificate: %w", err)
	}
	rootPEM, err := os.ReadFile(filepath.Join(certDir, "swarm-root-ca.crt"))
	if err != nil {
		return Identity{}, fmt.Errorf("read the cluster's root CA: %w", err)
	}
	block, err := readNodeKey(swarmDir)
	if err != nil {
		return Identity{}, err
	}
	if isSealed(block) {
		return Identity{}, ErrAutolocked
	}
	// The raft keys ride in the PEM headers; the TLS stack wants the bare key.
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return Identity{}, fmt.Errorf("load the node certificate and key: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		return Identity{}, fmt.Errorf("the cluster's root CA file holds no certificate")
	}
	return Identity{Certificate: cert, RootCAs: pool}, nil
}
