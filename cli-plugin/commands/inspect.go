package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

type inspectOptions struct {
	repo             repoOptions
	format           string
	showSecretValues bool
	unlockKeyFile    string
	noTrunc          bool
}

// inspectResult is what `inspect --format json` prints.
type inspectResult struct {
	Backup       snapshotSummary       `json:"backup"`
	Metadata     controlplane.Metadata `json:"metadata"`
	Objects      []controlplane.Object `json:"objects"`
	SecretValues map[string]string     `json:"secret_values,omitempty"`
}

func newInspectCommand(dockerCli command.Cli) *cobra.Command {
	var opts inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] ID",
		Short: "Show what a swarm backup holds (metadata and every object), or a set (its members)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd.Context(), dockerCli, opts, args[0])
		},
	}
	cmd.ValidArgsFunction = completeIDs(&opts.repo, snapshot.KindSwarm, kindSet)
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.format, "format", "", formatFlagUsage)
	cmd.Flags().BoolVar(&opts.noTrunc, "no-trunc", false, "Don't truncate object IDs")
	cmd.Flags().BoolVar(&opts.showSecretValues, "show-secret-values", false, "Also print the secrets' values")
	cmd.Flags().StringVar(&opts.unlockKeyFile, "unlock-key-file", "", "File holding the unlock key the swarm had at backup time, if it was autolocked")
	return cmd
}

// openSwarmBackup opens the repository and finds the swarm backup an ID prefix names.
func (o *repoOptions) openSwarmBackup(ctx context.Context, id string) (*repository.Repository, *snapshot.Snapshot, controlplane.Metadata, error) {
	repo, err := o.open(ctx)
	if err != nil {
		return nil, nil, controlplane.Metadata{}, err
	}
	sn, meta, err := findSwarmBackup(ctx, repo, id)
	return repo, sn, meta, err
}

// findSwarmBackup finds the swarm backup whose ID starts with id.
func findSwarmBackup(ctx context.Context, repo *repository.Repository, id string) (*snapshot.Snapshot, controlplane.Metadata, error) {
	if repo.Role() == repository.RoleVolumes {
		return nil, controlplane.Metadata{}, fmt.Errorf("swarm backup %s: %w", id, repository.ErrNoControlKey)
	}
	list, _, err := snapshot.List(ctx, repo)
	if err != nil {
		return nil, controlplane.Metadata{}, err
	}
	sn, err := snapshot.Find(list, id)
	if err != nil {
		return nil, controlplane.Metadata{}, err
	}
	meta, err := controlplane.ReadMeta(sn)
	return sn, meta, err
}

// decodeSwarmBackup brings a swarm backup back and decodes it; an autolocked swarm's backup
// needs the unlock key it had then, from keyFile.
func decodeSwarmBackup(ctx context.Context, repo *repository.Repository, sn *snapshot.Snapshot, meta controlplane.Metadata, keyFile string) (*controlplane.Backup, error) {
	unlockKey, err := readUnlockKey(keyFile)
	if err != nil {
		return nil, err
	}
	if meta.Autolock && unlockKey == "" {
		return nil, fmt.Errorf("backup %s is of an autolocked swarm: give the unlock key it had then with --unlock-key-file", sn.ID.Short())
	}
	return controlplane.Open(ctx, repo, sn, os.TempDir(), unlockKey)
}

func runInspect(ctx context.Context, dockerCli command.Cli, opts inspectOptions, id string) error {
	if !opts.showSecretValues {
		repo, err := opts.repo.open(ctx)
		if err != nil {
			return err
		}
		if s, err := findSet(ctx, repo, id); err != nil || s != nil {
			if err != nil {
				return err
			}
			return inspectSet(dockerCli, opts.format, s)
		}
	}
	repo, sn, meta, err := opts.repo.openSwarmBackup(ctx, id)
	if err != nil {
		return err
	}
	objects, err := controlplane.ReadInventory(ctx, repo, sn)
	if err != nil {
		return err
	}
	res := inspectResult{Backup: summarize(sn), Metadata: meta, Objects: objects}
	if opts.showSecretValues {
		b, err := decodeSwarmBackup(ctx, repo, sn, meta, opts.unlockKeyFile)
		if err != nil {
			return err
		}
		defer b.Close()
		res.SecretValues = map[string]string{}
		for _, s := range b.State.Secrets {
			res.SecretValues[s.Spec.Annotations.Name] = string(s.Spec.Data)
		}
	}
	return writeFormatted(dockerCli.Out(), opts.format, res, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Backup:\t%s\n", sn.ID)
		fmt.Fprintf(tw, "Time:\t%s\n", sn.Time.Local().Format("2006-01-02 15:04:05 MST"))
		fmt.Fprintf(tw, "Cluster:\t%s\n", meta.ClusterID)
		fmt.Fprintf(tw, "Node:\t%s (%s, %s%s)\n", meta.NodeName, meta.NodeID, meta.Role, map[bool]string{true: ", leader"}[meta.Leader])
		fmt.Fprintf(tw, "Engine:\t%s\n", meta.EngineVersion)
		fmt.Fprintf(tw, "Mode:\t%s\n", meta.Mode)
		if meta.Mode == "cold" {
			fmt.Fprintf(tw, "Engine downtime:\t%d ms\n", meta.EngineDowntimeMillis)
		}
		fmt.Fprintf(tw, "Raft index:\t%d\n", meta.RaftCommitIndex)
		fmt.Fprintf(tw, "Autolock:\t%v\n", meta.Autolock)
		fmt.Fprintf(tw, "Objects:\t%s\n", describeCounts(meta.Counts))
		if err := tw.Flush(); err != nil {
			return err
		}
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nKIND\tNAME\tID\tLABELS\tDETAIL")
		for _, o := range objects {
			id := o.ID
			if !opts.noTrunc {
				id = shorten(id, 12)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Kind, o.Name, id, pairs(o.Labels), pairs(o.Detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if res.SecretValues != nil {
			names := make([]string, 0, len(res.SecretValues))
			for n := range res.SecretValues {
				names = append(names, n)
			}
			sort.Strings(names)
			fmt.Fprintln(w, "\nSECRET VALUES")
			for _, n := range names {
				fmt.Fprintf(w, "%s: %q\n", n, res.SecretValues[n])
			}
		}
		return nil
	})
}

func pairs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
