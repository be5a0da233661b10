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
	workerSecrets := t.TempDir()
	for _, name := range []string{"aws_access_key_id", "aws_secret_access_key"} {
		b, err := os.ReadFile(filepath.Join(secrets, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(workerSecrets, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(workerSecrets, "password"), []byte(unique("worker")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := manager.dockerEnv(full, "swarmbackup", "key", "add", "--role", "volumes", "--new-password-file", filepath.Join(workerSecrets, "password"))
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
