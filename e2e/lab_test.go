// Package e2e runs swarmbackup end to end against the lab that `scripts/lab up` starts: real
// Docker engines joined as a swarm, real MinIO, both plugins installed, driven through the
// real docker CLI. `make test-e2e` (scripts/e2e) prepares the lab and runs these tests.
package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// image is the tiny busybox image the lab imports into every engine.
const image = "swarmbackup-lab/busybox:latest"

// lab is a handle on the running lab: managers numbered from 1, then workers.
type lab struct {
	t       *testing.T
	dir     string
	nodes   int // managers
	workers int
}

func newLab(t *testing.T) *lab {
	t.Helper()
	dir := os.Getenv("SWARMBACKUP_LAB_DIR")
	if dir == "" {
		t.Skip("no lab: run `make test-e2e`, which starts one and sets SWARMBACKUP_LAB_DIR")
	}
	b, err := os.ReadFile(filepath.Join(dir, "nodes"))
	if err != nil {
		t.Fatalf("lab at %s is not up: %v", dir, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("lab node count: %v", err)
	}
	w := 0
	if b, err := os.ReadFile(filepath.Join(dir, "workers")); err == nil {
		w, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return &lab{t: t, dir: dir, nodes: n, workers: w}
}

// engines counts the lab's engines, managers and workers.
func (l *lab) engines() int { return l.nodes + l.workers }

// worker returns the lab's first worker; the test is skipped in a lab without one.
func (l *lab) worker() *node {
	if l.workers == 0 {
		l.t.Skip("the lab has no worker: scripts/e2e starts one")
	}
	return l.node(l.nodes + 1)
}

// node is one engine of the lab, numbered from 1.
type node struct {
	lab *lab
	n   int
}

func (l *lab) node(n int) *node {
	if n < 1 || n > l.engines() {
		l.t.Fatalf("the lab has %d engines, not %d", l.engines(), n)
	}
	return &node{lab: l, n: n}
}

func (n *node) String() string { return fmt.Sprintf("node%d", n.n) }

func (n *node) host() string {
	return "unix://" + filepath.Join(n.lab.dir, n.String(), "docker.sock")
}

// dataDir is where the node's swarmbackup plugin keeps its volumes on the host.
func (n *node) dataDir() string {
	return filepath.Join(n.lab.dir, n.String(), "data", "swarmbackup")
}

// result of one command.
type result struct {
	args   []string
	stdout string
	stderr string
	err    error
}

func (r result) String() string {
	return fmt.Sprintf("docker %s: %v\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.err, r.stdout, r.stderr)
}

// try runs the docker CLI against this node and returns whatever happened.
func (n *node) try(args ...string) result {
	return n.tryEnv(nil, args...)
}

// tryEnv is try with extra environment variables, such as a repository's credentials.
func (n *node) tryEnv(env []string, args ...string) result {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(n.env(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{args: args, stdout: strings.TrimSpace(out.String()), stderr: strings.TrimSpace(errb.String()), err: err}
}

// env is the environment in which the docker CLI talks to this node.
func (n *node) env() []string { return append(os.Environ(), "DOCKER_HOST="+n.host()) }

// docker runs the docker CLI against this node and fails the test if it fails.
func (n *node) docker(args ...string) string {
	n.lab.t.Helper()
	r := n.try(args...)
	if r.err != nil {
		n.lab.t.Fatalf("on %s: %s", n, r)
	}
	return r.stdout
}

// dockerFails runs a command that must fail, and returns its error output.
// jsonLines decodes what `--format json` prints for a list: one object per line, as docker
// prints them.
func jsonLines(t *testing.T, out string, into any) {
	t.Helper()
	var items []json.RawMessage
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" {
			items = append(items, json.RawMessage(line))
		}
	}
	list, err := json.Marshal(items)
	if err == nil {
		err = json.Unmarshal(list, into)
	}
	if err != nil {
		t.Fatalf("--format json, one object per line: %v\n%s", err, out)
	}
}

// dockerEnv runs docker with extra environment (a repository's, say) and fails the test
// when it fails.
func (n *node) dockerEnv(env []string, args ...string) string {
	n.lab.t.Helper()
	r := n.tryEnv(env, args...)
	if r.err != nil {
		n.lab.t.Fatal(r)
	}
	return r.stdout
}

func (n *node) dockerFails(args ...string) string {
	n.lab.t.Helper()
	r := n.try(args...)
	if r.err == nil {
		n.lab.t.Fatalf("on %s: docker %s succeeded, want a failure\nstdout: %s", n, strings.Join(args, " "), r.stdout)
	}
	return r.stderr
}

// restart stops the node's engine and starts it again.
func (n *node) restart() {
	n.lab.t.Helper()
	out, err := exec.Command(labScript(), "restart", strconv.Itoa(n.n)).CombinedOutput()
	if err != nil {
		n.lab.t.Fatalf("restart %s: %v\n%s", n, err, out)
	}
}

func labScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "scripts", "lab")
}

// unique returns a name no earlier run has used, so that tests never see each other's objects.
func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// eventually polls until ok returns true, failing the test with what after timeout.
func (l *lab) eventually(what string, timeout time.Duration, ok func() bool) {
	l.t.Helper()
	if !l.poll(timeout, ok) {
		l.t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// untilOrEnded watches a command that runs while ok is awaited: it polls ok every
// millisecond, since the command may run for only a second, until ok holds (met), the
// command ends first (ended, with the result of its Wait, which it takes from done), or
// timeout passes (neither).
func untilOrEnded(done <-chan error, timeout time.Duration, ok func() bool) (met, ended bool, err error) {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return false, false, nil
		}
		select {
		case err := <-done:
			return false, true, err
		case <-time.After(time.Millisecond):
		}
	}
	return true, false, nil
}

func (l *lab) poll(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
	return true
}

// service is a swarm service created for a test and removed after it.
type service struct {
	lab  *lab
	name string
}

// createService starts a one-replica service from the lab image; the extra flags come
// before the image, the command after.
func (l *lab) createService(name string, flags []string, command ...string) *service {
	l.t.Helper()
	args := append([]string{"service", "create", "--detach", "--quiet", "--no-resolve-image",
		"--stop-grace-period", "1s", "--name", name}, flags...)
	args = append(args, image)
	args = append(args, command...)
	l.node(1).docker(args...)
	s := &service{lab: l, name: name}
	l.t.Cleanup(func() { s.remove() })
	return s
}

// runningTask waits until the service has a running task and returns its node and container.
func (s *service) runningTask() (*node, string) {
	s.lab.t.Helper()
	var n *node
	var container string
	found := s.lab.poll(90*time.Second, func() bool {
		for i := 1; i <= s.lab.engines(); i++ {
			r := s.lab.node(i).try("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+s.name, "--filter", "status=running")
			if r.err == nil && r.stdout != "" {
				n, container = s.lab.node(i), strings.Fields(r.stdout)[0]
				return true
			}
		}
		return false
	})
	if !found {
		tasks := s.lab.node(1).try("service", "ps", "--no-trunc", s.name)
		s.lab.t.Fatalf("no task of %s is running after 90s:\n%s%s", s.name, tasks.stdout, tasks.stderr)
	}
	return n, container
}

// remove deletes the service and waits until none of its containers is left on any node,
// so that its volumes are unmounted.
func (s *service) remove() {
	s.lab.t.Helper()
	s.lab.node(1).try("service", "rm", s.name)
	s.lab.eventually("the containers of "+s.name+" to go", 60*time.Second, func() bool {
		for i := 1; i <= s.lab.engines(); i++ {
			r := s.lab.node(i).try("ps", "-aq", "--filter", "label=com.docker.swarm.service.name="+s.name)
			if r.err != nil || r.stdout != "" {
				return false
			}
		}
		return true
	})
}

// removeVolumeAfterwards removes a service's volume from every node after the test. Call it
// before creating the service: cleanups run last first, and the volume can go only once the
// service's containers have.
func (l *lab) removeVolumeAfterwards(volume string) {
	l.t.Cleanup(func() {
		for i := 1; i <= l.engines(); i++ {
			l.node(i).try("volume", "rm", "-f", volume)
		}
	})
}

// nodeID returns the swarm node ID of a lab node.
func (n *node) nodeID() string {
	n.lab.t.Helper()
	return n.docker("info", "--format", "{{.Swarm.NodeID}}")
}

// createVolume makes a swarmbackup volume on this node and removes it after the test.
func (n *node) createVolume(name string, opts ...string) {
	n.lab.t.Helper()
	args := []string{"volume", "create", "--driver", "swarmbackup"}
	for _, o := range opts {
		args = append(args, "--opt", o)
	}
	n.docker(append(args, name)...)
	n.lab.t.Cleanup(func() { n.try("volume", "rm", "-f", name) })
}

// run runs a throwaway container on this node with the volume at /data and returns its output.
func (n *node) run(volume string, script string) string {
	n.lab.t.Helper()
	return n.docker("run", "--rm", "-v", volume+":/data", image, "sh", "-c", script)
}
