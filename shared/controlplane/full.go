package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/swarmbackup/swarmbackup/shared/swarmstate"
)

// FullRestore puts a backup's swarm directory in place of this manager's and starts a new
// single-manager cluster from it (docker swarm init --force-new-cluster). The directory it
// replaces is moved aside, never deleted.
type FullRestore struct {
	Backup  *Backup
	RootDir string // the engine's DockerRootDir
	Engine  EngineControl
	// AdvertiseAddr is this manager's address when it differs from the backup's: the new
	// cluster is formed on it and the raft membership moved to it. Empty keeps the address
	// the backup recorded.
	AdvertiseAddr string
	// RemoveOthers removes every other node from the restored cluster: after a total loss
	// they are all gone, and their tasks are scheduled again at once instead of after the
	// nodes are found down. New machines join with new identities.
	RemoveOthers bool
	Say          func(format string, args ...any)
}

// Result is what a full restore leaves behind.
type Result struct {
	// Aside is where the replaced swarm directory was kept.
	Aside string
	// UnlockKey is the new unlock key of a swarm that was autolocked: the old one is retired.
	UnlockKey string
	// Expired is when the backup's node certificate had expired; zero when it was valid.
	// This manager then runs on a fresh one from the backup's root CA.
	Expired time.Time
	// Removed counts the other nodes removed with RemoveOthers.
	Removed int
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

// Run carries the restore out. Once the backup is in place, the result says where the
// replaced directory was kept, even when a later step fails.
func (f *FullRestore) Run(ctx context.Context, c client.APIClient) (Result, error) {
	var res Result
	live := filepath.Join(f.RootDir, "swarm")
	stamp := time.Now().UTC().Format("20060102T150405Z")
	staging := filepath.Join(f.RootDir, "swarm.restoring-"+stamp)
	aside := filepath.Join(f.RootDir, "swarm.replaced-"+stamp)

	// Everything that can fail without touching the engine happens first.
	st, id, expired, err := f.stage(staging)
	res.Expired = expired
	if err != nil {
		_ = os.RemoveAll(staging)
		return res, fmt.Errorf("stage the backup beside %s: %w", live, err)
	}
	if !expired.IsZero() {
		f.Say("the backup's node certificate expired on %s: this manager starts with a fresh one from the backup's root CA", expired.Format(time.DateOnly))
	}
	f.Say("stopping the engine (%s)", f.Engine.Stop)
	if err := f.Engine.StopEngine(ctx, c); err != nil {
		_ = os.RemoveAll(staging)
		return res, err
	}
	if err := os.Rename(live, aside); err != nil && !os.IsNotExist(err) {
		_ = os.RemoveAll(staging)
		return res, f.restart(ctx, c, fmt.Errorf("move %s aside: %w", live, err))
	}
	if err := os.Rename(staging, live); err != nil {
		_ = os.Rename(aside, live)
		return res, f.restart(ctx, c, fmt.Errorf("put the backup in place: %w", err))
	}
	res.Aside = aside
	f.Say("the replaced swarm directory is kept at %s", aside)
	f.Say("starting the engine (%s)", f.Engine.Start)
	if err := run(ctx, f.Engine.Start); err != nil {
		return res, fmt.Errorf("start the engine: %w", err)
	}
	if err := waitForAPI(ctx, c); err != nil {
		return res, err
	}
	f.Say("forming a new cluster from the backup (force-new-cluster, advertising %s)", orDefault(st.AdvertiseAddr, "the default address"))
	_, err = c.SwarmInit(ctx, client.SwarmInitOptions{
		ListenAddr: orDefault(st.ListenAddr, "0.0.0.0:2377"), AdvertiseAddr: st.AdvertiseAddr,
		DataPathAddr: st.DataPathAddr, DataPathPort: st.DataPathPort, ForceNewCluster: true,
	})
	if err != nil {
		return res, fmt.Errorf("docker swarm init --force-new-cluster --advertise-addr %s: %w", orDefault(st.AdvertiseAddr, "ADDR"), err)
	}
	node, err := waitForCluster(ctx, c)
	if err != nil {
		return res, err
	}
	old, err := readvertise(ctx, c, node, live, id)
	if err != nil {
		return res, err
	}
	if old != "" {
		f.Say("the raft membership named this manager at %s; it now names the address it advertises", old)
	}
	if f.RemoveOthers {
		if res.Removed, err = removeOthers(ctx, c, node.NodeID); err != nil {
			return res, err
		}
		f.Say("removed the %d other node(s) of the backup: new machines join with new identities", res.Removed)
	}
	if f.Backup.Meta.Autolock {
		f.Say("locking the swarm again with a new unlock key")
		if res.UnlockKey, err = relock(ctx, c); err != nil {
			return res, err
		}
	}
	return res, nil
}

// stage copies the backup beside the live directory and prepares it to start on this host:
// unsealed when it is autolocked, with a fresh node certificate when the backup's has
// expired (when it had), without the engine's state file, whose addresses it returns (moved
// to this host's when they differ), and the manager's identity, read while its key is
// unsealed.
func (f *FullRestore) stage(staging string) (engineState, swarmstate.Identity, time.Time, error) {
	var (
		st      engineState
		id      swarmstate.Identity
		expired time.Time
	)
	if err := copyTree(f.Backup.SwarmDir(), staging); err != nil {
		return st, id, expired, err
	}
	// A locked manager refuses force-new-cluster: the copy's key material is unsealed with
	// the key that opened the backup, and the swarm is locked again afterwards.
	if f.Backup.Meta.Autolock {
		if err := swarmstate.Unseal(staging, f.Backup.UnlockKey); err != nil {
			return st, id, expired, err
		}
	}
	expired, err := f.renewCertificate(staging)
	if err != nil {
		return st, id, expired, err
	}
	if id, err = swarmstate.ReadIdentity(staging); err != nil {
		return st, id, expired, err
	}
	if st, err = takeEngineState(staging); err != nil {
		return st, id, expired, err
	}
	return st.addressed(f.AdvertiseAddr, f.Backup.Meta.NodeAddr), id, expired, nil
}

// renewCertificate gives the staged manager a fresh certificate from the backup's root CA
// when its own has expired, or would within the hour the restore may take: an engine does
// not start its swarm with an expired one. It returns when the old one expired.
func (f *FullRestore) renewCertificate(staging string) (time.Time, error) {
	cert, err := swarmstate.NodeCertificate(staging)
	if err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	if cert.NotAfter.After(now.Add(time.Hour)) {
		return time.Time{}, nil
	}
	if f.Backup.State == nil {
		return time.Time{}, fmt.Errorf("the backup's node certificate expired on %s and its store could not be decoded to issue another", cert.NotAfter.Format(time.DateOnly))
	}
	if err := swarmstate.IssueNodeCertificate(staging, f.Backup.State, now.Add(-time.Minute), now.Add(swarmstate.DefaultNodeCertExpiry)); err != nil {
		return time.Time{}, fmt.Errorf("the backup's node certificate expired on %s: %w", cert.NotAfter.Format(time.DateOnly), err)
	}
	return cert.NotAfter, nil
}

// removeOthers removes every node but self from the cluster, managers demoted first.
func removeOthers(ctx context.Context, c client.APIClient, self string) (int, error) {
	nodes, err := c.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list the backup's nodes: %w", err)
	}
	removed := 0
	for _, n := range nodes.Items {
		if n.ID == self {
			continue
		}
		if n.Spec.Role == swarm.NodeRoleManager {
			// force-new-cluster took the other managers out of raft already: the demotion
			// then fails, and the removal goes through all the same.
			spec := n.Spec
			spec.Role = swarm.NodeRoleWorker
			_, _ = c.NodeUpdate(ctx, n.ID, client.NodeUpdateOptions{Version: n.Version, Spec: spec})
		}
		if _, err := c.NodeRemove(ctx, n.ID, client.NodeRemoveOptions{Force: true}); err != nil {
			return removed, fmt.Errorf("remove node %s (%s), which is gone: %w", n.Description.Hostname, n.ID, err)
		}
		removed++
	}
	return removed, nil
}

// waitForCluster waits until the new cluster serves, and returns what the engine says of
// this node in it.
func waitForCluster(ctx context.Context, c client.APIClient) (swarm.Info, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := c.Info(ctx, client.InfoOptions{})
		if err == nil && info.Info.Swarm.ControlAvailable && info.Info.Swarm.LocalNodeState == swarm.LocalNodeStateActive {
			if _, err := c.ServiceList(ctx, client.ServiceListOptions{}); err == nil {
				return info.Info.Swarm, nil
			}
		}
		if time.Now().After(deadline) {
			return swarm.Info{}, fmt.Errorf("the new cluster is not healthy two minutes after force-new-cluster")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// relock turns autolock on with a fresh unlock key and returns it: the key of the backup's
// time has been handled outside the swarm and is retired.
func relock(ctx context.Context, c client.APIClient) (string, error) {
	lock := func(spec *swarm.Spec) { spec.EncryptionConfig.AutoLockManagers = true }
	if err := updateSwarm(ctx, c, lock, true); err != nil {
		return "", fmt.Errorf("lock the swarm again (docker swarm update --autolock=true; docker swarm unlock-key --rotate): %w", err)
	}
	key, err := c.SwarmGetUnlockKey(ctx)
	if err != nil {
		return "", fmt.Errorf("read the new unlock key (docker swarm unlock-key): %w", err)
	}
	return key.Key, nil
}

// updateSwarm changes the cluster's spec as it is now, rotating the unlock key if asked.
func updateSwarm(ctx context.Context, c client.APIClient, change func(*swarm.Spec), rotateUnlockKey bool) error {
	sw, err := c.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return err
	}
	spec := sw.Swarm.Spec
	change(&spec)
	_, err = c.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Swarm.Version, Spec: spec, RotateManagerUnlockKey: rotateUnlockKey})
	return err
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
