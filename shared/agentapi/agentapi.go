// Package agentapi is the control channel between the CLI plugin and the volume plugin (the
// agent): extra endpoints served on the volume plugin's own socket, beside the volume API.
package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"
)

// SocketName is the plugin's socket, as config.json declares it.
const SocketName = "swarmbackup.sock"

// The engine bind-mounts a managed plugin's socket directory from here on the host, whatever
// the engine's exec-root.
const hostPluginDir = "/run/docker/plugins"

// Endpoints served beside the volume API.
const (
	VersionPath  = "/SwarmBackup.Version"
	SnapshotPath = "/SwarmBackup.Snapshot"
	RestorePath  = "/SwarmBackup.Restore"
	JobPath      = "/SwarmBackup.Job"
)

// RestoreRequest asks to fill Target with a snapshot of Volume: Snapshot is an ID prefix,
// or empty for the newest. Target is created when missing; an existing target must be
// unmounted.
type RestoreRequest struct {
	Volume   string
	Snapshot string
	Target   string
	// Scope, when set, is the volume's (snapshot.ScopeNode or ScopeCluster): which of the
	// snapshots of volumes of this name are its own.
	Scope string `json:",omitempty"`
}

// VersionResponse answers VersionPath.
type VersionResponse struct {
	Version string
}

// SnapshotRequest asks for a snapshot of one volume; it answers at once with the Job.
type SnapshotRequest struct {
	Volume string
}

// JobRequest asks how a job is going.
type JobRequest struct {
	ID string
	// Wait asks the agent to answer once the job ends, or after Wait (at most MaxJobWait).
	Wait time.Duration `json:",omitempty"`
}

// MaxJobWait bounds how long the agent holds a job request.
const MaxJobWait = 5 * time.Second

// jobPace is how often Wait reports progress.
const jobPace = 200 * time.Millisecond

// Job states.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Job is work the agent does in the background.
type Job struct {
	ID       string
	Kind     string // "snapshot" or "restore"
	Volume   string
	State    string
	Error    string `json:",omitempty"`
	Snapshot string `json:",omitempty"` // the snapshot's full ID, once done
	Started  time.Time
	Finished time.Time `json:",omitempty"`
	Files    uint64
	Bytes    uint64
	BytesNew uint64
	// Quiesce is the mode the volume's containers were held with, QuiesceWindow how long.
	Quiesce       string        `json:",omitempty"`
	QuiesceWindow time.Duration `json:",omitempty"`
	// Progress while running: bytes done, of a total when known (0: unknown).
	BytesDone  uint64
	BytesTotal uint64
	// Privileged names the set-user/group-ID files and device nodes a restore made (the
	// first few); PrivilegedCount counts them.
	Privileged      []string `json:",omitempty"`
	PrivilegedCount uint64   `json:",omitempty"`
}

// ErrorResponse is how the plugin protocol carries an error.
type ErrorResponse struct {
	Err string
}

// SocketPath is where the host sees the socket of the managed plugin with this ID.
func SocketPath(pluginID string) string {
	return filepath.Join(hostPluginDir, pluginID, SocketName)
}

// Client calls the agent over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the agent listening on socket.
func NewClient(socket string) *Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &Client{
		socket: socket,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", socket)
			},
		}},
	}
}

// Version asks the agent which version it runs.
func (c *Client) Version(ctx context.Context) (VersionResponse, error) {
	var resp VersionResponse
	err := c.call(ctx, VersionPath, struct{}{}, &resp)
	return resp, err
}

// Snapshot starts a snapshot of a volume.
func (c *Client) Snapshot(ctx context.Context, volume string) (Job, error) {
	var job Job
	err := c.call(ctx, SnapshotPath, SnapshotRequest{Volume: volume}, &job)
	return job, err
}

// Restore starts a restore of a volume snapshot.
func (c *Client) Restore(ctx context.Context, req RestoreRequest) (Job, error) {
	var job Job
	err := c.call(ctx, RestorePath, req, &job)
	return job, err
}

// Job returns a job's state; with wait, once the job ends or wait passes, whichever is first.
func (c *Client) Job(ctx context.Context, id string, wait time.Duration) (Job, error) {
	var job Job
	err := c.call(ctx, JobPath, JobRequest{ID: id, Wait: wait}, &job)
	return job, err
}

// Wait follows a job until it ends or ctx is done, telling update, when set, how it goes.
// The agent holds each request until the job ends or jobPace passes, so the end is seen
// when it happens; an agent that answers at once is asked again only every jobPace.
func (c *Client) Wait(ctx context.Context, job Job, update func(Job)) (Job, error) {
	for job.State == JobRunning {
		asked := time.Now()
		var err error
		if job, err = c.Job(ctx, job.ID, jobPace); err != nil {
			return job, err
		}
		if update != nil {
			update(job)
		}
		if job.State != JobRunning {
			break
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-time.After(time.Until(asked.Add(jobPace))):
		}
	}
	return job, nil
}

func (c *Client) call(ctx context.Context, path string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plugin"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/vnd.docker.plugins.v1.2+json")
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("reach the swarmbackup plugin at %s: %w", c.socket, err)
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the swarmbackup plugin's answer: %w", err)
	}
	if hresp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Err != "" {
			return fmt.Errorf("swarmbackup plugin: %s", e.Err)
		}
		return fmt.Errorf("swarmbackup plugin answered %s", hresp.Status)
	}
	if err := json.Unmarshal(b, resp); err != nil {
		return fmt.Errorf("decode the swarmbackup plugin's answer: %w", err)
	}
	return nil
}
