package main

import "testing"

func TestScaleLineSaysNaForToolsLeftOut(t *testing.T) {
	run := func(full, incr, restore float64, rssMiB int64) *results {
		s := func(sec float64) []sample { return []sample{{seconds: sec, rssKiB: rssMiB << 10}} }
		return &results{full: s(full), incr: s(incr), restore: s(restore)}
	}
	ours, restic, kopia := run(16, 3.3, 40, 221), run(42, 21, 94, 838), run(80, 11, 714, 1204)
	for _, c := range []struct {
		peers []string
		want  string
	}{
		{[]string{"swarmbackup", "restic", "kopia"},
			"scale: files=100 full_vs_best=2.62 incr_vs_best=3.33 restore_vs_best=2.35 rss_mib=221 peer_rss_mib=838"},
		{[]string{"swarmbackup"},
			"scale: files=100 full_vs_best=na incr_vs_best=na restore_vs_best=na rss_mib=221 peer_rss_mib=na"},
		{[]string{"kopia"},
			"scale: files=100 full_vs_best=na incr_vs_best=na restore_vs_best=na rss_mib=na peer_rss_mib=1204"},
	} {
		var ps []peer
		res := map[string]*results{}
		for _, name := range c.peers {
			ps = append(ps, peer{name: name})
			res[name] = map[string]*results{"swarmbackup": ours, "restic": restic, "kopia": kopia}[name]
		}
		if got := scaleLine(100, ps, res); got != c.want {
			t.Errorf("peers %v:\n got %s\nwant %s", c.peers, got, c.want)
		}
	}
}
