package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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
	out := fs.String("out", "", "a file to append the report to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data := filepath.Join(e.work, "prune-data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range *files {
		p := filepath.Join(data, fmt.Sprintf("d%02d", i%64), fmt.Sprintf("f%05d", i))
		if err := writeRandom(p, rng, 128<<10); err != nil {
			return err
		}
	}
	defer os.RemoveAll(data)
	client, err := e.client()
	if err != nil {
		return err
	}
	type space struct{ before, after int64 }
	type contender struct {
		name   string
		backup []string
		prune  []string
		init   []string
		bucket string
		space
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
		c.bucket = fmt.Sprintf("bench-prune-%d-%s", stamp, c.name)
		if c.name == "swarmbackup" {
			c.backup = self("ours", "backup", c.bucket, data)
			c.prune = self("ours", "prune", c.bucket, data)
		}
		if err := client.MakeBucket(ctx, c.bucket, minio.MakeBucketOptions{}); err != nil {
			return fmt.Errorf("create bucket %s: %w", c.bucket, err)
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
		return err
	}
	if err := step("backup", func(c *contender) []string { return c.backup }); err != nil {
		return err
	}
	var kept int64
	for i := range *files {
		if i%2 == 0 {
			if err := os.Remove(filepath.Join(data, fmt.Sprintf("d%02d", i%64), fmt.Sprintf("f%05d", i))); err != nil {
				return err
			}
		} else {
			kept += 128 << 10
		}
	}
	if err := step("second backup", func(c *contender) []string { return c.backup }); err != nil {
		return err
	}
	for _, c := range cs {
		c.before = bucketSize(ctx, client, c.bucket)
	}
	if err := step("prune", func(c *contender) []string { return c.prune }); err != nil {
		return err
	}
	var report strings.Builder
	fmt.Fprintf(&report, "\n## Space given back by prune\n\n`make bench-prune` on %s, %s: %d files of 128 KiB (random, so incompressible) backed up, half of them deleted, backed up again; then the first backup forgotten and pruned, each tool repacking partly used packs down to 5%% unused (both defaults). The kept backup holds %.0f MiB.\n\n", cpuModel(), time.Now().UTC().Format("2006-01-02"), *files, mib(kept))
	fmt.Fprintf(&report, "| tool | bucket before prune | after | after / kept data |\n|---|---|---|---|\n")
	line := fmt.Sprintf("prune: files=%d kept_mib=%.0f", *files, mib(kept))
	for _, c := range cs {
		c.after = bucketSize(ctx, client, c.bucket)
		fmt.Fprintf(&report, "| %s | %.1f MiB | %.1f MiB | %.3f |\n", c.name, mib(c.before), mib(c.after), float64(c.after)/float64(kept))
		line += fmt.Sprintf(" %s_mib=%.1f", strings.ReplaceAll(c.name, "swarmbackup", "ours"), mib(c.after))
	}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteString(report.String()); err != nil {
			return err
		}
	} else {
		fmt.Fprint(os.Stderr, report.String())
	}
	fmt.Println(line)
	return nil
}
