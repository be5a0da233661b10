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

func TestBenchLineSaysNaForToolsLeftOut(t *testing.T) {
	run := func(full, incr, restore float64, rssMiB int64) *results {
		s := func(sec float64) []sample { return []sample{{seconds: sec, rssKiB: rssMiB << 10}} }
		return &results{full: s(full), incr: s(incr), restore: s(restore),
			bucketFull: []int64{700 << 20}, incrUpload: []int64{10 << 20}, changed: []int64{10 << 20}}
	}
	all := map[string]*results{
		"swarmbackup": run(3.5, 0.4, 2, 159), "tar+zstd": run(5.25, 5, 3, 100),
		"restic": run(9, 1.6, 5, 260), "kopia": run(8, 1, 25, 350),
	}
	for _, c := range []struct {
		peers []string
		want  string
	}{
		{[]string{"swarmbackup", "tar+zstd", "restic", "kopia"},
			"bench: full_vs_tar=1.50 full_vs_kopia=2.29 full_vs_restic=2.57 incr_vs_best=2.50 restore_vs_best=1.50 rss_mib=159"},
		{[]string{"swarmbackup", "tar+zstd"},
			"bench: full_vs_tar=1.50 full_vs_kopia=na full_vs_restic=na incr_vs_best=na restore_vs_best=1.50 rss_mib=159"},
		{[]string{"restic"},
			"bench: full_vs_tar=na full_vs_kopia=na full_vs_restic=na incr_vs_best=na restore_vs_best=na rss_mib=na"},
	} {
		var ps []peer
		res := map[string]*results{}
		for _, name := range c.peers {
			ps = append(ps, peer{name: name, restore: true})
			res[name] = all[name]
		}
		if got := render(ps, res, 1).line; got != c.want {
			t.Errorf("peers %v:\n got %s\nwant %s", c.peers, got, c.want)
		}
	}
}
