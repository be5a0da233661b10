package retention

import (
	"strings"
	"testing"
	"time"
)

type item time.Time

func (i item) When() time.Time { return time.Time(i) }

// hourlyFor returns one item an hour for days days, ending at end; the newest comes first.
func hourlyFor(days int, end time.Time) []item {
	var out []item
	for h := 0; h < days*24; h++ {
		out = append(out, item(end.Add(-time.Duration(h)*time.Hour)))
	}
	return out
}

func kept(items []item, ds []Decision) []time.Time {
	var out []time.Time
	for i, d := range ds {
		if d.Keep {
			out = append(out, time.Time(items[i]))
		}
	}
	return out
}

func TestLastAndDaily(t *testing.T) {
	end := time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)
	items := hourlyFor(10, end)
	ds, err := Apply(items, Policy{Last: 3, Daily: 7})
	if err != nil {
		t.Fatal(err)
	}
	got := kept(items, ds)
	// The 3 newest, plus the newest of each of the 7 newest days; the newest of today is
	// among the 3 newest already.
	if len(got) != 3+6 {
		t.Fatalf("kept %d: %v", len(got), got)
	}
	days := map[string]bool{}
	for _, k := range got {
		days[k.Format("2006-01-02")] = true
		if k.Before(end.AddDate(0, 0, -7)) {
			t.Errorf("kept %v, older than 7 days", k)
		}
	}
	if len(days) != 7 {
		t.Errorf("kept snapshots from %d days, want 7", len(days))
	}
	if !strings.Contains(strings.Join(ds[0].Reasons, ","), "last") || !strings.Contains(strings.Join(ds[0].Reasons, ","), "daily") {
		t.Errorf("the newest is kept for %v", ds[0].Reasons)
	}
}

func TestWeeklyAndMonthlyPickTheNewestOfEachPeriod(t *testing.T) {
	end := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var items []item
	for d := 0; d < 120; d++ {
		items = append(items, item(end.AddDate(0, 0, -d)))
	}
	ds, _ := Apply(items, Policy{Weekly: 4, Monthly: 3})
	got := kept(items, ds)
	months := map[string]time.Time{}
	for _, k := range got {
		m := k.Format("2006-01")
		if prev, ok := months[m]; !ok || k.After(prev) {
			months[m] = k
		}
	}
	for _, m := range []string{"2026-11", "2026-10", "2026-09"} {
		if _, ok := months[m]; !ok {
			t.Errorf("no snapshot kept for %s", m)
		}
	}
	if sep := months["2026-09"]; sep.Day() != 30 {
		t.Errorf("September keeps the %v, want its newest (the 30th)", sep)
	}
	if len(got) > 4+3 {
		t.Errorf("kept %d", len(got))
	}
}

func TestNoRuleIsRefused(t *testing.T) {
	if _, err := Apply([]item{item(time.Now())}, Policy{}); err == nil {
		t.Error("an empty policy was accepted")
	}
}
