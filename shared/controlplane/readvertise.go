package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/moby/swarmkit/v2/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/swarmbackup/swarmbackup/shared/swarmstate"
)

// readvertise makes the raft membership name this manager at the address it now advertises.
// The engine starts on the new address, but the membership restored from the backup still
// names the old host, and managers joining later would dial that. Swarmkit updates the
// address of a member that calls Join again, so the manager, with its own certificate,
// asks itself to be joined at the new address. node is what the engine says of this node.
// It returns the address it changed from.
func readvertise(ctx context.Context, c client.APIClient, node swarm.Info, swarmDir string, id swarmstate.Identity) (string, error) {
	recorded, err := memberAddr(ctx, c, node.NodeID)
	if err != nil {
		return "", err
	}
	_, port, err := net.SplitHostPort(recorded)
	if err != nil {
		return "", fmt.Errorf("the raft membership names this manager at %q: %w", recorded, err)
	}
	want := net.JoinHostPort(node.NodeAddr, port)
	if recorded == want {
		return "", nil
	}
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{id.Certificate},
		RootCAs:      id.RootCAs,
		ServerName:   "swarm-manager", // the name every manager certificate carries
		MinVersion:   tls.VersionTLS12,
	})
	conn, err := grpc.NewClient(want, grpc.WithTransportCredentials(creds))
	if err != nil {
		return "", fmt.Errorf("connect to this manager at %s: %w", want, err)
	}
	defer conn.Close()
	joinCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := api.NewRaftMembershipClient(conn).Join(joinCtx, &api.JoinRequest{Addr: want}); err != nil {
		return "", fmt.Errorf("update this manager's raft address from %s to %s: %w", recorded, want, err)
	}
	got, err := memberAddr(ctx, c, node.NodeID)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", fmt.Errorf("the raft membership still names this manager at %s, not %s", got, want)
	}
	if err := snapshotNow(ctx, c, swarmDir); err != nil {
		return "", err
	}
	return recorded, nil
}

// snapshotNow has the manager write a raft snapshot. A manager joining later starts from the
// newest snapshot and replays the log after it; from the backup's snapshot it would replay
// history in which this manager still has its old address, answer the leader there, and
// never catch up. The raft setting that spaces snapshots is set to every entry for a moment.
func snapshotNow(ctx context.Context, c client.APIClient, swarmDir string) error {
	before, err := swarmstate.NewestSnapshot(swarmDir)
	if err != nil {
		return err
	}
	var kept uint64
	everyEntry := func(spec *swarm.Spec) { kept, spec.Raft.SnapshotInterval = spec.Raft.SnapshotInterval, 1 }
	if err := updateSwarm(ctx, c, everyEntry, false); err != nil {
		return fmt.Errorf("have the manager take a raft snapshot (docker swarm update --snapshot-interval 1): %w", err)
	}
	// Putting the setting back is itself a raft entry, applied while the interval is 1.
	putBack := func(spec *swarm.Spec) { spec.Raft.SnapshotInterval = kept }
	if err := updateSwarm(ctx, c, putBack, false); err != nil {
		return fmt.Errorf("put the raft snapshot interval back to %d (docker swarm update --snapshot-interval %d): %w", kept, kept, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		newest, err := swarmstate.NewestSnapshot(swarmDir)
		if err != nil {
			return err
		}
		if newest > before {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the manager wrote no raft snapshot in 30 s; managers joining it may not reach it at its new address")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func memberAddr(ctx context.Context, c client.APIClient, nodeID string) (string, error) {
	node, err := c.NodeInspect(ctx, nodeID, client.NodeInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect this manager's node: %w", err)
	}
	if node.Node.ManagerStatus == nil {
		return "", fmt.Errorf("node %s has no manager status", nodeID)
	}
	return node.Node.ManagerStatus.Addr, nil
}
