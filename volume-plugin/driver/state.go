package driver

import (
	"github.com/swarmbackup/swarmbackup/shared/volumeopts"

	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/atomicfile"
)

const stateVersion = 1

// state is what the driver persists: enough to serve every volume again after a plugin or
// engine restart, including which mounts are still held.
type state struct {
	Version int                     `json:"version"`
	Volumes map[string]*volumeState `json:"volumes"`
}

type volumeState struct {
	CreatedAt time.Time         `json:"created_at"`
	Options   map[string]string `json:"options,omitempty"`
	// Mounts holds the engine's mount IDs that have not been unmounted yet.
	Mounts []string `json:"mounts,omitempty"`
	// Filling is set while a volume created with restore= waits for its data; mounts
	// fail until then, so that no task starts on a volume that is empty or half written.
	Filling     bool   `json:"filling,omitempty"`
	FillProblem string `json:"fill_problem,omitempty"`
	// FillFrom is the snapshot an armed restore fills the volume from, over its options.
	FillFrom string `json:"fill_from,omitempty"`
}

// fillOptions says where a filling volume's data comes from: its options, unless a restore
// of a set armed it with the set's snapshot.
func (v *volumeState) fillOptions() volumeopts.Options {
	opts, _ := volumeopts.Parse(v.Options)
	if v.FillFrom != "" {
		opts.Restore, opts.From = v.FillFrom, ""
	}
	return opts
}

func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &state{Version: stateVersion, Volumes: map[string]*volumeState{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read volume state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("volume state %s is damaged: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("volume state %s has version %d; this plugin reads version %d", path, s.Version, stateVersion)
	}
	if s.Volumes == nil {
		s.Volumes = map[string]*volumeState{}
	}
	return &s, nil
}

// save replaces the state file atomically: a crash leaves either the old or the new file.
func (s *state) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o600)
}
