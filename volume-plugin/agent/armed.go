package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Armed returns what the driver asks when the engine creates a volume: the snapshot to
// fill it from when a set restored with --full is armed for this node's cluster, "" when
// none is, the set holds no such volume, or the volume has been snapshotted since the
// restore (its own chain is then newer than the set). swarmDir is the engine's swarm
// directory, whose certificate names a worker's cluster.
func (a *Agent) Armed(swarmDir string) func(volume string) (string, error) {
	return func(volume string) (string, error) {
		ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
		defer cancel()
		repo, err := a.openRepo(ctx)
		if err != nil {
			// The restore itself just read this repository: an outage now is rare, and
			// volumes are created as their options say rather than not at all.
			a.log.Warn("could not tell whether a restored set fills the new volume", "volume", volume, "err", err)
			return "", nil
		}
		var armed *backupset.Armed
		if cluster := a.cluster(ctx, swarmDir); cluster != "" {
			armed, err = backupset.LoadArmed(ctx, repo, cluster, time.Now())
		} else {
			armed, err = backupset.ArmedAny(ctx, repo, time.Now())
		}
		if err != nil || armed == nil {
			if err != nil {
				a.log.Warn("could not tell whether a restored set fills the new volume", "volume", volume, "err", err)
			}
			return "", nil
		}
		host, _ := a.engine.Node(ctx)
		m, ok, err := armed.For(volume, host)
		if err != nil || !ok {
			return "", err
		}
		list, _, err := snapshot.List(ctx, repo)
		if err != nil {
			return "", fmt.Errorf("list snapshots for the restored set's volume: %w", err)
		}
		for _, sn := range list {
			if sn.Kind == snapshot.KindVolume && sn.Source == volume && sn.Time.After(armed.Time) {
				return "", nil // backed up since the restore: its options decide
			}
		}
		a.log.Info("volume armed by a restored set", "volume", volume, "set", armed.Set, "snapshot", m.Snapshot)
		return m.Snapshot, nil
	}
}

// cluster returns this node's cluster ID: a worker's engine does not say it; its
// certificate does.
func (a *Agent) cluster(ctx context.Context, swarmDir string) string {
	if _, cluster := a.engine.Identity(ctx); cluster != "" {
		return cluster
	}
	return controlplane.NodeCluster(swarmDir)
}
