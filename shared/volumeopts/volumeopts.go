// Package volumeopts parses and validates the driver options of a swarmbackup volume
// (`docker volume create -d swarmbackup -o K=V`, or `driver_opts:` in a stack file).
package volumeopts

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Quiesce modes: how the containers using a volume are held still while it is captured.
const (
	QuiesceNone  = "none"
	QuiescePause = "pause"
	QuiesceStop  = "stop"
	QuiesceExec  = "exec"
)

// Restore policies besides a snapshot ID.
const (
	RestoreNever  = "never"
	RestoreLatest = "latest"
)

// Options are the validated driver options of one volume.
type Options struct {
	// Schedule is the snapshot schedule as given ("" for none); Cron is its parsed form.
	Schedule string
	Cron     cron.Schedule `json:"-"`
	Keep     retention.Policy
	Quiesce  string
	Pre      string
	Post     string
	// Timeout bounds each pre and post command.
	Timeout time.Duration
	// Restore is "never", "latest" or a snapshot ID.
	Restore string
	// From names the volume whose snapshots fill this one ("" means the volume itself).
	From string
	// Scope says which volumes of this name are this one: snapshot.ScopeCluster (it follows
	// its task; one chain across nodes) or snapshot.ScopeNode (each node's is its own).
	// Without the option: cluster when the volume is filled on creation (restore), which is
	// what following a task means; node otherwise.
	Scope string
}

// ParseSchedule accepts five-field cron expressions and the descriptors @hourly, @daily,
// @weekly, @monthly, @yearly and @every DURATION.
func ParseSchedule(s string) (cron.Schedule, error) {
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("%q is neither a cron expression nor @hourly/@daily/@every DURATION: %w", s, err)
	}
	return sched, nil
}

var (
	// The engine's own rule for volume names.
	volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	snapshotID = regexp.MustCompile(`^[0-9a-f]{8,64}$`)
)

// ValidVolumeName reports whether name is a volume name the engine accepts.
func ValidVolumeName(name string) bool { return volumeName.MatchString(name) }

var known = []string{"schedule", "keep", "quiesce", "pre", "post", "timeout", "restore", "from", "scope"}

// DefaultTimeout bounds a quiesce step when the timeout option is not given.
const DefaultTimeout = time.Minute

// Parse validates raw driver options. Every error names the option and what it accepts.
func Parse(raw map[string]string) (Options, error) {
	o := Options{Quiesce: QuiesceNone, Restore: RestoreNever, Timeout: DefaultTimeout}
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		var err error
		switch k {
		case "schedule":
			o.Schedule = v
			o.Cron, err = ParseSchedule(v)
		case "keep":
			o.Keep, err = retention.ParsePolicy(v)
		case "quiesce":
			switch v {
			case QuiesceNone, QuiescePause, QuiesceStop, QuiesceExec:
				o.Quiesce = v
			default:
				err = fmt.Errorf("%q is not one of none, pause, stop, exec", v)
			}
		case "pre":
			o.Pre = v
		case "post":
			o.Post = v
		case "timeout":
			o.Timeout, err = time.ParseDuration(v)
			if err == nil && (o.Timeout < time.Second || o.Timeout > time.Hour) {
				err = fmt.Errorf("%s is not between 1s and 1h", v)
			}
		case "restore":
			if v != RestoreNever && v != RestoreLatest && !snapshotID.MatchString(v) {
				err = fmt.Errorf("%q is not never, latest or a snapshot ID", v)
			}
			o.Restore = v
		case "scope":
			if v != snapshot.ScopeCluster && v != snapshot.ScopeNode {
				err = fmt.Errorf("%q is not cluster or node", v)
			}
			o.Scope = v
		case "from":
			if !ValidVolumeName(v) {
				err = fmt.Errorf("%q is not a volume name", v)
			}
			o.From = v
		default:
			return Options{}, fmt.Errorf("unknown driver option %q (known: %s)", k, strings.Join(known, ", "))
		}
		if err != nil {
			return Options{}, fmt.Errorf("driver option %s: %w", k, err)
		}
	}
	if (o.Pre != "" || o.Post != "") && o.Quiesce != QuiesceExec {
		return Options{}, fmt.Errorf("driver options pre and post need quiesce=exec")
	}
	if o.Quiesce == QuiesceExec && o.Pre == "" && o.Post == "" {
		return Options{}, fmt.Errorf("driver option quiesce=exec needs a pre or post command")
	}
	if o.From != "" && o.Restore == RestoreNever {
		return Options{}, fmt.Errorf("driver option from needs restore=latest or restore=SNAPSHOT")
	}
	if o.Scope == "" {
		o.Scope = snapshot.ScopeNode
		if o.Restore != RestoreNever {
			o.Scope = snapshot.ScopeCluster
		}
	}
	return o, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
