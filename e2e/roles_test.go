package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The worker's plugin holds a key of the volumes role: it snapshots and restores its volume,
// but with its password nothing of the control plane's backup can be listed or read, while
// the operator's full key reads everything.
func TestAWorkersKeyCannotReadTheControlPlanesBackup(t *testing.T) {
	l := newLab(t)
	manager, worker := l.node(1), l.worker()
	endpoint, secrets := labMinIO(t)
	repoURL := "s3:" + endpoint + "/" + unique("roles") + "/backups"
	full := bucketEnv(repoURL, secrets)

	control := manager.dockerEnv(full, "swarmbackup", "backup", "-q")
	workerSecrets := newPassword(t, secrets)
	out := manager.dockerEnv(full, "swarmbackup", "key", "add", "--role", "volumes", "--node", worker.nodeID(), "--new-password-file", filepath.Join(workerSecrets, "password"))
	if !strings.Contains(out, "added a key of role volumes") {
		t.Fatalf("key add printed %q", out)
	}
	worker.configurePlugin("SWARMBACKUP_REPO="+repoURL, "etc.source="+workerSecrets)
	restricted := bucketEnv(repoURL, workerSecrets)

	vol := unique("cache")
	worker.createVolume(vol)
	worker.makeFiles(vol, 50)
	want := worker.run(vol, "cd /data && find . -type f | sort | xargs md5sum | md5sum")
	snap := worker.snapshot(vol)

	if got := worker.dockerEnv(restricted, "swarmbackup", "ls", "-q", "--no-trunc"); got != snap {
		t.Fatalf("with the worker's key ls lists %q, want only %s", got, snap)
	}
	r := worker.tryEnv(restricted, "swarmbackup", "inspect", control)
	if r.err == nil || !strings.Contains(r.stderr, "volumes role") {
		t.Fatalf("with the worker's key the control plane's backup is inspected: %s", r)
	}
	worker.dockerEnv(restricted, "swarmbackup", "verify", "--all", "--read-data")

	listed := manager.dockerEnv(full, "swarmbackup", "ls", "-q", "--no-trunc")
	if !strings.Contains(listed, control) || !strings.Contains(listed, snap) {
		t.Fatalf("with the full key ls lists %q", listed)
	}
	manager.dockerEnv(full, "swarmbackup", "verify", "--all", "--read-data")
	manager.dockerEnv(full, "swarmbackup", "inspect", control)

	worker.docker("swarmbackup", "volume", "restore", vol, "--to", vol+"-back")
	if got := worker.run(vol+"-back", "cd /data && find . -type f | sort | xargs md5sum | md5sum"); got != want {
		t.Fatalf("the worker restored %q, want %q", got, want)
	}
}

// newPassword returns a directory like secrets (the bucket's credentials) with a new
// password of its own.
func newPassword(t *testing.T, secrets string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"aws_access_key_id", "aws_secret_access_key"} {
		b, err := os.ReadFile(filepath.Join(secrets, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte(unique("password")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Each node's plugin holds a key for its node: a volume of the same name on two nodes, each
// the node's own (scope=node), is snapshotted by each; neither node lists, reads or restores
// the other's, while the operator's full key lists, verifies and could restore both.
func TestEachNodesKeyKeepsItsOwnVolumesFromOtherNodes(t *testing.T) {
	l := newLab(t)
	manager, node2, worker := l.node(1), l.node(2), l.worker()
	endpoint, secrets := labMinIO(t)
	repoURL := "s3:" + endpoint + "/" + unique("nodekeys") + "/backups"
	full := bucketEnv(repoURL, secrets)
	manager.dockerEnv(full, "swarmbackup", "backup", "-q") // the repository, and a control-plane backup

	type member struct {
		n       *node
		secrets string
		snap    string
		sum     string
	}
	// One key is named by the node's host name, the other by its ID, as operators may.
	hostname := worker.docker("info", "--format", "{{.Name}}")
	members := []*member{{n: node2}, {n: worker}}
	for i, m := range members {
		m.secrets = newPassword(t, secrets)
		name := m.n.nodeID()
		if i == 1 {
			name = hostname
		}
		out := manager.dockerEnv(full, "swarmbackup", "key", "add", "--role", "volumes", "--node", name, "--new-password-file", filepath.Join(m.secrets, "password"))
		if !strings.Contains(out, "added a key of role volumes for node") || !strings.Contains(out, m.n.nodeID()) {
			t.Fatalf("key add printed %q", out)
		}
		m.n.configurePlugin("SWARMBACKUP_REPO="+repoURL, "etc.source="+m.secrets)
	}
	vol := unique("db")
	for i, m := range members {
		m.n.createVolume(vol, "scope=node")
		m.n.makeFiles(vol, 20+10*i)
		m.sum = m.n.run(vol, "cd /data && find . -type f | sort | xargs md5sum | md5sum")
		m.snap = m.n.snapshot(vol)
	}
	if members[0].sum == members[1].sum {
		t.Fatal("the two nodes' volumes hold the same files")
	}

	for i, m := range members {
		other := members[1-i]
		own := bucketEnv(repoURL, m.secrets)
		listed := m.n.dockerEnv(own, "swarmbackup", "ls", "-q", "--no-trunc")
		if listed != m.snap {
			t.Fatalf("%s's key lists %q, want only its own snapshot %s", m.n, listed, m.snap)
		}
		// The other node's snapshot is not even listed to this node's plugin.
		r := m.n.try("swarmbackup", "volume", "restore", vol+"@"+other.snap[:12], "--to", vol+"-theirs")
		if r.err == nil || !strings.Contains(r.stderr, `no snapshot "`+other.snap[:12]+`"`) {
			t.Fatalf("%s restored the other node's volume: %s", m.n, r)
		}
		m.n.dockerEnv(own, "swarmbackup", "verify", "--all", "--read-data")
		m.n.docker("swarmbackup", "volume", "restore", vol+"@"+m.snap[:12], "--to", vol+"-back")
		m.n.lab.t.Cleanup(func() { m.n.try("volume", "rm", "-f", vol+"-back") })
		if got := m.n.run(vol+"-back", "cd /data && find . -type f | sort | xargs md5sum | md5sum"); got != m.sum {
			t.Fatalf("%s restored %q, want %q", m.n, got, m.sum)
		}
	}

	listed := manager.dockerEnv(full, "swarmbackup", "ls", "-q", "--no-trunc", "--kind", "volume")
	for _, m := range members {
		if !strings.Contains(listed, m.snap) {
			t.Fatalf("the full key lists %q, without %s's snapshot", listed, m.n)
		}
	}
	manager.dockerEnv(full, "swarmbackup", "verify", "--all", "--read-data")
}
