// Package scratch keeps the temporary directories a process fills with secrets (a swarm's
// decrypted state, its keys) and removes them however the process ends: through Remove when
// the work ends, and on an interrupt through the signal handler, which gives the work a
// moment to end by itself and then removes what is left before the process exits.
package scratch

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

var (
	mu   sync.Mutex
	dirs = map[string]bool{}
)

// MkdirTemp creates a directory only its owner can enter, as os.MkdirTemp does, and keeps
// it until Remove.
func MkdirTemp(dir, pattern string) (string, error) {
	name, err := os.MkdirTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	mu.Lock()
	dirs[name] = true
	mu.Unlock()
	return name, nil
}

// Remove removes a directory MkdirTemp made, with everything in it.
func Remove(dir string) error {
	err := os.RemoveAll(dir)
	mu.Lock()
	delete(dirs, dir)
	mu.Unlock()
	return err
}

// removeAll removes every directory still kept.
func removeAll() {
	mu.Lock()
	defer mu.Unlock()
	for dir := range dirs {
		_ = os.RemoveAll(dir)
		delete(dirs, dir)
	}
}

// ExitInterrupted is the status of a process ended by an interrupt, as shells report it.
const ExitInterrupted = 130

// HandleSignals returns a context that ends at the first SIGINT, SIGTERM or SIGHUP, so that
// the work stops and its deferred clean-ups run. At a second signal, or when the work has
// not returned grace after the first, every kept directory is removed and the process exits
// with ExitInterrupted. stop ends the handling.
func HandleSignals(parent context.Context, grace time.Duration) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		cancel()
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-sigs:
		case <-timer.C:
		case <-done:
			return
		}
		removeAll()
		os.Exit(ExitInterrupted)
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel()
		})
	}
}
