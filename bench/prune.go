package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// pruneSpace measures the space prune gives back: `bench prune-space`. A data set of files
// is backed up, half of the files are deleted, it is backed up again, and the first backup
// is forgotten and pruned; the bucket's size before and after, ours beside restic's (both
// repacking down to 5% unused, their defaults), against what the kept backup holds.
func pruneSpace(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("prune-space", flag.ContinueOnError)
	files := fs.Int("files", 2048, "files of 128 KiB in the data set")
	runs := fs.Int("runs", 3, "runs; medians are reported")
	out := fs.String("out", "", "a file to append the report to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkReport(*out); err != nil {
		return err
	}
	type sizes struct{ before, after []int64 }
	got := map[string]*sizes{}
	var names []string
	var kept int64
	for r := range *runs {
		res, k, err := pruneRun(ctx, e, *files, r)
		if err != nil {
			return err
		}
		kept = k
		for _, c := range res {
			if got[c.name] == nil {
				got[c.name] = &sizes{}
				names = append(names, c.name)
			}
			got[c.name].before = append(got[c.name].before, c.before)
			got[c.name].after = append(got[c.name].after, c.after)
			fmt.Fprintf(os.Stderr, "bench: run %d %-12s %.1f MiB -> %.1f MiB\n", r+1, c.name, mib(c.before), mib(c.after))
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "\n## Space given back by prune\n\n`make bench-prune` on %s, %s: %d files of 128 KiB (random, so incompressible) backed up, half of them deleted, backed up again; then the first backup forgotten and pruned, each tool repacking partly used packs down to 5%% unused (both defaults). The kept backup holds %.0f MiB. Medians of %d runs, the smallest and largest in brackets: how the deleted files fall into packs varies from run to run.\n\n", cpuModel(), time.Now().UTC().Format("2006-01-02"), *files, mib(kept), *runs)
	fmt.Fprintf(&report, "| tool | bucket before prune | after | after / kept data |\n|---|---|---|---|\n")
	line := fmt.Sprintf("prune: files=%d kept_mib=%.0f", *files, mib(kept))
	for _, name := range names {
		g := got[name]
		lo, hi := slices.Min(g.after), slices.Max(g.after)
		after := medianInt(g.after)
		fmt.Fprintf(&report, "| %s | %.1f MiB | %.1f MiB (%.1f-%.1f) | %.3f |\n", name, mib(medianInt(g.before)), mib(after), mib(lo), mib(hi), float64(after)/float64(kept))
		line += fmt.Sprintf(" %s_mib=%.1f", strings.ReplaceAll(name, "swarmbackup", "ours"), mib(after))
	}
	if err := appendReport(*out, report.String()); err != nil {
		return err
	}
	fmt.Println(line)
	return nil
}

// contender is one tool in a prune-space run, and the bucket's size before and after prune.
type contender struct {
	name                string
	init, backup, prune []string
	bucket              string
	before, after       int64
}

// pruneRun is one run of pruneSpace, with a data set of its own.
func pruneRun(ctx context.Context, e *env, files, run int) ([]*contender, int64, error) {
	data := filepath.Join(e.work, "prune-data")
	if err := os.RemoveAll(data); err != nil {
		return nil, 0, err
	}
	rng := rand.New(rand.NewPCG(7, uint64(run)))
	for i := range files {
		p := filepath.Join(data, fmt.Sprintf("d%02d", i%64), fmt.Sprintf("f%05d", i))
		if err := writeRandom(p, rng, 128<<10); err != nil {
			return nil, 0, err
		}
	}
	defer os.RemoveAll(data)
	client, err := e.client()
	if err != nil {
		return nil, 0, err
	}
	stamp := time.Now().Unix()
	cs := []*contender{{name: "swarmbackup"}}
	if e.restic != "" {
		cs = append(cs, &contender{name: "restic",
			init:   []string{e.restic, "init", "-q"},
			backup: []string{e.restic, "backup", "-q", data},
			prune:  []string{e.restic, "forget", "-q", "--keep-last", "1", "--prune"},
		})
	}
	for _, c := range cs {
		c.bucket = fmt.Sprintf("bench-prune-%d-%d-%s", stamp, run, c.name)
		if c.name == "swarmbackup" {
			c.backup = self("ours", "backup", c.bucket, data)
			c.prune = self("ours", "prune", c.bucket, data)
		}
		if err := client.MakeBucket(ctx, c.bucket, minio.MakeBucketOptions{}); err != nil {
			return nil, 0, fmt.Errorf("create bucket %s: %w", c.bucket, err)
		}
		defer removeBucket(ctx, client, c.bucket)
	}
	step := func(what string, argv func(*contender) []string) error {
		for _, c := range cs {
			if argv(c) == nil {
				continue
			}
			if _, err := runTimed(argv(c), e.peerEnv(c.name, c.bucket, 0)); err != nil {
				return fmt.Errorf("%s %s: %w", c.name, what, err)
			}
		}
		return nil
	}
	if err := step("init", func(c *contender) []string { return c.init }); err != nil {
		return nil, 0, err
	}
	if err := step("backup", func(c *contender) []string { return c.backup }); err != nil {
		return nil, 0, err
	}
	var kept int64
	for i := range files {
		if i%2 == 0 {
			if err := os.Remove(filepath.Join(data, fmt.Sprintf("d%02d", i%64), fmt.Sprintf("f%05d", i))); err != nil {
				return nil, 0, err
			}
		} else {
			kept += 128 << 10
		}
	}
	if err := step("second backup", func(c *contender) []string { return c.backup }); err != nil {
		return nil, 0, err
	}
	for _, c := range cs {
		c.before = bucketSize(ctx, client, c.bucket)
	}
	if err := step("prune", func(c *contender) []string { return c.prune }); err != nil {
		return nil, 0, err
	}
	for _, c := range cs {
		c.after = bucketSize(ctx, client, c.bucket)
	}
	return cs, kept, nil
}

// checkReport checks, before a run of many minutes, that its report can be appended to out:
// to an existing file (a mistyped name is not created).
func checkReport(out string) error {
	if out == "" {
		return nil
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("-out: the report is appended to an existing file: %w", err)
	}
	return f.Close()
}

// appendReport appends a report's section to the file out, or writes it to stderr when out
// is empty.
func appendReport(out, section string) error {
	if out == "" {
		_, err := fmt.Fprint(os.Stderr, section)
		return err
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(section); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
