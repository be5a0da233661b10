package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/config"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

func newKeyCommand(dockerCli command.Cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the repository's keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newKeyAddCommand(dockerCli))
	return cmd
}

type keyAddOptions struct {
	repo            repoOptions
	role            string
	node            string
	newPasswordFile string
}

func newKeyAddCommand(dockerCli command.Cli) *cobra.Command {
	var opts keyAddOptions
	cmd := &cobra.Command{
		Use:   "add --new-password-file FILE [--role full|volumes [--node NODE]]",
		Short: "Add a password that opens the repository, with the keys of a role",
		Long: "Add a password that opens the repository. A full key reads and writes everything. A key of\n" +
			"the volumes role, for the plugins of workers, adds and restores volume snapshots but cannot\n" +
			"read the control plane's backups (secrets, node keys, the raft key) nor make one a full key\n" +
			"accepts. With --node, it also holds that node's compartment: the node's own volumes\n" +
			"(scope=node) are sealed apart, and no other node's key reads them or makes a snapshot the\n" +
			"node would restore. The current password (--password-file) must open a full key.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeyAdd(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.role, "role", "full", "What the new key may do: full, or volumes (for one node's plugin, with --node)")
	cmd.Flags().StringVar(&opts.node, "node", "", "The swarm node (ID or host name) whose own volumes the volumes key may read and write")
	cmd.Flags().StringVar(&opts.newPasswordFile, "new-password-file", "", "File holding the new password")
	return cmd
}

func runKeyAdd(ctx context.Context, dockerCli command.Cli, opts keyAddOptions) error {
	role, err := repository.ParseRole(opts.role)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	if opts.node != "" && role != repository.RoleVolumes {
		return errors.New("--node is for keys of the volumes role: add --role volumes")
	}
	if opts.node == "" && role == repository.RoleVolumes {
		// Most volumes are their node's own (scope=node): a key for no node could snapshot none.
		return errors.New("a key of the volumes role is for one node's plugin: add --node NODE (its host name or ID)")
	}
	if opts.newPasswordFile == "" {
		return errors.New("give the new password in a file: --new-password-file FILE")
	}
	newPassword, err := config.SecretFile(opts.newPasswordFile)
	if err != nil {
		return fmt.Errorf("--new-password-file: %w", err)
	}
	current, err := opts.repo.password()
	if err != nil {
		return err
	}
	var node swarm.Node
	if opts.node != "" {
		if node, err = findNode(ctx, dockerCli.Client(), opts.node); err != nil {
			return fmt.Errorf("--node: %w", err)
		}
	}
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	if err := repo.AddKey(ctx, current, newPassword, role, node.ID); err != nil {
		return err
	}
	if node.ID != "" {
		fmt.Fprintf(dockerCli.Out(), "added a key of role %s for node %s (%s) to %s\n", role, node.Description.Hostname, node.ID, repo.Backend().Location())
	} else {
		fmt.Fprintf(dockerCli.Out(), "added a key of role %s to %s\n", role, repo.Backend().Location())
	}
	if role == repository.RoleVolumes {
		fmt.Fprintln(dockerCli.Out(), "give its password file to that node's plugin only: docker plugin set swarmbackup etc.source=DIR (DIR/password)")
	}
	return nil
}

// findNode finds a swarm node by its ID, a unique prefix of it, or its host name, as
// docker node inspect does.
func findNode(ctx context.Context, api client.APIClient, name string) (swarm.Node, error) {
	res, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return swarm.Node{}, fmt.Errorf("list the swarm's nodes (run this on a manager): %w", err)
	}
	var found []swarm.Node
	for _, n := range res.Items {
		switch {
		case n.ID == name:
			return n, nil
		case n.Description.Hostname == name || strings.HasPrefix(n.ID, name):
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return swarm.Node{}, fmt.Errorf("no node %q in the swarm", name)
	case 1:
		return found[0], nil
	}
	return swarm.Node{}, fmt.Errorf("%q names %d nodes: give the node's ID", name, len(found))
}
