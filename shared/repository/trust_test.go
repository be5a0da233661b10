package repository

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/storage"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// A machine cloned from this one has its host name and another boot ID: its running backup
// holds a live lock, and prune must not take its exclusive lock beside it.
func TestALiveLockOnAClonedMachineIsNotTakenForDead(t *testing.T) {
	ctx := context.Background()
	r, err := Init(ctx, newBackend(t), "pw")
	must(t, err)
	clone := r.holder()
	clone.BootID, clone.PID, clone.Purpose, clone.Instance = "a-clone's-boot", 4242, "backup of volume db", "a clone's process"
	id, err := r.SaveFile(ctx, LockFile, clone)
	must(t, err)
	if l, err := r.Lock(ctx, true, "prune"); !errors.Is(err, ErrLocked) {
		if l != nil {
			_ = l.Unlock(ctx)
		}
		t.Fatalf("prune locked the repository beside a live backup on a cloned machine: %v", err)
	}
	if n, err := r.RemoveDeadLocks(ctx); err != nil || n != 0 {
		t.Fatalf("a live clone's lock was removed as dead: %d, %v", n, err)
	}
	// Its lease on the chain is not taken over either.
	name := r.leaseName("volume db")
	plain, _ := json.Marshal(leaseRecord{Holder: "clone", Lock: clone, Expires: time.Now().Add(leaseTTL)})
	must(t, r.be.Put(ctx, name, r.shared.crypt.seal(nil, plain, []byte(name))))
	if _, err := r.TakeLease(ctx, "volume db", "node1"); !errors.Is(err, ErrLeased) {
		t.Fatalf("the lease of a live clone was taken over: %v", err)
	}

	// Only the expiry of its refreshes makes a lock stale.
	must(t, r.DeleteFile(ctx, LockFile, id))
	clone.Time = time.Now().Add(-lockStale - time.Minute)
	_, err = r.SaveFile(ctx, LockFile, clone)
	must(t, err)
	l, err := r.Lock(ctx, true, "prune")
	if err != nil {
		t.Fatalf("a lock not refreshed for %s still blocks prune: %v", lockStale, err)
	}
	must(t, l.Unlock(ctx))
}

// rendezvous makes the writers that read a lease wait for each other before they act on
// what they read, and the second one slow to remove it: the race of two takeovers, made
// certain.
type rendezvous struct {
	storage.Backend
	wg      sync.WaitGroup
	reads   atomic.Int32
	deletes atomic.Int32
	created chan struct{}
	once    sync.Once
}

func (b *rendezvous) Delete(ctx context.Context, name string) error {
	if strings.HasPrefix(name, "leases/") && b.deletes.Add(1) == 2 {
		select {
		case <-b.created:
		case <-time.After(2 * time.Second):
		}
	}
	return b.Backend.Delete(ctx, name)
}

func (b *rendezvous) Create(ctx context.Context, name string, data []byte) error {
	err := b.Backend.Create(ctx, name, data)
	if err == nil && strings.HasPrefix(name, "leases/") && !strings.Contains(name, ".") {
		b.once.Do(func() { close(b.created) })
	}
	return err
}

func (b *rendezvous) Get(ctx context.Context, name string, limit int64) ([]byte, error) {
	data, err := b.Backend.Get(ctx, name, limit)
	if strings.HasPrefix(name, "leases/") && b.reads.Add(1) <= 2 {
		b.wg.Done()
		b.wg.Wait()
	}
	return data, err
}

// Two writers find the same abandoned lease at once: exactly one takes it over.
func TestTwoWritersTakingOverOneAbandonedLeaseDoNotBothWin(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	r, err := Init(ctx, be, "pw")
	must(t, err)
	abandonLease(t, r, "volume db")

	race := &rendezvous{Backend: be, created: make(chan struct{})}
	race.wg.Add(2)
	var wg sync.WaitGroup
	results := make([]error, 2)
	for i := range 2 {
		h, err := Open(ctx, race, "pw")
		must(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = h.TakeLease(ctx, "volume db", "node"+string(rune('1'+i)))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrLeased):
			t.Errorf("takeover failed otherwise: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers took the lease over (%v), want exactly 1", won, results)
	}
}

// A key file whose KDF would need gigabytes of memory is passed over, with a warning, and
// the repository opens with the key that fits.
func TestAKeyFileAskingForHugeMemoryIsPassedOver(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	_, err := Init(ctx, be, "pw")
	must(t, err)
	hostile, _ := json.Marshal(keyFile{Version: 1, KDF: "scrypt", N: 1 << 22, R: 64, P: 16, Salt: make([]byte, 32), Sealed: make([]byte, 64)})
	// Listed first, so that it is tried before the real key.
	must(t, be.Put(ctx, "keys/0000", hostile))
	start := time.Now()
	r, err := Open(ctx, be, "pw")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("open took %s", took)
	}
	if w := r.Warnings(); len(w) != 1 || !strings.Contains(w[0].Error(), "keys/0000") {
		t.Errorf("warnings %v, want one naming keys/0000", w)
	}
}

// A huge file dropped under index/ (sparse: 16 GiB that take no disk) is not read at all:
// the repository opens, lists, and says which file it left out.
func TestAnOversizedIndexFileIsLeftOutUnread(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := localfs.New(dir)
	must(t, err)
	r, err := Init(ctx, be, "pw")
	must(t, err)
	_, _, err = r.SaveBlob(ctx, DataBlob, []byte("kept"))
	must(t, err)
	must(t, r.Flush(ctx))
	bogus := filepath.Join(dir, "index", NewRandomID().String())
	f, err := os.Create(bogus)
	must(t, err)
	must(t, f.Truncate(16<<30))
	must(t, f.Close())

	r2, err := Open(ctx, be, "pw")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !r2.HasBlob(r.Hash([]byte("kept"))) {
		t.Error("the good index was not read")
	}
	if p := r2.IndexProblems(); len(p) != 1 || !errors.Is(p[0], storage.ErrTooLarge) {
		t.Errorf("index problems %v, want the oversized file", p)
	}
}

// A config whose repository ID was changed is not a wrong password: the key opens, and the
// message says the config and the key disagree.
func TestATamperedRepositoryIDIsNotCalledAWrongPassword(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	_, err := Init(ctx, be, "pw")
	must(t, err)
	raw, _ := json.Marshal(repoConfig{Version: FormatVersion, ID: NewRandomID()})
	must(t, be.Put(ctx, "config", raw))
	_, err = Open(ctx, be, "pw")
	if err == nil || errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "config") {
		t.Fatalf("open with a changed repository ID: %v", err)
	}
}

// A writer killed after it claimed an abandoned lease and before it wrote its own locks
// nobody out: the next writer sees that taker is gone and takes the lease over.
func TestATakerKilledMidTakeoverLocksNobodyOut(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	r, err := Init(ctx, be, "pw")
	must(t, err)
	name, stored, gone := abandonLease(t, r, "volume db")
	// The killed taker's marker: it claimed the takeover, then died.
	marker := name + ".takeover-" + contentID(stored).String() + "-1"
	takerPlain, _ := json.Marshal(leaseRecord{Holder: "a killed taker", Lock: gone, Expires: time.Now().Add(leaseTTL)})
	must(t, be.Create(ctx, marker, r.shared.crypt.seal(nil, takerPlain, []byte(marker))))

	l, err := r.TakeLease(ctx, "volume db", "node1")
	if err != nil {
		t.Fatalf("the chain is locked out after a taker died: %v", err)
	}
	must(t, l.Release(ctx))
}

// abandonLease leaves a chain's lease as a killed backup leaves it: expired, its holder a
// process of this machine that has ended. It returns the lease's name, its stored bytes and
// the dead holder.
func abandonLease(t *testing.T, r *Repository, chain string) (string, []byte, lockRecord) {
	t.Helper()
	name := r.leaseName(chain)
	gone := r.holder()
	gone.Start++
	plain, _ := json.Marshal(leaseRecord{Holder: "a killed backup", Lock: gone, Expires: time.Now().Add(-time.Minute)})
	stored := r.shared.crypt.seal(nil, plain, []byte(name))
	must(t, r.be.Put(context.Background(), name, stored))
	return name, stored, gone
}

// unreachableDeletes fails every delete of a lease, as an outage of the storage would.
type unreachableDeletes struct{ storage.Backend }

func (b unreachableDeletes) Delete(ctx context.Context, name string) error {
	if strings.HasPrefix(name, "leases/") {
		return errors.New("cannot reach the storage")
	}
	return b.Backend.Delete(ctx, name)
}

// A lease whose release failed (the storage went away at the end of a backup) does not
// refuse this process's next backup of the chain until it expires; while it is held,
// it refuses.
func TestALeaseWhoseReleaseFailedIsTakenAgainByItsProcess(t *testing.T) {
	ctx := context.Background()
	be := newBackend(t)
	_, err := Init(ctx, be, "pw")
	must(t, err)
	r, err := Open(ctx, unreachableDeletes{be}, "pw")
	must(t, err)
	l, err := r.TakeLease(ctx, "volume db", "node2")
	must(t, err)
	if _, err := r.TakeLease(ctx, "volume db", "node2"); !errors.Is(err, ErrLeased) {
		t.Fatalf("a lease this process holds was taken again: %v", err)
	}
	if err := l.Release(ctx); err == nil {
		t.Fatal("the release succeeded although the storage was unreachable")
	}
	again, err := r.TakeLease(ctx, "volume db", "node2")
	if err != nil {
		t.Fatalf("the next backup after a failed release: %v", err)
	}
	_ = again.Release(ctx)
}
