// Command bench measures swarmbackup's engine against its peers on one generated data set
// and one MinIO server: full backup, incremental backup after a 1% change, restore, peak
// memory and bucket size. `make bench` runs it and writes BENCHMARKS.md.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const defaultWork = "/var/tmp/swarmbackup-bench"

// env is what every part of the benchmark needs: where MinIO is, its keys, the peers' binaries.
type env struct {
	endpoint, access, secret string
	password                 string
	restic, kopia            string
	work                     string
}

func (e *env) client() (*minio.Client, error) {
	return minio.New(e.endpoint, &minio.Options{Creds: credentials.NewStaticV4(e.access, e.secret, "")})
}

// localOnly runs the parts that need no MinIO: the index's memory.
func localOnly(ctx context.Context, args []string) (bool, error) {
	// Apart from the other parts' directory, which each empties: the large repository
	// is made once.
	work := os.Getenv("BENCH_INDEX_WORK")
	if work == "" {
		work = defaultWork + "-index"
	}
	switch {
	case len(args) > 0 && args[0] == "index":
		return true, indexMemory(ctx, work, args[1:])
	case len(args) == 5 && args[0] == "index-open":
		blobs, err1 := strconv.Atoi(args[3])
		forks, err2 := strconv.Atoi(args[4])
		if err := errors.Join(err1, err2); err != nil {
			return true, err
		}
		return true, indexOpen(ctx, args[1], args[2], blobs, forks)
	}
	return false, nil
}

func loadEnv() (*env, error) {
	e := &env{
		restic:   os.Getenv("BENCH_RESTIC"),
		kopia:    os.Getenv("BENCH_KOPIA"),
		work:     os.Getenv("BENCH_WORK"),
		password: "bench-password",
	}
	u, err := url.Parse(os.Getenv("SWARMBACKUP_LAB_MINIO"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("SWARMBACKUP_LAB_MINIO is not set: start MinIO with `scripts/lab minio`")
	}
	e.endpoint = u.Host
	f, err := os.Open(os.Getenv("SWARMBACKUP_LAB_MINIO_ENV"))
	if err != nil {
		return nil, fmt.Errorf("MinIO keys: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "MINIO_ROOT_USER":
			e.access = v
		case "MINIO_ROOT_PASSWORD":
			e.secret = v
		}
	}
	if e.work == "" {
		e.work = defaultWork
	}
	return e, nil
}

func main() {
	ctx := context.Background()
	if done, err := localOnly(ctx, os.Args[1:]); done {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	e, err := loadEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"run"}
	}
	switch {
	case args[0] == "run":
		err = run(ctx, e, args[1:])
	case args[0] == "scale":
		err = scale(ctx, e, args[1:])
	case (args[0] == "scale-gen" || args[0] == "scale-mutate") && len(args) == 3:
		var files int
		if _, err = fmt.Sscan(args[2], &files); err == nil {
			if args[0] == "scale-gen" {
				err = generateScale(args[1], files)
			} else {
				err = mutateScale(args[1], files)
			}
		}
	case args[0] == "prune-space":
		err = pruneSpace(ctx, e, args[1:])
	case args[0] == "gen" && len(args) == 2:
		err = generate(args[1], 1)
	case args[0] == "mutate" && len(args) == 3:
		var round uint64
		if _, err = fmt.Sscan(args[2], &round); err == nil {
			var changed int64
			changed, err = mutate(args[1], round)
			fmt.Println(changed)
		}
	case args[0] == "ours" && len(args) == 4:
		if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
			f, _ := os.Create(fmt.Sprintf("%s.%s", path, args[1]))
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		// As the plugin and the CLI do: collect garbage before the heap doubles.
		if os.Getenv("BENCH_NOLIMIT") == "" {
			debug.SetMemoryLimit(memoryLimit)
		}
		err = ours(ctx, e, args[1], args[2], args[3])
	case args[0] == "tar" && len(args) == 4:
		err = tarPeer(ctx, e, args[1], args[2], args[3])
	case args[0] == "raw" && len(args) == 4:
		err = rawUpload(ctx, e, args[2], args[3])
	case args[0] == "kopia-restore-latest" && len(args) == 2:
		err = kopiaRestoreLatest(e, args[1])
	default:
		err = fmt.Errorf("usage: bench [run [-runs N] [-out FILE]]")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const memoryLimit = 160 << 20

// sample is one timed step of one peer.
type sample struct {
	seconds float64
	rssKiB  int64
}

type results struct {
	full, incr, restore []sample
	bucketFull          []int64 // bytes in the bucket after the full backup
	incrUpload          []int64 // bytes the incremental backup added
	changed             []int64
}

func run(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	runs := fs.Int("runs", 3, "runs per peer; medians are reported")
	out := fs.String("out", "BENCHMARKS.md", "the report to write")
	only := fs.String("peers", "", "the tools to run, comma-separated; all when empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data := filepath.Join(e.work, "data")
	if err := os.RemoveAll(e.work); err != nil {
		return err
	}
	// Generating and changing the data set run in child processes: a child's peak RSS starts
	// from its parent's, so this process must stay small.
	fmt.Fprintf(os.Stderr, "bench: generating the data set (%d MiB) in %s\n", datasetBytes>>20, data)
	if _, err := runTimed(self("gen", data), os.Environ()); err != nil {
		return err
	}
	var ps []peer
	for _, p := range peers(e) {
		if *only == "" || slices.Contains(strings.Split(*only, ","), p.name) {
			ps = append(ps, p)
		}
	}
	res := map[string]*results{}
	for _, p := range ps {
		res[p.name] = &results{}
	}
	client, err := e.client()
	if err != nil {
		return err
	}
	// Other buckets slow MinIO down during the timed steps: with 16 GB of them our full backups
	// took 3.68-4.72 s, against 3.46-3.93 s on an empty MinIO.
	if others, err := client.ListBuckets(ctx); err == nil && len(others) > 0 {
		fmt.Fprintf(os.Stderr, "bench: MinIO holds %d bucket(s) of other work; for steadier figures start from an empty one (scripts/lab down)\n", len(others))
	}
	// Buckets go after the last run: MinIO removes a deleted bucket's objects in the background,
	// and would do so during the next run's timed steps.
	var made []string
	defer func() {
		for _, b := range made {
			removeBucket(ctx, client, b)
		}
	}()
	for r := range *runs {
		buckets := map[string]string{}
		order := rotated(ps, r)
		for _, p := range order {
			b := fmt.Sprintf("bench-%d-%s-%d", time.Now().Unix(), strings.NewReplacer(" ", "", "+", "").Replace(p.name), r)
			buckets[p.name] = b
			if err := client.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
			made = append(made, b)
			peerEnv := e.peerEnv(p.name, b, r)
			for _, argv := range initOf(p, e, b) {
				if _, err := runTimed(argv, peerEnv); err != nil {
					return fmt.Errorf("%s init: %w", p.name, err)
				}
			}
			settle()
			s, err := runAll(p.backupCmds(e, b, data), peerEnv)
			if err != nil {
				return fmt.Errorf("%s full backupCmds: %w", p.name, err)
			}
			res[p.name].full = append(res[p.name].full, s)
			res[p.name].bucketFull = append(res[p.name].bucketFull, bucketSize(ctx, client, b))
			fmt.Fprintf(os.Stderr, "bench: run %d %-12s full    %6.2fs %5d MiB RSS\n", r+1, p.name, s.seconds, s.rssKiB>>10)
		}
		out, err := exec.Command(self("mutate", data, fmt.Sprint(r))[0], "mutate", data, fmt.Sprint(r)).Output()
		if err != nil {
			return fmt.Errorf("change the data set: %w", err)
		}
		var changed int64
		if _, err := fmt.Sscan(string(out), &changed); err != nil {
			return err
		}
		for _, p := range order {
			b := buckets[p.name]
			peerEnv := e.peerEnv(p.name, b, r)
			before := bucketSize(ctx, client, b)
			if p.name == "raw upload" {
				continue // it has no notion of an increment
			}
			settle()
			s, err := runAll(p.backupCmds(e, b, data), peerEnv)
			if err != nil {
				return fmt.Errorf("%s incremental backupCmds: %w", p.name, err)
			}
			rr := res[p.name]
			rr.incr = append(rr.incr, s)
			rr.incrUpload = append(rr.incrUpload, bucketSize(ctx, client, b)-before)
			rr.changed = append(rr.changed, changed)
			fmt.Fprintf(os.Stderr, "bench: run %d %-12s incr    %6.2fs %5d MiB RSS\n", r+1, p.name, s.seconds, s.rssKiB>>10)
			if !p.restore {
				continue
			}
			if s, err = restoreStep(p, e, b, peerEnv, 16<<30, 4*smallFiles, func(dst string) error {
				return sameTree(data, p.restoredRoot(dst, data))
			}); err != nil {
				return err
			}
			rr.restore = append(rr.restore, s)
			fmt.Fprintf(os.Stderr, "bench: run %d %-12s restore %6.2fs %5d MiB RSS\n", r+1, p.name, s.seconds, s.rssKiB>>10)
		}
	}
	report := render(ps, res, *runs)
	if err := os.WriteFile(*out, []byte(report.markdown), 0o644); err != nil {
		return err
	}
	fmt.Println(report.line)
	return nil
}

// restoreStep times one peer's restore into a fresh file system of size bytes and inodes
// inodes, then checks what it wrote.
func restoreStep(p peer, e *env, bucket string, env []string, size int64, inodes int, check func(dst string) error) (sample, error) {
	t, err := newRestoreTarget(e.work, size, inodes)
	if err != nil {
		return sample{}, fmt.Errorf("prepare the restore target: %w", err)
	}
	defer t.Close()
	settle()
	s, err := runAll(p.restoreCmds(e, bucket, t.dir()), env)
	if err != nil {
		return s, fmt.Errorf("%s restore: %w", p.name, err)
	}
	if err := check(t.dir()); err != nil {
		return s, fmt.Errorf("%s restored something else: %w", p.name, err)
	}
	return s, t.Close()
}

func initOf(p peer, e *env, bucket string) [][]string {
	if p.initCmds == nil {
		return nil
	}
	return p.initCmds(e, bucket)
}

// peerEnv is the environment of a peer's processes: credentials and passwords go through the
// environment, never the command line.
func (e *env) peerEnv(name, bucket string, r int) []string {
	cache := filepath.Join(e.work, "cache", fmt.Sprintf("%s-%d", strings.ReplaceAll(name, " ", ""), r))
	env := append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+e.access, "AWS_SECRET_ACCESS_KEY="+e.secret,
		"RESTIC_REPOSITORY=s3:http://"+e.endpoint+"/"+bucket, "RESTIC_PASSWORD="+e.password,
		"RESTIC_CACHE_DIR="+cache, "SWARMBACKUP_CACHE_DIR="+filepath.Join(cache, "swarmbackup"),
		"KOPIA_PASSWORD="+e.password, "KOPIA_CONFIG_PATH="+filepath.Join(cache, "kopia.config"),
		"KOPIA_CACHE_DIRECTORY="+filepath.Join(cache, "kopia-cache"), "KOPIA_CHECK_FOR_UPDATES=false",
		"BENCH_KOPIA_BUCKET="+bucket,
	)
	return env
}

func runAll(cmds [][]string, env []string) (sample, error) {
	var total sample
	for _, argv := range cmds {
		s, err := runTimed(argv, env)
		if err != nil {
			return total, err
		}
		total.seconds += s.seconds
		total.rssKiB = max(total.rssKiB, s.rssKiB)
	}
	return total, nil
}

func runTimed(argv []string, env []string) (sample, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start).Seconds()
	if err != nil {
		return sample{}, fmt.Errorf("%s: %v: %s", filepath.Base(argv[0]), err, strings.TrimSpace(stderr.String()))
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return sample{seconds: elapsed, rssKiB: rss}, nil
}

func bucketSize(ctx context.Context, c *minio.Client, bucket string) int64 {
	var total int64
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		total += obj.Size
	}
	return total
}

func removeBucket(ctx context.Context, c *minio.Client, bucket string) {
	objs := c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	for range c.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
	}
	_ = c.RemoveBucket(ctx, bucket)
}

// sameTree checks that every regular file below want exists below got with the same content.
func sameTree(want, got string) error {
	return filepath.Walk(want, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, err := fileHash(p)
		if err != nil {
			return err
		}
		b, err := fileHash(filepath.Join(got, rel))
		if err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("%s differs", rel)
		}
		return nil
	})
}

func fileHash(p string) ([32]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianInt(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func seconds(ss []sample) float64 {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = s.seconds
	}
	return median(xs)
}

// spread is the median of the samples' times with the fastest and slowest beside it.
func spread(ss []sample) string {
	if len(ss) < 2 {
		return fmt.Sprintf("%.2f s", seconds(ss))
	}
	lo, hi := ss[0].seconds, ss[0].seconds
	for _, s := range ss {
		lo, hi = min(lo, s.seconds), max(hi, s.seconds)
	}
	return fmt.Sprintf("%.2f s (%.2f-%.2f)", seconds(ss), lo, hi)
}

func peakRSS(r *results) int64 {
	var m int64
	for _, group := range [][]sample{r.full, r.incr, r.restore} {
		for _, s := range group {
			m = max(m, s.rssKiB)
		}
	}
	return m
}

type rendered struct{ markdown, line string }

func render(ps []peer, res map[string]*results, runs int) rendered {
	var b strings.Builder
	host, _ := os.Hostname()
	cpu := cpuModel()
	fmt.Fprintf(&b, "# Benchmarks\n\n`make bench`, %s, on %s (%s, %d cores, Go %s). MinIO on the same host.\n\n",
		time.Now().UTC().Format("2006-01-02"), host, cpu, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "Data set: %d MiB (%d random files of %d MiB, %d log files of %d MiB, %d files of 4 KiB); "+
		"then about 1%% changed (appended logs, 200 rewritten small files, 2 MiB overwritten in a large file, a new 4 MiB file). "+
		"Medians of %d runs, the fastest and slowest in brackets; the peers take turns within each run, each run "+
		"starting with the next one; before each timed step what earlier steps wrote is flushed and its writeback "+
		"waited for, then the processors going quiet; a fresh bucket per run, all removed after the last (MinIO "+
		"empties a removed bucket in the background); each restore goes into a fresh 16 GiB ext4 and is checked "+
		"byte for byte.\n\n",
		datasetBytes>>20, largeFiles, largeSize>>20, logFiles, logSize>>20, smallFiles, runs)
	b.WriteString("| peer | full backup | incremental | restore | peak RSS | bucket after full | incremental upload |\n|---|---|---|---|---|---|---|\n")
	for _, p := range ps {
		r := res[p.name]
		restore, incr, upload := "-", "-", "-"
		if len(r.restore) > 0 {
			restore = spread(r.restore)
		}
		if len(r.incr) > 0 {
			incr = spread(r.incr)
			upload = fmt.Sprintf("%.1f MiB (%.2fx the %.1f MiB changed)", mib(medianInt(r.incrUpload)),
				float64(medianInt(r.incrUpload))/float64(medianInt(r.changed)), mib(medianInt(r.changed)))
		}
		if p.name == "tar+zstd" {
			upload = "a full archive every run (it replaces one object)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d MiB | %.0f MiB | %s |\n", p.name, spread(r.full), incr, restore,
			peakRSS(r)>>10, mib(medianInt(r.bucketFull)), upload)
	}
	full := func(r *results) []sample { return r.full }
	line := fmt.Sprintf("bench: full_vs_tar=%s full_vs_kopia=%s full_vs_restic=%s incr_vs_best=%s restore_vs_best=%s rss_mib=%s",
		speedup(res, []string{"tar+zstd"}, full), speedup(res, []string{"kopia"}, full), speedup(res, []string{"restic"}, full),
		speedup(res, []string{"restic", "kopia"}, func(r *results) []sample { return r.incr }),
		speedup(res, []string{"restic", "kopia", "tar+zstd"}, func(r *results) []sample { return r.restore }),
		peakMiB(res["swarmbackup"]))
	fmt.Fprintf(&b, "\nRatios are the peer's time divided by swarmbackup's (above 1: swarmbackup is faster).\n\n```\n%s\n```\n", line)
	return rendered{markdown: b.String(), line: line}
}

// speedup is the fastest of the others' median times over swarmbackup's, as the final lines
// print it: "na" where either side has no sample (PEERS left it out).
func speedup(res map[string]*results, others []string, pick func(*results) []sample) string {
	ours, ok := res["swarmbackup"]
	if !ok || len(pick(ours)) == 0 {
		return "na"
	}
	var fastest float64
	for _, n := range others {
		if r, ok := res[n]; ok && len(pick(r)) > 0 && (fastest == 0 || seconds(pick(r)) < fastest) {
			fastest = seconds(pick(r))
		}
	}
	if fastest == 0 {
		return "na"
	}
	return fmt.Sprintf("%.2f", fastest/seconds(pick(ours)))
}

// peakMiB is a tool's peak RSS in MiB, "na" for one that did not run.
func peakMiB(r *results) string {
	if r == nil {
		return "na"
	}
	return fmt.Sprint(peakRSS(r) >> 10)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
