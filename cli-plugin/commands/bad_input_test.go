package commands

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Bad flags of the new commands are refused with one line naming the flag, before anything
// reaches the engine or the repository (these commands get no engine client at all here).
func TestNewCommandsRefuseBadInputWithOneLine(t *testing.T) {
	for _, c := range []struct {
		cmd  *cobra.Command
		args []string
		want string
	}{
		{newScheduleSetCommand(nil), nil, "--every is required"},
		{newScheduleSetCommand(nil), []string{"--every", "sometimes"}, "--every"},
		{newScheduleSetCommand(nil), []string{"--every", "@hourly", "--keep", "last=0"}, "--keep"},
		{newScheduleSetCommand(nil), []string{"--every", "@hourly", "--keep", "forever=3"}, "unknown rule"},
		{newScheduleSetCommand(nil), []string{"--every", "@hourly", "--timeout", "0s"}, "--timeout 0s"},
		{newBackupCommand(nil), []string{"--volumes", "--mode", "cold"}, "leave out --mode cold"},
		{newBackupCommand(nil), []string{"--volumes", "--timeout", "-1s"}, "--timeout -1s"},
		{newVolumeSnapshotCommand(nil), []string{"../etc"}, "is not a volume name"},
		{newVolumeRestoreCommand(nil), []string{"db", "--to", "a/b"}, "is not a volume name"},
		{newScheduleSetCommand(nil), []string{"--every", "@hourly", "--drill", "weekly-ish"}, "--drill"},
		{newUndeleteCommand(nil), []string{"--before", "yesterday"}, "--before \"yesterday\""},
		{newDrillCommand(nil), []string{"a", "b"}, "accepts at most 1 arg"},
	} {
		c.cmd.SetArgs(append([]string{}, c.args...)) // never nil: cobra would read the test binary's own arguments
		c.cmd.SetOut(io.Discard)
		c.cmd.SetErr(io.Discard)
		c.cmd.SilenceUsage, c.cmd.SilenceErrors = true, true
		err := c.cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s %v: %v, want one line containing %q", c.cmd.Name(), c.args, err, c.want)
		}
	}
}
