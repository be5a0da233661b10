package scratch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperProcess is not a test: the signal tests run it as a child and interrupt it.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("SCRATCH_HELPER")
	if mode == "" {
		t.Skip("run by the signal tests")
	}
	ctx, stop := HandleSignals(context.Background(), 500*time.Millisecond)
	defer stop()
	dir, err := MkdirTemp(os.Getenv("SCRATCH_TMP"), "secrets-")
	if err != nil {
		os.Exit(3)
	}
	_ = os.WriteFile(filepath.Join(dir, "swarm-root-ca.key"), []byte("key material"), 0o600)
	fmt.Println(dir)
	switch mode {
	case "obedient": // the work notices the interrupt and ends, its clean-ups with it
		<-ctx.Done()
		_ = Remove(dir)
		os.Exit(1)
	case "stuck": // the work never looks at its context
		select {}
	}
}

// interrupt runs the helper, waits until it has written its secrets, sends it signals and
// returns how it ended and the directory it had made.
func interrupt(t *testing.T, mode string, signals int) (int, string) {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "SCRATCH_HELPER="+mode, "SCRATCH_TMP="+tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the helper said nothing: %v", err)
	}
	dir := strings.TrimSpace(line)
	for range signals {
		_ = cmd.Process.Signal(syscall.SIGINT)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the interrupted process did not end")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the helper ended with %v", err)
	}
	return exit.ExitCode(), dir
}

func TestAnInterruptedCommandLeavesNoSecretsBehind(t *testing.T) {
	for _, c := range []struct {
		mode    string
		signals int
		exit    int
	}{
		{"obedient", 1, 1},            // the work ends and cleans up itself
		{"stuck", 1, ExitInterrupted}, // the grace runs out
		{"stuck", 2, ExitInterrupted}, // Ctrl-C twice
		{"obedient", 2, -1},           // either way, nothing is left
	} {
		code, dir := interrupt(t, c.mode, c.signals)
		if c.exit >= 0 && code != c.exit {
			t.Errorf("%s, %d signal(s): exit status %d, want %d", c.mode, c.signals, code, c.exit)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s, %d signal(s): %s is still there (%v)", c.mode, c.signals, dir, err)
		}
	}
}
