package volumeopts

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/retention"
)

func TestParseAcceptsTheContractOptions(t *testing.T) {
	o, err := Parse(map[string]string{
		"schedule": "@every 15m",
		"keep":     "last=24,daily=7,weekly=4",
		"quiesce":  "exec",
		"pre":      "sync",
		"post":     "true",
		"restore":  "latest",
		"from":     "db-data",
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.Keep != (retention.Policy{Last: 24, Daily: 7, Weekly: 4}) {
		t.Errorf("keep = %+v", o.Keep)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if next := o.Cron.Next(start); next.Sub(start) != 15*time.Minute {
		t.Errorf("@every 15m fires after %s", next.Sub(start))
	}
	if o.Keep.String() != "last=24,daily=7,weekly=4" {
		t.Errorf("keep renders as %q", o.Keep.String())
	}
}

func TestParseDefaults(t *testing.T) {
	o, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Quiesce != QuiesceNone || o.Restore != RestoreNever || o.Cron != nil || !o.Keep.IsZero() {
		t.Errorf("defaults = %+v", o)
	}
}

func TestParseCronForms(t *testing.T) {
	for _, s := range []string{"@hourly", "@daily", "*/5 * * * *", "0 3 * * 1-5", "@every 10s"} {
		if _, err := Parse(map[string]string{"schedule": s}); err != nil {
			t.Errorf("schedule %q: %v", s, err)
		}
	}
}

func TestParseRejectsBadOptionsWithTheOptionNamed(t *testing.T) {
	cases := []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"size": "10G"}, `unknown driver option "size"`},
		{map[string]string{"schedule": "every hour"}, "driver option schedule"},
		{map[string]string{"keep": "last=0"}, "at least 1"},
		{map[string]string{"keep": "forever=1"}, `unknown rule "forever"`},
		{map[string]string{"keep": "last"}, "is not RULE=N"},
		{map[string]string{"quiesce": "freeze"}, "not one of none, pause, stop, exec"},
		{map[string]string{"pre": "sync"}, "need quiesce=exec"},
		{map[string]string{"quiesce": "exec"}, "needs a pre or post"},
		{map[string]string{"timeout": "5"}, "driver option timeout"},
		{map[string]string{"timeout": "2h"}, "not between 1s and 1h"},
		{map[string]string{"restore": "yesterday"}, "not never, latest or a snapshot ID"},
		{map[string]string{"from": "other"}, "from needs restore"},
		{map[string]string{"restore": "latest", "from": "../etc"}, "not a volume name"},
	}
	for _, c := range cases {
		_, err := Parse(c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%v) = %v, want an error containing %q", c.opts, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%v): error spans lines: %q", c.opts, err)
		}
	}
}

// A volume filled on creation follows its task: one chain across nodes. Any other volume is
// its node's own, unless the operator says otherwise.
func TestScopeFollowsTheRestoreOptionUnlessGiven(t *testing.T) {
	for _, c := range []struct {
		raw  map[string]string
		want string
	}{
		{nil, "node"},
		{map[string]string{"restore": "latest"}, "cluster"},
		{map[string]string{"restore": "latest", "scope": "node"}, "node"},
		{map[string]string{"scope": "cluster"}, "cluster"},
	} {
		o, err := Parse(c.raw)
		if err != nil || o.Scope != c.want {
			t.Errorf("%v: scope %q (%v), want %q", c.raw, o.Scope, err, c.want)
		}
	}
	if _, err := Parse(map[string]string{"scope": "global"}); err == nil || !strings.Contains(err.Error(), "driver option scope") {
		t.Errorf("scope=global: %v", err)
	}
}
