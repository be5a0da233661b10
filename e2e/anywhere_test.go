package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// elsewhere runs the docker CLI as on a machine that is no node: in a mount namespace of its
// own where the lab's engine data directories, their run directories and the plugins'
// sockets are covered, with only one manager's API socket reachable (a context over ssh
// would give no more) and the repository in MinIO.
type elsewhere struct {
	t      *testing.T
	socket string
	env    []string
}

func newElsewhere(t *testing.T, l *lab, manager *node, env []string) *elsewhere {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is missing")
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "docker.sock")
	if err := os.WriteFile(socket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &elsewhere{t: t, socket: socket}
	e.env = append(append(os.Environ(), env...), "DOCKER_HOST=unix://"+socket,
		"SB_ENGINE_SOCKET="+strings.TrimPrefix(manager.host(), "unix://"), "SB_LAB="+l.dir)
	return e
}

// covered is the script that hides the nodes from the CLI before it runs.
const covered = `set -e
mount --bind "$SB_ENGINE_SOCKET" "${DOCKER_HOST#unix://}"
for d in "$SB_LAB" /run/swarmbackup-lab /run/docker/plugins; do
	[ -d "$d" ] && mount -t tmpfs none "$d"
done
exec docker "$@"`

func (e *elsewhere) try(args ...string) result {
	cmd := exec.Command("unshare", append([]string{"-m", "sh", "-c", covered, "sh"}, args...)...)
	cmd.Env = e.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return result{args: args, stdout: strings.TrimSpace(out.String()), stderr: strings.TrimSpace(errb.String()), err: err}
}

func (e *elsewhere) docker(args ...string) string {
	e.t.Helper()
	r := e.try(args...)
	if r.err != nil {
		e.t.Fatalf("from elsewhere: %s", r)
	}
	return r.stdout
}

// Every command but the cold backup and the full restore works from a machine that is no
// node: it reaches a manager's engine and the repository, nothing else.
func TestCommandsWorkFromAMachineThatIsNoNode(t *testing.T) {
	l := newLab(t)
	endpoint, secrets := labMinIO(t)
	repo := "s3:" + endpoint + "/" + unique("anywhere") + "/backups"
	for i := 1; i <= l.engines(); i++ {
		l.node(i).configurePlugin("SWARMBACKUP_REPO="+repo, "etc.source="+secrets)
	}
	manager, worker := l.node(1), l.worker()
	vol := unique("far")
	worker.createVolume(vol)
	worker.run(vol, "echo written on the worker > /data/note")
	far := newElsewhere(t, l, manager, []string{
		"AWS_ACCESS_KEY_ID_FILE=" + filepath.Join(secrets, "aws_access_key_id"),
		"AWS_SECRET_ACCESS_KEY_FILE=" + filepath.Join(secrets, "aws_secret_access_key"),
		"SWARMBACKUP_PASSWORD_FILE=" + filepath.Join(secrets, "password"),
		"SWARMBACKUP_REPO=" + repo,
	})
	// The CLI really is cut off: no engine data, no plugin socket.
	if r := far.try("swarmbackup", "backup", "--mode", "cold"); r.err == nil || !strings.Contains(r.stderr, "manager's host") {
		t.Fatalf("a cold backup from elsewhere: %s", r)
	}
	// Each agent must have reported to the MinIO repository before its volumes can be found.
	l.eventually("every agent to report to MinIO", 90*time.Second, func() bool {
		return strings.Count(far.try("swarmbackup", "status", "--format", "{{range .Agents}}{{.Host}} {{end}}").stdout, "node") == l.engines()
	})

	cp := far.docker("swarmbackup", "backup", "-q")
	if !fullID.MatchString(cp) {
		t.Fatalf("backup -q from elsewhere printed %q", cp)
	}
	if out := far.docker("swarmbackup", "inspect", cp[:12]); !strings.Contains(out, "Objects:") {
		t.Errorf("inspect of the backup a manager's plugin took: %s", out)
	}
	snap := far.docker("swarmbackup", "volume", "snapshot", "-q", vol)
	if !fullID.MatchString(snap) {
		t.Fatalf("volume snapshot -q from elsewhere printed %q", snap)
	}
	copyVol := unique("far-copy")
	t.Cleanup(func() { worker.try("volume", "rm", "-f", copyVol) })
	far.docker("swarmbackup", "volume", "restore", vol+"@"+snap[:12], "--to", copyVol)
	if got := worker.run(copyVol, "cat /data/note"); got != "written on the worker" {
		t.Errorf("restored from elsewhere: %q", got)
	}
	set := far.docker("swarmbackup", "backup", "--volumes", "-q")
	s := struct {
		ControlPlane string `json:"control_plane"`
		Members      []struct{ Volume, Host string }
		Missing      []any
	}{}
	if err := json.Unmarshal([]byte(far.docker("swarmbackup", "inspect", set, "--format", "json")), &s); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range s.Members {
		found = found || (m.Volume == vol && m.Host == worker.String())
	}
	if s.ControlPlane == "" || len(s.Missing) > 0 || !found {
		t.Fatalf("the set taken from elsewhere: %+v", s)
	}
	if out := far.docker("swarmbackup", "verify", set[:12]); !strings.Contains(out, "intact") {
		t.Errorf("verify from elsewhere: %s", out)
	}
	far.docker("swarmbackup", "ls")
	far.docker("swarmbackup", "diff", cp[:12])
	far.docker("swarmbackup", "restore", cp[:12], "--only", "secrets", "--dry-run")
	far.docker("swarmbackup", "prune", "--keep-last", "100", "--dry-run")
}
