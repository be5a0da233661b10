package e2e

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// faultRandom returns the fault suite's random source: SWARMBACKUP_FAULT_SEED repeats a run,
// and the seed is printed either way.
func faultRandom(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SWARMBACKUP_FAULT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SWARMBACKUP_FAULT_SEED=%q: %v", s, err)
		}
	}
	t.Logf("fault seed %d (SWARMBACKUP_FAULT_SEED=%d repeats this run)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed>>1))
}

// faultTrials is how many times each fault is injected: 20, or SWARMBACKUP_FAULT_TRIALS.
func faultTrials(t *testing.T) int {
	if s := os.Getenv("SWARMBACKUP_FAULT_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SWARMBACKUP_FAULT_TRIALS=%q: want a count", s)
		}
		return n
	}
	return 20
}

// killDuring starts the command, SIGKILLs the process pid() names after delay, and waits for
// the command to end. It returns whether the kill came after the command had already ended.
func killDuring(t *testing.T, cmd *exec.Cmd, delay time.Duration, pid func() string) (late bool) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		late = true
	case <-time.After(delay):
		p, err := strconv.Atoi(pid())
		if err != nil {
			t.Fatalf("no process to kill: %v", err)
		}
		err = syscall.Kill(p, syscall.SIGKILL)
		<-done
		switch {
		case errors.Is(err, syscall.ESRCH):
			late = true // it ended between the timer and the kill
		case err != nil:
			t.Fatalf("kill %d: %v", p, err)
		}
	}
	return late
}

// pluginBack waits until the node's plugin runs as another process than old and answers.
func (n *node) pluginBack(old string) {
	n.lab.t.Helper()
	n.lab.eventually("the plugin to be back after the kill", 60*time.Second, func() bool {
		r := n.try("swarmbackup", "version", "--format", "{{.VolumePlugin.Version}}")
		return r.err == nil && r.stdout != "" && !strings.Contains(r.stdout, "unknown") && n.pluginPIDNow() != old
	})
}

// pluginPIDNow is pluginPID without failing the test while the plugin restarts.
func (n *node) pluginPIDNow() string {
	id := n.try("plugin", "inspect", "--format", "{{.Id}}", "swarmbackup").stdout
	shim, err := exec.Command("pgrep", "-f", "containerd-shim.* -id "+id).Output()
	if err != nil || len(strings.Fields(string(shim))) == 0 {
		return ""
	}
	pids, _ := exec.Command("pgrep", "-P", strings.Fields(string(shim))[0]).Output()
	return strings.TrimSpace(string(pids))
}

// ownBucket points this node's plugin at a repository in a new MinIO bucket until the test
// ends, and returns the environment in which the CLI reads it.
func (n *node) ownBucket(t *testing.T, name string) []string {
	t.Helper()
	endpoint, secrets := labMinIO(t)
	repoURL := "s3:" + endpoint + "/" + unique(name) + "/backups"
	n.configurePlugin("SWARMBACKUP_REPO="+repoURL, "etc.source="+secrets)
	return bucketEnv(repoURL, secrets)
}

// writeRandom writes a file of random bytes into a volume of this node, on the host.
func (n *node) writeRandom(volume, name string, size int) {
	n.lab.t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	if err := os.WriteFile(filepath.Join(n.dataDir(), "volumes", volume, "data", name), data, 0o644); err != nil {
		n.lab.t.Fatal(err)
	}
}

// The plugin is killed (SIGKILL) at random points of snapshots and restores, and the CLI at
// random points of prunes, each many times; after each, verify passes, no container stays
// paused, nothing half-restored is left as a volume, and the next run succeeds.
func TestThePluginKilledAtRandomPointsLosesNothing(t *testing.T) {
	l := newLab(t)
	n := l.node(2)
	rng := faultRandom(t)
	trials := faultTrials(t)
	env := n.ownBucket(t, "kills")
	verify := func(what string, args ...string) {
		t.Helper()
		if r := n.tryEnv(env, append([]string{"swarmbackup", "verify", "--all"}, args...)...); r.err != nil {
			t.Fatalf("verify after %s: %s", what, r)
		}
	}

	vol := unique("faulty")
	n.createVolume(vol, "quiesce=pause")
	writer := n.startContainer(vol, "sleep 3600")
	n.makeFiles(vol, 3000)
	n.run(vol, "head -c 16000000 /dev/urandom > /data/big")
	want := n.run(vol, "find /data -type f | wc -l; md5sum /data/big | cut -d' ' -f1")

	first := n.snapshot(vol)
	// Each snapshot below has 8 MB of new data to store: kills fall within such a snapshot.
	n.writeRandom(vol, "new", 8<<20)
	start := time.Now()
	n.snapshot(vol)
	snapTook := time.Since(start)
	killed := 0
	for i := range trials {
		n.writeRandom(vol, "new", 8<<20)
		pid := n.pluginPID()
		delay := time.Duration(rng.Int64N(int64(snapTook)))
		cmd := exec.Command("docker", "swarmbackup", "volume", "snapshot", "-q", vol)
		// A kill before the CLI reaches the plugin sends it through the repository, where the
		// restarted agent answers.
		cmd.Env = append(n.env(), env...)
		t0 := time.Now()
		if !killDuring(t, cmd, delay, func() string { return pid }) {
			killed++
			n.pluginBack(pid)
		}
		t1 := time.Now()
		l.eventually("the writer to run again", 60*time.Second, func() bool {
			return n.docker("inspect", "--format", "{{.State.Paused}}", writer) == "false"
		})
		t2 := time.Now()
		verify("snapshot kill " + strconv.Itoa(i))
		t.Logf("snapshot kill %d after %s: plugin back in %s, writer running %s later, verify %s", i, delay.Round(time.Millisecond), t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
	}
	t.Logf("%s: snapshots: %d of %d killed mid-run (a whole snapshot took %s)", time.Now().Format(time.TimeOnly), killed, trials, snapTook.Round(time.Millisecond))
	n.snapshot(vol)

	start = time.Now()
	n.docker("swarmbackup", "volume", "restore", vol+"@"+first[:12], "--to", vol+"-whole")
	restoreTook := time.Since(start)
	if got := n.run(vol+"-whole", "find /data -type f | wc -l; md5sum /data/big | cut -d' ' -f1"); got != want {
		t.Fatalf("a whole restore holds %q, want %q", got, want)
	}
	n.docker("volume", "rm", vol+"-whole")
	killed = 0
	for i := range trials {
		pid := n.pluginPID()
		target := vol + "-copy" + strconv.Itoa(i)
		t.Cleanup(func() { n.try("volume", "rm", "-f", target) })
		delay := time.Duration(rng.Int64N(int64(restoreTook)))
		cmd := exec.Command("docker", "swarmbackup", "volume", "restore", vol+"@"+first[:12], "--to", target)
		cmd.Env = append(n.env(), env...)
		if !killDuring(t, cmd, delay, func() string { return pid }) {
			killed++
			n.pluginBack(pid)
		}
		// Either the volume is not there, or it is whole: never half-restored.
		if n.try("volume", "inspect", target).err == nil {
			if got := n.run(target, "find /data -type f | wc -l; md5sum /data/big | cut -d' ' -f1"); got != want {
				t.Fatalf("restore kill %d (after %s): volume %s holds %q, want %q or no volume", i, delay, target, got, want)
			}
			n.docker("volume", "rm", target)
		}
	}
	// A restore the restarted plugin took up again may end after its check above: what
	// appears later must be whole too, and goes, so that no later test finds it.
	for i := range trials {
		target := vol + "-copy" + strconv.Itoa(i)
		if n.try("volume", "inspect", target).err == nil {
			if got := n.run(target, "find /data -type f | wc -l; md5sum /data/big | cut -d' ' -f1"); got != want {
				t.Fatalf("restore kill %d: volume %s appeared later holding %q, want %q", i, target, got, want)
			}
			n.docker("volume", "rm", target)
		}
	}
	t.Logf("%s: restores: %d of %d killed mid-run (a whole restore took %s)", time.Now().Format(time.TimeOnly), killed, trials, restoreTook.Round(time.Millisecond))

	n.snapshot(vol)
	start = time.Now()
	n.dockerEnv(env, "swarmbackup", "prune", "--keep-last", "2")
	pruneTook := time.Since(start)
	killed = 0
	for i := range trials {
		n.writeRandom(vol, "new", 1<<20)
		newest := n.snapshot(vol)
		// The plugin binary itself, not `docker swarmbackup`: killing docker would leave its
		// plugin process running.
		cmd := exec.Command(filepath.Join("..", "bin", "docker-swarmbackup"), "swarmbackup", "prune", "--keep-last", "2")
		cmd.Env = append(n.env(), env...)
		delay := time.Duration(rng.Int64N(int64(pruneTook)))
		if !killDuring(t, cmd, delay, func() string { return strconv.Itoa(cmd.Process.Pid) }) {
			killed++
		}
		verify("prune kill " + strconv.Itoa(i))
		if r := n.tryEnv(env, "swarmbackup", "ls", "-q", "--no-trunc", "--kind", "volume"); !strings.Contains(r.stdout, newest) {
			t.Fatalf("prune kill %d lost the newest snapshot: %s", i, r)
		}
	}
	t.Logf("prunes: %d of %d killed mid-run (a whole prune took %s)", killed, trials, pruneTook.Round(time.Millisecond))
	if r := n.tryEnv(env, "swarmbackup", "prune", "--keep-last", "1"); r.err != nil {
		t.Fatalf("the prune after the kills: %s", r)
	}
	verify("the kills", "--read-data")
	n.snapshot(vol)
}

// The engine restarted while the plugin snapshots a paused volume: the snapshot fails or
// completes, the writer runs again unpaused, verify passes and the next snapshot succeeds.
func TestAnEngineRestartedMidSnapshotLosesNothing(t *testing.T) {
	l := newLab(t)
	n := l.node(3)
	rng := faultRandom(t)
	env := n.ownBucket(t, "restarts")
	vol := unique("restarted")
	n.createVolume(vol, "quiesce=pause")
	writer := n.docker("run", "-d", "--restart", "always", "-v", vol+":/data", image, "sh", "-c", "while true; do date >> /data/log; sleep 0.1; done")
	t.Cleanup(func() { n.try("rm", "-f", writer) })
	n.makeFiles(vol, 2000)
	n.snapshot(vol)
	n.writeRandom(vol, "new", 16<<20)
	start := time.Now()
	n.snapshot(vol)
	took := time.Since(start)
	for i := range 3 {
		n.writeRandom(vol, "new", 16<<20)
		cmd := exec.Command("docker", "swarmbackup", "volume", "snapshot", "-q", vol)
		cmd.Env = append(n.env(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(took)))
		time.Sleep(delay) // the fault's moment, drawn from the seed
		n.restart()
		err := cmd.Wait()
		l.eventually("the writer to run unpaused after the restart", 90*time.Second, func() bool {
			return n.try("inspect", "--format", "{{.State.Running}} {{.State.Paused}}", writer).stdout == "true false"
		})
		n.pluginBack("")
		if r := n.tryEnv(env, "swarmbackup", "verify", "--all"); r.err != nil {
			t.Fatalf("verify after restart %d: %s", i, r)
		}
		t.Logf("engine restarted %s into a snapshot: the snapshot ended with %v", delay.Round(time.Millisecond), err)
	}
	n.snapshot(vol)
	if r := n.tryEnv(env, "swarmbackup", "verify", "--all", "--read-data"); r.err != nil {
		t.Fatalf("verify --read-data after the restarts: %s", r)
	}
}
