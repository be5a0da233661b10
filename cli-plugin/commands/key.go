package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/cli/cli/command"
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
	newPasswordFile string
}

func newKeyAddCommand(dockerCli command.Cli) *cobra.Command {
	var opts keyAddOptions
	cmd := &cobra.Command{
		Use:   "add --new-password-file FILE [--role full|volumes]",
		Short: "Add a password that opens the repository, with the keys of a role",
		Long: "Add a password that opens the repository. A full key reads and writes everything. A key of\n" +
			"the volumes role, for the plugins of workers, adds and restores volume snapshots but cannot\n" +
			"read the control plane's backups (secrets, node keys, the raft key) nor make one a full key\n" +
			"accepts. The current password (--password-file) must open a full key.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeyAdd(cmd.Context(), dockerCli, opts)
		},
	}
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.role, "role", "full", "What the new key may do: full, or volumes (for workers)")
	cmd.Flags().StringVar(&opts.newPasswordFile, "new-password-file", "", "File holding the new password")
	return cmd
}

func runKeyAdd(ctx context.Context, dockerCli command.Cli, opts keyAddOptions) error {
	role, err := repository.ParseRole(opts.role)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
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
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	if err := repo.AddKey(ctx, current, newPassword, role); err != nil {
		return err
	}
	fmt.Fprintf(dockerCli.Out(), "added a key of role %s to %s\n", role, repo.Backend().Location())
	if role == repository.RoleVolumes {
		fmt.Fprintln(dockerCli.Out(), "give its password file to the plugins of workers: docker plugin set swarmbackup etc.source=DIR (DIR/password)")
	}
	return nil
}
