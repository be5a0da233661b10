package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fingerprint hashes a volume's files, names and contents, as found on the host.
func (n *node) fingerprint(volume string) string {
	n.lab.t.Helper()
	root := filepath.Join(n.dataDir(), "volumes", volume, "data")
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		n.lab.t.Fatalf("fingerprint %s: %v", volume, err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, p := range names {
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\n", rel)
		f, err := os.Open(p)
		if err != nil {
			n.lab.t.Fatal(err)
		}
		_, _ = io.Copy(h, f)
		f.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}

// soakTally is what the soak reports.
type soakTally struct {
	ops, faults, failedUnderFault, busy, unexpected map[string]int
	restoredChecked                                 int
}

func (s soakTally) String() string {
	kv := func(m map[string]int) string {
		var parts []string
		for k, v := range m {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(parts)
		return strings.Join(parts, ",")
	}
	return fmt.Sprintf("ops{%s} faults{%s} failed_under_fault{%s} refused_busy{%s} unexpected_failures{%s} restores_compared=%d",
		kv(s.ops), kv(s.faults), kv(s.failedUnderFault), kv(s.busy), kv(s.unexpected), s.restoredChecked)
}

// TestSoak runs for SWARMBACKUP_SOAK (a duration; `make soak` sets 30m): snapshots, restores
// and prunes of a volume whose content the test knows, beside a scheduled, paused volume with
// a writer, with faults drawn at random (the plugin killed, the CLI killed, MinIO stopped,
// the engine restarted). It ends with verify --read-data, every snapshot the retention keeps
// restored and compared with what it held, and a summary.
func TestSoak(t *testing.T) {
	limit, err := time.ParseDuration(os.Getenv("SWARMBACKUP_SOAK"))
	if err != nil {
		t.Skip("SWARMBACKUP_SOAK names no duration: run `make soak`")
	}
	l := newLab(t)
	n := l.node(2)
	rng := faultRandom(t)
	env := n.ownBucket(t, "soak")
	cli := func(args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join("..", "bin", "docker-swarmbackup"), append([]string{"swarmbackup"}, args...)...)
		cmd.Env = append(n.env(), env...)
		return cmd
	}

	data, live := unique("soak-data"), unique("soak-live")
	n.createVolume(data)
	n.createVolume(live, "quiesce=pause", "schedule=@every 20s", "keep=last=5")
	writer := n.docker("run", "-d", "--restart", "always", "-v", live+":/data", image, "sh", "-c", "while true; do date >> /data/log; sleep 0.2; done")
	t.Cleanup(func() { n.try("rm", "-f", writer) })
	n.makeFiles(data, 500)

	const keep = 5
	held := map[string]string{} // snapshot -> fingerprint of what it holds
	// listed returns the data volume's snapshots in the repository that the test recorded,
	// oldest first (a run a fault ended may have stored one the test never heard of).
	listed := func() (recorded, all []string) {
		var rows []struct {
			ID     string `json:"id"`
			Source string `json:"source"`
		}
		jsonLines(t, n.dockerEnv(env, "swarmbackup", "ls", "--kind", "volume", "--format", "json"), &rows)
		for _, r := range rows {
			if r.Source == data {
				all = append(all, r.ID)
				if _, ok := held[r.ID]; ok {
					recorded = append(recorded, r.ID)
				}
			}
		}
		return recorded, all
	}
	lost := 0
	tally := soakTally{ops: map[string]int{}, faults: map[string]int{}, failedUnderFault: map[string]int{}, busy: map[string]int{}, unexpected: map[string]int{}}
	deadline := time.Now().Add(limit)
	for round := 0; time.Now().Before(deadline); round++ {
		kept, all := listed()
		op := []string{"snapshot", "snapshot", "restore", "prune"}[rng.IntN(4)]
		if op == "restore" && len(kept) == 0 || op == "prune" && len(all) <= keep {
			op = "snapshot"
		}
		fault := ""
		if rng.IntN(10) < 3 {
			fault = []string{"kill", "kill", "minio", "engine"}[rng.IntN(4)]
			if op == "prune" && fault == "kill" {
				fault = "kill-cli"
			}
		}
		tally.ops[op]++
		if fault != "" {
			tally.faults[fault]++
		}
		var cmd *exec.Cmd
		var want, target string
		switch op {
		case "snapshot":
			n.writeRandom(data, "f"+strconv.Itoa(round%40), rng.IntN(4<<20))
			want = n.fingerprint(data)
			cmd = cli("volume", "snapshot", "-q", data)
		case "restore":
			id := kept[rng.IntN(len(kept))]
			want, target = held[id], unique("soak-copy")
			cmd = cli("volume", "restore", data+"@"+id[:12], "--to", target)
		case "prune":
			cmd = cli("prune", "--keep-last", strconv.Itoa(keep))
		}
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		pid := n.pluginPID()
		killed, err := inject(t, l, n, cmd, fault, time.Duration(rng.Int64N(int64(time.Second))), pid)
		switch {
		case fault == "kill" && killed:
			n.pluginBack(pid)
		case fault == "engine":
			n.pluginBack("")
		}
		switch {
		case err == nil:
		case fault != "":
			tally.failedUnderFault[op]++
		case strings.Contains(errOut.String(), "repository is in use"):
			tally.busy[op]++ // a prune and a backup do not run together; the next round may
		default:
			tally.unexpected[op]++
			t.Errorf("round %d: %s failed without a fault: %v: %s", round, op, err, strings.TrimSpace(errOut.String()))
		}
		switch {
		case op == "snapshot" && err == nil:
			held[strings.TrimSpace(out.String())] = want
		case op == "prune":
			// Whatever became of the prune, the newest snapshots it was to keep are there.
			_, after := listed()
			for _, id := range all[max(0, len(all)-keep):] {
				if !strings.Contains(strings.Join(after, " "), id) {
					lost++
					t.Errorf("round %d: a prune (fault %q) removed snapshot %s, one of the %d newest", round, fault, id[:12], keep)
				}
			}
		case op == "restore" && n.try("volume", "inspect", target).err == nil:
			// Whole, or no volume at all: never half-restored, fault or not.
			if got := n.fingerprint(target); got != want {
				lost++
				t.Errorf("round %d: restored volume %s differs from its snapshot", round, target)
			}
			tally.restoredChecked++
			n.docker("volume", "rm", target)
		}
		l.eventually("the live volume's writer to run unpaused", 90*time.Second, func() bool {
			return n.try("inspect", "--format", "{{.State.Running}} {{.State.Paused}}", writer).stdout == "true false"
		})
	}
	verify := n.tryEnv(env, "swarmbackup", "verify", "--all", "--read-data")
	kept, _ := listed()
	for _, id := range kept {
		target := unique("soak-final")
		n.docker("swarmbackup", "volume", "restore", data+"@"+id[:12], "--to", target)
		if n.fingerprint(target) != held[id] {
			lost++
			t.Errorf("snapshot %s restores other data than it was given", id[:12])
		}
		tally.restoredChecked++
		n.docker("volume", "rm", target)
	}
	t.Logf("soak: %s over %s; verify --read-data: %s; snapshots lost: %d", tally, limit, strings.TrimSpace(verify.stdout), lost)
	if verify.err != nil {
		t.Errorf("verify --read-data after the soak: %s", verify)
	}
}

// inject runs cmd with a fault at delay: the plugin killed, the CLI killed, MinIO stopped for
// three seconds, or the engine restarted; "" runs it as it is. killed says whether a kill
// came before the command ended.
func inject(t *testing.T, l *lab, n *node, cmd *exec.Cmd, fault string, delay time.Duration, plugin string) (killed bool, err error) {
	t.Helper()
	switch fault {
	case "kill":
		return !killDuring(t, cmd, delay, func() string { return plugin }), errFault
	case "kill-cli":
		return !killDuring(t, cmd, delay, func() string { return strconv.Itoa(cmd.Process.Pid) }), errFault
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	switch fault {
	case "minio":
		time.Sleep(delay) // the fault's moment, drawn from the seed
		l.minio("stop")
		time.Sleep(3 * time.Second)
		l.minio("start")
	case "engine":
		time.Sleep(delay)
		n.restart()
	}
	return false, cmd.Wait()
}

// errFault marks a run whose outcome a kill decided.
var errFault = fmt.Errorf("killed")
