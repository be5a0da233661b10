// Package backupset is one backup of the whole cluster at one point in time: the control
// plane and every swarmbackup volume on every node, recorded as one set. The command that
// takes a set asks every node's agent through the repository, which they all reach already:
// it writes a request and rings a doorbell object that the agents read every few seconds;
// each agent snapshots its volumes at the request's common instant and reports back.
package backupset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// Records in the repository.
const (
	SetFile     repository.FileKind = "sets"
	RequestFile repository.FileKind = "setrequests"
	ReportFile  repository.FileKind = "setreports"
)

// TagSet is the tag each member snapshot carries: the ID of the set it belongs to.
const TagSet = "swarmbackup.set"

// Member is one volume snapshot of a set.
type Member struct {
	Node     string `json:"node"`
	Host     string `json:"host"`
	Volume   string `json:"volume"`
	Snapshot string `json:"snapshot"`
	// CaptureStart is when the snapshot began reading the volume (holding its users first,
	// with a quiesce mode); Window how long they were held.
	CaptureStart time.Time     `json:"capture_start"`
	Quiesce      string        `json:"quiesce,omitempty"`
	Window       time.Duration `json:"window,omitempty"`
	Files        uint64        `json:"files"`
	Bytes        uint64        `json:"bytes"`
	BytesNew     uint64        `json:"bytes_new"`
}

// Missing is a part of the cluster a set does not hold, and why.
type Missing struct {
	Node   string `json:"node"`
	Host   string `json:"host"`
	Volume string `json:"volume,omitempty"` // empty: the whole node
	Reason string `json:"reason"`
}

func (m Missing) String() string {
	if m.Host == "" {
		return m.Reason // the control plane's
	}
	if m.Volume == "" {
		return fmt.Sprintf("node %s: %s", m.Host, m.Reason)
	}
	return fmt.Sprintf("volume %s on %s: %s", m.Volume, m.Host, m.Reason)
}

// Set is the record of one backup of the cluster.
type Set struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`  // the common instant of the captures
	Ended   time.Time `json:"ended"` // when the last member reported, or the timeout
	Cluster string    `json:"cluster"`
	// ControlPlane is the swarm backup's snapshot ID.
	ControlPlane string    `json:"control_plane"`
	Members      []Member  `json:"members"`
	Missing      []Missing `json:"missing,omitempty"`
	// Nodes counts the nodes that were asked.
	Nodes int `json:"nodes"`
	// Spread is between the first and the last capture start, control plane included.
	Spread time.Duration `json:"spread"`
	// Tick is the tick of the cluster's schedule the set was taken for; zero when it was
	// asked for by hand.
	Tick time.Time `json:"tick,omitempty"`
}

// Complete reports whether the set holds everything it was to hold.
func (s *Set) Complete() bool { return len(s.Missing) == 0 && s.ControlPlane != "" }

// Bytes adds up the members' sizes.
func (s *Set) Bytes() uint64 {
	var n uint64
	for _, m := range s.Members {
		n += m.Bytes
	}
	return n
}

// Snapshots lists the IDs of every snapshot the set holds, control plane first.
func (s *Set) Snapshots() []string {
	var ids []string
	if s.ControlPlane != "" {
		ids = append(ids, s.ControlPlane)
	}
	for _, m := range s.Members {
		ids = append(ids, m.Snapshot)
	}
	return ids
}

// When orders sets in retention.
func (s *Set) When() time.Time { return s.Time }

// Save stores the set's record under its ID.
func Save(ctx context.Context, repo *repository.Repository, s *Set) error {
	if err := repo.SaveNamedFile(ctx, SetFile, s.ID, s); err != nil {
		return fmt.Errorf("record set %s: %w", short(s.ID), err)
	}
	return nil
}

// Delete removes a set's record; its snapshots stay until they are forgotten too.
func Delete(ctx context.Context, repo *repository.Repository, s *Set) error {
	return repo.DeleteNamedFile(ctx, SetFile, s.ID)
}

// List returns every set, oldest first, and the records that could not be read.
func List(ctx context.Context, repo *repository.Repository) ([]*Set, []error, error) {
	var sets []*Set
	problems, err := repository.LoadFiles(ctx, repo, SetFile, func(_ repository.ID, s *Set) { sets = append(sets, s) })
	if err != nil {
		return nil, nil, fmt.Errorf("list sets: %w", err)
	}
	sort.Slice(sets, func(i, j int) bool { return sets[i].Time.Before(sets[j].Time) })
	return sets, problems, nil
}

// Find returns the set whose ID starts with prefix, nil when none does; a prefix shared by
// several is an error.
func Find(sets []*Set, prefix string) (*Set, error) {
	if prefix == "" {
		return nil, nil
	}
	var found *Set
	for _, s := range sets {
		if strings.HasPrefix(s.ID, prefix) {
			if found != nil {
				return nil, fmt.Errorf("set ID %q is ambiguous: give more characters", prefix)
			}
			found = s
		}
	}
	return found, nil
}

// Members maps every snapshot that belongs to a set to that set's ID.
func Members(sets []*Set) map[string]string {
	out := map[string]string{}
	for _, s := range sets {
		for _, id := range s.Snapshots() {
			out[id] = s.ID
		}
	}
	return out
}

func short(id string) string { return id[:min(len(id), 12)] }

func notFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

func sortClaims(c []Claim) { sort.Slice(c, func(i, j int) bool { return c[i].Tick.Before(c[j].Tick) }) }
