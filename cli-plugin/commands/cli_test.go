package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/streams"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"gotest.tools/v3/golden"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// The commands are tested as docker/cli tests its own: against a fake engine client and a
// repository in a temporary directory, their output compared with golden files under testdata/
// (`go test ./cli-plugin/commands -update` rewrites them).

func TestMain(m *testing.M) {
	// Times print in the local zone; the golden files are written in UTC.
	time.Local = time.UTC
	os.Exit(m.Run())
}

// fakeEngine answers the engine calls a test sets and fails the test on any other: the
// embedded interface is nil, so an unexpected call panics.
type fakeEngine struct {
	client.APIClient
	info          func() (client.SystemInfoResult, error)
	nodeList      func() (client.NodeListResult, error)
	pluginInspect func(name string) (client.PluginInspectResult, error)
	serverVersion func() (client.ServerVersionResult, error)
}

func (f *fakeEngine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	if f.info == nil {
		return client.SystemInfoResult{}, errors.New("Cannot connect to the Docker daemon")
	}
	return f.info()
}

func (f *fakeEngine) NodeList(context.Context, client.NodeListOptions) (client.NodeListResult, error) {
	if f.nodeList == nil {
		return client.NodeListResult{}, errors.New("This node is not a swarm manager")
	}
	return f.nodeList()
}

func (f *fakeEngine) PluginInspect(_ context.Context, name string, _ client.PluginInspectOptions) (client.PluginInspectResult, error) {
	return f.pluginInspect(name)
}

func (f *fakeEngine) ServerVersion(context.Context, client.ServerVersionOptions) (client.ServerVersionResult, error) {
	return f.serverVersion()
}

func (f *fakeEngine) ClientVersion() string { return "1.41" }

// managerOf is an engine that is a manager of cluster with the given nodes.
func managerOf(cluster string, nodes ...swarm.Node) *fakeEngine {
	return &fakeEngine{
		info: func() (client.SystemInfoResult, error) {
			var r client.SystemInfoResult
			r.Info.Swarm.LocalNodeState = swarm.LocalNodeStateActive
			r.Info.Swarm.ControlAvailable = true
			r.Info.Swarm.Cluster = &swarm.ClusterInfo{ID: cluster}
			return r, nil
		},
		nodeList: func() (client.NodeListResult, error) { return client.NodeListResult{Items: nodes}, nil },
	}
}

// testRepo is a repository in a temporary directory, which the commands find through the
// environment as they would a configured one (never the host's own repository or password).
func testRepo(t *testing.T) *repository.Repository {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	t.Setenv("SWARMBACKUP_REPO", dir)
	t.Setenv("SWARMBACKUP_PASSWORD_FILE", "")
	t.Setenv("SWARMBACKUP_PASSWORD", "test password")
	be, err := localfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.Init(context.Background(), be, "test password")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeCli is the docker CLI as a plugin sees it: the engine client and the streams. Anything
// else a command asks of it panics (the embedded interface is nil), failing the test.
type fakeCli struct {
	command.Cli
	client   client.APIClient
	in       *streams.In
	out, err *streams.Out
}

func (c *fakeCli) Client() client.APIClient { return c.client }
func (c *fakeCli) In() *streams.In          { return c.in }
func (c *fakeCli) Out() *streams.Out        { return c.out }
func (c *fakeCli) Err() *streams.Out        { return c.err }

// run runs `docker swarmbackup ARGS` against the engine and returns what it printed.
func run(t *testing.T, engine client.APIClient, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cli := &fakeCli{client: engine, out: streams.NewOut(&out), err: streams.NewOut(&errOut), in: streams.NewIn(io.NopCloser(strings.NewReader("")))}
	root := NewRootCommand(cli)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// names replaces random IDs in output by stable names of the same length, so that golden
// files hold and tables stay aligned.
type names map[string]string

func (n names) add(id, name string) {
	n[id] = name
}

func (n names) apply(s string) string {
	ids := make([]string, 0, len(n))
	for id := range n {
		ids = append(ids, id)
	}
	// Full IDs before their short forms.
	sort.Slice(ids, func(i, j int) bool { return len(ids[i]) > len(ids[j]) })
	for _, id := range ids {
		name := n[id]
		s = strings.ReplaceAll(s, id, name+strings.Repeat("-", max(0, len(id)-len(name))))
		if len(id) > 12 {
			s = strings.ReplaceAll(s, id[:12], (name + strings.Repeat("-", 12))[:12])
		}
	}
	return s
}

// assertGolden compares output with testdata/NAME.golden.
func assertGolden(t *testing.T, got, name string) {
	t.Helper()
	golden.Assert(t, got, name+".golden")
}

// jsonObjects decodes output of one JSON object per line.
func jsonObjects(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is no JSON object: %v", line, err)
		}
		objs = append(objs, m)
	}
	return objs
}
