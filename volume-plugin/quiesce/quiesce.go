// Package quiesce holds the containers that use a volume still while the volume is captured:
// paused, stopped, or told through a command of their own to flush and wait. Every hold is
// written to a journal first, so that a plugin that dies while holding releases the
// containers when it starts again.
package quiesce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/swarmbackup/swarmbackup/shared/atomicfile"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

// swarmTaskLabel marks the containers of swarm tasks.
const swarmTaskLabel = "com.docker.swarm.task.id"

// Holder quiesces the containers of volumes through the engine API.
type Holder struct {
	api        *client.Client
	journal    string
	holdMounts func(volume string) (release func())
	log        *slog.Logger

	mu sync.Mutex // guards the journal file
}

// New returns a holder that keeps its journal at the path given. While containers are
// stopped, holdMounts keeps new ones from mounting the volume: Swarm would start a
// replacement task on it.
func New(api *client.Client, journal string, holdMounts func(volume string) (release func()), log *slog.Logger) *Holder {
	return &Holder{api: api, journal: journal, holdMounts: holdMounts, log: log}
}

// hold is a journal entry: what must be undone for a volume.
type hold struct {
	Mode       string   `json:"mode"`
	Containers []string `json:"containers"`
	Post       string   `json:"post,omitempty"`
	Timeout    string   `json:"timeout,omitempty"`
}

// Hold holds the running containers that mount volume as opts.Quiesce says, runs capture,
// and releases them, whatever capture or the hold itself returned. With quiesce=exec a
// failing pre command aborts before capture, and post still runs. When no container uses
// the volume (or quiesce=none) there is nothing to hold and capture is not run.
func (h *Holder) Hold(ctx context.Context, volume string, opts volumeopts.Options, capture func() error) (snapshot.Quiesce, error) {
	rep := snapshot.Quiesce{Mode: opts.Quiesce}
	if opts.Quiesce == volumeopts.QuiesceNone || opts.Quiesce == "" {
		return rep, nil
	}
	if h.api == nil {
		return rep, errors.New("quiesce needs the engine's socket (the plugin's docker-sock mount)")
	}
	ids, err := h.users(ctx, volume)
	if err != nil {
		return rep, err
	}
	rep.Containers = len(ids)
	if len(ids) == 0 {
		return rep, nil // nobody to hold: the live tree is read
	}
	entry := hold{Mode: opts.Quiesce, Containers: ids, Post: opts.Post, Timeout: opts.Timeout.String()}
	if err := h.record(volume, &entry); err != nil {
		return rep, err
	}
	releaseMounts := func() {}
	if entry.Mode == volumeopts.QuiesceStop {
		releaseMounts = h.holdMounts(volume)
	}
	start := time.Now()
	held, err := h.apply(ctx, entry, opts)
	if err == nil {
		err = capture()
	}
	releaseMounts()
	// Release with a context of its own: the job's may be what ended.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.Timeout+30*time.Second)
	defer cancel()
	entry.Containers = held
	if rerr := h.release(rctx, entry); rerr != nil {
		err = errors.Join(err, rerr)
	} else if jerr := h.record(volume, nil); jerr != nil {
		h.log.Error("clear the quiesce journal", "volume", volume, "err", jerr)
	}
	rep.Window = time.Since(start)
	return rep, err
}

// users lists the running containers that mount a volume.
func (h *Holder) users(ctx context.Context, volume string) ([]string, error) {
	res, err := h.api.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("volume", volume)})
	if err != nil {
		return nil, fmt.Errorf("list the containers using volume %s: %w", volume, err)
	}
	var ids []string
	for _, c := range res.Items {
		for _, m := range c.Mounts {
			if m.Name == volume {
				ids = append(ids, c.ID)
				break
			}
		}
	}
	return ids, nil
}

// apply holds each container and returns those it held, which are the ones to release.
func (h *Holder) apply(ctx context.Context, entry hold, opts volumeopts.Options) ([]string, error) {
	var held []string
	for _, id := range entry.Containers {
		var err error
		switch entry.Mode {
		case volumeopts.QuiescePause:
			_, err = h.api.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		case volumeopts.QuiesceStop:
			// The container's own grace period (a service's --stop-grace-period) applies.
			_, err = h.api.ContainerStop(ctx, id, client.ContainerStopOptions{})
		case volumeopts.QuiesceExec:
			// post runs wherever pre was tried: pre may have done half its work.
			held = append(held, id)
			if opts.Pre != "" {
				err = h.exec(ctx, id, "pre", opts.Pre, opts.Timeout)
			}
			if err != nil {
				return held, err
			}
			continue
		default:
			return held, fmt.Errorf("unknown quiesce mode %q", entry.Mode)
		}
		if err != nil {
			return held, fmt.Errorf("%s container %s: %w", entry.Mode, short(id), err)
		}
		held = append(held, id)
	}
	return held, nil
}

// release undoes a hold on every container, going on past failures.
func (h *Holder) release(ctx context.Context, entry hold) error {
	timeout, err := time.ParseDuration(entry.Timeout)
	if err != nil {
		timeout = volumeopts.DefaultTimeout
	}
	var errs []error
	for _, id := range entry.Containers {
		var err error
		switch entry.Mode {
		case volumeopts.QuiescePause:
			err = h.unpause(ctx, id)
		case volumeopts.QuiesceStop:
			err = h.restart(ctx, id)
		case volumeopts.QuiesceExec:
			if entry.Post != "" {
				err = h.exec(ctx, id, "post", entry.Post, timeout)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Holder) unpause(ctx context.Context, id string) error {
	c, err := h.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil // gone: nothing left frozen
		}
		return fmt.Errorf("unpause container %s: %w", short(id), err)
	}
	if c.Container.State == nil || !c.Container.State.Paused {
		return nil
	}
	if _, err := h.api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpause container %s: %w", short(id), err)
	}
	return nil
}

// restart starts a stopped container again, except a swarm task's: Swarm replaces a task
// whose container stopped, and a second copy started by hand would run beside it.
func (h *Holder) restart(ctx context.Context, id string) error {
	c, err := h.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("start container %s: %w", short(id), err)
	}
	if c.Container.Config != nil && c.Container.Config.Labels[swarmTaskLabel] != "" {
		return nil
	}
	if c.Container.State != nil && c.Container.State.Running {
		return nil
	}
	if _, err := h.api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", short(id), err)
	}
	return nil
}

// exec runs a hook command in a container and waits for it, at most timeout.
func (h *Holder) exec(ctx context.Context, id, which, command string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	created, err := h.api.ExecCreate(ctx, id, client.ExecCreateOptions{
		Cmd: []string{"sh", "-c", command}, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return fmt.Errorf("%s in container %s: %w", which, short(id), err)
	}
	att, err := h.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("%s in container %s: %w", which, short(id), err)
	}
	defer att.Close()
	var out tail
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&out, &out, att.Reader)
		done <- err
	}()
	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%s in container %s did not finish within %s", which, short(id), timeout)
		}
		return ctx.Err()
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s in container %s: %w", which, short(id), err)
		}
	}
	res, err := h.api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return fmt.Errorf("%s in container %s: %w", which, short(id), err)
	}
	if res.ExitCode != 0 {
		msg := strings.TrimSpace(out.String())
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("%s in container %s exited with status %d%s", which, short(id), res.ExitCode, msg)
	}
	return nil
}

// Heal releases every hold left in the journal by a plugin that stopped while holding. It
// waits for the engine, which may still be starting, as long as ctx allows.
func (h *Holder) Heal(ctx context.Context) error {
	holds, err := h.read()
	if err != nil || len(holds) == 0 {
		return err
	}
	if h.api == nil {
		return errors.New("containers may be left held: the engine's socket is not mounted")
	}
	for volume, entry := range holds {
		for {
			err := h.release(ctx, entry)
			if err == nil {
				h.log.Info("released containers a stopped plugin left held", "volume", volume, "mode", entry.Mode, "containers", len(entry.Containers))
				if err := h.record(volume, nil); err != nil {
					return err
				}
				break
			}
			h.log.Warn("release containers left held", "volume", volume, "err", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("containers of volume %s may still be held: %w", volume, err)
			case <-time.After(2 * time.Second):
			}
		}
	}
	return nil
}

func (h *Holder) read() (map[string]hold, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.readLocked()
}

func (h *Holder) readLocked() (map[string]hold, error) {
	holds := map[string]hold{}
	data, err := os.ReadFile(h.journal)
	if errors.Is(err, os.ErrNotExist) {
		return holds, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the quiesce journal: %w", err)
	}
	if err := json.Unmarshal(data, &holds); err != nil {
		return nil, fmt.Errorf("read the quiesce journal %s: %w", h.journal, err)
	}
	return holds, nil
}

// record writes (or, with nil, clears) a volume's entry in the journal.
func (h *Holder) record(volume string, entry *hold) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	holds, err := h.readLocked()
	if err != nil {
		return err
	}
	if entry == nil {
		delete(holds, volume)
	} else {
		holds[volume] = *entry
	}
	data, err := json.Marshal(holds)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(h.journal, data, 0o600); err != nil {
		return fmt.Errorf("write the quiesce journal: %w", err)
	}
	return nil
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// tail keeps the last bytes a hook printed, for its error message.
type tail struct{ buf bytes.Buffer }

func (t *tail) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if t.buf.Len() > 512 {
		b := t.buf.Bytes()[t.buf.Len()-256:]
		t.buf.Reset()
		t.buf.Write(b)
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.Join(strings.Fields(t.buf.String()), " ") }
