package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// A lease gives one writer a snapshot chain (one volume, one swarm) for a while: two nodes
// that both think they hold a volume must not interleave snapshots of it. Leases are
// created atomically; one held by a dead process or past its expiry can be taken over.
const leaseTTL = 15 * time.Minute

// ErrLeased says another writer holds the chain.
var ErrLeased = errors.New("held by another writer")

type leaseRecord struct {
	Holder  string     `json:"holder"` // who, in words: "node2 (pid 42)"
	Lock    lockRecord `json:"lock"`   // for the liveness check
	Expires time.Time  `json:"expires"`
}

// leasesHeld names the leases this process holds now. A lease record of this process that
// is not among them is one whose release failed (the storage was unreachable): this
// process knows it is over, and takes it again at once instead of waiting for its expiry.
var leasesHeld = struct {
	sync.Mutex
	names map[string]bool
}{names: map[string]bool{}}

func markLeaseHeld(name string, held bool) {
	leasesHeld.Lock()
	defer leasesHeld.Unlock()
	if held {
		leasesHeld.names[name] = true
	} else {
		delete(leasesHeld.names, name)
	}
}

// leftByThisProcess reports whether a lease record is this process's own and no longer held.
func leftByThisProcess(name string, rec *leaseRecord) bool {
	leasesHeld.Lock()
	defer leasesHeld.Unlock()
	return rec.Lock.Instance == processInstance && !leasesHeld.names[name]
}

// Lease is a held lease; it is renewed while held.
type Lease struct {
	repo   *Repository
	name   string
	rec    leaseRecord
	cancel context.CancelFunc
	done   chan struct{}
}

// leaseName names a chain's lease without revealing what the chain is.
func (r *Repository) leaseName(chain string) string {
	return "leases/" + r.shared.hash.sum([]byte("lease\x00"+chain)).String()
}

// TakeLease takes the lease on a chain for holder (a node's name). It fails with ErrLeased,
// naming the holder, while another live writer has it.
func (r *Repository) TakeLease(ctx context.Context, chain, holder string) (*Lease, error) {
	name := r.leaseName(chain)
	rec := leaseRecord{
		Holder:  fmt.Sprintf("%s (pid %d)", holder, os.Getpid()),
		Lock:    r.holder(),
		Expires: time.Now().Add(leaseTTL).UTC(),
	}
	plain, _ := json.Marshal(rec)
	sealed := r.shared.crypt.seal(nil, plain, []byte(name))
	for range 3 {
		err := r.be.Create(ctx, name, sealed)
		if err == nil {
			return r.holdLease(ctx, name, rec), nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return nil, fmt.Errorf("take the lease on %s: %w", chain, err)
		}
		held, stored, err := r.readLease(ctx, name)
		if err != nil {
			return nil, err
		}
		if stored == nil {
			continue // released meanwhile: create it again
		}
		if held != nil && time.Now().Before(held.Expires) && !r.holderDied(held.Lock) && !leftByThisProcess(name, held) {
			return nil, fmt.Errorf("%s is %w: %s since %s", chain, ErrLeased, held.Holder, held.Lock.Time.Format(time.RFC3339))
		}
		// Expired or abandoned: of the writers that found this very record, one takes it over.
		won, err := r.claimTakeover(ctx, name, stored, plain)
		if err != nil {
			return nil, fmt.Errorf("take over the lease on %s: %w", chain, err)
		}
		if !won {
			break
		}
		if err := r.be.Put(ctx, name, sealed); err != nil {
			return nil, fmt.Errorf("take over the lease on %s: %w", chain, err)
		}
		return r.holdLease(ctx, name, rec), nil
	}
	return nil, fmt.Errorf("%s is %w: another writer took it just now", chain, ErrLeased)
}

// maxTakeovers bounds the takers of one abandoned lease record that can die before writing
// their own lease.
const maxTakeovers = 16

// claimTakeover decides which writer takes over an abandoned lease whose stored bytes it
// read: the first to create a marker named by those bytes. Markers stay, so that a writer
// who read the record long ago cannot take over whatever replaced it since. A taker that
// died between its marker and its lease (its record in the marker says who it was) leaves
// the next marker of the chain to the others.
func (r *Repository) claimTakeover(ctx context.Context, name string, stored, plain []byte) (bool, error) {
	base := name + ".takeover-" + contentID(stored).String()
	for n := 1; n <= maxTakeovers; n++ {
		marker := fmt.Sprintf("%s-%d", base, n)
		err := r.be.Create(ctx, marker, r.shared.crypt.seal(nil, plain, []byte(marker)))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return false, err
		}
		taker, _, err := r.readLease(ctx, marker)
		if err != nil {
			return false, err
		}
		if taker != nil && time.Now().Before(taker.Expires) && !r.holderDied(taker.Lock) {
			return false, nil // a live writer took it over
		}
	}
	return false, nil
}

func (r *Repository) holdLease(ctx context.Context, name string, rec leaseRecord) *Lease {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Lease{repo: r, name: name, rec: rec, cancel: cancel, done: make(chan struct{})}
	markLeaseHeld(name, true)
	go l.renew(rctx)
	return l
}

// readLease returns a lease's record and its stored bytes; the record is nil when it is
// damaged (it protects nothing), both are nil when there is no lease.
func (r *Repository) readLease(ctx context.Context, name string) (*leaseRecord, []byte, error) {
	stored, err := r.be.Get(ctx, name, maxSmallObject)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if errors.Is(err, storage.ErrTooLarge) {
		return nil, []byte(err.Error()), nil // no lease of ours: it protects nothing
	}
	if err != nil {
		return nil, nil, err
	}
	plain, err := r.shared.crypt.open(nil, stored, []byte(name))
	if err != nil {
		return nil, stored, nil
	}
	var rec leaseRecord
	if json.Unmarshal(plain, &rec) != nil {
		return nil, stored, nil
	}
	return &rec, stored, nil
}

// renew pushes the expiry out while the work goes on.
func (l *Lease) renew(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.rec.Expires = time.Now().Add(leaseTTL).UTC()
		plain, _ := json.Marshal(l.rec)
		_ = l.repo.be.Put(ctx, l.name, l.repo.shared.crypt.seal(nil, plain, []byte(l.name)))
	}
}

// Release gives the lease up. When the storage cannot be reached the record stays behind;
// this process takes it again at its next try, any other after the expiry.
func (l *Lease) Release(ctx context.Context) error {
	l.cancel()
	<-l.done
	markLeaseHeld(l.name, false)
	return l.repo.be.Delete(context.WithoutCancel(ctx), l.name)
}
