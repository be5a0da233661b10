package commands

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
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
		{"unused share without a percent sign", &fakeEngine{}, []string{"prune", "--keep-last", "1", "--max-unused", "5"}, "--max-unused 5: give a percentage such as 5%, or unlimited", ""},
		{"unknown kind", &fakeEngine{}, []string{"ls", "--kind", "tape"}, `--kind "tape"`, ""},
		{"broken template", &fakeEngine{}, []string{"volume", "ls", "--format", "{{.Volume"}, "--format", ""},
		{"unknown field", &fakeEngine{}, []string{"ls", "--format", "{{.Colour}}"}, "--format", ""},
		{"no such backup", &fakeEngine{}, []string{"inspect", "feedbeef"}, "feedbeef", ""},
		{"report without a file", &fakeEngine{}, []string{"report"}, "--html FILE", ""},
		{"report into a missing directory", &fakeEngine{}, []string{"report", "--html", "/nonexistent/dir/estate.html"}, "/nonexistent/dir/estate.html", ""},
		{"not a manager", &fakeEngine{}, []string{"schedule", "show"}, "Cannot connect to the Docker daemon", ""},
		{"key without a password", &fakeEngine{}, []string{"key", "add"}, "--new-password-file FILE", ""},
		{"volumes key for no node", &fakeEngine{}, []string{"key", "add", "--role", "volumes", "--new-password-file", "/etc/hostname"}, "add --node NODE", ""},
		{"key of no role", &fakeEngine{}, []string{"key", "add", "--role", "root", "--new-password-file", "/etc/hostname"}, `--role: unknown key role "root"`, ""},
		{"key from a missing file", &fakeEngine{}, []string{"key", "add", "--new-password-file", "/nonexistent/pw"}, "--new-password-file: read /nonexistent/pw", ""},
		{"full key for a node", &fakeEngine{}, []string{"key", "add", "--node", "worker1", "--new-password-file", "/etc/hostname"}, "--node is for keys of the volumes role: add --role volumes", ""},
		{"key for no such node", managerOf("cluster1", swarm.Node{ID: "n1worker", Description: swarm.NodeDescription{Hostname: "worker1"}}), []string{"key", "add", "--role", "volumes", "--node", "worker9", "--new-password-file", "/etc/hostname"}, `--node: no node "worker9" in the swarm`, ""},
		{"key for a node off a manager", &fakeEngine{}, []string{"key", "add", "--role", "volumes", "--node", "worker1", "--new-password-file", "/etc/hostname"}, "--node: list the swarm's nodes (run this on a manager)", ""},
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
