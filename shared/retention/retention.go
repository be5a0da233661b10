// Package retention decides which snapshots a keep policy keeps: the newest N, and the newest
// snapshot of each of the last N hours, days, weeks, months and years that have one.
package retention

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Policy says how many snapshots to keep per period; zero means no rule for that period.
type Policy struct {
	Last    int `json:",omitempty"`
	Hourly  int `json:",omitempty"`
	Daily   int `json:",omitempty"`
	Weekly  int `json:",omitempty"`
	Monthly int `json:",omitempty"`
	Yearly  int `json:",omitempty"`
}

// IsZero reports whether no retention rule is set.
func (r Policy) IsZero() bool { return r == Policy{} }

// String renders the retention in the form the `keep` option takes.
func (r Policy) String() string {
	var parts []string
	for _, f := range r.fields() {
		if *f.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", f.name, *f.n))
		}
	}
	return strings.Join(parts, ",")
}

type policyField struct {
	name string
	n    *int
}

func (r *Policy) fields() []policyField {
	return []policyField{
		{"last", &r.Last}, {"hourly", &r.Hourly}, {"daily", &r.Daily},
		{"weekly", &r.Weekly}, {"monthly", &r.Monthly}, {"yearly", &r.Yearly},
	}
}

// ParsePolicy parses a rule list such as "last=24,daily=7,weekly=4".
func ParsePolicy(s string) (Policy, error) {
	var r Policy
	if strings.TrimSpace(s) == "" {
		return r, nil
	}
	fields := r.fields()
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return Policy{}, fmt.Errorf("%q is not RULE=N (rules: %s)", item, policyNames(fields))
		}
		var target *int
		for _, f := range fields {
			if f.name == k {
				target = f.n
			}
		}
		if target == nil {
			return Policy{}, fmt.Errorf("unknown rule %q (rules: %s)", k, policyNames(fields))
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Policy{}, fmt.Errorf("%s=%s: the count must be a whole number of at least 1", k, v)
		}
		*target = n
	}
	return r, nil
}

func policyNames(fields []policyField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// Item is anything with a time; Apply works on indexes into a slice of them.
type Item interface {
	When() time.Time
}

// Decision says, for one item, whether it stays and why.
type Decision struct {
	Keep    bool
	Reasons []string // the rules that keep it, such as "daily"
}

// Apply decides for every item; the policy must have at least one rule.
func Apply[T Item](items []T, policy Policy) ([]Decision, error) {
	if policy.IsZero() {
		return nil, fmt.Errorf("no retention rule given: keep everything, or give --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly or --keep-yearly")
	}
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	// Newest first.
	sort.SliceStable(order, func(a, b int) bool { return items[order[a]].When().After(items[order[b]].When()) })
	out := make([]Decision, len(items))
	keep := func(i int, why string) {
		out[i].Keep = true
		out[i].Reasons = append(out[i].Reasons, why)
	}
	for n, i := range order {
		if n < policy.Last {
			keep(i, "last")
		}
	}
	buckets := []struct {
		name  string
		count int
		key   func(time.Time) string
	}{
		{"hourly", policy.Hourly, func(t time.Time) string { return t.Format("2006-01-02T15") }},
		{"daily", policy.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", policy.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{"monthly", policy.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", policy.Yearly, func(t time.Time) string { return t.Format("2006") }},
	}
	for _, b := range buckets {
		if b.count == 0 {
			continue
		}
		seen := map[string]bool{}
		for _, i := range order {
			k := b.key(items[i].When().UTC())
			if seen[k] {
				continue
			}
			if len(seen) == b.count {
				break
			}
			seen[k] = true
			keep(i, b.name)
		}
	}
	return out, nil
}
