package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
)

func runFullRestore(ctx context.Context, dockerCli command.Cli, opts restoreOptions, id string) error {
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
	if !info.Info.Swarm.ControlAvailable {
		return fmt.Errorf("this node is not a swarm manager (state %q): run the full restore on a manager", info.Info.Swarm.LocalNodeState)
	}
	repo, sn, meta, err := opts.repo.openSwarmBackup(ctx, id)
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
	fmt.Fprintf(out, "Full restore of this manager (%s) from backup %s of swarm %s, taken %s on %s:\n",
		info.Info.Name, sn.ID.Short(), meta.ClusterID, sn.Time.Local().Format("2006-01-02 15:04:05"), meta.NodeName)
	fmt.Fprintf(out, "  the engine stops, %s/swarm is moved aside (kept), the backup takes its place,\n", info.Info.DockerRootDir)
	fmt.Fprintf(out, "  the engine starts and a new single-manager cluster is formed with %s\n", describeCounts(meta.Counts))
	if meta.Autolock {
		fmt.Fprintf(out, "  the swarm was autolocked: it is unlocked with the key given, and locked again with a new key\n")
	}
	if opts.advertiseAddr != "" {
		fmt.Fprintf(out, "  this manager advertises %s (the backup's state files and raft membership move to it)\n", opts.advertiseAddr)
	}
	if err := confirm(dockerCli, opts.yes, "Go ahead?", "run a full restore"); err != nil {
		return err
	}
	fr := &controlplane.FullRestore{
		Backup: b, RootDir: info.Info.DockerRootDir, AdvertiseAddr: opts.advertiseAddr,
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
	fmt.Fprintf(out, "The cluster runs again on this manager, with the backup's objects.\n")
	if res.UnlockKey != "" {
		fmt.Fprintf(out, "The swarm is autolocked again. Its new unlock key, needed to unlock managers after a restart\n")
		fmt.Fprintf(out, "and for backups taken from now on; keep it safe (docker swarm unlock-key shows it again):\n\n    %s\n\n", res.UnlockKey)
	}
	fmt.Fprintf(out, "Next: remove the managers that are gone (docker node ls; docker node demote NODE && docker node rm --force NODE),\n")
	fmt.Fprintf(out, "then join new or surviving nodes again (docker swarm join-token manager|worker; on them: docker swarm leave --force, docker swarm join ...).\n")
	return nil
}
