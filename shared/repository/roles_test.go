package repository

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// A repository made before keys had roles has no control-plane compartment: the first key
// of the volumes role gives it one, sealed into the operator's key file, and from then on a
// control-plane record sealed with the shared key is trusted only when it is older.
func TestAVolumesKeyGivesAnOlderRepositoryItsCompartment(t *testing.T) {
	ctx := context.Background()
	be, r := initOperators(t)
	// Seal the key again as an older version wrote it: no compartment.
	old := r.key
	old.ControlEncrypt, old.ControlHash = nil, nil
	sealed, err := sealMasterKey(old, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Put(ctx, r.keyName, sealed); err != nil {
		t.Fatal(err)
	}
	r, err = Open(ctx, be, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if r.control != nil || !r.TrustControlPlane(SealedShared, time.Now()) {
		t.Fatal("an older repository distrusts its own control-plane records")
	}
	before := time.Now().Add(-time.Minute)

	if err := r.AddKey(ctx, "operator", "worker", RoleVolumes, ""); err != nil {
		t.Fatal(err)
	}
	r, err = Open(ctx, be, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if r.control == nil || r.Role() != RoleFull {
		t.Fatal("the operator's key file did not get the compartment")
	}
	if !r.TrustControlPlane(SealedShared, before) || r.TrustControlPlane(SealedShared, time.Now()) || !r.TrustControlPlane(SealedControl, time.Now()) {
		t.Error("shared-sealed control-plane records are judged wrongly after the upgrade")
	}
	w, err := Open(ctx, be, "worker")
	if err != nil {
		t.Fatal(err)
	}
	if w.Role() != RoleVolumes || w.control != nil {
		t.Fatalf("the worker's key: role %q, compartment %v", w.Role(), w.control != nil)
	}
	if _, err := w.ControlPlane(); !errors.Is(err, ErrNoControlKey) {
		t.Errorf("a volumes key writes into the control plane: %v", err)
	}
	if err := w.AddKey(ctx, "worker", "another", RoleFull, ""); !errors.Is(err, ErrNoControlKey) {
		t.Errorf("a volumes key adds a full key: %v", err)
	}
}

// Node-scoped records sealed with the shared key are what every key made before node
// compartments existed: they stay trusted, until a key for one node is added; from then on
// only the node's compartment (or a full key's) makes one. A new repository has node
// compartments from its start.
func TestNodeCompartmentsBeginWhenTheFirstNodeKeyIsAdded(t *testing.T) {
	ctx := context.Background()
	be, r := initOperators(t)
	if r.TrustNode(SealedShared, "n1", time.Now()) || r.TrustNode(SealedShared, "n1", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("a new repository trusts a node's record sealed with the shared key, backdated or not")
	}
	old := r.key
	old.NodesSince = time.Time{}
	sealed, err := sealMasterKey(old, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Put(ctx, r.keyName, sealed); err != nil {
		t.Fatal(err)
	}
	if r, err = Open(ctx, be, "operator"); err != nil {
		t.Fatal(err)
	}
	if !r.TrustNode(SealedShared, "n1", time.Now()) {
		t.Fatal("an older repository distrusts its own node-scoped records")
	}
	before := time.Now().Add(-time.Minute)
	if err := r.AddKey(ctx, "operator", "n1's", RoleVolumes, "n1"); err != nil {
		t.Fatal(err)
	}
	for _, password := range []string{"operator", "n1's"} {
		k, err := Open(ctx, be, password)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case !k.TrustNode(SealedShared, "n1", before):
			t.Errorf("%s: a record made before node keys is distrusted", password)
		case k.TrustNode(SealedShared, "n1", time.Now()):
			t.Errorf("%s: a shared-sealed record made after node keys is trusted", password)
		case !k.TrustNode(Sealing{Node: "n1"}, "n1", time.Now()) || k.TrustNode(Sealing{Node: "n2"}, "n1", time.Now()):
			t.Errorf("%s: records sealed in node compartments are judged wrongly", password)
		}
	}
	if err := r.AddKey(ctx, "operator", "x", RoleFull, "n1"); err == nil {
		t.Error("a full key for one node was added")
	}
}

// initOperators initialises a repository in a temporary directory, with the password "operator".
func initOperators(t *testing.T) (storage.Backend, *Repository) {
	t.Helper()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(context.Background(), be, "operator")
	if err != nil {
		t.Fatal(err)
	}
	return be, r
}
