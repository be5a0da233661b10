package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var unlockKeyPattern = regexp.MustCompile(`SWMKEY-1-[A-Za-z0-9+/=]+`)

func TestAutolockedSwarmRestoredWithFullAndLockedAgainWithANewKey(t *testing.T) {
	l := newLab(t)
	survivor := l.leader()
	// Runs last: the other tests expect a swarm without autolock.
	t.Cleanup(func() { survivor.try("swarm", "update", "--autolock=false") })
	survivor.docker("swarm", "update", "--autolock=true")
	oldKey := survivor.docker("swarm", "unlock-key", "-q")
	keyFile := filepath.Join(t.TempDir(), "unlock-key")
	if err := os.WriteFile(keyFile, []byte(oldKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := unique("locked-secret")
	value := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(value, []byte("behind the lock"), 0o600); err != nil {
		t.Fatal(err)
	}
	survivor.docker("secret", "create", secret, value)
	id := survivor.docker("swarmbackup", "backup", "-q", "--unlock-key-file", keyFile)

	l.stopAllBut(survivor)
	// Bad keys are refused before anything changes.
	if r := survivor.fullRestore(id); r.err == nil || !strings.Contains(r.stderr, "autolocked") {
		t.Fatalf("a full restore without the unlock key: %s", r)
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	_ = os.WriteFile(wrongFile, []byte("SWMKEY-1-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8"), 0o600)
	if r := survivor.fullRestore(id, "--unlock-key-file", wrongFile); r.err == nil || !strings.Contains(r.stderr, "does not open") {
		t.Fatalf("a full restore with a wrong unlock key: %s", r)
	}
	if got := survivor.docker("info", "--format", "{{.Swarm.LocalNodeState}}"); got != "active" {
		t.Fatalf("after the refused restores the node is %q", got)
	}

	r := survivor.fullRestore(id, "--unlock-key-file", keyFile)
	if r.err != nil {
		t.Fatal(r)
	}
	printed := unlockKeyPattern.FindString(r.stdout)
	if printed == "" || printed == oldKey {
		t.Fatalf("the restore printed unlock key %q (old key %q), want a new one:\n%s", printed, oldKey, r.stdout)
	}
	if current := survivor.docker("swarm", "unlock-key", "-q"); current != printed {
		t.Errorf("the swarm's unlock key is %q, the restore printed %q", current, printed)
	}
	if got := survivor.docker("secret", "ls", "--format", "{{.Name}}"); !strings.Contains(got, secret) {
		t.Errorf("after the full restore the secrets are: %s", got)
	}

	// Locked for real: after an engine restart the manager waits for the new key.
	survivor.restart()
	l.eventually("the restarted manager to be locked", 60*time.Second, func() bool {
		return survivor.docker("info", "--format", "{{.Swarm.LocalNodeState}}") == "locked"
	})
	unlock := exec.Command("docker", "swarm", "unlock")
	unlock.Env = survivor.env()
	unlock.Stdin = strings.NewReader(printed + "\n")
	if out, err := unlock.CombinedOutput(); err != nil {
		t.Fatalf("docker swarm unlock with the printed key: %v\n%s", err, out)
	}
	l.eventually("the unlocked manager to serve", 60*time.Second, func() bool {
		return survivor.try("secret", "inspect", secret).err == nil
	})
	survivor.docker("secret", "rm", secret)
}

// A manager's backup restored on another host: the restored manager advertises its own
// address, in the raft membership too, so the lost managers' replacements can join it.
func TestFullRestoreOnAHostWithAnotherAddress(t *testing.T) {
	l := newLab(t)
	origin := l.leader()
	target := l.node(origin.n%l.nodes + 1)
	addr := target.docker("info", "--format", "{{.Swarm.NodeAddr}}")
	originID := origin.nodeID()
	secret := unique("moved")
	value := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(value, []byte("on another host"), 0o600); err != nil {
		t.Fatal(err)
	}
	origin.docker("secret", "create", secret, value)
	id := origin.backup()

	rejoin := l.stopAllBut(target)
	r := target.fullRestore(id, "--advertise-addr", addr)
	if r.err != nil {
		t.Fatal(r)
	}
	if got := target.docker("node", "inspect", "self", "--format", "{{.ManagerStatus.Addr}}"); got != addr+":2377" {
		t.Fatalf("the restored manager is known to raft at %s, want %s:2377\n%s", got, addr, r.stdout)
	}
	if got := target.docker("node", "inspect", "self", "--format", "{{.ID}}"); got != originID {
		t.Errorf("the restored manager is node %s, not the backup's", got)
	}

	// Managers join the restored one at its new address and serve the backup's objects.
	rejoin()
	for i := 1; i <= l.nodes; i++ {
		if n := l.node(i); n.n != target.n {
			if got := n.docker("secret", "inspect", secret, "--format", "{{.Spec.Name}}"); got != secret {
				t.Errorf("%s, joined again, sees secret %q", n, got)
			}
		}
	}
	target.docker("secret", "rm", secret)
}
