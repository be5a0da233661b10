// Package volumeopts parses and validates the driver options of a swarmbackup volume
// (`docker volume create -d swarmbackup -o K=V`, or `driver_opts:` in a stack file).
package volumeopts

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
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
	Keep     Retention
	Quiesce  string
	Pre      string
	Post     string
	// Restore is "never", "latest" or a snapshot ID.
	Restore string
	// From names the volume whose snapshots fill this one ("" means the volume itself).
	From string
}

// Retention says how many snapshots to keep per period; zero means no rule for that period.
type Retention struct {
	Last    int `json:",omitempty"`
	Hourly  int `json:",omitempty"`
	Daily   int `json:",omitempty"`
	Weekly  int `json:",omitempty"`
	Monthly int `json:",omitempty"`
	Yearly  int `json:",omitempty"`
}

// IsZero reports whether no retention rule is set.
func (r Retention) IsZero() bool { return r == Retention{} }

// String renders the retention in the form the `keep` option takes.
func (r Retention) String() string {
	var parts []string
	for _, f := range r.fields() {
		if *f.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", f.name, *f.n))
		}
	}
	return strings.Join(parts, ",")
}

type retentionField struct {
	name string
	n    *int
}

func (r *Retention) fields() []retentionField {
	return []retentionField{
		{"last", &r.Last}, {"hourly", &r.Hourly}, {"daily", &r.Daily},
		{"weekly", &r.Weekly}, {"monthly", &r.Monthly}, {"yearly", &r.Yearly},
	}
}

// ParseRetention parses a rule list such as "last=24,daily=7,weekly=4".
func ParseRetention(s string) (Retention, error) {
	var r Retention
	if strings.TrimSpace(s) == "" {
		return r, nil
	}
	fields := r.fields()
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return Retention{}, fmt.Errorf("%q is not RULE=N (rules: %s)", item, retentionNames(fields))
		}
		var target *int
		for _, f := range fields {
			if f.name == k {
				target = f.n
			}
		}
		if target == nil {
			return Retention{}, fmt.Errorf("unknown rule %q (rules: %s)", k, retentionNames(fields))
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Retention{}, fmt.Errorf("%s=%s: the count must be a whole number of at least 1", k, v)
		}
		*target = n
	}
	return r, nil
}

func retentionNames(fields []retentionField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
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

var known = []string{"schedule", "keep", "quiesce", "pre", "post", "restore", "from"}

// Parse validates raw driver options. Every error names the option and what it accepts.
func Parse(raw map[string]string) (Options, error) {
	o := Options{Quiesce: QuiesceNone, Restore: RestoreNever}
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		var err error
		switch k {
		case "schedule":
			o.Schedule = v
			o.Cron, err = ParseSchedule(v)
		case "keep":
			o.Keep, err = ParseRetention(v)
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
		case "restore":
			if v != RestoreNever && v != RestoreLatest && !snapshotID.MatchString(v) {
				err = fmt.Errorf("%q is not never, latest or a snapshot ID", v)
			}
			o.Restore = v
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
