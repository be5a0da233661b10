package swarmstate

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// DefaultNodeCertExpiry is swarm's default lifetime of node certificates.
const DefaultNodeCertExpiry = 90 * 24 * time.Hour

// IssueNodeCertificate replaces the node certificate in swarmDir with one signed by the
// cluster's root CA from the store, for the same node, role, cluster and key, valid from
// notBefore to notAfter. An engine refuses to start its swarm with an expired certificate,
// so a backup older than the certificates' lifetime is restored with a fresh one. The
// node key must not be sealed (an autolocked copy is unsealed first).
func IssueNodeCertificate(swarmDir string, st *State, notBefore, notAfter time.Time) error {
	old, err := NodeCertificate(swarmDir)
	if err != nil {
		return err
	}
	caCert, caKey, err := st.rootCA()
	if err != nil {
		return err
	}
	block, err := readNodeKey(swarmDir)
	if err != nil {
		return err
	}
	if isSealed(block) {
		return ErrAutolocked
	}
	nodeKey, err := parsePrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("read the node key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      old.Subject,
		DNSNames:     old.DNSNames,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, nodeKey.(crypto.Signer).Public(), caKey)
	if err != nil {
		return fmt.Errorf("sign a node certificate with the backup's root CA: %w", err)
	}
	path := filepath.Join(swarmDir, "certificates", "swarm-node.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write the new node certificate: %w", err)
	}
	return nil
}

// rootCA returns the cluster's root CA certificate and key as the store holds them.
func (s *State) rootCA() (*x509.Certificate, crypto.Signer, error) {
	for _, c := range s.Clusters {
		if len(c.RootCA.CAKey) == 0 {
			return nil, nil, errors.New("the backup's store holds no root CA key (an external CA signs this cluster's certificates)")
		}
		certBlock, _ := pem.Decode(c.RootCA.CACert)
		keyBlock, _ := pem.Decode(c.RootCA.CAKey)
		if certBlock == nil || keyBlock == nil {
			return nil, nil, errors.New("the backup's root CA is not PEM")
		}
		cert, err := x509.ParseCertificate(certBlock.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("read the backup's root CA certificate: %w", err)
		}
		key, err := parsePrivateKey(keyBlock.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("read the backup's root CA key: %w", err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, nil, errors.New("the backup's root CA key cannot sign")
		}
		return cert, signer, nil
	}
	return nil, nil, errors.New("the backup's store holds no cluster object")
}

func parsePrivateKey(der []byte) (any, error) {
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	return x509.ParsePKCS1PrivateKey(der)
}

// NodeCertificate reads the node certificate of a swarm directory: its subject names the
// node (CN), its role (OU) and its cluster (O).
func NodeCertificate(swarmDir string) (*x509.Certificate, error) {
	data, err := os.ReadFile(filepath.Join(swarmDir, "certificates", "swarm-node.crt"))
	if err != nil {
		return nil, fmt.Errorf("read the node certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("the node certificate file holds no certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read the node certificate: %w", err)
	}
	return cert, nil
}
