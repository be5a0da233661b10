package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// durable are the parts of a repository that hold backups and what they need: what undelete
// brings back. Locks, leases, requests, reports, claims, heartbeats and armed restores are
// short-lived by design; brought back they would only be stale.
var durable = []string{"config", "keys/", "data/", "index/", "snapshots/", "sets/", "schedules/", "drills/"}

// Undeleted counts what Undelete brought back, by part of the repository.
type Undeleted map[string]int

// Undelete brings back the repository's objects that were deleted after since (by anyone: a
// stolen key, a prune), when the storage keeps deleted objects. The repository need not open
// before (its config may be among what was deleted); open it and verify after.
func Undelete(ctx context.Context, be storage.Backend, since time.Time) (Undeleted, error) {
	u, ok := be.(storage.Undeleter)
	if !ok {
		return nil, fmt.Errorf("%s: %w", be.Location(), storage.ErrNotVersioned)
	}
	out := Undeleted{}
	for _, prefix := range durable {
		n, err := u.Undelete(ctx, prefix, since, func(string) error { return nil })
		out[prefix] += n
		if err != nil {
			if errors.Is(err, storage.ErrNotVersioned) {
				return nil, fmt.Errorf("%s: %w", be.Location(), err)
			}
			return out, fmt.Errorf("undelete %s: %w", prefix, err)
		}
	}
	return out, nil
}
