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
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	BootID    string    `json:"boot_id,omitempty"`
	Start     uint64    `json:"start,omitempty"` // the process's start time, in ticks since boot
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
	host, _ := os.Hostname()
	rec := lockRecord{Host: host, PID: os.Getpid(), BootID: bootID(), Start: processStart(os.Getpid()),
		Purpose: purpose, Exclusive: exclusive, Time: time.Now().UTC()}
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
		if time.Since(rec.Time) > lockStale || holderDied(rec) {
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

// holderDied reports whether a lock was taken on this machine by a process that no longer
// runs, so that a killed backup or prune does not block the next run until its lock is stale.
func holderDied(rec lockRecord) bool {
	host, _ := os.Hostname()
	if rec.Host != host || rec.BootID == "" {
		return false
	}
	if rec.BootID != bootID() {
		return true // the machine restarted since
	}
	start := processStart(rec.PID)
	return start == 0 || start != rec.Start
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
