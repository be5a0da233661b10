package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

type restoreOptions struct {
	repo          repoOptions
	full          bool
	advertiseAddr string
	stopCmd       string
	startCmd      string
	only          []string
	names         []string
	dryRun        bool
	replace       bool
	yes           bool
	unlockKeyFile string
	listFormat
}

func newRestoreCommand(dockerCli command.Cli) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] ID --only KIND[,KIND] | --full",
		Short: "Bring back deleted objects from a swarm backup, or rebuild this manager from one",
		Long: "Re-create objects of a swarm backup that the cluster no longer has, through the engine API,\n" +
			"with their names, labels and data; services are pointed at the live secrets, configs and\n" +
			"networks of the same names. Objects that exist are left alone; with --replace, those that\n" +
			"differ from the backup are replaced by its version (services are updated in place; a\n" +
			"secret, config or network that live services use is kept). No engine stops.\n" +
			"The plan is printed first; on a terminal it asks before it acts, --yes skips the question.\n" +
			"--full is the disaster restore: the engine is stopped, this manager's swarm directory is\n" +
			"moved aside (kept) and replaced by the backup's, the engine started, and a new\n" +
			"single-manager cluster formed from it (--force-new-cluster).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd.Context(), dockerCli, opts, args[0])
		},
	}
	cmd.ValidArgsFunction = completeIDs(&opts.repo, snapshot.KindSwarm, kindSet)
	opts.repo.addFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringSliceVar(&opts.only, "only", nil, "Kinds to restore: secrets, configs, networks, services")
	f.BoolVar(&opts.full, "full", false, "Disaster restore of this manager from the backup, then --force-new-cluster")
	f.StringVar(&opts.advertiseAddr, "advertise-addr", "", "With --full: the address the new cluster advertises (default: the one in the backup)")
	f.StringVar(&opts.stopCmd, "engine-stop-cmd", "", "With --full: command that stops the engine (default $SWARMBACKUP_ENGINE_STOP_CMD, else systemctl stop docker)")
	f.StringVar(&opts.startCmd, "engine-start-cmd", "", "With --full: command that starts the engine (default $SWARMBACKUP_ENGINE_START_CMD, else systemctl start docker)")
	f.StringArrayVar(&opts.names, "name", nil, "Only objects of this name (repeatable)")
	f.BoolVar(&opts.dryRun, "dry-run", false, "Print the plan, change nothing")
	f.BoolVar(&opts.replace, "replace", false, "Replace objects that exist and differ from the backup")
	f.BoolVarP(&opts.yes, "yes", "y", false, "Do not ask for confirmation")
	f.StringVar(&opts.unlockKeyFile, "unlock-key-file", "", "File holding the unlock key the swarm had at backup time, if it was autolocked")
	opts.listFormat.addFlags(f, "With --dry-run: only show the names of the objects the plan creates or replaces")
	return cmd
}

func parseKinds(only []string) (map[string]bool, error) {
	if len(only) == 0 {
		return nil, fmt.Errorf("say what to restore with --only secrets,configs,networks,services")
	}
	kinds := map[string]bool{}
	for _, k := range only {
		k = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(k)), "s")
		switch k {
		case controlplane.KindSecret, controlplane.KindConfig, controlplane.KindNetwork, controlplane.KindService:
			kinds[k] = true
		default:
			return nil, fmt.Errorf("--only %q: choose from secrets, configs, networks, services", k)
		}
	}
	return kinds, nil
}

func runRestore(ctx context.Context, dockerCli command.Cli, opts restoreOptions, id string) error {
	if opts.full {
		if len(opts.only) > 0 || len(opts.names) > 0 || opts.replace {
			return fmt.Errorf("--full restores everything: leave out --only, --name and --replace")
		}
		return runFullRestore(ctx, dockerCli, opts, id)
	}
	if opts.advertiseAddr != "" {
		return fmt.Errorf("--advertise-addr is for --full: a selective restore leaves the cluster's addresses alone")
	}
	kinds, err := parseKinds(opts.only)
	if err != nil {
		return err
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
	api := dockerCli.Client()
	live, err := controlplane.ReadLive(ctx, api)
	if err != nil {
		return err
	}
	sel := controlplane.Selection{Kinds: kinds, Names: map[string]bool{}, Replace: opts.replace}
	for _, n := range opts.names {
		sel.Names[n] = true
	}
	steps := b.Plan(live, sel)
	changes := 0
	for _, s := range steps {
		if s.Action != "keep" {
			changes++
		}
	}
	if !opts.quiet && (opts.format == "" || opts.format == formatTable) {
		fmt.Fprintf(dockerCli.Out(), "Restore from backup %s of swarm %s (%s):\n", sn.ID.Short(), meta.ClusterID, sn.Time.Local().Format("2006-01-02 15:04:05"))
		if len(steps) == 0 {
			fmt.Fprintln(dockerCli.Out(), "nothing in the backup matches")
		}
	}
	if len(steps) > 0 {
		shown := steps
		if opts.quiet {
			shown = nil
			for _, s := range steps {
				if s.Action != "keep" {
					shown = append(shown, s)
				}
			}
		}
		err = writeSteps(dockerCli.Out(), opts.listFormat, shown)
	}
	if err != nil || opts.dryRun || changes == 0 {
		return err
	}
	if err := confirm(dockerCli, opts.yes, fmt.Sprintf("Restore %d object(s)?", changes), fmt.Sprintf("restore %d object(s)", changes)); err != nil {
		return err
	}
	if err := b.Apply(ctx, api, steps, live); err != nil {
		return err
	}
	if opts.format == "" {
		fmt.Fprintf(dockerCli.Out(), "restored %d object(s)\n", changes)
	}
	return nil
}

// confirm asks on a terminal; off a terminal only --yes goes ahead.
func confirm(dockerCli command.Cli, yes bool, question, what string) error {
	if yes {
		return nil
	}
	if !dockerCli.In().IsTerminal() {
		return fmt.Errorf("not on a terminal: add --yes to %s", what)
	}
	fmt.Fprintf(dockerCli.Out(), "%s [y/N] ", question)
	answer, _ := bufio.NewReader(dockerCli.In()).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return fmt.Errorf("restore cancelled")
	}
	return nil
}

const restorePlanTable = "table {{.Action}}\t{{.Kind}}\t{{.Name}}\t{{.Reason}}"

func writeSteps(out io.Writer, f listFormat, steps []controlplane.Step) error {
	return writeRows(out, f, restorePlanTable, steps, func(s controlplane.Step, _ bool) row { return stepRow{s} })
}

// stepRow is a line of a restore's plan.
type stepRow struct{ s controlplane.Step }

func (r stepRow) FullHeader() any              { return nil }
func (r stepRow) MarshalJSON() ([]byte, error) { return json.Marshal(r.s) }
func (r stepRow) Action() string               { return r.s.Action }
func (r stepRow) ID() string                   { return r.s.Name } // what -q prints
func (r stepRow) Kind() string                 { return r.s.Kind }
func (r stepRow) Name() string                 { return r.s.Name }
func (r stepRow) Reason() string               { return r.s.Reason }
