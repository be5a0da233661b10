package repository

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// In an Object Lock bucket each version of an object stays until its retention ends, whoever
// deletes it. The repository keeps retained what its backups need: each writer, once it holds
// its lock, makes sure every durable object is kept at least the bucket's default period from
// now on (extending all of them to a horizon twice as far when it falls short), and writes its
// own durable objects retained until that horizon. What prune removes is extended no more, so
// its versions end within two periods, as the backups that needed them do.

// ImmutableFile holds the horizon record: every durable object is retained until at least the
// time it names. It is authenticated like any record, so that a stolen S3 credential cannot
// forge a far horizon to stop the extensions; deleted or replayed, it costs an early sweep.
const ImmutableFile FileKind = "immutable"

const horizonKey = "horizon"

// Concurrent retention updates while sweeping.
const sweepWorkers = 8

type horizonRecord struct {
	Until  time.Time     `json:"until"`
	Period time.Duration `json:"period"`
}

// Immutability says how long the storage keeps the repository's objects.
type Immutability struct {
	// Period is the bucket's default retention; zero when the storage keeps nothing.
	Period time.Duration
	// Until is the horizon: every object backups need is retained at least until then.
	Until time.Time
}

// SetClock replaces the clock retention horizons are judged by; tests move it forward.
func (r *Repository) SetClock(now func() time.Time) { r.now = now }

// Immutability reports the bucket's retention and the horizon the last writer kept.
func (r *Repository) Immutability(ctx context.Context) (Immutability, error) {
	im, ok := r.be.(storage.Immutable)
	if !ok {
		return Immutability{}, nil
	}
	period, err := im.ImmutablePeriod(ctx)
	if err != nil || period <= 0 {
		return Immutability{}, err
	}
	var rec horizonRecord
	if err := r.LoadNamedFile(ctx, ImmutableFile, horizonKey, &rec); err != nil {
		return Immutability{Period: period}, nil // no writer yet, or lost: the next one sweeps
	}
	return Immutability{Period: period, Until: rec.Until}, nil
}

// keepImmutable makes sure, in an Object Lock bucket, that every durable object is retained
// at least a period from now, and that what this handle writes is retained as long.
func (r *Repository) keepImmutable(ctx context.Context) error {
	im, ok := r.be.(storage.Immutable)
	if !ok {
		return nil
	}
	period, err := im.ImmutablePeriod(ctx)
	if err != nil {
		return fmt.Errorf("read the storage's retention: %w", err)
	}
	if period <= 0 {
		return nil
	}
	now := r.now()
	r.mu.Lock()
	until := r.horizon
	r.mu.Unlock()
	if until.Before(now.Add(period)) {
		var rec horizonRecord
		// A record that is missing or fails authentication is no horizon: sweep.
		if err := r.LoadNamedFile(ctx, ImmutableFile, horizonKey, &rec); err == nil {
			until = rec.Until
		}
	}
	sweep := until.Before(now.Add(period))
	if sweep {
		until = now.Add(2 * period)
	}
	// New objects first, so that none written during a sweep falls behind it.
	im.KeepNewUntil(until, durableObject)
	if sweep {
		if err := r.keepAllUntil(ctx, im, until); err != nil {
			return err
		}
		if err := r.SaveNamedFile(ctx, ImmutableFile, horizonKey, horizonRecord{Until: until, Period: period}); err != nil {
			return fmt.Errorf("record the retention horizon: %w", err)
		}
	}
	r.mu.Lock()
	r.horizon = until
	r.mu.Unlock()
	return nil
}

// keepAllUntil extends the retention of every durable object to until.
func (r *Repository) keepAllUntil(ctx context.Context, im storage.Immutable, until time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sweepWorkers + 1)
	g.Go(func() error {
		for _, prefix := range durable {
			err := r.be.List(gctx, prefix, func(name string, _ int64) error {
				g.Go(func() error { return im.KeepUntil(gctx, name, until) })
				return gctx.Err()
			})
			if err != nil {
				return fmt.Errorf("list %s to extend its retention: %w", prefix, err)
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("retain the repository's objects until %s: %w", until.UTC().Format(time.RFC3339), err)
	}
	return nil
}

func durableObject(name string) bool {
	for _, prefix := range durable {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
