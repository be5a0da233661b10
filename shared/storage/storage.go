// Package storage defines where a repository's objects are kept: a small interface over
// named, immutable objects, implemented by a local directory (localfs) and by S3-compatible
// object storage (s3).
package storage

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("object not found")

// ErrExists is returned (wrapped) by Create when the object exists already.
var ErrExists = errors.New("object exists already")

// ErrTooLarge is returned (wrapped) by Get when the object is larger than the caller allows:
// anyone who can write to the bucket can leave a huge object where a small one belongs.
var ErrTooLarge = errors.New("object is larger than allowed")

// Backend stores whole objects under slash-separated names. Objects are written once and
// never modified in place; a Put of an existing name replaces it atomically.
type Backend interface {
	// Location names the backend in messages; it carries no credentials.
	Location() string
	Put(ctx context.Context, name string, data []byte) error
	// Create stores a new object, or fails with ErrExists, atomically: of several writers
	// creating one name, exactly one succeeds.
	Create(ctx context.Context, name string, data []byte) error
	// Get reads a whole object of at most limit bytes; a larger one fails with ErrTooLarge
	// before it is read.
	Get(ctx context.Context, name string, limit int64) ([]byte, error)
	// ReadAt fills buf with the object's bytes from offset on; fewer bytes is an error.
	// Callers reuse buf across reads, which keeps large reads from allocating.
	ReadAt(ctx context.Context, name string, offset int64, buf []byte) error
	// Stat returns the object's size.
	Stat(ctx context.Context, name string) (int64, error)
	// List calls fn for every object whose name starts with prefix, in no particular order.
	List(ctx context.Context, prefix string, fn func(name string, size int64) error) error
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error
}

// ErrNotVersioned is returned (wrapped) by Undelete when the storage keeps no deleted objects.
var ErrNotVersioned = errors.New("the storage keeps no deleted objects: only a versioned (or Object Lock) bucket does")

// Undeleter is storage that keeps what is deleted (a versioned S3 bucket) and can bring it back.
type Undeleter interface {
	// Undelete brings back every object below prefix that was deleted after since, calling
	// fn with each name, and returns how many came back.
	Undelete(ctx context.Context, prefix string, since time.Time, fn func(name string) error) (int, error)
}

// Immutable is storage that can keep objects from being deleted or overwritten until a time
// (S3 Object Lock): what a stolen credential deletes stays behind as a version it cannot
// remove, for undelete to bring back.
type Immutable interface {
	// ImmutablePeriod is how long the storage keeps each new object by default (an Object Lock
	// bucket's default retention); zero when it keeps none.
	ImmutablePeriod(ctx context.Context) (time.Duration, error)
	// KeepUntil keeps the object's current version until at least t; a later date stands.
	KeepUntil(ctx context.Context, name string, t time.Time) error
	// KeepNewUntil keeps every object this backend writes from now on, whose name keep
	// accepts, until at least t.
	KeepNewUntil(t time.Time, keep func(name string) bool)
}
