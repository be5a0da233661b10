package commands

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Errors are one line that says what failed and what to do; each case fails before
// anything is changed.
func TestCommandsExplainWhatFailedInOneLine(t *testing.T) {
	notInstalled := func(string) (client.PluginInspectResult, error) {
		return client.PluginInspectResult{}, cerrdefs.ErrNotFound.WithMessage("plugin swarmbackup not found")
	}
	unreachable := func(string) (client.PluginInspectResult, error) {
		return client.PluginInspectResult{}, errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
	}
	for _, tc := range []struct {
		name    string
		engine  *fakeEngine
		args    []string
		want    string
		notWant string
	}{
		{"plugin missing", &fakeEngine{pluginInspect: notInstalled}, []string{"volume", "snapshot", "db"}, "not installed in this engine: run `make install`", ""},
		{"engine unreachable", &fakeEngine{pluginInspect: unreachable}, []string{"volume", "snapshot", "db"}, "Cannot connect to the Docker daemon", "not installed"},
		{"negative yearly", &fakeEngine{}, []string{"prune", "--keep-yearly", "-1"}, "--keep-yearly -1", ""},
		{"unknown kind", &fakeEngine{}, []string{"ls", "--kind", "tape"}, `--kind "tape"`, ""},
		{"broken template", &fakeEngine{}, []string{"volume", "ls", "--format", "{{.Volume"}, "--format", ""},
		{"unknown field", &fakeEngine{}, []string{"ls", "--format", "{{.Colour}}"}, "--format", ""},
		{"no such backup", &fakeEngine{}, []string{"inspect", "feedbeef"}, "feedbeef", ""},
		{"report without a file", &fakeEngine{}, []string{"report"}, "--html FILE", ""},
		{"report into a missing directory", &fakeEngine{}, []string{"report", "--html", "/nonexistent/dir/estate.html"}, "/nonexistent/dir/estate.html", ""},
		{"not a manager", &fakeEngine{}, []string{"schedule", "show"}, "Cannot connect to the Docker daemon", ""},
		{"key without a password", &fakeEngine{}, []string{"key", "add", "--role", "volumes"}, "--new-password-file FILE", ""},
		{"key of no role", &fakeEngine{}, []string{"key", "add", "--role", "root", "--new-password-file", "/etc/hostname"}, `--role: unknown key role "root"`, ""},
		{"key from a missing file", &fakeEngine{}, []string{"key", "add", "--new-password-file", "/nonexistent/pw"}, "--new-password-file: read /nonexistent/pw", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := testRepo(t)
			estate(t, repo)
			_, _, err := run(t, tc.engine, tc.args...)
			msg := fmt.Sprint(err)
			if err == nil || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") ||
				(tc.notWant != "" && strings.Contains(msg, tc.notWant)) {
				t.Errorf("%v: %q, want one line with %q", tc.args, msg, tc.want)
			}
		})
	}
}
