// Package agent is the volume plugin's work beside serving volumes: snapshots of its volumes
// into the repository, run in the background and asked for over the plugin's socket.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/archiver"
	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/notify"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
	"github.com/swarmbackup/swarmbackup/volume-plugin/metrics"
	"github.com/swarmbackup/swarmbackup/volume-plugin/quiesce"
)

// Volumes is what the agent needs of the volume driver.
type Volumes interface {
	Exists(name string) bool
	Options(name string) (volumeopts.Options, error)
	DataPath(name string) string
	StagingDir(name string) (string, error)
	CaptureDir(name string) (string, error)
	ReplaceData(name, src string) error
	FillDone(name string, err error)
}

// Agent runs jobs; its methods are safe for concurrent use.
type Agent struct {
	ctx     context.Context
	volumes Volumes
	repos   *Repos
	engine  *Engine
	holder  *quiesce.Holder
	log     *slog.Logger

	swept sync.Once // the locks of a killed predecessor, removed once

	// Set before the agent starts work (Observe), read-only after.
	metrics  *metrics.Metrics
	notifier *notify.Notifier

	mu     sync.Mutex
	jobs   map[string]*agentapi.Job
	active map[string]string        // volume -> running job ID
	last   map[string]*agentapi.Job // volume -> its last finished snapshot job
	ended  map[string]chan struct{} // job ID -> closed when the job ends
}

// New returns an agent whose jobs end when ctx does.
func New(ctx context.Context, volumes Volumes, repos *Repos, engine *Engine, holder *quiesce.Holder, log *slog.Logger) *Agent {
	return &Agent{
		ctx: ctx, volumes: volumes, repos: repos, engine: engine, holder: holder, log: log,
		jobs: map[string]*agentapi.Job{}, active: map[string]string{}, last: map[string]*agentapi.Job{},
		ended: map[string]chan struct{}{},
	}
}

// Snapshot starts a snapshot of a volume, or returns the job already running for it.
func (a *Agent) Snapshot(volume string) (agentapi.Job, error) {
	return a.startSnapshot(volume, nil, nil)
}

// startSnapshot starts a snapshot job with tags on the record; taken, when set, is handed
// the stored snapshot.
func (a *Agent) startSnapshot(volume string, tags map[string]string, taken func(*snapshot.Snapshot)) (agentapi.Job, error) {
	if !a.volumes.Exists(volume) {
		return agentapi.Job{}, fmt.Errorf("no swarmbackup volume %q on this node", volume)
	}
	opts, err := a.volumes.Options(volume)
	if err != nil {
		return agentapi.Job{}, err
	}
	return a.start("snapshot", volume, func(job *agentapi.Job, report func(done, total uint64)) error {
		start := time.Now()
		sn, err := a.snapshot(volume, opts, tags, func(p archiver.Progress) { report(p.Bytes, 0) })
		if err != nil {
			return err
		}
		if taken != nil {
			taken(sn)
		}
		held := snapshot.Quiesce{Mode: volumeopts.QuiesceNone}
		if sn.Quiesce != nil {
			held = *sn.Quiesce
			job.Quiesce, job.QuiesceWindow = held.Mode, held.Window
		}
		job.Snapshot = sn.ID.String()
		job.Files, job.Bytes, job.BytesNew = sn.Stats.Files, sn.Stats.Bytes, sn.Stats.BytesNew
		a.log.Info("snapshot taken", "volume", volume, "snapshot", sn.ID.Short(),
			"files", sn.Stats.Files, "bytes_total", sn.Stats.Bytes, "bytes_new", sn.Stats.BytesNew,
			"quiesce", held.Mode, "containers_held", held.Containers, "quiesce_window", held.Window.Round(time.Millisecond).String(),
			"duration", time.Since(start).Round(time.Millisecond).String())
		return nil
	})
}

// Restore starts filling a volume from a snapshot. The data goes to a staging directory
// first and replaces the volume's only once it is complete and verified, so a failed
// restore leaves the volume as it was.
func (a *Agent) Restore(req agentapi.RestoreRequest) (agentapi.Job, error) {
	if !volumeopts.ValidVolumeName(req.Volume) {
		return agentapi.Job{}, fmt.Errorf("%q is not a volume name", req.Volume)
	}
	if req.Target == "" {
		req.Target = req.Volume
	}
	return a.start("restore", req.Target, func(job *agentapi.Job, report func(done, total uint64)) error {
		return a.restore(job, req, report)
	})
}

func (a *Agent) restore(job *agentapi.Job, req agentapi.RestoreRequest, report func(done, total uint64)) error {
	start := time.Now()
	repo, err := a.openRepo(a.ctx)
	if err != nil {
		return err
	}
	list, _, err := snapshot.List(a.ctx, repo)
	if err != nil {
		return err
	}
	chain, err := a.chainOf(req.Volume, req.Scope)
	if err != nil {
		return err
	}
	sn, err := pickVolumeSnapshot(list, req.Volume, req.Snapshot, chain)
	if err != nil {
		return err
	}
	staging, err := a.volumes.StagingDir(req.Target)
	if err != nil {
		return err
	}
	stats, err := restorer.Restore(a.ctx, repo, sn.Tree, staging, restorer.Options{Progress: report, Root: sn.Root})
	if err != nil {
		_ = os.RemoveAll(staging)
		return fmt.Errorf("restore snapshot %s of volume %s: %w", sn.ID.Short(), req.Volume, err)
	}
	if err := a.volumes.ReplaceData(req.Target, staging); err != nil {
		_ = os.RemoveAll(staging)
		return err
	}
	job.Snapshot, job.Files, job.Bytes = sn.ID.String(), stats.Files, stats.Bytes
	job.Privileged, job.PrivilegedCount = stats.Privileged, stats.PrivilegedCount
	if stats.PrivilegedCount > 0 {
		a.log.Warn("the restored data holds set-user/group-ID files or device nodes", "volume", req.Target,
			"count", stats.PrivilegedCount, "first", stats.Privileged)
	}
	a.log.Info("volume restored", "volume", req.Target, "from", req.Volume, "snapshot", sn.ID.Short(),
		"files", stats.Files, "bytes", stats.Bytes, "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// Fill fills a volume just created with the restore option, in the background: from the
// newest snapshot of its source (or the one named), or leaves it empty when the repository
// holds none yet, which is the first deployment. The driver refuses mounts until then.
func (a *Agent) Fill(volume string, opts volumeopts.Options) {
	from := opts.From
	if from == "" {
		from = volume
	}
	snap := ""
	if opts.Restore != volumeopts.RestoreLatest {
		snap = opts.Restore
	}
	_, err := a.start("restore", volume, func(job *agentapi.Job, report func(done, total uint64)) error {
		err := a.restore(job, agentapi.RestoreRequest{Volume: from, Snapshot: snap, Target: volume, Scope: opts.Scope}, report)
		if errors.Is(err, errNoSnapshot) {
			a.log.Info("volume left empty: the repository holds no snapshot of it yet", "volume", volume, "from", from)
			err = nil
		}
		a.volumes.FillDone(volume, err)
		return err
	})
	if err != nil {
		// The driver calls Fill holding its lock: report back from elsewhere.
		go a.volumes.FillDone(volume, err)
	}
}

// openRepo opens the repository as this engine's agent: locks and leases a killed earlier run
// of the plugin left are recognised as dead, and removed at the first chance.
func (a *Agent) openRepo(ctx context.Context) (*repository.Repository, error) {
	repo, err := a.repos.Open(ctx)
	if err != nil {
		return nil, err
	}
	engineID, _ := a.engine.Identity(ctx)
	if engineID == "" {
		return repo, nil
	}
	repo.SetAgent("swarmbackup plugin of engine " + engineID)
	a.swept.Do(func() {
		n, err := repo.RemoveDeadLocks(ctx)
		if err != nil {
			a.log.Warn("remove locks an earlier run left", "err", err)
		} else if n > 0 {
			a.log.Info("removed locks an earlier run left", "locks", n)
		}
	})
	return repo, nil
}

var errNoSnapshot = errors.New("the repository holds no snapshot of the volume")

// nodeIdentity names this node in the chains of node-scoped volumes: its swarm node ID,
// else its engine's ID; "" when the engine cannot tell. Right after the engine (re)starts it
// may not answer, or its swarm may still be starting: a job waits for it (up to
// identityWait) rather than file a snapshot under the engine's ID instead of the node's.
func (a *Agent) nodeIdentity() string {
	deadline := time.Now().Add(identityWait)
	for {
		if _, node := a.engine.Node(a.ctx); node != "" {
			return node
		}
		if a.engine.settled() || a.engine.API() == nil || time.Now().After(deadline) || a.ctx.Err() != nil {
			break
		}
		sleep(a.ctx, time.Second)
	}
	if engineID, _ := a.engine.Identity(a.ctx); engineID != "" {
		return "engine " + engineID
	}
	return ""
}

// identityWait bounds how long a job waits for a (re)starting engine to say which node it is.
const identityWait = time.Minute

// chainOf returns the chain of a volume's snapshots as this node sees it: scope is the
// volume's (the caller's word, else this node's volume of that name); nil when neither
// knows, and the repository must tell.
func (a *Agent) chainOf(volume, scope string) (*snapshot.Chain, error) {
	if scope == "" && a.volumes.Exists(volume) {
		if opts, err := a.volumes.Options(volume); err == nil {
			scope = opts.Scope
		}
	}
	switch scope {
	case snapshot.ScopeNode:
		node := a.nodeIdentity()
		if node == "" {
			return nil, fmt.Errorf("volume %s: its snapshots chain per node, and the engine does not say which node this is", volume)
		}
		return &snapshot.Chain{Kind: snapshot.KindVolume, Source: volume, Node: node}, nil
	case snapshot.ScopeCluster:
		return &snapshot.Chain{Kind: snapshot.KindVolume, Source: volume}, nil
	}
	return nil, nil
}

// pickVolumeSnapshot finds a snapshot of a volume: by ID prefix, or the newest of its chain.
// Without a chain, the volume's name must name one chain only: the newest snapshot of a
// volume of that name on another node is not this volume's.
func pickVolumeSnapshot(list []*snapshot.Snapshot, volume, id string, chain *snapshot.Chain) (*snapshot.Snapshot, error) {
	if id == "" {
		if chain == nil {
			chains := snapshot.Chains(list, snapshot.KindVolume, volume)
			if len(chains) > 1 {
				names := make([]string, len(chains))
				for i, c := range chains {
					names[i] = c.String()
				}
				return nil, fmt.Errorf("volume %s has snapshots of several volumes (%s): name the snapshot", volume, strings.Join(names, "; "))
			}
			if len(chains) == 0 {
				return nil, fmt.Errorf("%w %s", errNoSnapshot, volume)
			}
			chain = &chains[0]
		}
		if sn := snapshot.Latest(list, *chain); sn != nil {
			return sn, nil
		}
		return nil, fmt.Errorf("%w %s", errNoSnapshot, chain)
	}
	sn, err := snapshot.Find(list, id)
	if err != nil {
		return nil, err
	}
	if sn.Kind != snapshot.KindVolume || sn.Source != volume {
		return nil, fmt.Errorf("snapshot %s is of %s %s, not of volume %s", sn.ID.Short(), sn.Kind, sn.Source, volume)
	}
	return sn, nil
}

// start runs work as a job; one job per volume at a time.
func (a *Agent) start(kind, volume string, work func(*agentapi.Job, func(done, total uint64)) error) (agentapi.Job, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id, ok := a.active[volume]; ok {
		running := a.jobs[id]
		if running.Kind == kind {
			return *running, nil
		}
		return agentapi.Job{}, fmt.Errorf("volume %s is busy with a %s (job %s)", volume, running.Kind, id)
	}
	a.forgetOldJobs(time.Now())
	job := &agentapi.Job{ID: repository.NewRandomID().Short(), Kind: kind, Volume: volume, State: agentapi.JobRunning, Started: time.Now().UTC()}
	a.jobs[job.ID] = job
	a.active[volume] = job.ID
	ended := make(chan struct{})
	a.ended[job.ID] = ended
	report := func(done, total uint64) {
		a.mu.Lock()
		defer a.mu.Unlock()
		job.BytesDone, job.BytesTotal = done, total
	}
	go func() {
		result := *job
		err := work(&result, report)
		done := a.finish(job, result, err)
		if kind != "snapshot" {
			close(ended)
			return
		}
		ev := notify.Event{Job: notify.JobSnapshot, Subject: volume, Err: err, Ended: done.Finished, Took: done.Finished.Sub(done.Started),
			Files: done.Files, Bytes: done.Bytes, BytesNew: done.BytesNew, QuiesceWindow: done.QuiesceWindow}
		a.metrics.Observe(ev) // before the waiters wake: what they see ended is in the metrics
		close(ended)
		a.notify(ev)
	}()
	return *job, nil
}

// finish records a job's end and returns the job as it ended.
func (a *Agent) finish(job *agentapi.Job, result agentapi.Job, err error) agentapi.Job {
	kind, volume := job.Kind, job.Volume
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.active, volume)
	result.Finished = time.Now().UTC()
	if err != nil {
		result.State, result.Error = agentapi.JobFailed, err.Error()
		a.log.Error(kind+" failed", "volume", volume, "err", err)
	} else {
		result.State = agentapi.JobDone
	}
	*job = result
	if kind == "snapshot" {
		a.last[volume] = job
	}
	return result
}

// jobEnded tells the metrics and the operator's notification services that a job ended.
func (a *Agent) jobEnded(e notify.Event) {
	a.metrics.Observe(e)
	a.notify(e)
}

// notify tells the operator's notification services, when there are any.
func (a *Agent) notify(e notify.Event) {
	if a.notifier == nil {
		return
	}
	if e.Host == "" && a.engine != nil {
		e.Host, _ = a.engine.Node(a.ctx)
	}
	a.notifier.Notify(a.ctx, e)
}

// Observe sends the ends of jobs to the metrics and to the notifier; either may be nil.
func (a *Agent) Observe(m *metrics.Metrics, n *notify.Notifier) {
	a.metrics, a.notifier = m, n
}

// finishedJobTTL is how long a finished job can still be asked for: long enough for the
// client that waits on it, short enough that a plugin running for months holds no history.
const finishedJobTTL = 15 * time.Minute

// forgetOldJobs drops the jobs that finished more than finishedJobTTL before now; each
// volume's last snapshot job stays in a.last, which the volume's status shows. Called with
// a.mu held: it must not call the driver, which calls the agent holding its own lock.
func (a *Agent) forgetOldJobs(now time.Time) {
	for id, j := range a.jobs {
		if j.State == agentapi.JobRunning || now.Sub(j.Finished) < finishedJobTTL {
			continue
		}
		delete(a.jobs, id)
		delete(a.ended, id)
	}
}

// forgetRemovedVolumes drops the last jobs of volumes this node no longer has. Called with
// a.mu held, with the volumes the driver listed before.
func (a *Agent) forgetRemovedVolumes(volumes []heartbeat.Volume) {
	have := make(map[string]bool, len(volumes))
	for _, v := range volumes {
		have[v.Name] = true
	}
	for volume := range a.last {
		if !have[volume] {
			delete(a.last, volume)
			a.metrics.Forget(volume)
		}
	}
}

// snapshot backs up a volume; with a quiesce mode its containers are held while the tree is
// captured, and released before the upload.
func (a *Agent) snapshot(volume string, opts volumeopts.Options, tags map[string]string, progress func(archiver.Progress)) (*snapshot.Snapshot, error) {
	repo, err := a.openRepo(a.ctx)
	if err != nil {
		return nil, err
	}
	host, _ := a.engine.Node(a.ctx)
	src := backup.Source{Kind: snapshot.KindVolume, Name: volume, Path: a.volumes.DataPath(volume), Host: host, Node: a.nodeIdentity(), Scope: opts.Scope, Tags: tags}
	bopts := backup.Options{Progress: progress}
	if opts.Quiesce != volumeopts.QuiesceNone {
		dir, err := a.volumes.CaptureDir(volume)
		if err != nil {
			return nil, fmt.Errorf("prepare the capture of volume %s: %w", volume, err)
		}
		defer os.RemoveAll(dir)
		bopts.CaptureDir = dir
		bopts.Hold = func(ctx context.Context, capture func() error) (*snapshot.Quiesce, error) {
			held, err := a.holder.Hold(ctx, volume, opts, capture)
			if err != nil {
				return nil, fmt.Errorf("quiesce=%s: %w", opts.Quiesce, err)
			}
			return &held, nil
		}
	}
	return backup.Run(a.ctx, repo, src, bopts)
}

// VolumeStatus is what `docker volume inspect` shows of the agent's work on a volume: the
// last snapshot, its age, and the last error.
func (a *Agent) VolumeStatus(volume string) map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]any{}
	if id, ok := a.active[volume]; ok {
		out["job"] = a.jobs[id].Kind + " running"
	}
	if j, ok := a.last[volume]; ok {
		if j.State == agentapi.JobFailed {
			out["last_error"] = j.Error
			out["last_error_time"] = j.Finished.Format(time.RFC3339)
		} else {
			out["last_snapshot"] = j.Snapshot
			out["last_snapshot_time"] = j.Finished.Format(time.RFC3339)
			if j.Quiesce != "" {
				out["last_quiesce"] = j.Quiesce + " for " + j.QuiesceWindow.Round(time.Millisecond).String()
			}
		}
	}
	return out
}

// Job returns a job by ID. With wait, a running job is waited for until it ends or wait (at
// most agentapi.MaxJobWait) passes: a client sees the end at once without asking often.
func (a *Agent) Job(ctx context.Context, id string, wait time.Duration) (agentapi.Job, bool) {
	a.mu.Lock()
	ended, ok := a.ended[id]
	a.mu.Unlock()
	if !ok {
		return agentapi.Job{}, false
	}
	if wait > 0 {
		t := time.NewTimer(min(wait, agentapi.MaxJobWait))
		defer t.Stop()
		select {
		case <-ended:
		case <-t.C:
		case <-ctx.Done():
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return *a.jobs[id], true
}

// waitJob waits for a job to end (or ctx to), and returns it as it ended; false when the
// job is not known.
func (a *Agent) waitJob(ctx context.Context, id string) (agentapi.Job, bool) {
	for {
		job, ok := a.Job(ctx, id, agentapi.MaxJobWait)
		if !ok || job.State != agentapi.JobRunning || ctx.Err() != nil {
			return job, ok
		}
	}
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
	handle(agentapi.RestorePath, func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.RestoreRequest
		if !decode(w, r, &req) {
			return
		}
		job, err := a.Restore(req)
		respond(w, job, err)
	})
	handle(agentapi.JobPath, func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.JobRequest
		if !decode(w, r, &req) {
			return
		}
		job, ok := a.Job(r.Context(), req.ID, req.Wait)
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
