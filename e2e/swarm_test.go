package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backup takes a hot swarm backup on this manager and returns its ID.
func (n *node) backup() string {
	n.lab.t.Helper()
	id := n.docker("swarmbackup", "backup", "-q")
	if !fullID.MatchString(id) {
		n.lab.t.Fatalf("backup -q printed %q, want a backup ID", id)
	}
	return id
}

// secretValue reads a secret the way a task does: from /run/secrets in a container.
func (l *lab) secretValue(secret string) string {
	l.t.Helper()
	svc := l.createService(unique("reader"), []string{"--secret", secret}, "sh", "-c", "sleep 3600")
	n, c := svc.runningTask()
	return n.docker("exec", c, "cat", "/run/secrets/"+secret)
}

func TestDeletedSecretAndNetworkComeBackAndTheServiceReadsTheSecret(t *testing.T) {
	l := newLab(t)
	node1, node2 := l.node(1), l.node(2)
	suffix := unique("")
	network, secret, svcName := "Unimatrix-01"+suffix, "missing-drones"+suffix, unique("drone")
	node1.docker("network", "create", "--driver", "overlay", "--label", "origin=seed", network)
	t.Cleanup(func() { node1.try("network", "rm", network) })
	secretFile := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(secretFile, []byte("Seven of Nine"), 0o600); err != nil {
		t.Fatal(err)
	}
	node1.docker("secret", "create", "--label", "crew=borg", secret, secretFile)
	svc := l.createService(svcName, []string{"--secret", secret, "--network", network}, "sh", "-c", "sleep 3600")
	svc.runningTask()

	// A backup from a non-leader manager, with the engine running.
	id := node2.backup()
	inspect := node1.docker("swarmbackup", "inspect", "--format", "json", id[:12])
	var got struct {
		Metadata struct {
			ClusterID string `json:"cluster_id"`
			Leader    bool   `json:"leader"`
			Mode      string `json:"mode"`
		} `json:"metadata"`
		Objects []struct{ Kind, Name string }
	}
	if err := json.Unmarshal([]byte(inspect), &got); err != nil {
		t.Fatalf("inspect --format json: %v\n%s", err, inspect)
	}
	want := map[string]bool{"secret " + secret: false, "network " + network: false, "service " + svcName: false}
	for _, o := range got.Objects {
		if _, ok := want[o.Kind+" "+o.Name]; ok {
			want[o.Kind+" "+o.Name] = true
		}
	}
	for k, found := range want {
		if !found {
			t.Errorf("inspect does not list %s", k)
		}
	}
	if got.Metadata.ClusterID == "" || got.Metadata.Mode != "hot" {
		t.Errorf("metadata: %+v", got.Metadata)
	}
	if out := node1.docker("swarmbackup", "inspect", "--show-secret-values", id[:12]); !strings.Contains(out, `"Seven of Nine"`) {
		t.Errorf("inspect --show-secret-values does not show the value:\n%s", out)
	}
	if out := node1.docker("swarmbackup", "inspect", id[:12]); strings.Contains(out, "Seven of Nine") {
		t.Error("inspect shows a secret value without --show-secret-values")
	}

	// The intruder: service, secret and network gone, on every manager at once.
	svc.remove()
	node1.docker("secret", "rm", secret)
	l.eventually("the network to go", 30*time.Second, func() bool {
		return node1.try("network", "rm", network).err == nil || node1.try("network", "inspect", network).err != nil
	})

	diff := node1.docker("swarmbackup", "diff", id[:12])
	for _, kn := range [][2]string{{"network", network}, {"secret", secret}, {"service", svcName}} {
		if !regexp.MustCompile(`removed\s+` + kn[0] + `\s+` + regexp.QuoteMeta(kn[1])).MatchString(diff) {
			t.Errorf("diff does not show %s %s removed:\n%s", kn[0], kn[1], diff)
		}
	}

	plan := node1.docker("swarmbackup", "restore", id[:12], "--only", "networks,secrets,services", "--name", network, "--name", secret, "--name", svcName, "--dry-run")
	for _, kn := range [][2]string{{"network", network}, {"secret", secret}, {"service", svcName}} {
		if !regexp.MustCompile(`create\s+` + kn[0] + `\s+` + regexp.QuoteMeta(kn[1])).MatchString(plan) {
			t.Errorf("the plan does not create %s %s:\n%s", kn[0], kn[1], plan)
		}
	}
	if r := node1.try("secret", "inspect", secret); r.err == nil {
		t.Fatal("--dry-run restored the secret")
	}
	stderr := node1.dockerFails("swarmbackup", "restore", id[:12], "--only", "secrets", "--name", secret)
	if !strings.Contains(stderr, "add --yes") {
		t.Errorf("restore off a terminal without --yes: %s", stderr)
	}

	node1.docker("swarmbackup", "restore", id[:12], "--only", "networks,secrets,services", "--name", network, "--name", secret, "--name", svcName, "--yes")
	t.Cleanup(func() {
		node1.try("service", "rm", svcName)
		node1.try("secret", "rm", secret)
	})
	if labels := node1.docker("secret", "inspect", "--format", "{{json .Spec.Labels}}", secret); labels != `{"crew":"borg"}` {
		t.Errorf("restored secret labels: %s", labels)
	}
	if driver := node1.docker("network", "inspect", "--format", "{{.Driver}} {{index .Labels \"origin\"}}", network); driver != "overlay seed" {
		t.Errorf("restored network: %s", driver)
	}
	restored := &service{lab: l, name: svcName}
	n, c := restored.runningTask()
	if v := n.docker("exec", c, "cat", "/run/secrets/"+secret); v != "Seven of Nine" {
		t.Errorf("the restored service reads %q", v)
	}
	if diff := node1.docker("swarmbackup", "diff", id[:12]); strings.Contains(diff, secret) || strings.Contains(diff, svcName) {
		t.Errorf("after the restore, diff still shows a difference:\n%s", diff)
	}
	// A second restore finds everything in place and changes nothing.
	again := node1.docker("swarmbackup", "restore", id[:12], "--only", "secrets", "--name", secret, "--yes")
	if !regexp.MustCompile(`keep\s+secret\s+` + regexp.QuoteMeta(secret) + `\s+exists`).MatchString(again) {
		t.Errorf("second restore: %s", again)
	}
}

// An intruder who cannot delete quietly changes instead: a service's settings, a secret's
// value. --replace puts the backup's versions back; a secret a live service uses stays.
func TestReplaceBringsBackWhatWasChanged(t *testing.T) {
	l := newLab(t)
	node1 := l.node(1)
	used, swapped, svcName := unique("db-password"), unique("api-token"), unique("api")
	writeValue := func(v string) string {
		f := filepath.Join(t.TempDir(), "value")
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	node1.docker("secret", "create", used, writeValue("hunter2"))
	node1.docker("secret", "create", swapped, writeValue("the real token"))
	t.Cleanup(func() { node1.try("secret", "rm", used, swapped) })
	l.createService(svcName, []string{"--secret", used, "--env", "MODE=safe"}, "sh", "-c", "sleep 3600").runningTask()
	id := node1.backup()

	node1.docker("service", "update", "--detach", "--env-add", "MODE=open", svcName)
	node1.docker("secret", "rm", swapped)
	node1.docker("secret", "create", swapped, writeValue("forged"))
	restore := func(args ...string) string {
		return node1.docker(append([]string{"swarmbackup", "restore", id[:12], "--only", "secrets,services",
			"--name", used, "--name", swapped, "--name", svcName}, args...)...)
	}
	plan := func(args ...string) map[string]string { // name -> action (reason)
		var steps []struct{ Name, Action, Reason string }
		jsonLines(t, restore(append(args, "--dry-run", "--format", "json")...), &steps)
		out := map[string]string{}
		for _, s := range steps {
			out[s.Name] = strings.TrimSpace(s.Action + " " + s.Reason)
		}
		return out
	}

	want := map[string]string{used: "keep exists", swapped: "keep exists", svcName: "keep exists"}
	if got := plan(); !maps.Equal(got, want) {
		t.Errorf("without --replace the plan is %v, want %v", got, want)
	}
	want = map[string]string{used: "keep in use by service " + svcName, swapped: "replace", svcName: "replace"}
	if got := plan("--replace"); !maps.Equal(got, want) {
		t.Errorf("the --replace plan is %v, want %v", got, want)
	}
	restore("--replace", "--yes")
	if env := node1.docker("service", "inspect", svcName, "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}"); env != `["MODE=safe"]` {
		t.Errorf("after --replace the service's environment is %s", env)
	}
	if got := l.secretValue(swapped); got != "the real token" {
		t.Errorf("after --replace the secret reads %q", got)
	}
	if got := plan("--replace")[svcName]; got != "keep same as the backup" {
		t.Errorf("a second --replace plans %q for the service", got)
	}
}

func TestStackRemovedAndBroughtBackWithItsConfig(t *testing.T) {
	l := newLab(t)
	node1 := l.node(1)
	stack := unique("test")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("backup data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := fmt.Sprintf(`version: "3.8"
services:
  backup:
    image: %s
    command: ["sh", "-c", "sleep 3600"]
    stop_grace_period: 1s
    configs:
      - source: index
        target: /usr/share/nginx/html/index.html
configs:
  index:
    file: ./index.html
`, image)
	if err := os.WriteFile(filepath.Join(dir, "stack.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	node1.docker("stack", "deploy", "--detach=true", "--resolve-image", "never", "-c", filepath.Join(dir, "stack.yml"), stack)
	t.Cleanup(func() { node1.try("stack", "rm", stack) })
	svc := &service{lab: l, name: stack + "_backup"}
	svc.runningTask()
	id := l.node(3).backup()

	node1.docker("stack", "rm", stack)
	svc.remove()
	l.eventually("the stack's config to go", 30*time.Second, func() bool {
		return node1.try("config", "inspect", stack+"_index").err != nil
	})

	node1.docker("swarmbackup", "restore", id[:12], "--only", "configs,networks,services",
		"--name", stack+"_index", "--name", stack+"_default", "--name", stack+"_backup", "--yes")
	n, c := svc.runningTask()
	if got := n.docker("exec", c, "cat", "/usr/share/nginx/html/index.html"); got != "backup data" {
		t.Errorf("the restored stack serves %q", got)
	}
	if ls := node1.docker("stack", "ls", "--format", "{{.Name}}"); !strings.Contains(ls, stack) {
		t.Errorf("docker stack ls does not show %s again:\n%s", stack, ls)
	}
}

func TestEveryHotBackupTakenDuringChangesDecodes(t *testing.T) {
	l := newLab(t)
	node1, node2 := l.node(1), l.node(2)
	prefix := unique("churn")
	var created atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("%s-%03d", prefix, i)
			if node1.try("config", "create", name, "/etc/hostname").err == nil {
				created.Add(1)
			}
		}
	}()
	var ids []string
	for range 4 {
		ids = append(ids, node2.backup())
	}
	close(stop)
	wg.Wait()
	t.Cleanup(func() {
		for i := range int(created.Load()) + 1 {
			node1.try("config", "rm", fmt.Sprintf("%s-%03d", prefix, i))
		}
	})
	if created.Load() == 0 {
		t.Fatal("no config was created while the backups ran")
	}
	last := 0
	for _, id := range ids {
		out := node1.docker("swarmbackup", "inspect", "--format", "json", id[:12])
		n := strings.Count(out, `"name": "`+prefix)
		if n < last {
			t.Errorf("backup %s holds %d of the configs, an earlier one %d", id[:8], n, last)
		}
		last = n
		if v := node1.docker("swarmbackup", "verify", "--read-data", id[:12]); !strings.Contains(v, "intact") {
			t.Errorf("verify %s: %s", id[:8], v)
		}
	}
	// A backup taken right after a change contains it.
	fresh := prefix + "-fresh"
	node1.docker("config", "create", fresh, "/etc/hostname")
	t.Cleanup(func() { node1.try("config", "rm", fresh) })
	id := node2.backup()
	if out := node1.docker("swarmbackup", "inspect", id[:12]); !strings.Contains(out, fresh) {
		t.Errorf("a backup taken right after a change lacks it")
	}
}

func TestSwarmBackupBadInput(t *testing.T) {
	l := newLab(t)
	node1 := l.node(1)
	volumeSnap := ""
	for _, s := range node1.listSnapshots(nil, "--kind", "volume") {
		volumeSnap = s.ID
		break
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"restore", "0123456789ab", "--only", "secrets"}, `no snapshot "0123456789ab"`},
		{[]string{"restore", "0123456789ab"}, "--only secrets,configs,networks,services"},
		{[]string{"restore", "0123456789ab", "--only", "volumes"}, `--only "volume"`},
		{[]string{"restore", "0123456789ab", "--full", "--replace", "--yes"}, "leave out --only, --name and --replace"},
		{[]string{"restore", "0123456789ab", "--only", "secrets", "--advertise-addr", "10.0.0.9"}, "--advertise-addr is for --full"},
		{[]string{"backup", "--mode", "lukewarm"}, `--mode "lukewarm"`},
		{[]string{"backup", "--tag", "novalue"}, "want KEY=VALUE"},
	}
	if volumeSnap != "" {
		cases = append(cases, struct {
			args []string
			want string
		}{[]string{"inspect", volumeSnap[:12]}, "not a swarm backup"})
	}
	for _, c := range cases {
		r := node1.try(append([]string{"swarmbackup"}, c.args...)...)
		lines := nonEmptyLines(r.stderr)
		if r.err == nil || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%v: exit %v, stderr %q, want one line containing %q", c.args, r.err, r.stderr, c.want)
		}
	}
}

func TestColdBackupStopsANonLeaderSafely(t *testing.T) {
	l := newLab(t)
	leader, follower := l.leader(), (*node)(nil)
	for i := 1; i <= l.nodes; i++ {
		if l.node(i).n != leader.n {
			follower = l.node(i)
			break
		}
	}
	control := func(n *node) []string {
		return []string{
			"--engine-stop-cmd", fmt.Sprintf("%s stop %d", labScript(), n.n),
			"--engine-start-cmd", fmt.Sprintf("%s start %d", labScript(), n.n),
		}
	}
	stderr := leader.dockerFails(append([]string{"swarmbackup", "backup", "--mode", "cold"}, control(leader)...)...)
	if !strings.Contains(stderr, "is the leader") {
		t.Errorf("cold backup on the leader: %s", stderr)
	}
	if leader.try("info").err != nil {
		t.Fatal("a refused cold backup stopped the leader's engine")
	}

	out := follower.docker(append([]string{"swarmbackup", "backup", "--mode", "cold"}, control(follower)...)...)
	id := strings.Fields(out)[0]
	if !strings.Contains(out, "engine down for") {
		t.Errorf("cold backup output: %s", out)
	}
	var got struct {
		Metadata struct {
			Mode       string `json:"mode"`
			DowntimeMS int64  `json:"engine_downtime_ms"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(leader.docker("swarmbackup", "inspect", "--format", "json", id[:12])), &got); err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Mode != "cold" || got.Metadata.DowntimeMS <= 0 {
		t.Errorf("metadata: %+v", got.Metadata)
	}
	if state := follower.docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"); state != "active true" {
		t.Errorf("after the cold backup the node is %q", state)
	}
	if v := leader.docker("swarmbackup", "verify", id[:12]); !strings.Contains(v, "intact") {
		t.Errorf("verify of the cold backup: %s", v)
	}
}

// leader returns the lab node that leads the swarm.
func (l *lab) leader() *node {
	l.t.Helper()
	for i := 1; i <= l.nodes; i++ {
		n := l.node(i)
		if n.docker("node", "inspect", "self", "--format", "{{.ManagerStatus.Leader}}") == "true" {
			return n
		}
	}
	l.t.Fatal("no leader")
	return nil
}

func TestQuorumLostAndTheLastManagerRestoredWithFull(t *testing.T) {
	l := newLab(t)
	survivor := l.leader()
	secret, svcName := unique("keep-me"), unique("web")
	value := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(value, []byte("still here"), 0o600); err != nil {
		t.Fatal(err)
	}
	survivor.docker("secret", "create", secret, value)
	// On the survivor, so that its task comes back as soon as the cluster does.
	l.createService(svcName, []string{"--secret", secret, "--constraint", "node.id==" + survivor.nodeID()}, "sh", "-c", "sleep 3600").runningTask()
	id := survivor.backup()
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }

	// Two of three managers are gone: no quorum, the control plane refuses changes.
	l.stopAllBut(survivor)
	phase("two managers stopped")
	r := survivor.fullRestore(id)
	if r.err != nil {
		t.Fatal(r)
	}
	out := r.stdout
	phase("full restore done")
	if !strings.Contains(out, "swarm.replaced-") {
		t.Errorf("the output does not say where the replaced directory is:\n%s", out)
	}
	if got := survivor.docker("secret", "ls", "--format", "{{.Name}}"); !strings.Contains(got, secret) {
		t.Errorf("after the full restore the secrets are: %s", got)
	}
	if got := survivor.docker("service", "ls", "--format", "{{.Name}}"); !strings.Contains(got, svcName) {
		t.Errorf("after the full restore the services are: %s", got)
	}
	// The restored cluster takes changes again.
	probe := unique("probe")
	survivor.docker("config", "create", probe, value)
	survivor.docker("config", "rm", probe)
	svc := &service{lab: l, name: svcName}
	n, c := svc.runningTask()
	phase("service running")
	if got := n.docker("exec", c, "cat", "/run/secrets/"+secret); got != "still here" {
		t.Errorf("the service reads %q", got)
	}
	survivor.try("service", "rm", svcName)
	survivor.try("secret", "rm", secret)
}

// rejoin brings stopped managers back into the survivor's cluster, as the operator would
// after a full restore: remove every other manager's entry, restart the stopped engines,
// join them again.
func (l *lab) rejoin(survivor *node, gone []*node) {
	l.t.Helper()
	// Without a restore (a test that failed first) the old cluster is only waiting for quorum.
	restored := survivor.try("node", "ls").err == nil
	for _, n := range gone {
		if out, err := exec.Command(labScript(), "start", fmt.Sprint(n.n)).CombinedOutput(); err != nil {
			l.t.Fatalf("start %s: %v\n%s", n, err, out)
		}
	}
	if restored {
		l.joinAgain(survivor, gone)
	}
	l.eventually("every manager to be reachable again", 60*time.Second, func() bool {
		out := survivor.docker("node", "ls", "--format", "{{.ManagerStatus}} {{.Status}}")
		ready := 0
		for _, line := range strings.Split(out, "\n") {
			if (strings.HasPrefix(line, "Leader") || strings.HasPrefix(line, "Reachable")) && strings.HasSuffix(line, "Ready") {
				ready++
			}
		}
		return ready == l.nodes
	})
}

func (l *lab) joinAgain(survivor *node, gone []*node) {
	l.t.Helper()
	token := survivor.docker("swarm", "join-token", "-q", "manager")
	addr := survivor.docker("info", "--format", "{{.Swarm.NodeAddr}}")
	for _, n := range gone {
		n.try("swarm", "leave", "--force")
	}
	// The backup may have come from another node, so the survivor's old entry may be one of them.
	for _, line := range strings.Split(survivor.docker("node", "ls", "--format", "{{.ID}} {{.Self}}"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "false" {
			survivor.try("node", "demote", f[0])
			survivor.try("node", "rm", "--force", f[0])
		}
	}
	for _, n := range gone {
		n.join(token, addr)
	}
	// The workers' entries went with the others: they join the restored cluster anew,
	// drained as the lab keeps them.
	workerToken := survivor.docker("swarm", "join-token", "-q", "worker")
	for i := l.nodes + 1; i <= l.engines(); i++ {
		w := l.node(i)
		w.try("swarm", "leave", "--force")
		w.join(workerToken, addr)
		survivor.docker("node", "update", "--availability", "drain", w.docker("info", "--format", "{{.Swarm.NodeID}}"))
	}
}

// join joins this node to the swarm at addr. A join the engine gives up waiting for (20 s,
// on a busy host) goes on in the background, as its message says: wait for it there.
func (n *node) join(token, addr string) {
	n.lab.t.Helper()
	r := n.try("swarm", "join", "--token", token, addr+":2377")
	if r.err == nil {
		return
	}
	if !strings.Contains(r.stderr, "continue in the background") {
		n.lab.t.Fatal(r)
	}
	n.lab.eventually(n.String()+" to finish joining", 90*time.Second, func() bool {
		return n.try("info", "--format", "{{.Swarm.LocalNodeState}}").stdout == "active"
	})
}

// stopAllBut stops every engine of the lab except the survivor's, as if those managers were
// lost. The function it returns brings them back into the survivor's cluster; it runs after
// the test too, once.
func (l *lab) stopAllBut(survivor *node) (rejoin func()) {
	l.t.Helper()
	var gone []*node
	for i := 1; i <= l.nodes; i++ {
		if n := l.node(i); n.n != survivor.n {
			gone = append(gone, n)
			if out, err := exec.Command(labScript(), "stop", fmt.Sprint(n.n)).CombinedOutput(); err != nil {
				l.t.Fatalf("stop %s: %v\n%s", n, err, out)
			}
		}
	}
	var once sync.Once
	rejoin = func() { once.Do(func() { l.rejoin(survivor, gone) }) }
	l.t.Cleanup(rejoin)
	return rejoin
}

// fullRestore runs `restore --full --yes` on this manager with the lab's engine commands.
func (n *node) fullRestore(id string, args ...string) result {
	return n.try(append([]string{"swarmbackup", "restore", id[:12], "--full", "--yes",
		"--engine-stop-cmd", fmt.Sprintf("%s stop %d", labScript(), n.n),
		"--engine-start-cmd", fmt.Sprintf("%s start %d", labScript(), n.n)}, args...)...)
}
