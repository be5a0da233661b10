package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A lock announces work in the repository. Backups hold shared locks; prune holds an
// exclusive one, so that it never removes data a running backup is about to reference.
// Locks are refreshed while held; one not refreshed for lockStale belongs to a writer that
// died and is ignored.
const (
	lockRefresh = 5 * time.Minute
	lockStale   = 30 * time.Minute
)

type lockRecord struct {
	Host   string `json:"host"`
	PID    int    `json:"pid"`
	BootID string `json:"boot_id,omitempty"`
	Start  uint64 `json:"start,omitempty"`  // the process's start time, in ticks since boot
	PIDNS  string `json:"pid_ns,omitempty"` // PIDs mean something only in the same namespace
	Agent  string `json:"agent,omitempty"`  // the long-lived program the process runs for, if any
	// Instance is random for each process: a record naming this process is known to be its
	// own, whatever its PID looks like from here.
	Instance  string    `json:"instance,omitempty"`
	Purpose   string    `json:"purpose"`
	Exclusive bool      `json:"exclusive"`
	Time      time.Time `json:"time"`
}

// Lock is a held lock; Unlock releases it.
type Lock struct {
	repo   *Repository
	mu     sync.Mutex
	id     ID
	rec    lockRecord
	cancel context.CancelFunc
	done   chan struct{}
}

// ErrLocked says the repository is in use in a way that conflicts.
var ErrLocked = errors.New("repository is in use")

// Lock takes a shared or exclusive lock for purpose (such as "backup of volume db").
func (r *Repository) Lock(ctx context.Context, exclusive bool, purpose string) (*Lock, error) {
	rec := r.holder()
	rec.Purpose, rec.Exclusive = purpose, exclusive
	id, err := r.SaveFile(ctx, LockFile, rec)
	if err != nil {
		return nil, fmt.Errorf("lock the repository: %w", err)
	}
	if conflict, err := r.conflictingLock(ctx, id, exclusive); err != nil || conflict != nil {
		_ = r.DeleteFile(context.WithoutCancel(ctx), LockFile, id)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s on %s since %s", ErrLocked, conflict.Purpose, conflict.Host, conflict.Time.Format(time.RFC3339))
	}
	if err := r.keepImmutable(ctx); err != nil {
		_ = r.DeleteFile(context.WithoutCancel(ctx), LockFile, id)
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Lock{repo: r, id: id, rec: rec, cancel: cancel, done: make(chan struct{})}
	go l.refresh(rctx)
	return l, nil
}

func (r *Repository) conflictingLock(ctx context.Context, own ID, exclusive bool) (*lockRecord, error) {
	var ids []ID
	if err := r.ListFiles(ctx, LockFile, func(id ID) error { ids = append(ids, id); return nil }); err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	for _, id := range ids {
		if id == own {
			continue
		}
		var rec lockRecord
		if err := r.LoadFile(ctx, LockFile, id, &rec); err != nil {
			continue // removed meanwhile, or damaged: it protects nothing
		}
		if time.Since(rec.Time) > lockStale || r.holderDied(rec) {
			continue
		}
		if exclusive || rec.Exclusive {
			return &rec, nil
		}
	}
	return nil, nil
}

func (l *Lock) refresh(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(lockRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		rec := l.rec
		rec.Time = time.Now().UTC()
		if id, err := l.repo.SaveFile(ctx, LockFile, rec); err == nil {
			_ = l.repo.DeleteFile(ctx, LockFile, l.id)
			l.id, l.rec = id, rec
		}
		l.mu.Unlock()
	}
}

// Unlock stops refreshing and removes the lock.
func (l *Lock) Unlock(ctx context.Context) error {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.repo.DeleteFile(context.WithoutCancel(ctx), LockFile, l.id)
}

// SetAgent names the long-lived program this process is, one per engine (the volume plugin of
// engine X): a lock or lease left by an earlier run of the same agent, in another PID
// namespace, belongs to a process that is gone, since the agent runs once per engine.
func (r *Repository) SetAgent(name string) { r.agent = name }

// holder describes this process for a lock or lease.
func (r *Repository) holder() lockRecord {
	host, _ := os.Hostname()
	return lockRecord{Host: host, PID: os.Getpid(), BootID: bootID(), Start: processStart(os.Getpid()),
		PIDNS: pidNamespace(), Agent: r.agent, Instance: processInstance, Time: time.Now().UTC()}
}

// processInstance identifies this process in the locks and leases it writes.
var processInstance = NewRandomID().String()

// holderDied reports whether a lock was taken by a process certainly gone, so that a killed
// backup or prune does not block the next run until its lock is stale. Certainty needs the
// same running kernel (its boot ID, random at every boot, is what identifies it: host names
// repeat on cloned machines) and a PID that means something here. A holder in another PID
// namespace (a plugin, seen from the host) is judged only by its agent name. Anything else
// is alive until its refreshes stop for lockStale.
func (r *Repository) holderDied(rec lockRecord) bool {
	if rec.BootID == "" || rec.BootID != bootID() {
		return false
	}
	if r.agent != "" && rec.Agent == r.agent && rec.PIDNS != pidNamespace() {
		return true // an earlier run of this agent
	}
	if rec.PIDNS != pidNamespace() {
		return false
	}
	start := processStart(rec.PID)
	return start == 0 || start != rec.Start
}

// RemoveDeadLocks deletes the locks whose holders are known to be gone; an agent calls it
// when it starts, so that what its killed predecessor held blocks no one. (A dead holder's
// lease is taken over by the next TakeLease on its chain.)
func (r *Repository) RemoveDeadLocks(ctx context.Context) (int, error) {
	var ids []ID
	if err := r.ListFiles(ctx, LockFile, func(id ID) error { ids = append(ids, id); return nil }); err != nil {
		return 0, fmt.Errorf("list locks: %w", err)
	}
	removed := 0
	for _, id := range ids {
		var rec lockRecord
		if r.LoadFile(ctx, LockFile, id, &rec) != nil || !r.holderDied(rec) {
			continue
		}
		if err := r.DeleteFile(ctx, LockFile, id); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

func pidNamespace() string {
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return ns
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// processStart returns a process's start time from /proc, or 0 when there is no such process.
// A PID reused by another process has another start time.
func processStart(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: the fields after it start at the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0
	}
	return start
}
