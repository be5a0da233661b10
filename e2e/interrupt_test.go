package e2e

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Ctrl-C on a terminal interrupts the whole foreground process group, the plugin as well as
// docker: what inspect decrypted (the swarm's keys, every secret) must not stay behind.
func TestAnInterruptedInspectLeavesNoDecryptedStateBehind(t *testing.T) {
	l := newLab(t)
	n := l.node(1)
	id := n.docker("swarmbackup", "backup", "-q")
	tmp := t.TempDir()
	interrupted := 0
	for round := 0; round < 20 && interrupted < 3; round++ {
		cmd := exec.Command("docker", "swarmbackup", "inspect", id[:12], "--show-secret-values")
		cmd.Env = append(n.env(), "TMPDIR="+tmp)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Interrupt once the backup is being decrypted, as a person at the terminal would.
		_, ended, _ := untilOrEnded(done, 30*time.Second, func() bool { return decrypting(tmp) })
		if !ended {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatal("the interrupted inspect did not end")
			}
			interrupted++
		}
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Fatalf("round %d (interrupted: %v): %s left behind in the temporary directory", round, !ended, left[0].Name())
		}
	}
	if interrupted == 0 {
		t.Fatal("inspect always ended before it could be interrupted")
	}
}

func decrypting(tmp string) bool {
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "swarmbackup-") {
			return true
		}
	}
	return false
}
