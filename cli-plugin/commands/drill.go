package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/drill"
)

type drillOptions struct {
	repo          repoOptions
	unlockKeyFile string
	format        string
}

func newDrillCommand(dockerCli command.Cli) *cobra.Command {
	var opts drillOptions
	cmd := &cobra.Command{
		Use:   "drill [OPTIONS] [SET]",
		Short: "Restore a backup set into scratch space and check it, without touching the cluster",
		Long: "Restore a set (default: the newest) as the worst day would, into temporary space on this\n" +
			"machine: the control plane is decoded and compared with its recorded inventory, every volume\n" +
			"is restored and compared with its snapshot record, then everything is removed. Prints what\n" +
			"would be recovered and how long it took, records the result in the repository (ls, status),\n" +
			"and exits non-zero naming the damage when anything does not restore.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return runDrill(cmd.Context(), dockerCli, opts, id)
		},
	}
	cmd.ValidArgsFunction = completeIDs(&opts.repo, kindSet)
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&opts.unlockKeyFile, "unlock-key-file", "", "Unlock key of an autolocked swarm's set, to decode its control plane too")
	cmd.Flags().StringVar(&opts.format, "format", "", formatFlagUsage)
	return cmd
}

func runDrill(ctx context.Context, dockerCli command.Cli, opts drillOptions, id string) error {
	unlockKey, err := readUnlockKey(opts.unlockKeyFile)
	if err != nil {
		return err
	}
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	sets, _, err := backupset.List(ctx, repo)
	if err != nil {
		return err
	}
	set, err := backupset.Find(sets, id)
	if err != nil {
		return err
	}
	if id == "" && len(sets) > 0 {
		set = sets[len(sets)-1]
	}
	if set == nil {
		if id != "" {
			return fmt.Errorf("no set %s: `docker swarmbackup ls` lists them (kind set)", id)
		}
		return fmt.Errorf("no backup set to drill: take one with `docker swarmbackup backup --volumes`")
	}
	host, _ := os.Hostname()
	o := drill.Options{UnlockKey: unlockKey, Host: host}
	if dockerCli.Err().IsTerminal() {
		o.Progress = func(volume, host string) {
			if volume == "" {
				fmt.Fprintln(dockerCli.Err(), "restoring the control plane")
				return
			}
			fmt.Fprintf(dockerCli.Err(), "restoring volume %s of %s\n", volume, host)
		}
	}
	rec, err := drill.Run(ctx, repo, set, o)
	if err != nil {
		return err
	}
	if err := writeFormatted(dockerCli.Out(), opts.format, rec, func(w io.Writer) error { return printDrill(w, rec) }); err != nil {
		return err
	}
	if !rec.OK() {
		return cli.StatusError{StatusCode: 1, Status: fmt.Sprintf("the drill of set %s failed:\n%s", shorten(set.ID, 12), strings.Join(rec.Problems, "\n"))}
	}
	return nil
}

func printDrill(w io.Writer, rec *drill.Record) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Drill of set %s, taken %s:\n", shorten(rec.Set, 12), rec.SetTime.Local().Format("2006-01-02 15:04:05"))
	if cp := rec.ControlPlane; cp != nil {
		state := "decoded, matches its inventory"
		if !cp.Decoded {
			state = "restored, not decoded (autolocked: give --unlock-key-file)"
		}
		if cp.Problem != "" {
			state = "DAMAGED"
		}
		fmt.Fprintf(tw, "  control plane\t%s\t%s\t%s\t%s\n", shorten(cp.Snapshot, 12), describeCounts(cp.Objects), cp.Took.Round(time.Millisecond), state)
	}
	for _, m := range rec.Members {
		state := "ok"
		if m.PrivilegedCount > 0 {
			state = fmt.Sprintf("ok, holds %d set-user/group-ID file(s) or device node(s): %s", m.PrivilegedCount, strings.Join(m.Privileged, ", "))
		}
		if m.Problem != "" {
			state = "DAMAGED"
		}
		fmt.Fprintf(tw, "  volume %s on %s\t%s\t%d files, %s\t%s\t%s\n", m.Volume, m.Host, shorten(m.Snapshot, 12),
			m.Files, units.BytesSize(float64(m.Bytes)), m.Took.Round(time.Millisecond), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rec.OK() {
		fmt.Fprintf(w, "Would recover: the control plane and %d volumes (%s).\n", len(rec.Members), units.BytesSize(float64(rec.Bytes())))
	}
	fmt.Fprintf(w, "The drill took %s; estimated recovery of the whole set: %s (control plane, then each node's volumes, nodes in parallel), plus starting and joining the new machines.\n",
		rec.Took.Round(time.Millisecond), rec.Estimate.Round(time.Millisecond))
	return nil
}
