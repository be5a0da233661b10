package commands

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/repository"
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
	info, err := dockerCli.Client().Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("ask the engine about this node: %w", err)
	}
	sw := info.Info.Swarm
	if !sw.ControlAvailable || sw.Cluster == nil {
		return fmt.Errorf("this node is not a swarm manager (state %q): run the backup on a manager", sw.LocalNodeState)
	}
	// On the manager's host the swarm directory is read here; from anywhere else a manager's
	// plugin takes the backup, asked through the repository.
	local := controlplane.OnThisHost(filepath.Join(info.Info.DockerRootDir, "swarm"), sw.NodeID)
	switch {
	case opts.mode == "cold" && !local:
		return fmt.Errorf("--mode cold stops the manager's engine: run it on the manager's host, as root")
	case opts.volumes && local:
		return runBackupSet(ctx, dockerCli, opts, tags, unlockKey)
	case opts.volumes:
		return runBackupSetElsewhere(ctx, dockerCli, opts, sw.Cluster.ID, tags)
	case !local:
		return runBackupElsewhere(ctx, dockerCli, opts, sw.Cluster.ID, tags)
	}
	taken, err := backupControlPlane(ctx, dockerCli, opts, nil, tags, unlockKey)
	if err != nil {
		return err
	}
	return taken.print(dockerCli, opts)
}

// controlPlaneBackup is what backupControlPlane took.
type controlPlaneBackup struct{ *controlplane.Taken }

// backupControlPlane backs up this manager's swarm state; repo, when set, is the repository
// to write to (opened otherwise).
func backupControlPlane(ctx context.Context, dockerCli command.Cli, opts backupOptions, repo *repository.Repository, tags map[string]string, unlockKey string) (*controlPlaneBackup, error) {
	api := dockerCli.Client()
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("ask the engine about this node: %w", err)
	}
	if repo == nil {
		if repo, err = opts.repo.openForWrite(ctx); err != nil {
			return nil, err
		}
	}
	bopts := controlplane.BackupOptions{
		SwarmDir: filepath.Join(info.Info.DockerRootDir, "swarm"), UnlockKey: unlockKey, Tags: tags,
	}
	if opts.mode == "cold" {
		bopts.Cold = func(ctx context.Context, swarmDir, dst string) (*controlplane.Capture, time.Duration, error) {
			return coldCapture(ctx, dockerCli, opts, info.Info.Swarm.NodeID, swarmDir, dst, unlockKey)
		}
	}
	taken, err := controlplane.TakeBackup(ctx, api, repo, bopts)
	if err != nil {
		return nil, err
	}
	return &controlPlaneBackup{taken}, nil
}

func (b *controlPlaneBackup) warnAutolock(dockerCli command.Cli) {
	if !b.Capture.Autolocked {
		return
	}
	msg := "warning: autolock is on: restoring this backup needs the unlock key that is current now (docker swarm unlock-key); keep it with the backup's ID"
	if !b.Meta.Decoded {
		msg += "; without --unlock-key-file the copy was checked but not decoded"
	}
	fmt.Fprintln(dockerCli.Err(), msg)
}

func (b *controlPlaneBackup) print(dockerCli command.Cli, opts backupOptions) error {
	b.warnAutolock(dockerCli)
	if opts.quiet {
		_, err := fmt.Fprintln(dockerCli.Out(), b.Snapshot.ID.String())
		return err
	}
	engine := "engine kept running"
	if opts.mode == "cold" {
		engine = fmt.Sprintf("engine down for %s", b.Downtime.Round(time.Millisecond))
	}
	_, err := fmt.Fprintf(dockerCli.Out(), "%s\nswarm %s from %s: %s, raft index %d, %s in %s (%s)\n",
		b.Snapshot.ID.String(), b.Meta.ClusterID, b.Meta.NodeName, describeCounts(b.Meta.Counts), b.Meta.RaftCommitIndex,
		units.BytesSize(float64(b.Snapshot.Stats.Bytes)), b.Capture.Took.Round(time.Millisecond), engine)
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
