// Package snapshot defines what a backup is: a record naming a tree of directory listings
// whose files point at content blobs, plus metadata; and how records are found.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Kinds of snapshot.
const (
	KindVolume = "volume"
	KindSwarm  = "swarm"
)

// Scopes of a volume's snapshots: which volumes of one name are one volume.
const (
	// ScopeCluster: one volume that follows its task from node to node; its snapshots form
	// one chain, whichever node took them. Records without a scope are of this kind.
	ScopeCluster = "cluster"
	// ScopeNode: each node's volume of the name is its own (a global service's, or one
	// replica's of several); each node's snapshots form a chain of their own.
	ScopeNode = "node"
)

// Chain names one line of snapshots: what parents, "latest" and retention look at, never
// beyond.
type Chain struct {
	Kind   string
	Source string
	Node   string // set for node-scoped chains only
}

func (c Chain) String() string {
	if c.Node != "" {
		return c.Kind + " " + c.Source + " on node " + c.Node
	}
	return c.Kind + " " + c.Source
}

// Snapshot is one backup.
type Snapshot struct {
	ID repository.ID `json:"-"`

	Time time.Time `json:"time"`
	// Took is how long the backup ran, from its start to its record (absent in older records).
	Took     time.Duration `json:"took,omitempty"`
	Kind     string        `json:"kind"`
	Source   string        `json:"source"` // the volume's name, or the swarm's cluster ID
	Hostname string        `json:"hostname"`
	Node     string        `json:"node,omitempty"` // swarm node ID
	// Scope is ScopeNode for a volume whose chain is its node's own; empty otherwise.
	Scope string        `json:"scope,omitempty"`
	Tree  repository.ID `json:"tree"`
	// Root is the top directory's own owner, mode and times (absent in records written
	// before it was kept).
	Root    *Node             `json:"root,omitempty"`
	Parent  *repository.ID    `json:"parent,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Program string            `json:"program"`
	Stats   Stats             `json:"stats"`
	// Quiesce says how the source's users were held while it was captured, when they were.
	Quiesce *Quiesce `json:"quiesce,omitempty"`
	// Warnings name entries left out because they vanished or changed while being read
	// (the first ones; Stats.Skipped counts all).
	Warnings []string `json:"warnings,omitempty"`
	// Meta carries what a kind records beside the files (the swarm's metadata, for example).
	Meta json.RawMessage `json:"meta,omitempty"`
}

// Quiesce is how a snapshot's source was held still.
type Quiesce struct {
	Mode       string        `json:"mode"`       // pause, stop or exec
	Containers int           `json:"containers"` // how many were held
	Window     time.Duration `json:"window"`     // from the first held to the last released
}

// Stats summarises what a backup read and stored.
type Stats struct {
	Files        uint64 `json:"files"`
	Dirs         uint64 `json:"dirs"`
	Bytes        uint64 `json:"bytes"`         // content of all files
	FilesChanged uint64 `json:"files_changed"` // files read rather than taken from the parent
	BytesRead    uint64 `json:"bytes_read"`
	BlobsNew     uint64 `json:"blobs_new"`
	BytesNew     uint64 `json:"bytes_new"`         // plaintext of the new blobs
	Skipped      uint64 `json:"skipped,omitempty"` // entries that vanished or changed while read
}

// Save stores the record; call it only after the repository was flushed.
func Save(ctx context.Context, r *repository.Repository, sn *Snapshot) error {
	save := r.SaveFile
	switch {
	case sn.Kind == KindSwarm:
		// Only a key that can make control-plane backups can seal their records.
		save = r.SaveControlFile
	case sn.Scope == ScopeNode:
		// Only the node's key (or a full key) can seal the record of its own volume.
		save = func(ctx context.Context, kind repository.FileKind, v any) (repository.ID, error) {
			return r.SaveNodeFile(ctx, sn.Node, kind, v)
		}
	}
	id, err := save(ctx, repository.SnapshotFile, sn)
	if err != nil {
		return err
	}
	sn.ID = id
	return nil
}

// Load reads one record.
func Load(ctx context.Context, r *repository.Repository, id repository.ID) (*Snapshot, error) {
	var sn Snapshot
	sealing, err := r.LoadSealedFile(ctx, repository.SnapshotFile, id, &sn)
	if err != nil {
		return nil, err
	}
	sn.ID = id
	if err := sn.trusted(r, sealing); err != nil {
		return nil, err
	}
	return &sn, nil
}

// List returns every snapshot, oldest first. Records that cannot be read are returned as
// errors beside the others, so that one damaged record hides nothing else. With a key of
// the volumes role, control-plane backups are not listed: that key cannot open them.
func List(ctx context.Context, r *repository.Repository) ([]*Snapshot, []error, error) {
	var out []*Snapshot
	var forged []error
	problems, err := repository.LoadSealedFiles(ctx, r, repository.SnapshotFile, func(id repository.ID, sn *Snapshot, sealing repository.Sealing) {
		sn.ID = id
		if err := sn.trusted(r, sealing); err != nil {
			forged = append(forged, err)
			return
		}
		out = append(out, sn)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, append(problems, forged...), nil
}

// ErrForged marks a record sealed with a key that cannot make it: a control-plane backup
// not sealed with the control plane's key, or a node's own volume's snapshot not sealed with
// that node's.
var ErrForged = errors.New("forged")

// Forged is a record a key made that may not make it; it matches ErrForged.
type Forged struct {
	ID   repository.ID
	Node string // the node whose volume's snapshot it claims to be; empty for the control plane's
}

func (f *Forged) Error() string {
	if f.Node != "" {
		return fmt.Sprintf("snapshot %s: %v: not sealed with the key of node %s, whose volume it claims: made by another node's key, not by a backup", f.ID.Short(), ErrForged, f.Node)
	}
	return fmt.Sprintf("snapshot %s: %v: not sealed with the control-plane key: made by a key of the volumes role, not by a backup", f.ID.Short(), ErrForged)
}

func (f *Forged) Is(target error) bool { return target == ErrForged }

// trusted refuses a record that a key other than its maker's could have made: restoring a
// control-plane record a worker's key made would hand it the cluster, and restoring one node's
// volume from a record another node made would hand it that node's data.
func (s *Snapshot) trusted(r *repository.Repository, sealing repository.Sealing) error {
	switch {
	case s.Kind == KindSwarm && !r.TrustControlPlane(sealing, s.Time):
		return &Forged{ID: s.ID}
	case s.Scope == ScopeNode && !r.TrustNode(sealing, s.Node, s.Time):
		return &Forged{ID: s.ID, Node: s.Node}
	}
	return nil
}

// Chain returns the chain the snapshot belongs to.
func (s *Snapshot) Chain() Chain {
	c := Chain{Kind: s.Kind, Source: s.Source}
	if s.Scope == ScopeNode {
		c.Node = s.Node
	}
	return c
}

// Latest returns the newest snapshot of a chain, or nil.
func Latest(list []*Snapshot, chain Chain) *Snapshot {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Chain() == chain {
			return list[i]
		}
	}
	return nil
}

// Chains returns the chains of a kind and source, in the order of their newest snapshots.
func Chains(list []*Snapshot, kind, source string) []Chain {
	var out []Chain
	for i := len(list) - 1; i >= 0; i-- {
		c := list[i].Chain()
		if c.Kind == kind && c.Source == source && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// Find returns the snapshot whose ID starts with prefix; a prefix shared by several is an error.
func Find(list []*Snapshot, prefix string) (*Snapshot, error) {
	var found *Snapshot
	for _, sn := range list {
		if strings.HasPrefix(sn.ID.String(), prefix) {
			if found != nil {
				return nil, fmt.Errorf("snapshot ID %q is ambiguous: give more characters", prefix)
			}
			found = sn
		}
	}
	if found == nil || prefix == "" {
		return nil, fmt.Errorf("no snapshot %q in the repository", prefix)
	}
	return found, nil
}

// LoadTree reads and validates a tree blob.
func LoadTree(ctx context.Context, r *repository.Repository, id repository.ID) (*Tree, error) {
	data, err := r.LoadBlob(ctx, repository.TreeBlob, id)
	if err != nil {
		return nil, err
	}
	return DecodeTree(data)
}

// SaveTree stores a tree blob.
func SaveTree(ctx context.Context, r *repository.Repository, t *Tree) (repository.ID, error) {
	data, err := t.Encode()
	if err != nil {
		return repository.ID{}, err
	}
	id, _, err := r.SaveBlob(ctx, repository.TreeBlob, data)
	return id, err
}

// Lookup finds the node at a slash-separated path below a root tree.
func Lookup(ctx context.Context, r *repository.Repository, root repository.ID, path string) (*Node, error) {
	tree, err := LoadTree(ctx, r, root)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, name := range parts {
		n := tree.Find(name)
		if n == nil {
			return nil, fmt.Errorf("%s: not in the snapshot", path)
		}
		if i == len(parts)-1 {
			return n, nil
		}
		if n.Type != TypeDir {
			return nil, fmt.Errorf("%s: %s is not a directory", path, name)
		}
		if tree, err = LoadTree(ctx, r, *n.Subtree); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: empty path", path)
}

// ReadFile returns the content of the file at path below a root tree.
func ReadFile(ctx context.Context, r *repository.Repository, root repository.ID, path string) ([]byte, error) {
	n, err := Lookup(ctx, r, root, path)
	if err != nil {
		return nil, err
	}
	if n.Type != TypeFile {
		return nil, fmt.Errorf("%s is not a file", path)
	}
	out := make([]byte, 0, n.Size)
	for _, id := range n.Content {
		data, err := r.LoadBlob(ctx, repository.DataBlob, id)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, data...)
	}
	return out, nil
}
