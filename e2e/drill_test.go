package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/config"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// bucketRepo points every plugin of the lab at a new repository in MinIO for the test, and
// returns it with the environment in which the CLI reads it.
func (l *lab) bucketRepo(t *testing.T, name string) (repoURL string, env []string) {
	t.Helper()
	endpoint, secrets := labMinIO(t)
	repoURL = "s3:" + endpoint + "/" + unique(name) + "/backups"
	l.pointPluginsAt(repoURL, secrets)
	return repoURL, bucketEnv(repoURL, secrets)
}

// pointPluginsAt sets every plugin of the lab to a repository, until the test ends.
func (l *lab) pointPluginsAt(repoURL, secrets string) {
	for i := 1; i <= l.engines(); i++ {
		l.node(i).configurePlugin("SWARMBACKUP_REPO="+repoURL, "etc.source="+secrets)
	}
}

// bucketEnv is the environment in which the CLI reads a repository in MinIO.
func bucketEnv(repoURL, secrets string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID_FILE=" + filepath.Join(secrets, "aws_access_key_id"),
		"AWS_SECRET_ACCESS_KEY_FILE=" + filepath.Join(secrets, "aws_secret_access_key"),
		"SWARMBACKUP_PASSWORD_FILE=" + filepath.Join(secrets, "password"),
		"SWARMBACKUP_REPO=" + repoURL,
	}
}

// lookupIn reads variables from an environment list, as the CLI reads its own.
func lookupIn(env []string) func(string) (string, bool) {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
}

// bucket opens the storage behind a repository URL as the CLI would, with env's credentials.
func bucket(t *testing.T, repoURL string, env []string) storage.Backend {
	t.Helper()
	be, err := config.OpenBackend(context.Background(), repoURL, lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// openRepo opens the repository in a bucket as the operator does, with env's password.
func openRepo(t *testing.T, repoURL string, env []string) *repository.Repository {
	t.Helper()
	password, err := config.Password("", lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Open(context.Background(), bucket(t, repoURL, env), password)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func TestADrillPassesOnAGoodSetAndNamesTheVolumeWhoseDataIsDamaged(t *testing.T) {
	l := newLab(t)
	node1, node2 := l.node(1), l.node(2)
	repoURL, env := l.bucketRepo(t, "drill")
	vol := unique("ledger")
	node2.createVolume(vol)
	node2.run(vol, "head -c 6000000 /dev/urandom > /data/ledger.db && echo entries > /data/index")
	r := node1.tryEnv(env, "swarmbackup", "backup", "--volumes", "-q")
	if r.err != nil {
		t.Fatalf("backup --volumes: %s", r)
	}
	set := r.stdout

	r = node1.tryEnv(env, "swarmbackup", "drill")
	if r.err != nil {
		t.Fatalf("the drill of a good set: %s", r)
	}
	for _, want := range []string{"Drill of set " + set[:12], "control plane", "decoded, matches its inventory", "volume " + vol + " on node2", "2 files", "Would recover", "estimated recovery"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the drill's report lacks %q:\n%s", want, r.stdout)
		}
	}
	t.Logf("drill of a good set:\n%s", r.stdout)

	// The volume's data, the largest pack of the set, is damaged in the bucket.
	be := bucket(t, repoURL, env)
	ctx := context.Background()
	largest, size := "", int64(0)
	if err := be.List(ctx, "data/", func(name string, n int64) error {
		if n > size {
			largest, size = name, n
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	data, err := be.Get(ctx, largest, size)
	if err != nil {
		t.Fatal(err)
	}
	data[size/2] ^= 0xff
	if err := be.Put(ctx, largest, data); err != nil {
		t.Fatal(err)
	}
	r = node1.tryEnv(env, "swarmbackup", "drill", set[:12])
	if r.err == nil {
		t.Fatalf("the drill of a damaged set passed:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "volume "+vol+" on node2") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("the failed drill should name the damaged volume, and it alone:\n%s", r.stderr)
	}

	// Both drills are recorded; status fails on the last one.
	var rows []lsRow
	jsonLines(t, node1.dockerEnv(env, "swarmbackup", "ls", "--kind", "drill", "--format", "json"), &rows)
	if len(rows) != 2 {
		t.Fatalf("ls --kind drill lists %d drills, want 2", len(rows))
	}
	if r := node1.tryEnv(env, "swarmbackup", "status"); r.err == nil || !strings.Contains(r.stderr, "the last drill") {
		t.Errorf("status after a failed drill: %s", r)
	}
}

func TestTheClusterDrillsItsNewestSetOnSchedule(t *testing.T) {
	l := newLab(t)
	node1 := l.node(1)
	_, env := l.bucketRepo(t, "drill-schedule")
	r := node1.tryEnv(env, "swarmbackup", "backup", "--volumes", "-q")
	if r.err != nil {
		t.Fatalf("backup --volumes: %s", r)
	}
	set := r.stdout
	node1.dockerEnv(env, "swarmbackup", "schedule", "set", "--every", "@daily", "--drill", "@every 10s")
	t.Cleanup(func() { node1.tryEnv(env, "swarmbackup", "schedule", "rm") })

	// The managers read the schedule within 30 s; one of them drills at the next tick.
	l.eventually("a scheduled drill to be recorded", 90*time.Second, func() bool {
		return node1.tryEnv(env, "swarmbackup", "ls", "--kind", "drill", "-q").stdout != ""
	})
	out := node1.dockerEnv(env, "swarmbackup", "status", "--format", "{{json .Drill}}")
	var drill struct {
		Schedule, Set, State string
		Passed               bool
	}
	if err := json.Unmarshal([]byte(out), &drill); err != nil {
		t.Fatalf("status --format: %v\n%s", err, out)
	}
	if drill.Schedule != "@every 10s" || drill.Set != set || !drill.Passed || drill.State != "ok" {
		t.Errorf("status shows the drills as %+v, want the set %s drilled and passed", drill, set[:12])
	}
}
