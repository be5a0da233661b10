package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/scratch"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

type backupOptions struct {
	repo          repoOptions
	mode          string
	allowLeader   bool
	stopCmd       string
	startCmd      string
	tags          []string
	unlockKeyFile string
	quiet         bool
	volumes       bool
	timeout       time.Duration
}

func newBackupCommand(dockerCli command.Cli) *cobra.Command {
	var opts backupOptions
	cmd := &cobra.Command{
		Use:   "backup [OPTIONS]",
		Short: "Back up this manager's swarm state, without stopping the engine",
		Long: "Back up this manager's swarm state: services, networks, secrets, configs, nodes and keys.\n" +
			"The swarm directory is copied while the engine runs and the copy is accepted only once it\n" +
			"decodes offline. Run it on a manager, on the manager's host. Prints the backup's ID.\n" +
			"--mode cold does the documented procedure safely: it refuses on the leader (unless\n" +
			"--allow-leader) and when stopping this manager would lose quorum, stops the engine, copies,\n" +
			"starts it and waits until the node is a manager again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBackup(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.mode, "mode", "hot", `"hot" (no engine stop) or "cold" (the engine is stopped while the directory is copied)`)
	cmd.Flags().BoolVar(&opts.allowLeader, "allow-leader", false, "With --mode cold: allow stopping the leader")
	cmd.Flags().StringVar(&opts.stopCmd, "engine-stop-cmd", "", "Command that stops the engine (default $SWARMBACKUP_ENGINE_STOP_CMD, else systemctl stop docker)")
	cmd.Flags().StringVar(&opts.startCmd, "engine-start-cmd", "", "Command that starts the engine (default $SWARMBACKUP_ENGINE_START_CMD, else systemctl start docker)")
	cmd.Flags().StringArrayVar(&opts.tags, "tag", nil, "Tag the backup with KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&opts.unlockKeyFile, "unlock-key-file", "", "File holding the unlock key of an autolocked swarm, to decode the copy before accepting it")
	cmd.Flags().BoolVarP(&opts.quiet, "quiet", "q", false, "Only print the backup ID")
	cmd.Flags().BoolVar(&opts.volumes, "volumes", false, "Take a set: the control plane and every swarmbackup volume on every node, at one instant")
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 2*time.Minute, "With --volumes: how long the nodes may take before the set is recorded without them")
	return cmd
}

func runBackup(ctx context.Context, dockerCli command.Cli, opts backupOptions) error {
	if opts.mode != "hot" && opts.mode != "cold" {
		return fmt.Errorf("--mode %q: want hot or cold", opts.mode)
	}
	if opts.volumes && opts.mode == "cold" {
		return fmt.Errorf("--volumes takes the control plane hot, at the volumes' instant: leave out --mode cold")
	}
	if opts.timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", opts.timeout)
	}
	tags, err := parseTags(opts.tags)
	if err != nil {
		return err
	}
	unlockKey, err := readUnlockKey(opts.unlockKeyFile)
	if err != nil {
		return err
	}
	if opts.volumes {
		return runBackupSet(ctx, dockerCli, opts, tags, unlockKey)
	}
	taken, err := backupControlPlane(ctx, dockerCli, opts, nil, tags, unlockKey)
	if err != nil {
		return err
	}
	return taken.print(dockerCli, opts)
}

// controlPlaneBackup is what backupControlPlane took.
type controlPlaneBackup struct {
	sn       *snapshot.Snapshot
	meta     controlplane.Metadata
	capture  *controlplane.Capture
	downtime time.Duration
}

// backupControlPlane backs up this manager's swarm state; repo, when set, is the repository
// to write to (opened otherwise).
func backupControlPlane(ctx context.Context, dockerCli command.Cli, opts backupOptions, repo *repository.Repository, tags map[string]string, unlockKey string) (*controlPlaneBackup, error) {
	api := dockerCli.Client()
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("ask the engine about this node: %w", err)
	}
	sw := info.Info.Swarm
	if !sw.ControlAvailable {
		return nil, fmt.Errorf("this node is not a swarm manager (state %q): run the backup on a manager", sw.LocalNodeState)
	}
	swarmDir := filepath.Join(info.Info.DockerRootDir, "swarm")
	if _, err := os.Stat(swarmDir); err != nil {
		return nil, fmt.Errorf("cannot read the swarm directory %s: run the backup on the manager's host, as root (%v)", swarmDir, err)
	}
	if repo == nil {
		if repo, err = opts.repo.openForWrite(ctx); err != nil {
			return nil, err
		}
	}

	// The staging copy holds the swarm's keys, decrypted when the swarm is autolocked.
	staging, err := scratch.MkdirTemp("", "swarmbackup-")
	if err != nil {
		return nil, err
	}
	defer scratch.Remove(staging)

	// The engine's own view of services and networks: what restore hands back to it.
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
	dst := filepath.Join(staging, controlplane.SwarmDir)
	var capture *controlplane.Capture
	var downtime time.Duration
	if opts.mode == "cold" {
		capture, downtime, err = coldCapture(ctx, dockerCli, opts, sw.NodeID, swarmDir, dst, unlockKey)
	} else {
		capture, err = controlplane.Take(ctx, swarmDir, dst, unlockKey, fenceWrite(api))
	}
	if err != nil {
		return nil, fmt.Errorf("back up the swarm: %w", err)
	}
	meta := controlplane.Metadata{
		ClusterID: sw.Cluster.ID, NodeID: sw.NodeID, NodeName: info.Info.Name, NodeAddr: sw.NodeAddr,
		Role: "manager", EngineVersion: info.Info.ServerVersion, Mode: opts.mode,
		Autolock: capture.Autolocked, Decoded: capture.State != nil,
		Attempts: capture.Attempts, CaptureMillis: capture.Took.Milliseconds(),
		Leader: leader, EngineDowntimeMillis: downtime.Milliseconds(),
	}
	inventory := []controlplane.Object{}
	if capture.State != nil {
		inventory = controlplane.InventoryOf(capture.State)
		meta.ClusterID = capture.State.ClusterID()
		meta.RaftCommitIndex, meta.RaftLastIndex = capture.State.CommitIndex, capture.State.LastIndex
		meta.Counts = controlplane.Count(inventory)
	}
	for name, v := range map[string]any{
		controlplane.InventoryFile: inventory,
		controlplane.ServicesFile:  services.Items,
		controlplane.NetworksFile:  swarmNetworks,
	} {
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
		Host: info.Info.Name, Node: sw.NodeID, Tags: tags, Meta: metaJSON,
	}, backup.Options{})
	if err != nil {
		return nil, err
	}
	return &controlPlaneBackup{sn: sn, meta: meta, capture: capture, downtime: downtime}, nil
}

func (b *controlPlaneBackup) warnAutolock(dockerCli command.Cli) {
	if !b.capture.Autolocked {
		return
	}
	msg := "warning: autolock is on: restoring this backup needs the unlock key that is current now (docker swarm unlock-key); keep it with the backup's ID"
	if !b.meta.Decoded {
		msg += "; without --unlock-key-file the copy was checked but not decoded"
	}
	fmt.Fprintln(dockerCli.Err(), msg)
}

func (b *controlPlaneBackup) print(dockerCli command.Cli, opts backupOptions) error {
	b.warnAutolock(dockerCli)
	if opts.quiet {
		_, err := fmt.Fprintln(dockerCli.Out(), b.sn.ID.String())
		return err
	}
	engine := "engine kept running"
	if opts.mode == "cold" {
		engine = fmt.Sprintf("engine down for %s", b.downtime.Round(time.Millisecond))
	}
	_, err := fmt.Fprintf(dockerCli.Out(), "%s\nswarm %s from %s: %s, raft index %d, %s in %s (%s)\n",
		b.sn.ID.String(), b.meta.ClusterID, b.meta.NodeName, describeCounts(b.meta.Counts), b.meta.RaftCommitIndex,
		units.BytesSize(float64(b.sn.Stats.Bytes)), b.capture.Took.Round(time.Millisecond), engine)
	return err
}

// coldCapture copies the swarm directory with the engine stopped, and always starts the
// engine again, whatever happened to the copy.
func coldCapture(ctx context.Context, dockerCli command.Cli, opts backupOptions, nodeID, swarmDir, dst, unlockKey string) (*controlplane.Capture, time.Duration, error) {
	api := dockerCli.Client()
	if err := controlplane.CheckColdSafe(ctx, api, nodeID, opts.allowLeader); err != nil {
		return nil, 0, err
	}
	ctl := controlplane.DefaultEngineControl(opts.stopCmd, opts.startCmd)
	stopped := time.Now()
	if err := ctl.StopEngine(ctx, api); err != nil {
		if startErr := ctl.StartEngine(context.WithoutCancel(ctx), api); startErr != nil {
			return nil, 0, fmt.Errorf("%w; starting it again failed too: %v", err, startErr)
		}
		return nil, 0, err
	}
	capture, copyErr := controlplane.Take(ctx, swarmDir, dst, unlockKey, nil)
	startErr := ctl.StartEngine(context.WithoutCancel(ctx), api)
	downtime := time.Since(stopped)
	if startErr != nil {
		return nil, downtime, fmt.Errorf("%w: start it by hand (%s)", startErr, ctl.Start)
	}
	if copyErr != nil {
		return nil, downtime, copyErr
	}
	return capture, downtime, nil
}

// fenceWrite makes a harmless change through the API: the cluster object is written with
// its own spec. Once that entry is in the log, every change before it is provably committed.
func fenceWrite(api client.APIClient) func(context.Context) error {
	return func(ctx context.Context) error {
		sw, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
		if err != nil {
			return err
		}
		_, err = api.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Swarm.Version, Spec: sw.Swarm.Spec})
		return err
	}
}

func describeCounts(c map[string]int) string {
	if c == nil {
		return "not decoded"
	}
	var parts []string
	for _, k := range []string{"service", "network", "secret", "config", "node"} {
		parts = append(parts, fmt.Sprintf("%d %ss", c[k], k))
	}
	return strings.Join(parts, ", ")
}

func parseTags(tags []string) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--tag %q: want KEY=VALUE", t)
		}
		out[k] = v
	}
	return out, nil
}

func readUnlockKey(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the unlock key file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
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
