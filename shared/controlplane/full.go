package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// FullRestore puts a backup's swarm directory in place of this manager's and starts a new
// single-manager cluster from it (docker swarm init --force-new-cluster). The directory it
// replaces is moved aside, never deleted.
type FullRestore struct {
	Backup        *Backup
	RootDir       string // the engine's DockerRootDir
	Engine        EngineControl
	AdvertiseAddr string // empty: the address the backup recorded
	Say           func(format string, args ...any)
}

// CheckFullRestore refuses what cannot work: a backup from a newer engine line, or too
// little disk for the restored directory beside the current one.
func CheckFullRestore(b *Backup, liveVersion, rootDir string) error {
	if newerLine(b.Meta.EngineVersion, liveVersion) {
		return fmt.Errorf("backup %s was taken by engine %s; this engine (%s) is of an older line and cannot read its state: restore on an engine of line %s or newer",
			b.Snapshot.ID.Short(), b.Meta.EngineVersion, liveVersion, line(b.Meta.EngineVersion))
	}
	need, err := dirSize(b.SwarmDir())
	if err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(rootDir, &st); err != nil {
		return fmt.Errorf("check free space in %s: %w", rootDir, err)
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free < 2*need {
		return fmt.Errorf("%s has %d MiB free; the restored swarm directory needs %d MiB (and room to spare)", rootDir, free>>20, 2*need>>20)
	}
	return nil
}

// Run carries the restore out and returns where the replaced directory was kept.
func (f *FullRestore) Run(ctx context.Context, c client.APIClient) (string, error) {
	live := filepath.Join(f.RootDir, "swarm")
	stamp := time.Now().UTC().Format("20060102T150405Z")
	staging := filepath.Join(f.RootDir, "swarm.restoring-"+stamp)
	aside := filepath.Join(f.RootDir, "swarm.replaced-"+stamp)
	listen, advertise := recordedAddrs(f.Backup.SwarmDir())
	if f.AdvertiseAddr != "" {
		advertise = f.AdvertiseAddr
	}

	// Everything that can fail without touching the engine happens first.
	if err := copyTree(f.Backup.SwarmDir(), staging); err != nil {
		_ = os.RemoveAll(staging)
		return "", fmt.Errorf("stage the backup beside %s: %w", live, err)
	}
	f.Say("stopping the engine (%s)", f.Engine.Stop)
	if err := f.Engine.StopEngine(ctx, c); err != nil {
		_ = os.RemoveAll(staging)
		return "", err
	}
	if err := os.Rename(live, aside); err != nil && !os.IsNotExist(err) {
		_ = os.RemoveAll(staging)
		return "", f.restart(ctx, c, fmt.Errorf("move %s aside: %w", live, err))
	}
	if err := os.Rename(staging, live); err != nil {
		_ = os.Rename(aside, live)
		return "", f.restart(ctx, c, fmt.Errorf("put the backup in place: %w", err))
	}
	f.Say("the replaced swarm directory is kept at %s", aside)
	f.Say("starting the engine (%s)", f.Engine.Start)
	if err := run(ctx, f.Engine.Start); err != nil {
		return aside, fmt.Errorf("start the engine: %w", err)
	}
	if err := waitForAPI(ctx, c); err != nil {
		return aside, err
	}
	f.Say("forming a new cluster from the backup (force-new-cluster, advertising %s)", orDefault(advertise, "the default address"))
	_, err := c.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: orDefault(listen, "0.0.0.0:2377"), AdvertiseAddr: advertise, ForceNewCluster: true})
	if err != nil {
		return aside, fmt.Errorf("docker swarm init --force-new-cluster: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := c.Info(ctx, client.InfoOptions{})
		if err == nil && info.Info.Swarm.ControlAvailable && info.Info.Swarm.LocalNodeState == swarm.LocalNodeStateActive {
			if _, err := c.ServiceList(ctx, client.ServiceListOptions{}); err == nil {
				return aside, nil
			}
		}
		if time.Now().After(deadline) {
			return aside, fmt.Errorf("the new cluster is not healthy two minutes after force-new-cluster")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// restart starts the engine again after a failure before the backup was in place.
func (f *FullRestore) restart(ctx context.Context, c client.APIClient, cause error) error {
	if err := f.Engine.StartEngine(context.WithoutCancel(ctx), c); err != nil {
		return fmt.Errorf("%w; starting the engine again failed too: %v", cause, err)
	}
	return cause
}

func waitForAPI(ctx context.Context, c client.APIClient) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := c.Ping(ctx, client.PingOptions{}); err == nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("the engine does not answer two minutes after starting")
}

// recordedAddrs reads the listen and advertise addresses the engine kept in the backup.
func recordedAddrs(swarmDir string) (listen, advertise string) {
	data, err := os.ReadFile(filepath.Join(swarmDir, "docker-state.json"))
	if err != nil {
		return "", ""
	}
	var st struct{ ListenAddr, AdvertiseAddr string }
	if json.Unmarshal(data, &st) != nil {
		return "", ""
	}
	return st.ListenAddr, st.AdvertiseAddr
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// line is an engine version's major.minor: 20.10.24+dfsg1 is of line 20.10.
func line(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func newerLine(backup, live string) bool {
	parse := func(v string) (int, int, bool) {
		parts := strings.SplitN(line(v), ".", 2)
		if len(parts) != 2 {
			return 0, 0, false
		}
		major, err1 := strconv.Atoi(parts[0])
		minor, err2 := strconv.Atoi(parts[1])
		return major, minor, err1 == nil && err2 == nil
	}
	bm, bn, ok1 := parse(backup)
	lm, ln, ok2 := parse(live)
	if !ok1 || !ok2 {
		return false
	}
	return bm > lm || (bm == lm && bn > ln)
}

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			if st, ok := info.Sys().(*unix.Stat_t); ok {
				total += st.Blocks * 512 // allocated, so sparse log files count as they are
			} else {
				total += info.Size()
			}
		}
		return err
	})
	return total, err
}
