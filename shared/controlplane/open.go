package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/scratch"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/swarmstate"
)

// Backup is a swarm backup brought back from the repository into a private directory and
// decoded; Close removes the directory.
type Backup struct {
	Snapshot *snapshot.Snapshot
	Meta     Metadata
	Dir      string
	State    *swarmstate.State
	Services []swarm.Service
	Networks []network.Summary
	// UnlockKey opened an autolocked backup; a full restore unseals the copy with it.
	UnlockKey string
}

// ReadMeta decodes a swarm snapshot's metadata.
func ReadMeta(sn *snapshot.Snapshot) (Metadata, error) {
	var m Metadata
	if sn.Kind != snapshot.KindSwarm {
		return m, fmt.Errorf("%s is a %s snapshot, not a swarm backup", sn.ID.Short(), sn.Kind)
	}
	if err := json.Unmarshal(sn.Meta, &m); err != nil {
		return m, fmt.Errorf("swarm backup %s: metadata: %w", sn.ID.Short(), err)
	}
	return m, nil
}

// Open restores a swarm backup below tmp and decodes it; unlockKey opens autolocked ones.
func Open(ctx context.Context, repo *repository.Repository, sn *snapshot.Snapshot, tmp, unlockKey string) (*Backup, error) {
	meta, err := ReadMeta(sn)
	if err != nil {
		return nil, err
	}
	dir, err := scratch.MkdirTemp(tmp, "swarmbackup-restore-")
	if err != nil {
		return nil, err
	}
	b := &Backup{Snapshot: sn, Meta: meta, Dir: dir, UnlockKey: unlockKey}
	if _, err := restorer.Restore(ctx, repo, sn.Tree, filepath.Join(dir, "backup"), restorer.Options{}); err != nil {
		b.Close()
		return nil, fmt.Errorf("read backup %s: %w", sn.ID.Short(), err)
	}
	keys, err := swarmstate.ReadKeys(b.SwarmDir(), unlockKey)
	if err != nil {
		b.Close()
		return nil, err
	}
	if b.State, err = swarmstate.Load(b.SwarmDir(), keys); err != nil {
		b.Close()
		return nil, fmt.Errorf("decode backup %s: %w", sn.ID.Short(), err)
	}
	for name, dst := range map[string]any{ServicesFile: &b.Services, NetworksFile: &b.Networks} {
		data, err := os.ReadFile(filepath.Join(dir, "backup", name))
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("backup %s: %w", sn.ID.Short(), err)
		}
		if err := json.Unmarshal(data, dst); err != nil {
			b.Close()
			return nil, fmt.Errorf("backup %s: %s: %w", sn.ID.Short(), name, err)
		}
	}
	return b, nil
}

// SwarmDir is the restored copy of the manager's swarm directory.
func (b *Backup) SwarmDir() string { return filepath.Join(b.Dir, "backup", SwarmDir) }

// Close removes the restored files.
func (b *Backup) Close() { _ = scratch.Remove(b.Dir) }

// ReadInventory reads a swarm backup's object list without restoring the copy.
func ReadInventory(ctx context.Context, repo *repository.Repository, sn *snapshot.Snapshot) ([]Object, error) {
	data, err := snapshot.ReadFile(ctx, repo, sn.Tree, InventoryFile)
	if err != nil {
		return nil, err
	}
	var out []Object
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", InventoryFile, err)
	}
	return out, nil
}
