package commands

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/controlplane"
)

// runFullRestore rebuilds the control plane on this engine: a manager that lost its quorum,
// or, after a total loss, a fresh engine in no swarm. Given a set, every volume of the set
// is armed to fill from it wherever its task lands.
func runFullRestore(ctx context.Context, dockerCli command.Cli, opts restoreOptions, id string) error {
	started := time.Now()
	api := dockerCli.Client()
	// A manager that lost its quorum answers only after the engine's own 20 s swarm timeout.
	slow := time.AfterFunc(2*time.Second, func() {
		fmt.Fprintln(dockerCli.Err(), "waiting for the engine: a manager without a leader answers `docker info` after its 20 s timeout")
	})
	info, err := api.Info(ctx, client.InfoOptions{})
	slow.Stop()
	if err != nil {
		return fmt.Errorf("ask the engine about this node: %w", err)
	}
	fresh := info.Info.Swarm.LocalNodeState == swarm.LocalNodeStateInactive
	if !fresh && !info.Info.Swarm.ControlAvailable {
		return fmt.Errorf("this node is not a swarm manager (state %q): run the full restore on a manager, or on a new engine in no swarm", info.Info.Swarm.LocalNodeState)
	}
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	set, err := findSet(ctx, repo, id)
	if err != nil {
		return err
	}
	if set != nil {
		if set.ControlPlane == "" {
			return fmt.Errorf("set %s holds no control-plane backup: it cannot rebuild the cluster", shorten(set.ID, 12))
		}
		id = set.ControlPlane
	}
	sn, meta, err := findSwarmBackup(ctx, repo, id)
	if err != nil {
		return err
	}
	b, err := decodeSwarmBackup(ctx, repo, sn, meta, opts.unlockKeyFile)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := controlplane.CheckFullRestore(b, info.Info.ServerVersion, info.Info.DockerRootDir); err != nil {
		return err
	}
	out := dockerCli.Out()
	what := "this manager (" + info.Info.Name + ")"
	if fresh {
		what = "this new engine (" + info.Info.Name + "), in no swarm yet,"
	}
	from := fmt.Sprintf("backup %s", sn.ID.Short())
	if set != nil {
		from = fmt.Sprintf("set %s (control plane %s, %d volumes)", shorten(set.ID, 12), sn.ID.Short(), len(set.Members))
	}
	fmt.Fprintf(out, "Full restore of %s from %s of swarm %s, taken %s on %s:\n",
		what, from, meta.ClusterID, sn.Time.Local().Format("2006-01-02 15:04:05"), meta.NodeName)
	fmt.Fprintf(out, "  the engine stops, %s/swarm is moved aside (kept), the backup takes its place,\n", info.Info.DockerRootDir)
	fmt.Fprintf(out, "  the engine starts and a new single-manager cluster is formed with %s\n", describeCounts(meta.Counts))
	if fresh {
		fmt.Fprintf(out, "  every other node of the backup is removed: the other new machines join afresh\n")
	}
	if set != nil && len(set.Members) > 0 {
		fmt.Fprintf(out, "  each volume of the set is filled from the set wherever its task lands, whatever its options say\n")
		if !pluginEnabled(ctx, api) {
			fmt.Fprintf(out, "  this engine has no enabled swarmbackup volume plugin: install it here and on every new machine before tasks land\n")
		}
	}
	if meta.Autolock {
		fmt.Fprintf(out, "  the swarm was autolocked: it is unlocked with the key given, and locked again with a new key\n")
	}
	if opts.advertiseAddr != "" {
		fmt.Fprintf(out, "  this manager advertises %s (the backup's state files and raft membership move to it)\n", opts.advertiseAddr)
	}
	if err := confirm(dockerCli, opts.yes, "Go ahead?", "run a full restore"); err != nil {
		return err
	}
	// Armed before the cluster runs: the first task that lands must find it.
	if set != nil && len(set.Members) > 0 {
		if _, err := backupset.Arm(ctx, repo, set, time.Now(), backupset.DefaultArmFor); err != nil {
			return err
		}
	}
	fr := &controlplane.FullRestore{
		Backup: b, RootDir: info.Info.DockerRootDir, AdvertiseAddr: opts.advertiseAddr, RemoveOthers: fresh,
		Engine: controlplane.DefaultEngineControl(opts.stopCmd, opts.startCmd),
		Say:    func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) },
	}
	res, err := fr.Run(ctx, api)
	if err != nil {
		if res.Aside != "" {
			return fmt.Errorf("%w (the replaced swarm directory is at %s)", err, res.Aside)
		}
		return err
	}
	printRecovered(out, meta, set, res, time.Since(started))
	if fresh {
		return printJoin(ctx, out, api)
	}
	fmt.Fprintf(out, "Next: remove the managers that are gone (docker node ls; docker node demote NODE && docker node rm --force NODE),\n")
	fmt.Fprintf(out, "then join new or surviving nodes again (docker swarm join-token manager|worker; on them: docker swarm leave --force, docker swarm join ...).\n")
	return nil
}

// printRecovered says what came back and how long it took.
func printRecovered(out io.Writer, meta controlplane.Metadata, set *backupset.Set, res controlplane.Result, took time.Duration) {
	fmt.Fprintf(out, "Recovered in %s: the control plane with %s.\n", took.Round(100*time.Millisecond), describeCounts(meta.Counts))
	if set != nil && len(set.Members) > 0 {
		fmt.Fprintf(out, "Armed: %d volumes (%s) fill from set %s as their tasks land (docker volume inspect on their node shows the fill):\n",
			len(set.Members), units.BytesSize(float64(set.Bytes())), shorten(set.ID, 12))
		for _, m := range set.Members {
			fmt.Fprintf(out, "  %s (from %s, snapshot %s, %s)\n", m.Volume, m.Host, shorten(m.Snapshot, 12), units.BytesSize(float64(m.Bytes)))
		}
	}
	if res.UnlockKey != "" {
		fmt.Fprintf(out, "The swarm is autolocked again. Its new unlock key, needed to unlock managers after a restart\n")
		fmt.Fprintf(out, "and for backups taken from now on; keep it safe (docker swarm unlock-key shows it again):\n\n    %s\n\n", res.UnlockKey)
	}
}

// printJoin tells how the other new machines join the restored cluster.
func printJoin(ctx context.Context, out io.Writer, api client.APIClient) error {
	sw, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return fmt.Errorf("read the join tokens (docker swarm join-token): %w", err)
	}
	info, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("ask the engine about this node: %w", err)
	}
	addr := info.Info.Swarm.NodeAddr + ":2377"
	fmt.Fprintf(out, "Next, on each other new machine: install the swarmbackup volume plugin with this repository, then join:\n")
	fmt.Fprintf(out, "  as a manager: docker swarm join --token %s %s\n", sw.Swarm.JoinTokens.Manager, addr)
	fmt.Fprintf(out, "  as a worker:  docker swarm join --token %s %s\n", sw.Swarm.JoinTokens.Worker, addr)
	return nil
}

// pluginEnabled reports whether this engine has the swarmbackup volume plugin enabled.
func pluginEnabled(ctx context.Context, api client.APIClient) bool {
	plugins, err := api.PluginList(ctx, client.PluginListOptions{})
	if err != nil {
		return true // cannot tell: say nothing
	}
	for _, p := range plugins.Items {
		if p.Enabled && (p.Name == "swarmbackup" || p.Name == "swarmbackup:latest") {
			return true
		}
	}
	return false
}
