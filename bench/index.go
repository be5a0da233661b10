package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

// `bench index -blobs N -forks F -limit MiB`: what the index of a repository of N blobs costs
// a plugin with F volumes, inside a memory limit as the plugin's: a local repository of N
// small blobs (real packs and index files, made once and kept in the work directory), opened
// by a child process in a memory cgroup of the limit, with a handle per volume, each looking
// blobs up. Twice: with the plugin's cache directory (the table in a mapped file) and without
// (the table on the heap). The last line is "index: ...".
func indexMemory(ctx context.Context, work string, args []string) error {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	blobs := fs.Int("blobs", 10_000_000, "blobs in the repository")
	forks := fs.Int("forks", 200, "handles open at once, one per volume")
	limit := fs.Int("limit", 192, "the memory limit in MiB")
	out := fs.String("out", "", "a file to append the report to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkReport(*out); err != nil {
		return err
	}
	repo := filepath.Join(work, fmt.Sprintf("index-%d", *blobs))
	if err := makeIndexRepo(ctx, repo, *blobs); err != nil {
		return err
	}
	type result struct {
		mode   string
		child  indexChild
		peak   int64
		killed bool
		err    error
	}
	var results []result
	for _, mode := range []string{"file", "heap"} {
		cache := ""
		if mode == "file" {
			cache = filepath.Join(work, "index-cache")
			if err := os.RemoveAll(cache); err != nil {
				return err
			}
		}
		settle()
		child, peak, killed, err := runLimited(int64(*limit)<<20, self("index-open", repo, cache, strconv.Itoa(*blobs), strconv.Itoa(*forks)))
		results = append(results, result{mode, child, peak, killed, err})
		fmt.Fprintf(os.Stderr, "bench: index %-4s open %.1fs heap %d MiB, cgroup peak %d MiB, killed %v, %v\n",
			mode, child.OpenSeconds, child.HeapBytes>>20, peak>>20, killed, err)
	}
	f := results[0]
	line := fmt.Sprintf("index: blobs=%d forks=%d limit_mib=%d heap_bytes_per_blob=%.1f open_s=%.1f lookup_us=%.1f peak_mib=%d within_limit=%v heap_table_within_limit=%v",
		*blobs, *forks, *limit, float64(f.child.HeapBytes)/float64(*blobs), f.child.OpenSeconds, f.child.LookupMicros,
		f.peak>>20, f.err == nil && !f.killed, results[1].err == nil && !results[1].killed)
	if *out != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "\n## The index of a large repository\n\n`make bench-index`, %s, on %s: a local repository of %d small blobs (real packs and index files), opened by a process in a memory cgroup of %d MiB (the plugin's limit), with %d handles (one per volume of a plugin) each looking up blobs, known and unknown. The table of the index in a mapped file below the cache directory (as the CLI and the plugin keep one), and on the heap (no cache directory).\n\n",
			time.Now().UTC().Format("2006-01-02"), cpuModel(), *blobs, *limit, *forks)
		b.WriteString("| table | opened in | heap after open | heap bytes per blob | lookup | peak of the cgroup | outcome |\n|---|---|---|---|---|---|---|\n")
		for _, r := range results {
			outcome := "ran to the end"
			switch {
			case r.killed:
				outcome = "killed by the limit"
			case r.err != nil:
				outcome = "failed: " + r.err.Error()
			}
			if r.killed || r.err != nil {
				fmt.Fprintf(&b, "| %s | - | - | - | - | %d MiB | %s |\n", r.mode, r.peak>>20, outcome)
				continue
			}
			fmt.Fprintf(&b, "| %s | %.1f s | %d MiB | %.1f | %.1f µs | %d MiB | %s |\n", r.mode, r.child.OpenSeconds,
				r.child.HeapBytes>>20, float64(r.child.HeapBytes)/float64(*blobs), r.child.LookupMicros, r.peak>>20, outcome)
		}
		fmt.Fprintf(&b, "\nThe cgroup's peak counts the page cache, which the kernel reclaims under the limit: the mapped table's pages are among it. Final line:\n\n```\n%s\n```\n", line)
		if err := appendReport(*out, b.String()); err != nil {
			return err
		}
	}
	fmt.Println(line)
	return nil
}

// indexBlob is the content of synthetic blob i.
func indexBlob(i int) []byte {
	b := make([]byte, 24)
	copy(b, "swarmbackup-index")
	binary.BigEndian.PutUint64(b[16:], uint64(i))
	return b
}

// makeIndexRepo makes a local repository of n small blobs, unless a finished one is there.
func makeIndexRepo(ctx context.Context, dir string, n int) error {
	done := filepath.Join(dir, "..", filepath.Base(dir)+".done")
	if _, err := os.Stat(done); err == nil {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	be, err := localfs.New(dir)
	if err != nil {
		return err
	}
	r, err := repository.Init(ctx, be, benchPassword)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: storing %d blobs in %s\n", n, dir)
	for i := range n {
		if _, _, err := r.SaveBlob(ctx, repository.DataBlob, indexBlob(i)); err != nil {
			return err
		}
		// An index file per million blobs, as many backups would write.
		if (i+1)%1_000_000 == 0 || i == n-1 {
			if err := r.Flush(ctx); err != nil {
				return err
			}
		}
	}
	return os.WriteFile(done, nil, 0o600)
}

const benchPassword = "bench-password"

// indexChild is what `bench index-open` reports.
type indexChild struct {
	OpenSeconds  float64 `json:"open_s"`
	HeapBytes    int64   `json:"heap_bytes"`
	LookupMicros float64 `json:"lookup_us"`
}

// indexOpen is the child: it joins the cgroup named by BENCH_CGROUP first, then opens the
// repository as the plugin does and looks blobs up through every handle.
func indexOpen(ctx context.Context, repo, cache string, blobs, forks int) error {
	if cg := os.Getenv("BENCH_CGROUP"); cg != "" {
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("join the cgroup: %w", err)
		}
	}
	debug.SetMemoryLimit(160 << 20) // as the plugin
	be, err := localfs.New(repo)
	if err != nil {
		return err
	}
	start := time.Now()
	r, err := repository.Open(ctx, be, benchPassword, repository.WithCache(cache))
	if err != nil {
		return err
	}
	var rep indexChild
	rep.OpenSeconds = time.Since(start).Seconds()
	handles := make([]*repository.Repository, forks)
	for i := range handles {
		if handles[i], err = r.Fork(); err != nil {
			return err
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapBytes = int64(ms.HeapAlloc)
	const lookups = 200_000
	rng := rand.New(rand.NewPCG(1, 2))
	start = time.Now()
	for k := range lookups {
		h := handles[k%forks]
		i := rng.IntN(2 * blobs) // half of them unknown
		if found := h.HasBlob(h.Hash(indexBlob(i))); found != (i < blobs) {
			return fmt.Errorf("blob %d: found %v", i, found)
		}
	}
	rep.LookupMicros = float64(time.Since(start).Microseconds()) / lookups
	runtime.KeepAlive(handles)
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// runLimited runs argv in a new memory cgroup of limit bytes and returns what it printed,
// the cgroup's peak usage and whether the limit killed it.
func runLimited(limit int64, argv []string) (indexChild, int64, bool, error) {
	var rep indexChild
	cg, err := newMemoryCgroup(limit)
	if err != nil {
		return rep, 0, false, err
	}
	defer cg.remove()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "BENCH_CGROUP="+cg.dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outBytes, runErr := cmd.Output()
	peak, killed := cg.outcome()
	if runErr != nil {
		return rep, peak, killed, fmt.Errorf("%v: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	return rep, peak, killed, json.Unmarshal(outBytes, &rep)
}

// memoryCgroup is a cgroup with a memory limit, in cgroup v2 or in v1's memory hierarchy.
type memoryCgroup struct {
	dir string
	v2  bool
}

func newMemoryCgroup(limit int64) (*memoryCgroup, error) {
	name := fmt.Sprintf("swarmbackup-bench-%d", os.Getpid())
	cg := &memoryCgroup{}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cg.dir, cg.v2 = filepath.Join("/sys/fs/cgroup", name), true
	} else {
		cg.dir = filepath.Join("/sys/fs/cgroup/memory", name)
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("make a memory cgroup (run as root): %w", err)
	}
	limitFile := "memory.limit_in_bytes"
	if cg.v2 {
		limitFile = "memory.max"
		_ = os.WriteFile(filepath.Join(cg.dir, "memory.swap.max"), []byte("0"), 0o644)
	} else {
		_ = os.WriteFile(filepath.Join(cg.dir, "memory.swappiness"), []byte("0"), 0o644)
	}
	if err := os.WriteFile(filepath.Join(cg.dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		cg.remove()
		return nil, fmt.Errorf("set the cgroup's limit: %w", err)
	}
	return cg, nil
}

// outcome reads the peak usage and whether the OOM killer ran in the cgroup.
func (cg *memoryCgroup) outcome() (peak int64, killed bool) {
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(cg.dir, name))
		return string(b)
	}
	if cg.v2 {
		peak, _ = strconv.ParseInt(strings.TrimSpace(read("memory.peak")), 10, 64)
		return peak, fieldOf(read("memory.events"), "oom_kill") > 0
	}
	peak, _ = strconv.ParseInt(strings.TrimSpace(read("memory.max_usage_in_bytes")), 10, 64)
	return peak, fieldOf(read("memory.oom_control"), "oom_kill") > 0
}

// fieldOf returns the number after name in a "name value" per line file.
func fieldOf(text, name string) int64 {
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == name {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func (cg *memoryCgroup) remove() {
	// The cgroup empties when its process has been reaped; give the kernel a moment.
	for range 50 {
		if err := os.Remove(cg.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
