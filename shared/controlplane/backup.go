package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/scratch"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/swarmstate"
)

// BackupOptions say how a manager's swarm state is backed up.
type BackupOptions struct {
	// SwarmDir is the manager's swarm directory as this process sees it: the engine's
	// <DockerRootDir>/swarm on its host, a read-only mount of it in the plugin.
	SwarmDir  string
	UnlockKey string
	Tags      map[string]string
	// Cold, when set, copies the directory with the engine stopped and says how long it
	// was down; otherwise the copy is taken hot, fenced by a harmless write.
	Cold func(ctx context.Context, swarmDir, dst string) (*Capture, time.Duration, error)
}

// Taken is a swarm backup just stored.
type Taken struct {
	Snapshot *snapshot.Snapshot
	// Started is when the copy of the swarm directory began: the backup's point in time.
	Started  time.Time
	Meta     Metadata
	Capture  *Capture
	Downtime time.Duration
}

// TakeBackup backs up the swarm state of the manager whose engine api answers: the copy of
// its swarm directory, accepted once it decodes, with the engine's own view of services and
// networks (what a restore hands back to it) and the inventory of objects.
func TakeBackup(ctx context.Context, api client.APIClient, repo *repository.Repository, opts BackupOptions) (*Taken, error) {
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("ask the engine about this node: %w", err)
	}
	sw := info.Info.Swarm
	if !sw.ControlAvailable {
		return nil, fmt.Errorf("this node is not a swarm manager (state %q): run the backup on a manager", sw.LocalNodeState)
	}
	if _, err := os.Stat(filepath.Join(opts.SwarmDir, "raft")); err != nil {
		return nil, fmt.Errorf("cannot read the swarm directory %s: run the backup on the manager's host, as root (%v)", opts.SwarmDir, err)
	}
	// The staging copy holds the swarm's keys, decrypted when the swarm is autolocked.
	staging, err := scratch.MkdirTemp("", "swarmbackup-")
	if err != nil {
		return nil, err
	}
	defer scratch.Remove(staging)

	services, err := api.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	networks, err := api.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var swarmNetworks []any
	for _, n := range networks.Items {
		if n.Scope == "swarm" {
			swarmNetworks = append(swarmNetworks, n)
		}
	}
	leader := false
	if node, err := api.NodeInspect(ctx, sw.NodeID, client.NodeInspectOptions{}); err == nil && node.Node.ManagerStatus != nil {
		leader = node.Node.ManagerStatus.Leader
	}

	dst := filepath.Join(staging, SwarmDir)
	started := time.Now().UTC()
	var capture *Capture
	var downtime time.Duration
	mode := "hot"
	if opts.Cold != nil {
		mode = "cold"
		capture, downtime, err = opts.Cold(ctx, opts.SwarmDir, dst)
	} else {
		capture, err = Take(ctx, opts.SwarmDir, dst, opts.UnlockKey, FenceWrite(api))
	}
	if err != nil {
		return nil, fmt.Errorf("back up the swarm: %w", err)
	}
	meta := Metadata{
		ClusterID: sw.Cluster.ID, NodeID: sw.NodeID, NodeName: info.Info.Name, NodeAddr: sw.NodeAddr,
		Role: "manager", EngineVersion: info.Info.ServerVersion, Mode: mode,
		Autolock: capture.Autolocked, Decoded: capture.State != nil,
		Attempts: capture.Attempts, CaptureMillis: capture.Took.Milliseconds(),
		Leader: leader, EngineDowntimeMillis: downtime.Milliseconds(),
	}
	inventory := []Object{}
	if capture.State != nil {
		inventory = InventoryOf(capture.State)
		meta.ClusterID = capture.State.ClusterID()
		meta.RaftCommitIndex, meta.RaftLastIndex = capture.State.CommitIndex, capture.State.LastIndex
		meta.Counts = Count(inventory)
	}
	for name, v := range map[string]any{InventoryFile: inventory, ServicesFile: services.Items, NetworksFile: swarmNetworks} {
		if err := writeJSON(filepath.Join(staging, name), v); err != nil {
			return nil, err
		}
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	sn, err := backup.Run(ctx, repo, backup.Source{
		Kind: snapshot.KindSwarm, Name: meta.ClusterID, Path: staging,
		Host: info.Info.Name, Node: sw.NodeID, Tags: opts.Tags, Meta: metaJSON,
	}, backup.Options{})
	if err != nil {
		return nil, err
	}
	return &Taken{Snapshot: sn, Started: started, Meta: meta, Capture: capture, Downtime: downtime}, nil
}

// FenceWrite makes a harmless change through the API: the cluster object is written with
// its own spec. Once that entry is in the log, every change before it is provably committed.
func FenceWrite(api client.APIClient) func(context.Context) error {
	return func(ctx context.Context) error {
		sw, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
		if err != nil {
			return err
		}
		_, err = api.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Swarm.Version, Spec: sw.Swarm.Spec})
		return err
	}
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// OnThisHost reports whether swarmDir, as this process sees it, is node nodeID's swarm
// directory: the engine docker talks to may be a manager elsewhere (a context over ssh), and
// a directory of the same name here may belong to another engine, or not exist.
func OnThisHost(swarmDir, nodeID string) bool {
	cert, err := swarmstate.NodeCertificate(swarmDir)
	return err == nil && cert.Subject.CommonName == nodeID
}

// NodeCluster returns the cluster a node belongs to, from its certificate in swarmDir (the
// certificate's organization is the cluster's ID): a worker's engine does not say it.
func NodeCluster(swarmDir string) string {
	cert, err := swarmstate.NodeCertificate(swarmDir)
	if err != nil || len(cert.Subject.Organization) == 0 {
		return ""
	}
	return cert.Subject.Organization[0]
}
