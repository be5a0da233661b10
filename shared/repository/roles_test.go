package repository

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// A repository made before keys had roles has no control-plane compartment: the first key
// of the volumes role gives it one, sealed into the operator's key file, and from then on a
// control-plane record sealed with the shared key is trusted only when it is older.
func TestAVolumesKeyGivesAnOlderRepositoryItsCompartment(t *testing.T) {
	ctx := context.Background()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Init(ctx, be, "operator")
	if err != nil {
		t.Fatal(err)
	}
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

	if err := r.AddKey(ctx, "operator", "worker", RoleVolumes); err != nil {
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
	if err := w.AddKey(ctx, "worker", "another", RoleFull); !errors.Is(err, ErrNoControlKey) {
		t.Errorf("a volumes key adds a full key: %v", err)
	}
}
