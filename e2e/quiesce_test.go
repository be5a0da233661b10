package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pairWriter appends the same counter to /data/a and then to /data/b, as fast as it can: a
// capture taken at one instant finds b equal to a or one behind, never ahead.
const pairWriter = `i=0; while true; do i=$((i+1)); echo $i >> /data/a; echo $i >> /data/b; done`

func TestPauseCapturesTheVolumeAtOneInstant(t *testing.T) {
	l := newLab(t)
	node2 := l.node(2)
	vol := unique("paused")
	node2.createVolume(vol, "quiesce=pause")
	writer := node2.startContainer(vol, pairWriter)

	for round := range 3 {
		time.Sleep(500 * time.Millisecond)
		id := node2.snapshot(vol)
		if paused := node2.docker("inspect", "--format", "{{.State.Paused}}", writer); paused != "false" {
			t.Fatalf("round %d: the writer is left paused after the snapshot", round)
		}
		q := node2.quiesceOf(id)
		if q == nil || q.Mode != "pause" || q.Containers != 1 {
			t.Fatalf("round %d: snapshot %s records quiesce %+v, want pause of 1 container", round, id[:12], q)
		}
		t.Logf("round %d: the writer was paused for %s", round, q.Window)
		restored := unique("paused-r")
		node2.docker("swarmbackup", "volume", "restore", vol+"@"+id, "--to", restored)
		t.Cleanup(func() { node2.try("volume", "rm", "-f", restored) })
		a, b := node2.lastLines(restored)
		if a == 0 || (b != a && b != a-1) {
			t.Fatalf("round %d: snapshot %s holds a=%d b=%d: it was not taken at one instant", round, id[:12], a, b)
		}
	}
	if len(strings.Fields(node2.docker("ps", "-q", "--filter", "status=paused"))) != 0 {
		t.Fatal("containers are left paused")
	}
}

func TestStopQuiesceStartsThePlainContainerAgain(t *testing.T) {
	l := newLab(t)
	node1 := l.node(1)
	vol := unique("stopped")
	node1.createVolume(vol, "quiesce=stop")
	c := node1.startContainer(vol, "trap 'exit 0' TERM; echo started >> /data/starts; while true; do sleep 0.2; done")
	l.eventually("the container to start", 10*time.Second, func() bool { return node1.run(vol, "cat /data/starts") == "started" })
	id := node1.snapshot(vol)
	if q := node1.quiesceOf(id); q == nil || q.Mode != "stop" || q.Containers != 1 {
		t.Fatalf("snapshot %s records quiesce %+v, want stop of 1 container", id[:12], q)
	}
	if got := node1.docker("inspect", "--format", "{{.State.Running}}", c); got != "true" {
		t.Fatal("the container was not started again after the snapshot")
	}
	l.eventually("the container to start a second time", 10*time.Second, func() bool {
		return len(strings.Fields(node1.run(vol, "cat /data/starts"))) == 2
	})
}

func TestStopQuiesceLetsSwarmReplaceTheTask(t *testing.T) {
	l := newLab(t)
	vol := unique("stoptask")
	mount := "type=volume,source=" + vol + ",target=/data,volume-driver=swarmbackup,volume-opt=quiesce=stop"
	l.removeVolumeAfterwards(vol)
	svc := l.createService(unique("stoptask"), []string{"--mount", mount, "--restart-delay", "1s"},
		"sh", "-c", "echo started >> /data/starts; exec sleep 3600")
	n, first := svc.runningTask()
	id := n.snapshot(vol)
	if q := n.quiesceOf(id); q == nil || q.Mode != "stop" || q.Containers != 1 {
		t.Fatalf("snapshot %s records quiesce %+v, want stop of 1 container", id[:12], q)
	}
	l.eventually("Swarm to run a new task of the service", 60*time.Second, func() bool {
		_, c := svc.runningTask()
		return c != first
	})
	// The stopped task's container stays stopped: only Swarm's replacement runs.
	if got := n.docker("inspect", "--format", "{{.State.Running}}", first); got != "false" {
		t.Errorf("the stopped task's container was started again beside its replacement")
	}
}

// The writer pauses between pairs when told to by /data/hold and says so with /data/held;
// pre tells it and waits, post lets it go on. Each pair is written with a pause between
// its two files, so an unquiesced capture often finds them apart.
const (
	handshakeWriter = `i=0; while true; do
		if [ -e /data/hold ]; then touch /data/held; sleep 0.05; continue; fi
		rm -f /data/held
		i=$((i+1)); echo $i > /data/a.tmp; mv /data/a.tmp /data/a; sleep 0.02; echo $i > /data/b.tmp; mv /data/b.tmp /data/b
	done`
	preHold   = `touch /data/hold; while [ ! -e /data/held ]; do sleep 0.05; done`
	postHold  = `rm -f /data/hold /data/held`
	preFails  = `echo database refuses to flush >&2; exit 3`
	postMarks = `touch /data/post-ran`
)

func TestExecHooksQuiesceTheWriterFromInside(t *testing.T) {
	l := newLab(t)
	node3 := l.node(3)
	vol := unique("hooked")
	node3.createVolume(vol, "quiesce=exec", "pre="+preHold, "post="+postHold, "timeout=20s")
	node3.startContainer(vol, handshakeWriter)

	for round := range 3 {
		time.Sleep(300 * time.Millisecond)
		id := node3.snapshot(vol)
		restored := unique("hooked-r")
		node3.docker("swarmbackup", "volume", "restore", vol+"@"+id, "--to", restored)
		t.Cleanup(func() { node3.try("volume", "rm", "-f", restored) })
		got := node3.run(restored, `echo $(cat /data/a) $(cat /data/b) $(ls /data/hold 2>/dev/null)`)
		f := strings.Fields(got)
		if len(f) != 3 || f[0] != f[1] || f[2] != "/data/hold" {
			t.Fatalf("round %d: snapshot %s holds %q, want the same counter in a and b, and /data/hold that pre made", round, id[:12], got)
		}
	}
	// post ran: the writer goes on.
	before := node3.run(vol, "cat /data/b")
	l.eventually("the writer to go on after post", 10*time.Second, func() bool {
		return node3.run(vol, "cat /data/b") != before
	})
}

func TestAFailingPreAbortsTheSnapshotAndStillRunsPost(t *testing.T) {
	l := newLab(t)
	node3 := l.node(3)
	vol := unique("prefails")
	node3.createVolume(vol, "quiesce=exec", "pre="+preFails, "post="+postMarks)
	node3.startContainer(vol, "sleep 3600")

	out := node3.dockerFails("swarmbackup", "volume", "snapshot", vol)
	for _, want := range []string{"pre in container", "exited with status 3", "database refuses to flush"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failed snapshot says %q, want it to contain %q", out, want)
		}
	}
	if got := node3.run(vol, "ls /data/post-ran"); got != "/data/post-ran" {
		t.Errorf("post did not run after the failing pre")
	}
	for _, s := range node3.listSnapshots(nil, "--kind", "volume") {
		if s.Source == vol {
			t.Errorf("snapshot %s was stored although pre failed", s.ID[:12])
		}
	}
}

func TestAKilledPluginLeavesNoContainerPaused(t *testing.T) {
	l := newLab(t)
	node2 := l.node(2)
	vol := unique("killed")
	node2.createVolume(vol, "quiesce=pause")
	writer := node2.startContainer(vol, "sleep 3600")
	// Enough new files that the capture lasts a moment: each is copied while the writer is paused.
	node2.makeFiles(vol, 20000)
	plugin := node2.pluginPID()

	events := exec.Command("docker", "events", "--filter", "container="+writer, "--filter", "event=pause", "--format", "{{.Action}}")
	events.Env = node2.env()
	stdout, err := events.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = events.Process.Kill(); _ = events.Wait() })
	paused := make(chan struct{})
	go func() {
		if bufio.NewScanner(stdout).Scan() {
			close(paused)
		}
	}()
	snap := exec.Command("docker", "swarmbackup", "volume", "snapshot", "-q", vol)
	snap.Env = node2.env()
	if err := snap.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-paused:
	case <-time.After(60 * time.Second):
		t.Fatal("the writer was never paused")
	}
	if out, err := exec.Command("kill", "-9", plugin).CombinedOutput(); err != nil {
		t.Fatalf("kill the plugin: %v %s", err, out)
	}
	killed := time.Now()
	if got := node2.docker("inspect", "--format", "{{.State.Paused}}", writer); got != "true" {
		t.Fatal("the plugin was killed after it released the writer: the test needs a longer capture")
	}
	_ = snap.Wait()
	l.eventually("the restarted plugin to unpause the writer", 60*time.Second, func() bool {
		return node2.docker("inspect", "--format", "{{.State.Paused}}", writer) == "false"
	})
	t.Logf("the writer was unpaused %s after the plugin was killed", time.Since(killed).Round(time.Millisecond))
	// And the plugin works again.
	node2.snapshot(vol)
}

// startContainer runs a detached container with the volume at /data, removed after the test.
func (n *node) startContainer(volume, script string) string {
	n.lab.t.Helper()
	id := n.docker("run", "-d", "-v", volume+":/data", image, "sh", "-c", script)
	n.lab.t.Cleanup(func() {
		n.try("unpause", id)
		n.try("rm", "-f", id)
	})
	return id
}

type quiesceRecord struct {
	Mode       string        `json:"mode"`
	Containers int           `json:"containers"`
	Window     time.Duration `json:"window"`
}

// quiesceOf returns how a snapshot's containers were held, as `volume ls` reports it.
func (n *node) quiesceOf(id string) *quiesceRecord {
	n.lab.t.Helper()
	var list []struct {
		ID      string         `json:"id"`
		Quiesce *quiesceRecord `json:"quiesce"`
	}
	jsonLines(n.lab.t, n.docker("swarmbackup", "volume", "ls", "--format", "json"), &list)
	for _, s := range list {
		if s.ID == id {
			return s.Quiesce
		}
	}
	n.lab.t.Fatalf("snapshot %s is not listed", id)
	return nil
}

// lastLines returns the last counter in /data/a and /data/b of a volume.
func (n *node) lastLines(volume string) (a, b int) {
	n.lab.t.Helper()
	f := strings.Fields(n.run(volume, "tail -n1 /data/a; tail -n1 /data/b"))
	if len(f) != 2 {
		n.lab.t.Fatalf("volume %s holds %q, want two counters", volume, f)
	}
	a, _ = strconv.Atoi(f[0])
	b, _ = strconv.Atoi(f[1])
	return a, b
}

// makeFiles creates small files in a volume of this node, straight in the plugin's data
// directory on the host: a container would take many times longer.
func (n *node) makeFiles(volume string, count int) {
	n.lab.t.Helper()
	data := filepath.Join(n.dataDir(), "volumes", volume, "data")
	for i := range count {
		dir := filepath.Join(data, strconv.Itoa(i%10))
		if i < 10 {
			if err := os.Mkdir(dir, 0o755); err != nil {
				n.lab.t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644); err != nil {
			n.lab.t.Fatal(err)
		}
	}
}

// pluginPID returns the process ID of the node's swarmbackup plugin.
func (n *node) pluginPID() string {
	n.lab.t.Helper()
	id := n.docker("plugin", "inspect", "--format", "{{.Id}}", "swarmbackup")
	shim, err := exec.Command("pgrep", "-f", "containerd-shim.* -id "+id).Output()
	if err != nil {
		n.lab.t.Fatalf("find the plugin's shim: %v", err)
	}
	pids, err := exec.Command("pgrep", "-P", strings.Fields(string(shim))[0]).Output()
	if err != nil || len(strings.Fields(string(pids))) != 1 {
		n.lab.t.Fatalf("find the plugin's process: %v %q", err, pids)
	}
	return strings.TrimSpace(string(pids))
}
