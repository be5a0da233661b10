package commands

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"

	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// findSet returns the set an ID prefix names; nil when it names none.
func findSet(ctx context.Context, repo *repository.Repository, id string) (*backupset.Set, error) {
	sets, _, err := backupset.List(ctx, repo)
	if err != nil {
		return nil, err
	}
	return backupset.Find(sets, id)
}

// inspectSet prints a set's members: node, volume, snapshot, quiesce window, bytes.
func inspectSet(dockerCli command.Cli, format string, s *backupset.Set) error {
	return writeFormatted(dockerCli.Out(), format, s, func(w io.Writer) error {
		state := "complete"
		if !s.Complete() {
			state = "partial"
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "Set:\t%s\n", s.ID)
		fmt.Fprintf(tw, "Time:\t%s\n", s.Time.Local().Format("2006-01-02 15:04:05.000 MST"))
		fmt.Fprintf(tw, "Cluster:\t%s\n", s.Cluster)
		fmt.Fprintf(tw, "State:\t%s\n", state)
		fmt.Fprintf(tw, "Control plane:\t%s\n", orDash(s.ControlPlane))
		fmt.Fprintf(tw, "Nodes:\t%d\n", s.Nodes)
		fmt.Fprintf(tw, "Capture spread:\t%s\n", s.Spread.Round(time.Millisecond))
		fmt.Fprintf(tw, "Took:\t%s\n", s.Ended.Sub(s.Time).Round(time.Millisecond))
		if err := tw.Flush(); err != nil {
			return err
		}
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nNODE\tVOLUME\tSNAPSHOT\tCAPTURE START\tQUIESCE\tSIZE\tNEW")
		for _, m := range s.Members {
			quiesce := "none"
			if m.Quiesce != "" {
				quiesce = fmt.Sprintf("%s for %s", m.Quiesce, m.Window.Round(time.Millisecond))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Host, m.Volume, shorten(m.Snapshot, 12),
				m.CaptureStart.Local().Format("15:04:05.000"), quiesce,
				units.BytesSize(float64(m.Bytes)), units.BytesSize(float64(m.BytesNew)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, m := range s.Missing {
			fmt.Fprintf(w, "missing %s\n", m)
		}
		return nil
	})
}
