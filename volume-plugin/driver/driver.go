// Package driver implements the Docker volume driver API for swarmbackup volumes: plain local
// directories whose state survives plugin and engine restarts and plugin upgrades.
//
// Data lives under a host directory mounted into the plugin (dataDir), so that removing and
// re-creating the plugin keeps it. A volume becomes visible to the engine by bind-mounting its
// data directory into the plugin's propagated mount (mountDir) while at least one mount ID holds it.
package driver

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/docker/go-plugins-helpers/volume"

	"github.com/swarmbackup/swarmbackup/shared/heartbeat"
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

// Driver serves swarmbackup volumes. It is safe for concurrent use.
type Driver struct {
	dataDir  string // persistent: state file and each volume's data
	mountDir string // the plugin's propagated mount: what the engine sees
	log      *slog.Logger
	// fill starts filling a new volume from the repository (restore= option); it must
	// return at once and report back through FillDone.
	fill func(name string, opts volumeopts.Options)
	// armed names the snapshot a new volume is filled from when a restored set is armed for
	// this cluster ("" when none is). It may take a moment, so it is called without d.mu.
	armed func(name string) (string, error)
	// status adds the agent's view of a volume to what inspect shows.
	status func(name string) map[string]any

	mu    sync.Mutex
	state *state
	// held names the volumes whose new mounts wait for a snapshot to release them.
	held map[string]bool
}

// New loads the persisted state from dataDir and re-establishes the mounts that were held
// when the plugin stopped, so that running containers and later unmounts find them.
func New(dataDir, mountDir string, log *slog.Logger) (*Driver, error) {
	for _, dir := range []string{filepath.Join(dataDir, "volumes"), mountDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", dir, err)
		}
	}
	st, err := loadState(filepath.Join(dataDir, "state.json"))
	if err != nil {
		return nil, err
	}
	d := &Driver{dataDir: dataDir, mountDir: mountDir, log: log, state: st, held: map[string]bool{}}
	d.removeLeftovers()
	// Fills interrupted by a restart are taken up again on the next mount (FillProblem
	// set), once the filler is known.
	for _, v := range st.Volumes {
		if v.Filling && v.FillProblem == "" {
			v.FillProblem = "interrupted by a plugin restart"
		}
	}
	for name, v := range st.Volumes {
		if len(v.Mounts) == 0 {
			continue
		}
		if err := d.ensureMounted(name); err != nil {
			// Not fatal: the volume API must come up; the next Mount retries.
			log.Error("re-establish mount", "volume", name, "err", err)
		}
	}
	return d, nil
}

func (d *Driver) statePath() string             { return filepath.Join(d.dataDir, "state.json") }
func (d *Driver) volumeDir(name string) string  { return filepath.Join(d.dataDir, "volumes", name) }
func (d *Driver) dataPath(name string) string   { return filepath.Join(d.volumeDir(name), "data") }
func (d *Driver) mountpoint(name string) string { return filepath.Join(d.mountDir, name) }

// DataPath is where a volume's files live inside the plugin, whether mounted or not.
func (d *Driver) DataPath(name string) string { return d.dataPath(name) }

// ErrMounted says a volume is in use by containers.
var ErrMounted = errors.New("mounted")

// ReplaceData makes the directory src (on the same file system, below the volume's own
// directory) the volume's data, creating the volume when missing. A mounted volume is
// refused: its containers would keep the old files open.
func (d *Driver) ReplaceData(name, src string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.state.Volumes[name]
	if ok && len(v.Mounts) > 0 {
		return fmt.Errorf("volume %s is %w by %d container(s): stop them, or restore into a new volume with --to", name, ErrMounted, len(v.Mounts))
	}
	old := d.dataPath(name) + ".replaced"
	_ = os.RemoveAll(old)
	if err := os.Rename(d.dataPath(name), old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore volume %s: %w", name, err)
	}
	if err := os.Rename(src, d.dataPath(name)); err != nil {
		_ = os.Rename(old, d.dataPath(name))
		return fmt.Errorf("restore volume %s: %w", name, err)
	}
	if !ok {
		d.state.Volumes[name] = &volumeState{CreatedAt: time.Now().UTC()}
		if err := d.save(); err != nil {
			delete(d.state.Volumes, name)
			return err
		}
	}
	if err := os.RemoveAll(old); err != nil {
		d.log.Error("remove replaced data", "volume", name, "err", err)
	}
	return nil
}

// StagingDir returns a fresh directory beside a volume's data, on the same file system,
// for ReplaceData.
func (d *Driver) StagingDir(name string) (string, error) { return d.scratchDir(name, ".restore-") }

// CaptureDir returns a fresh directory beside a volume's data, on the same file system, for
// the copies a quiesced snapshot takes; the caller removes it.
func (d *Driver) CaptureDir(name string) (string, error) { return d.scratchDir(name, ".capture-") }

func (d *Driver) scratchDir(name, prefix string) (string, error) {
	if !volumeopts.ValidVolumeName(name) {
		return "", fmt.Errorf("invalid volume name %q", name)
	}
	dir := d.volumeDir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, prefix)
}

// removeLeftovers deletes the scratch directories of jobs a stopped plugin left behind, and
// puts back data a restore had moved aside but not yet replaced.
func (d *Driver) removeLeftovers() {
	replaced, _ := filepath.Glob(filepath.Join(d.dataDir, "volumes", "*", "data.replaced"))
	for _, old := range replaced {
		data := filepath.Join(filepath.Dir(old), "data")
		if _, err := os.Lstat(data); errors.Is(err, os.ErrNotExist) {
			if err := os.Rename(old, data); err != nil {
				d.log.Error("put back the data an interrupted restore moved aside", "path", old, "err", err)
			}
		}
	}
	for _, pattern := range []string{".restore-*", ".capture-*", "data.replaced"} {
		matches, _ := filepath.Glob(filepath.Join(d.dataDir, "volumes", "*", pattern))
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				d.log.Error("remove what an interrupted job left", "path", m, "err", err)
			}
		}
	}
}

// Inventory lists every volume with what an agent reports of it.
func (d *Driver) Inventory() []heartbeat.Volume {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]heartbeat.Volume, 0, len(d.state.Volumes))
	for name, v := range d.state.Volumes {
		hv := heartbeat.Volume{
			Name: name, CreatedAt: v.CreatedAt, Schedule: v.Options["schedule"], Quiesce: v.Options["quiesce"], Mounts: len(v.Mounts),
		}
		if opts, err := volumeopts.Parse(v.Options); err == nil {
			hv.Scope = opts.Scope
		}
		out = append(out, hv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Options returns a volume's validated driver options.
func (d *Driver) Options(name string) (volumeopts.Options, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(name)
	if err != nil {
		return volumeopts.Options{}, err
	}
	return volumeopts.Parse(v.Options)
}

// HoldMounts makes new mounts of a volume fail until release is called: while a snapshot
// holds a volume's containers stopped, a replacement task must not start on it.
func (d *Driver) HoldMounts(name string) (release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.held[name] = true
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.held, name)
	}
}

// Scheduled returns the volumes that have a snapshot schedule, with their options.
func (d *Driver) Scheduled() map[string]volumeopts.Options {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]volumeopts.Options{}
	for name, v := range d.state.Volumes {
		if v.Options["schedule"] == "" || v.Filling {
			continue
		}
		if opts, err := volumeopts.Parse(v.Options); err == nil {
			out[name] = opts
		}
	}
	return out
}

// Exists reports whether the driver holds a volume of that name.
func (d *Driver) Exists(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.state.Volumes[name]
	return ok
}

func (d *Driver) save() error {
	if err := d.state.save(d.statePath()); err != nil {
		return fmt.Errorf("persist volume state: %w", err)
	}
	return nil
}

func (d *Driver) lookup(name string) (*volumeState, error) {
	v, ok := d.state.Volumes[name]
	if !ok {
		return nil, fmt.Errorf("no such volume: %s", name)
	}
	return v, nil
}

// Create makes an empty volume. Creating an existing volume with the same options succeeds,
// since the engine repeats Create for every task that names the volume.
func (d *Driver) Create(r *volume.CreateRequest) error {
	if !volumeopts.ValidVolumeName(r.Name) {
		return fmt.Errorf("invalid volume name %q: use letters, digits, '_', '.' and '-'", r.Name)
	}
	// The engine prefixes the volume's name to whatever this returns.
	opts, err := volumeopts.Parse(r.Options)
	if err != nil {
		return err
	}
	if exists, err := d.created(r); exists || err != nil {
		return err
	}
	armedFrom := ""
	if armed := d.armedHook(); armed != nil {
		if armedFrom, err = armed(r.Name); err != nil {
			return fmt.Errorf("create volume %s: %w", r.Name, err)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.state.Volumes[r.Name]; ok {
		return nil // created meanwhile by another task's request
	}
	if err := os.MkdirAll(d.dataPath(r.Name), 0o755); err != nil {
		return fmt.Errorf("create volume %s: %w", r.Name, err)
	}
	v := &volumeState{CreatedAt: time.Now().UTC(), Options: r.Options, FillFrom: armedFrom,
		Filling: opts.Restore != volumeopts.RestoreNever || armedFrom != ""}
	d.state.Volumes[r.Name] = v
	if err := d.save(); err != nil {
		delete(d.state.Volumes, r.Name)
		return err
	}
	d.log.Info("volume created", "volume", r.Name, "armed_from", armedFrom)
	if v.Filling {
		d.startFill(r.Name, v.fillOptions())
	}
	return nil
}

// created reports whether the volume exists already, and refuses it with other options.
func (d *Driver) created(r *volume.CreateRequest) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.state.Volumes[r.Name]
	if ok && !sameOptions(v.Options, r.Options) {
		return true, fmt.Errorf("create volume %s: it exists already with other driver options", r.Name)
	}
	return ok, nil
}

func (d *Driver) armedHook() func(string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.armed
}

// SetArmed sets what tells whether a restored set fills a new volume, and from which snapshot.
func (d *Driver) SetArmed(armed func(name string) (string, error)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = armed
}

// SetStatus sets what adds to a volume's status in `docker volume inspect`.
func (d *Driver) SetStatus(status func(name string) map[string]any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status = status
}

// SetFiller sets what fills volumes created with the restore option.
func (d *Driver) SetFiller(fill func(name string, opts volumeopts.Options)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fill = fill
}

// startFill asks for a volume's data; the caller holds d.mu.
func (d *Driver) startFill(name string, opts volumeopts.Options) {
	if d.fill != nil {
		d.fill(name, opts)
	}
}

// FillDone ends a fill: the volume can be mounted, or, after a failure, the next mount
// tries again.
func (d *Driver) FillDone(name string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.state.Volumes[name]
	if !ok {
		return
	}
	if err != nil {
		v.FillProblem = err.Error()
	} else {
		v.Filling, v.FillProblem = false, ""
	}
	if serr := d.save(); serr != nil {
		d.log.Error("record the end of a restore", "volume", name, "err", serr)
	}
}

func sameOptions(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Remove deletes a volume and its data. The engine calls it only for volumes no container
// uses; a volume this driver still sees mounted is refused all the same.
func (d *Driver) Remove(r *volume.RemoveRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(r.Name)
	if err != nil {
		return err
	}
	if len(v.Mounts) > 0 {
		return fmt.Errorf("remove volume %s: it is mounted by %d container(s)", r.Name, len(v.Mounts))
	}
	if err := unmountIfMounted(d.mountpoint(r.Name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", r.Name, err)
	}
	_ = os.Remove(d.mountpoint(r.Name))
	delete(d.state.Volumes, r.Name)
	if err := d.save(); err != nil {
		d.state.Volumes[r.Name] = v
		return err
	}
	// The record is gone first: a crash here leaves only unreferenced files, never a
	// volume whose data is half deleted.
	if err := os.RemoveAll(d.volumeDir(r.Name)); err != nil {
		d.log.Error("remove volume data", "volume", r.Name, "err", err)
	}
	d.log.Info("volume removed", "volume", r.Name)
	return nil
}

// Get returns the volume, or the engine's expected not-found error.
func (d *Driver) Get(r *volume.GetRequest) (*volume.GetResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(r.Name)
	if err != nil {
		return nil, err
	}
	return &volume.GetResponse{Volume: d.describe(r.Name, v)}, nil
}

// List returns every volume, sorted by name.
func (d *Driver) List() (*volume.ListResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.state.Volumes))
	for name := range d.state.Volumes {
		names = append(names, name)
	}
	sort.Strings(names)
	resp := &volume.ListResponse{Volumes: make([]*volume.Volume, 0, len(names))}
	for _, name := range names {
		resp.Volumes = append(resp.Volumes, d.describe(name, d.state.Volumes[name]))
	}
	return resp, nil
}

// describe is what `docker volume inspect` shows; the engine lists the options itself.
func (d *Driver) describe(name string, v *volumeState) *volume.Volume {
	status := map[string]any{"mounts": len(v.Mounts)}
	if d.status != nil {
		for k, val := range d.status(name) {
			status[k] = val
		}
	}
	if v.Filling {
		status["restore"] = "in progress"
		if v.FillProblem != "" {
			status["restore"] = "failed: " + v.FillProblem
		}
	}
	return &volume.Volume{
		Name:       name,
		Mountpoint: d.mountpoint(name),
		CreatedAt:  v.CreatedAt.Format(time.RFC3339),
		Status:     status,
	}
}

// Path returns the stable mountpoint; the engine would otherwise show the plugin's rootfs.
func (d *Driver) Path(r *volume.PathRequest) (*volume.PathResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.lookup(r.Name); err != nil {
		return nil, err
	}
	return &volume.PathResponse{Mountpoint: d.mountpoint(r.Name)}, nil
}

// Mount makes the volume visible to the engine and records the mount ID.
func (d *Driver) Mount(r *volume.MountRequest) (*volume.MountResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(r.Name)
	if err != nil {
		return nil, err
	}
	if v.Filling {
		// Failing the mount makes Swarm retry the task later, by which time the data is
		// there; a failed restore is tried again.
		problem := "restore in progress"
		if v.FillProblem != "" {
			problem = "restore failed (" + v.FillProblem + "), trying again"
			v.FillProblem = ""
			d.startFill(r.Name, v.fillOptions())
		}
		return nil, fmt.Errorf("volume %s is waiting for its data from the repository: %s", r.Name, problem)
	}
	if d.held[r.Name] {
		return nil, fmt.Errorf("volume %s is held for a snapshot (quiesce=stop): try again in a moment", r.Name)
	}
	if err := d.ensureMounted(r.Name); err != nil {
		return nil, fmt.Errorf("mount volume %s: %w", r.Name, err)
	}
	if !slices.Contains(v.Mounts, r.ID) {
		v.Mounts = append(v.Mounts, r.ID)
		if err := d.save(); err != nil {
			v.Mounts = v.Mounts[:len(v.Mounts)-1]
			return nil, err
		}
	}
	d.log.Debug("volume mounted", "volume", r.Name, "id", r.ID, "mounts", len(v.Mounts))
	return &volume.MountResponse{Mountpoint: d.mountpoint(r.Name)}, nil
}

// Unmount releases one mount ID; the last one takes the volume out of the engine's sight.
func (d *Driver) Unmount(r *volume.UnmountRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.lookup(r.Name)
	if err != nil {
		return err
	}
	i := slices.Index(v.Mounts, r.ID)
	if i < 0 {
		// The engine may repeat an unmount after a restart; that is not an error.
		return nil
	}
	v.Mounts = slices.Delete(v.Mounts, i, i+1)
	if len(v.Mounts) == 0 {
		if err := unmountIfMounted(d.mountpoint(r.Name)); err != nil {
			v.Mounts = append(v.Mounts, r.ID)
			return fmt.Errorf("unmount volume %s: %w", r.Name, err)
		}
	}
	if err := d.save(); err != nil {
		return err
	}
	d.log.Debug("volume unmounted", "volume", r.Name, "id", r.ID, "mounts", len(v.Mounts))
	return nil
}

// Capabilities: each node holds its own copy of a volume.
func (d *Driver) Capabilities() *volume.CapabilitiesResponse {
	return &volume.CapabilitiesResponse{Capabilities: volume.Capability{Scope: "local"}}
}

func (d *Driver) ensureMounted(name string) error {
	mp := d.mountpoint(name)
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return err
	}
	mounted, err := isMountpoint(mp)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	src := d.dataPath(name)
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("its data directory %s is missing", src)
	}
	return bindMount(src, mp)
}
