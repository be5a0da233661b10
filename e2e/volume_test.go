package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServiceDataSurvivesTheServiceBeingRemovedAndCreatedAgain(t *testing.T) {
	l := newLab(t)
	node2 := l.node(2)
	vol, mark := unique("db"), unique("rows")
	mount := "type=volume,source=" + vol + ",target=/data,volume-driver=swarmbackup"
	pin := "node.id==" + node2.nodeID()
	t.Cleanup(func() { node2.try("volume", "rm", "-f", vol) })

	writer := l.createService(unique("writer"), []string{"--mount", mount, "--constraint", pin},
		"sh", "-c", "echo "+mark+" > /data/mark && sync && sleep 3600")
	n, container := writer.runningTask()
	l.eventually("the writer to write its mark", 30*time.Second, func() bool {
		return n.try("exec", container, "cat", "/data/mark").stdout == mark
	})
	writer.remove()

	if got := node2.docker("volume", "inspect", "--format", "{{.Driver}}", vol); got != "swarmbackup:latest" {
		t.Fatalf("volume driver after the service went: %q", got)
	}
	onHost, err := os.ReadFile(filepath.Join(node2.dataDir(), "volumes", vol, "data", "mark"))
	if err != nil || strings.TrimSpace(string(onHost)) != mark {
		t.Fatalf("the data is not kept on the host: %q, %v", onHost, err)
	}

	reader := l.createService(unique("reader"), []string{"--mount", mount, "--constraint", pin},
		"sh", "-c", "sleep 3600")
	n, container = reader.runningTask()
	if got := n.docker("exec", container, "cat", "/data/mark"); got != mark {
		t.Fatalf("the re-created service reads %q, want %q", got, mark)
	}
}

func TestVolumesSurvivePluginDisableEnableAndEngineRestart(t *testing.T) {
	l := newLab(t)
	node3 := l.node(3)
	idle, busy := unique("idle"), unique("busy")
	node3.createVolume(idle, "schedule=@daily", "keep=last=7")
	node3.run(idle, "echo idle-data > /data/f")

	// A task that holds a volume mounted while the plugin goes away and comes back.
	holder := l.createService(unique("holder"), []string{
		"--mount", "type=volume,source=" + busy + ",target=/data,volume-driver=swarmbackup",
		"--constraint", "node.id==" + node3.nodeID(),
	}, "sh", "-c", "echo busy-data > /data/f && sleep 3600")
	t.Cleanup(func() { node3.try("volume", "rm", "-f", busy) })
	_, container := holder.runningTask()
	l.eventually("the holder to write", 30*time.Second, func() bool {
		return node3.try("exec", container, "cat", "/data/f").stdout == "busy-data"
	})

	node3.docker("plugin", "disable", "--force", "swarmbackup")
	node3.docker("plugin", "enable", "swarmbackup")
	if got := node3.run(idle, "cat /data/f"); got != "idle-data" {
		t.Errorf("after disable/enable, %s holds %q", idle, got)
	}
	if got := node3.docker("volume", "inspect", "--format", "{{index .Options \"keep\"}}", idle); got != "last=7" {
		t.Errorf("after disable/enable, the keep option reads %q", got)
	}
	if got := node3.docker("exec", container, "cat", "/data/f"); got != "busy-data" {
		t.Errorf("after disable/enable, the running task reads %q", got)
	}
	if got := node3.docker("volume", "inspect", "--format", "{{.Status.mounts}}", busy); got != "1" {
		t.Errorf("after disable/enable, the plugin counts %s mounts of the held volume, want 1", got)
	}

	node3.restart()
	if got := node3.run(idle, "cat /data/f"); got != "idle-data" {
		t.Errorf("after an engine restart, %s holds %q", idle, got)
	}
	// Swarm restarts the task on the restarted node; it finds its data.
	n, container := holder.runningTask()
	l.eventually("the restarted task to see its data", 60*time.Second, func() bool {
		return n.try("exec", container, "cat", "/data/f").stdout == "busy-data"
	})
	listed := node3.docker("volume", "ls", "--format", "{{.Name}} {{.Driver}}")
	for _, v := range []string{idle, busy} {
		if !strings.Contains(listed, v+" swarmbackup:latest") {
			t.Errorf("volume ls after the restart lacks %s:\n%s", v, listed)
		}
	}
}

func TestContainersSharingAVolumeKeepItWhileOneStops(t *testing.T) {
	l := newLab(t)
	node1 := l.node(1)
	vol := unique("shared")
	node1.createVolume(vol)
	first := node1.docker("run", "-d", "-v", vol+":/data", image, "sleep", "3600")
	second := node1.docker("run", "-d", "-v", vol+":/data", image, "sleep", "3600")
	t.Cleanup(func() { node1.try("rm", "-f", first, second) })

	node1.docker("exec", first, "sh", "-c", "echo from-first > /data/f")
	node1.docker("rm", "-f", first)
	if got := node1.docker("exec", second, "cat", "/data/f"); got != "from-first" {
		t.Fatalf("after the first container went, the second reads %q", got)
	}
	node1.docker("exec", second, "sh", "-c", "echo from-second > /data/g")
	node1.docker("rm", "-f", second)
	if got := node1.run(vol, "cat /data/g"); got != "from-second" {
		t.Errorf("a new container reads %q", got)
	}
	stderr := node1.dockerFails("volume", "rm", unique("never-created"))
	if !strings.Contains(stderr, "no such volume") {
		t.Errorf("removing an unknown volume: %s", stderr)
	}
}

func TestBadDriverOptionsFailVolumeCreationWithOneClearLine(t *testing.T) {
	l := newLab(t)
	node1 := l.node(1)
	for _, c := range []struct{ opt, want string }{
		{"size=10G", `unknown driver option "size"`},
		{"schedule=whenever", "driver option schedule"},
		{"keep=forever=1", `unknown rule "forever"`},
		{"quiesce=freeze", "not one of none, pause, stop, exec"},
	} {
		vol := unique("bad")
		stderr := node1.dockerFails("volume", "create", "--driver", "swarmbackup", "--opt", c.opt, vol)
		if !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") > 0 {
			t.Errorf("-o %s: stderr %q, want one line containing %q", c.opt, stderr, c.want)
		}
		if r := node1.try("volume", "inspect", vol); r.err == nil {
			t.Errorf("-o %s: the volume was created anyway", c.opt)
		}
	}
}

func TestReinstallKeepsSettingsAndVolumes(t *testing.T) {
	l := newLab(t)
	node2 := l.node(2)
	vol := unique("kept")
	node2.createVolume(vol, "schedule=@hourly")
	node2.run(vol, "echo survives-upgrade > /data/f")
	oldID := node2.docker("plugin", "inspect", "--format", "{{.ID}}", "swarmbackup")
	// A mount moved after an engine restart: the engine's inspect shows the old source under
	// .Settings, the one in force under .Config.
	node2.restart()
	etc := t.TempDir()
	password, err := os.ReadFile(filepath.Join(l.dir, "etc", "password"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "password"), password, 0o600); err != nil {
		t.Fatal(err)
	}
	node2.docker("plugin", "disable", "--force", "swarmbackup")
	node2.docker("plugin", "set", "swarmbackup", "SWARMBACKUP_LOG_LEVEL=debug", "etc.source="+etc)
	node2.docker("plugin", "enable", "swarmbackup")

	install := exec.Command(filepath.Join(filepath.Dir(labScript()), "install"))
	install.Env = append(os.Environ(), "DOCKER_HOST="+node2.host())
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("re-running the install: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		node2.try("plugin", "disable", "--force", "swarmbackup")
		node2.try("plugin", "set", "swarmbackup", "SWARMBACKUP_LOG_LEVEL=info", "etc.source="+filepath.Join(l.dir, "etc"))
		node2.try("plugin", "enable", "swarmbackup")
	})

	if newID := node2.docker("plugin", "inspect", "--format", "{{.ID}}", "swarmbackup"); newID == oldID {
		t.Fatal("the install did not re-create the plugin")
	}
	env := node2.docker("plugin", "inspect", "--format", "{{json .Settings.Env}}", "swarmbackup")
	if !strings.Contains(env, "SWARMBACKUP_LOG_LEVEL=debug") {
		t.Errorf("settings after the upgrade: %s", env)
	}
	mounts := node2.docker("plugin", "inspect", "--format", `{{range .Config.Mounts}}{{.Name}}={{.Source}} {{end}}`, "swarmbackup")
	if !strings.Contains(mounts, "etc="+etc+" ") {
		t.Errorf("mounts after the upgrade: %s, want etc=%s", mounts, etc)
	}
	if got := node2.run(vol, "cat /data/f"); got != "survives-upgrade" {
		t.Errorf("after the upgrade the volume holds %q", got)
	}
	if got := node2.docker("volume", "inspect", "--format", "{{.Options.schedule}}", vol); got != "@hourly" {
		t.Errorf("after the upgrade the schedule option reads %q", got)
	}
}
