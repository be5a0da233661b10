package swarmstate

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/moby/swarmkit/v2/api"
	"github.com/moby/swarmkit/v2/manager/encryption"
)

func TestAnExpiredNodeCertificateIsIssuedAgainByTheBackupsRootCA(t *testing.T) {
	kek := bytes.Repeat([]byte{7}, 32)
	dir, der := sealedSwarmDir(t, kek, bytes.Repeat([]byte{9}, 32), false)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	key := k.(crypto.Signer)
	caDER, caKey := writeCertificates(t, dir, key)
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	st := &State{Clusters: map[string]*api.Cluster{"c1": {ID: "c1", RootCA: api.RootCA{
		CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CAKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKeyDER}),
	}}}}
	now := time.Now()
	if err := IssueNodeCertificate(dir, st, now, now.Add(time.Hour)); err != ErrAutolocked {
		t.Fatalf("issuing for a sealed key: %v, want ErrAutolocked", err)
	}
	if err := Unseal(dir, encryption.HumanReadableKey(kek)); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	ca, _ := x509.ParseCertificate(caDER)
	roots.AddCert(ca)
	verify := func(at time.Time) (*x509.Certificate, error) {
		cert, err := NodeCertificate(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return cert, err
	}

	// An expired copy, as a backup older than the certificates' lifetime holds.
	if err := IssueNodeCertificate(dir, st, now.Add(-100*24*time.Hour), now.Add(-10*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(now); err == nil {
		t.Fatal("the expired certificate verifies")
	}
	if err := IssueNodeCertificate(dir, st, now.Add(-time.Minute), now.Add(DefaultNodeCertExpiry)); err != nil {
		t.Fatal(err)
	}
	cert, err := verify(now)
	if err != nil {
		t.Fatalf("the fresh certificate: %v", err)
	}
	if cert.Subject.CommonName != "node-1" || len(cert.Subject.OrganizationalUnit) != 1 || cert.Subject.OrganizationalUnit[0] != "swarm-manager" {
		t.Errorf("the fresh certificate names %v, want the same node and role", cert.Subject)
	}
	id, err := ReadIdentity(dir)
	if err != nil {
		t.Fatalf("the fresh certificate does not go with the node key: %v", err)
	}
	if id.Certificate.Leaf != nil && id.Certificate.Leaf.NotAfter.Before(now) {
		t.Error("the identity still carries the expired certificate")
	}
}
