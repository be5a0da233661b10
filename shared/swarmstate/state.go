package swarmstate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/swarmkit/v2/api"
	"github.com/moby/swarmkit/v2/manager/encryption"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// State is the swarm's store as of the raft log's commit index.
type State struct {
	SnapshotIndex uint64 // the raft snapshot the log starts from
	CommitIndex   uint64 // the last entry known committed, applied to the store
	LastIndex     uint64 // the last entry in the log, committed or not

	Clusters map[string]*api.Cluster
	Nodes    map[string]*api.Node
	Services map[string]*api.Service
	Networks map[string]*api.Network
	Secrets  map[string]*api.Secret
	Configs  map[string]*api.Config
	Tasks    map[string]*api.Task
	Volumes  map[string]*api.Volume
	Members  []*api.RaftMember
}

// ErrTorn says the copy caught the log mid-write; take the copy again.
var ErrTorn = errors.New("the raft log copy is torn")

// Raft directories inside a swarm directory.
func walDir(swarmDir string) string  { return filepath.Join(swarmDir, "raft", "wal-v3-encrypted") }
func snapDir(swarmDir string) string { return filepath.Join(swarmDir, "raft", "snap-v3-encrypted") }

// raftLog is the raw raft data of a copied swarm directory, not yet decrypted.
type raftLog struct {
	snapshot *raftpb.Snapshot // nil when the log starts from the beginning
	hard     raftpb.HardState
	entries  []raftpb.Entry
	first    uint64 // the index the entries follow
}

// readLog reads the newest raft snapshot and the log after it, and checks that the log is
// whole: readable to its end, contiguous, and covering its commit index.
func readLog(swarmDir string) (*raftLog, error) {
	lg := zap.NewNop()
	l := &raftLog{}
	var walSnap walpb.Snapshot
	if _, err := os.Stat(snapDir(swarmDir)); err == nil {
		rs, err := snap.New(lg, snapDir(swarmDir)).Load()
		switch {
		case errors.Is(err, snap.ErrNoSnapshot):
		case err != nil:
			return nil, fmt.Errorf("load the raft snapshot: %w", err)
		default:
			l.snapshot = rs
			walSnap = walpb.Snapshot{Index: rs.Metadata.Index, Term: rs.Metadata.Term}
		}
	}
	w, err := wal.OpenForRead(lg, walDir(swarmDir), walSnap)
	if err != nil {
		return nil, fmt.Errorf("open the raft log: %w", err)
	}
	defer w.Close()
	_, hard, entries, err := w.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTorn, err)
	}
	l.hard, l.entries, l.first = hard, entries, walSnap.Index
	last := walSnap.Index
	for _, e := range entries {
		if e.Index != last+1 {
			return nil, fmt.Errorf("%w: entry %d follows %d", ErrTorn, e.Index, last)
		}
		last = e.Index
	}
	if hard.Commit > last {
		return nil, fmt.Errorf("%w: committed up to %d, but the log ends at %d", ErrTorn, hard.Commit, last)
	}
	return l, nil
}

// CheckLog checks a copied swarm directory's raft log without decrypting it, for an
// autolocked swarm whose unlock key was not given.
func CheckLog(swarmDir string) error {
	_, err := readLog(swarmDir)
	return err
}

// Load reads the raft snapshot and log of a copied swarm directory and applies every
// committed entry to the snapshot's store. The copy must not be a live manager's directory:
// loading may rename a damaged snapshot file aside, as etcd does.
func Load(swarmDir string, keys Keys) (*State, error) {
	l, err := readLog(swarmDir)
	if err != nil {
		return nil, err
	}
	dec := keys.decrypter()
	st := &State{
		Clusters: map[string]*api.Cluster{}, Nodes: map[string]*api.Node{}, Services: map[string]*api.Service{},
		Networks: map[string]*api.Network{}, Secrets: map[string]*api.Secret{}, Configs: map[string]*api.Config{},
		Tasks: map[string]*api.Task{}, Volumes: map[string]*api.Volume{},
	}
	if l.snapshot != nil {
		data, err := encryption.Decrypt(l.snapshot.Data, dec)
		if err != nil {
			return nil, fmt.Errorf("decrypt the raft snapshot: %w", err)
		}
		var s api.Snapshot
		if err := s.Unmarshal(data); err != nil {
			return nil, fmt.Errorf("decode the raft snapshot: %w", err)
		}
		st.fromSnapshot(&s)
		st.SnapshotIndex = l.snapshot.Metadata.Index
	}
	st.CommitIndex, st.LastIndex = l.hard.Commit, l.first
	for _, e := range l.entries {
		st.LastIndex = e.Index
		if e.Index > l.hard.Commit {
			continue // not yet known committed: not part of the state
		}
		if err := st.applyEntry(e, dec); err != nil {
			return nil, fmt.Errorf("raft entry %d: %w", e.Index, err)
		}
	}
	if len(st.Clusters) != 1 {
		return nil, fmt.Errorf("the store holds %d cluster objects, want 1", len(st.Clusters))
	}
	return st, nil
}

// ClusterID is the ID of the swarm.
func (s *State) ClusterID() string {
	for id := range s.Clusters {
		return id
	}
	return ""
}

func (s *State) fromSnapshot(snap *api.Snapshot) {
	byID(s.Clusters, snap.Store.Clusters, func(o *api.Cluster) string { return o.ID })
	byID(s.Nodes, snap.Store.Nodes, func(o *api.Node) string { return o.ID })
	byID(s.Services, snap.Store.Services, func(o *api.Service) string { return o.ID })
	byID(s.Networks, snap.Store.Networks, func(o *api.Network) string { return o.ID })
	byID(s.Secrets, snap.Store.Secrets, func(o *api.Secret) string { return o.ID })
	byID(s.Configs, snap.Store.Configs, func(o *api.Config) string { return o.ID })
	byID(s.Tasks, snap.Store.Tasks, func(o *api.Task) string { return o.ID })
	byID(s.Volumes, snap.Store.Volumes, func(o *api.Volume) string { return o.ID })
	s.Members = snap.Membership.Members
}

func byID[T any](m map[string]T, objs []T, id func(T) string) {
	for _, o := range objs {
		m[id(o)] = o
	}
}

func (s *State) applyEntry(e raftpb.Entry, dec encryption.Decrypter) error {
	if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
		return nil // membership changes and leader no-ops carry no store actions
	}
	data, err := encryption.Decrypt(e.Data, dec)
	if err != nil {
		return fmt.Errorf("decrypt: %w", err)
	}
	var req api.InternalRaftRequest
	if err := req.Unmarshal(data); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	for _, a := range req.Action {
		if err := s.apply(a); err != nil {
			return err
		}
	}
	return nil
}

// apply performs one store action, as strictly as the store does: a create of an existing
// object or a change of a missing one means the log does not fit the snapshot.
func (s *State) apply(a api.StoreAction) error {
	switch t := a.Target.(type) {
	case *api.StoreAction_Cluster:
		return applyTo(s.Clusters, a.Action, t.Cluster.ID, t.Cluster)
	case *api.StoreAction_Node:
		return applyTo(s.Nodes, a.Action, t.Node.ID, t.Node)
	case *api.StoreAction_Service:
		return applyTo(s.Services, a.Action, t.Service.ID, t.Service)
	case *api.StoreAction_Network:
		return applyTo(s.Networks, a.Action, t.Network.ID, t.Network)
	case *api.StoreAction_Secret:
		return applyTo(s.Secrets, a.Action, t.Secret.ID, t.Secret)
	case *api.StoreAction_Config:
		return applyTo(s.Configs, a.Action, t.Config.ID, t.Config)
	case *api.StoreAction_Task:
		return applyTo(s.Tasks, a.Action, t.Task.ID, t.Task)
	case *api.StoreAction_Volume:
		return applyTo(s.Volumes, a.Action, t.Volume.ID, t.Volume)
	case *api.StoreAction_Resource, *api.StoreAction_Extension:
		return nil // not part of what swarmbackup restores
	}
	return fmt.Errorf("unknown store action target %T", a.Target)
}

func applyTo[T any](m map[string]T, kind api.StoreActionKind, id string, obj T) error {
	_, exists := m[id]
	switch kind {
	case api.StoreActionKindCreate:
		if exists {
			return fmt.Errorf("create of %T %s, which exists", obj, id)
		}
		m[id] = obj
	case api.StoreActionKindUpdate:
		if !exists {
			return fmt.Errorf("update of %T %s, which does not exist", obj, id)
		}
		m[id] = obj
	case api.StoreActionKindRemove:
		if !exists {
			return fmt.Errorf("removal of %T %s, which does not exist", obj, id)
		}
		delete(m, id)
	default:
		return fmt.Errorf("unknown store action %v", kind)
	}
	return nil
}

// Names returns the sorted names of a kind's objects, for reports.
func Names[T any](m map[string]T, name func(T) string) []string {
	out := make([]string, 0, len(m))
	for _, o := range m {
		out = append(out, name(o))
	}
	sort.Strings(out)
	return out
}

// NewestSnapshot names the newest raft snapshot file in a swarm directory, "" when there is
// none. It only lists the directory, so it may look at a live manager's.
func NewestSnapshot(swarmDir string) (string, error) {
	entries, err := os.ReadDir(snapDir(swarmDir))
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("list the raft snapshots: %w", err)
	}
	newest := ""
	for _, e := range entries {
		// term-index in fixed-width hex: the newest sorts last.
		if name := e.Name(); strings.HasSuffix(name, ".snap") && name > newest {
			newest = name
		}
	}
	return newest, nil
}
