// Package agent is the volume plugin's work beside serving volumes: snapshots of its volumes
// into the repository, run in the background and asked for over the plugin's socket.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Volumes is what the agent needs of the volume driver.
type Volumes interface {
	Exists(name string) bool
	DataPath(name string) string
}

// Agent runs jobs; its methods are safe for concurrent use.
type Agent struct {
	ctx     context.Context
	volumes Volumes
	repos   *Repos
	engine  *Engine
	log     *slog.Logger

	mu     sync.Mutex
	jobs   map[string]*agentapi.Job
	active map[string]string // volume -> running job ID
}

// New returns an agent whose jobs end when ctx does.
func New(ctx context.Context, volumes Volumes, repos *Repos, engine *Engine, log *slog.Logger) *Agent {
	return &Agent{ctx: ctx, volumes: volumes, repos: repos, engine: engine, log: log, jobs: map[string]*agentapi.Job{}, active: map[string]string{}}
}

// Snapshot starts a snapshot of a volume, or returns the one already running for it.
func (a *Agent) Snapshot(volume string) (agentapi.Job, error) {
	if !a.volumes.Exists(volume) {
		return agentapi.Job{}, fmt.Errorf("no swarmbackup volume %q on this node", volume)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if id, ok := a.active[volume]; ok {
		return *a.jobs[id], nil
	}
	job := &agentapi.Job{ID: repository.NewRandomID().Short(), Volume: volume, State: agentapi.JobRunning, Started: time.Now().UTC()}
	a.jobs[job.ID] = job
	a.active[volume] = job.ID
	go a.run(job)
	return *job, nil
}

func (a *Agent) run(job *agentapi.Job) {
	start := time.Now()
	sn, err := a.snapshot(job.Volume)
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.active, job.Volume)
	job.Finished = time.Now().UTC()
	if err != nil {
		job.State, job.Error = agentapi.JobFailed, err.Error()
		a.log.Error("snapshot failed", "volume", job.Volume, "err", err)
		return
	}
	job.State, job.Snapshot = agentapi.JobDone, sn.ID.String()
	job.Files, job.Bytes, job.BytesNew = sn.Stats.Files, sn.Stats.Bytes, sn.Stats.BytesNew
	a.log.Info("snapshot taken", "volume", job.Volume, "snapshot", sn.ID.Short(),
		"files", sn.Stats.Files, "bytes_total", sn.Stats.Bytes, "bytes_new", sn.Stats.BytesNew,
		"duration", time.Since(start).Round(time.Millisecond).String())
}

func (a *Agent) snapshot(volume string) (*snapshot.Snapshot, error) {
	repo, err := a.repos.Open(a.ctx)
	if err != nil {
		return nil, err
	}
	host, nodeID := a.engine.Node(a.ctx)
	return backup.Run(a.ctx, repo, backup.Source{
		Kind: snapshot.KindVolume, Name: volume, Path: a.volumes.DataPath(volume), Host: host, Node: nodeID,
	}, backup.Options{})
}

// Job returns a job by ID.
func (a *Agent) Job(id string) (agentapi.Job, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	job, ok := a.jobs[id]
	if !ok {
		return agentapi.Job{}, false
	}
	return *job, true
}

// Handlers registers the agent's endpoints.
func (a *Agent) Handlers(handle func(path string, fn func(http.ResponseWriter, *http.Request))) {
	handle(agentapi.SnapshotPath, func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.SnapshotRequest
		if !decode(w, r, &req) {
			return
		}
		job, err := a.Snapshot(req.Volume)
		respond(w, job, err)
	})
	handle(agentapi.JobPath, func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.JobRequest
		if !decode(w, r, &req) {
			return
		}
		job, ok := a.Job(req.ID)
		if !ok {
			respond(w, nil, fmt.Errorf("no job %q (jobs are forgotten when the plugin restarts)", req.ID))
			return
		}
		respond(w, job, nil)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		respond(w, nil, fmt.Errorf("bad request: %w", err))
		return false
	}
	return true
}

func respond(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1+json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(agentapi.ErrorResponse{Err: err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
