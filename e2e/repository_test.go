package e2e

import (
	"bufio"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// defaultRepo is the repository the lab's plugins use as their embedded default (mounted
// from the lab's own directory, never a real installation's) and the CLI's SWARMBACKUP_REPO.
var defaultRepo = os.Getenv("SWARMBACKUP_REPO")

var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// snapshot takes a snapshot of a volume through the node's plugin and returns its ID.
func (n *node) snapshot(volume string) string {
	n.lab.t.Helper()
	id := n.docker("swarmbackup", "volume", "snapshot", "-q", volume)
	if !fullID.MatchString(id) {
		n.lab.t.Fatalf("volume snapshot -q printed %q, want a snapshot ID", id)
	}
	return id
}

// copyRepo copies the default repository, so that a test may damage or prune its copy.
func copyRepo(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	// Hard links: the default repository may hold gigabytes; the repository never rewrites
	// a file in place, and damagePacks replaces the files it damages.
	if out, err := exec.Command("cp", "-al", defaultRepo, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy the repository: %v\n%s", err, out)
	}
	return dst
}

type listed struct {
	ID, Kind, Source, Node, Host string
	Size, Objects                uint64
}

func (n *node) listSnapshots(env []string, args ...string) []listed {
	n.lab.t.Helper()
	r := n.tryEnv(env, append([]string{"swarmbackup", "ls", "--format", "json"}, args...)...)
	if r.err != nil {
		n.lab.t.Fatal(r)
	}
	var out []listed
	jsonLines(n.lab.t, r.stdout, &out)
	return out
}

func find(list []listed, id string) *listed {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

func TestVolumeSnapshotsAreListedVerifiedAndPruned(t *testing.T) {
	l := newLab(t)
	node1, node2 := l.node(1), l.node(2)
	vol := unique("pg")
	// Packs are stored whole in one go: whatever this test writes is newer than this.
	start := time.Now().Add(-time.Second)
	node2.createVolume(vol)
	node2.run(vol, "head -c 3000000 /dev/urandom > /data/big.bin && echo v1 > /data/version && mkdir -p /data/empty")
	first := node2.snapshot(vol)
	node2.run(vol, "echo v2 > /data/version")
	second := node2.snapshot(vol)
	if got := node2.docker("volume", "inspect", "--format", `{{index .Status "last_snapshot"}}`, vol); got != second {
		t.Errorf("volume inspect shows last snapshot %q, want %s", got, second)
	}

	list := node1.listSnapshots(nil, "--kind", "volume")
	for _, id := range []string{first, second} {
		s := find(list, id)
		if s == nil {
			t.Fatalf("ls does not list snapshot %s", id)
		}
		if s.Source != vol || s.Kind != "volume" || s.Objects != 2 || s.Host != "node2" {
			t.Errorf("ls shows %+v", *s)
		}
	}
	if out := node1.docker("swarmbackup", "verify", "--read-data", second[:12]); !strings.Contains(out, "intact") {
		t.Errorf("verify of a fresh snapshot: %s", out)
	}

	// A copy of the repository with one byte flipped in the pack that holds big.bin.
	repo := copyRepo(t)
	damagePacks(t, repo, start)
	r := node1.try("swarmbackup", "verify", "--read-data", "--repo", repo, second[:12])
	if r.err == nil {
		t.Fatalf("verify of a damaged repository exited 0:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "/big.bin") || !strings.Contains(r.stdout, second[:8]) {
		t.Errorf("verify does not name the damaged file and snapshot:\n%s", r.stdout)
	}

	// Prune another copy: the older snapshot goes, the newer stays and still verifies.
	repo = copyRepo(t)
	dry := node1.docker("swarmbackup", "prune", "--repo", repo, "--keep-last", "1", "--dry-run")
	if !strings.Contains(dry, "forget "+first[:8]) {
		t.Errorf("prune --dry-run does not plan to forget %s:\n%s", first[:8], dry)
	}
	if find(node1.listSnapshots(nil, "--repo", repo), first) == nil {
		t.Fatal("prune --dry-run removed a snapshot")
	}
	node1.docker("swarmbackup", "prune", "--repo", repo, "--keep-last", "1")
	after := node1.listSnapshots(nil, "--repo", repo)
	if find(after, first) != nil || find(after, second) == nil {
		t.Errorf("after prune --keep-last 1: first kept=%v, second kept=%v", find(after, first) != nil, find(after, second) != nil)
	}
	if out := node1.docker("swarmbackup", "verify", "--all", "--read-data", "--repo", repo); !strings.Contains(out, "intact") {
		t.Errorf("verify after prune: %s", out)
	}
}

// damagePacks flips one byte in the middle of every pack larger than a megabyte.
// damagePacks flips a byte in the middle of every pack of 1 MiB or more written since, in a
// copy of the repository: each damaged pack is written anew, so the original it is linked to
// stays whole.
func damagePacks(t *testing.T, repo string, since time.Time) {
	t.Helper()
	damaged := 0
	err := filepath.Walk(filepath.Join(repo, "data"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Size() < 1<<20 || info.ModTime().Before(since) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		data[len(data)/2] ^= 0x20
		if err := os.WriteFile(p+".damaged", data, 0o600); err != nil {
			return err
		}
		damaged++
		return os.Rename(p+".damaged", p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if damaged == 0 {
		t.Fatal("no pack to damage")
	}
}

func TestBadInputGetsOneClearLine(t *testing.T) {
	l := newLab(t)
	node1 := l.node(1)
	wrong := filepath.Join(t.TempDir(), "wrong-password")
	if err := os.WriteFile(wrong, []byte("not the password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"wrong password", nil, []string{"ls", "--password-file", wrong}, "wrong repository password"},
		{"missing password file", nil, []string{"ls", "--password-file", "/nonexistent/pw"}, "/nonexistent/pw"},
		{"unreachable S3", []string{"AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b"}, []string{"ls", "--repo", "s3:http://127.0.0.1:1/backups"}, "cannot reach S3 endpoint 127.0.0.1:1"},
		{"unknown scheme", nil, []string{"ls", "--repo", "ftp://host/x"}, "unknown scheme"},
		{"unknown snapshot", nil, []string{"verify", "0123456789abcdef"}, `no snapshot "0123456789abcdef"`},
		{"unknown volume", nil, []string{"volume", "snapshot", unique("missing")}, "no swarmbackup volume"},
		{"negative keep", nil, []string{"prune", "--keep-last", "-1"}, "give a count of 0 or more"},
		{"prune without rules", nil, []string{"prune", "--dry-run"}, "no retention rule given"},
		{"unknown flag", nil, []string{"ls", "--bogus"}, "unknown flag: --bogus"},
	}
	for _, c := range cases {
		r := node1.tryEnv(c.env, append([]string{"swarmbackup"}, c.args...)...)
		if r.err == nil {
			t.Errorf("%s: exited 0", c.name)
			continue
		}
		lines := nonEmptyLines(r.stderr)
		if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: stderr %q, want one line containing %q", c.name, r.stderr, c.want)
		}
		if strings.Contains(r.stderr, "not the password") {
			t.Errorf("%s: the error shows the password", c.name)
		}
	}
}

func nonEmptyLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// labMinIO returns the lab's MinIO endpoint and a directory holding its keys as the plugin's
// secrets directory expects them, plus a repository password.
func labMinIO(t *testing.T) (endpoint, secrets string) {
	t.Helper()
	endpoint = os.Getenv("SWARMBACKUP_LAB_MINIO")
	envFile := os.Getenv("SWARMBACKUP_LAB_MINIO_ENV")
	if endpoint == "" || envFile == "" {
		t.Skip("no MinIO: run `make test-e2e`")
	}
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	secrets = t.TempDir()
	files := map[string]string{"password": unique("pw")}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "MINIO_ROOT_USER":
			files["aws_access_key_id"] = v
		case "MINIO_ROOT_PASSWORD":
			files["aws_secret_access_key"] = v
		}
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return endpoint, secrets
}

// labS3Client talks to the lab's MinIO with the keys labMinIO wrote, as anyone holding them can.
func labS3Client(t *testing.T, endpoint, secrets string) *minio.Client {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	keyID, _ := os.ReadFile(filepath.Join(secrets, "aws_access_key_id"))
	secret, _ := os.ReadFile(filepath.Join(secrets, "aws_secret_access_key"))
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(strings.TrimSpace(string(keyID)), strings.TrimSpace(string(secret)), "")})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// configurePlugin sets the plugin's settings (it is disabled meanwhile) and restores the
// previous ones after the test.
func (n *node) configurePlugin(settings ...string) {
	n.lab.t.Helper()
	old := n.docker("plugin", "inspect", "--format",
		`{{range .Settings.Env}}{{println .}}{{end}}{{range .Config.Mounts}}{{if .Settable}}{{.Name}}.source={{.Source}}{{println}}{{end}}{{end}}`, "swarmbackup")
	n.docker("plugin", "disable", "--force", "swarmbackup")
	n.docker(append([]string{"plugin", "set", "swarmbackup"}, settings...)...)
	n.docker("plugin", "enable", "swarmbackup")
	n.lab.t.Cleanup(func() {
		n.try("plugin", "disable", "--force", "swarmbackup")
		n.try(append([]string{"plugin", "set", "swarmbackup"}, strings.Fields(old)...)...)
		n.try("plugin", "enable", "swarmbackup")
	})
}

func TestVolumeSnapshotsGoToMinIO(t *testing.T) {
	l := newLab(t)
	endpoint, secrets := labMinIO(t)
	node3 := l.node(3)
	repo := "s3:" + endpoint + "/" + unique("e2e") + "/backups"
	node3.configurePlugin("SWARMBACKUP_REPO="+repo, "etc.source="+secrets)

	vol := unique("media")
	node3.createVolume(vol)
	node3.run(vol, "head -c 2000000 /dev/urandom > /data/photo.jpg")
	id := node3.snapshot(vol)

	env := []string{
		"AWS_ACCESS_KEY_ID_FILE=" + filepath.Join(secrets, "aws_access_key_id"),
		"AWS_SECRET_ACCESS_KEY_FILE=" + filepath.Join(secrets, "aws_secret_access_key"),
		"SWARMBACKUP_PASSWORD_FILE=" + filepath.Join(secrets, "password"),
		"SWARMBACKUP_REPO=" + repo,
	}
	list := node3.listSnapshots(env)
	if s := find(list, id); s == nil || s.Source != vol || s.Size != 2000000 {
		t.Fatalf("the snapshot in MinIO: %+v", s)
	}
	r := node3.tryEnv(env, "swarmbackup", "verify", "--read-data", "--all")
	if r.err != nil || !strings.Contains(r.stdout, "intact") {
		t.Fatalf("verify in MinIO: %s", r)
	}
}

// The lab's plugins and CLI read the lab's own password and repository: a real installation
// on the same host (/etc/swarmbackup, /var/lib/swarmbackup/repo) is never read or changed.
// scripts/e2e checks, around the whole run, that it came out as it went in.
func TestTheLabKeepsItsOwnPasswordAndRepository(t *testing.T) {
	l := newLab(t)
	for i := 1; i <= l.engines(); i++ {
		n := l.node(i)
		mounts := n.docker("plugin", "inspect", "--format",
			`{{range .Config.Mounts}}{{.Name}}={{.Source}} {{end}}`, "swarmbackup")
		for _, m := range []string{"etc=" + filepath.Join(l.dir, "etc"), "repo=" + filepath.Join(l.dir, "repo")} {
			if !strings.Contains(mounts, m) {
				t.Errorf("%s: plugin mounts %q, want %s", n, mounts, m)
			}
		}
	}
	if want := filepath.Join(l.dir, "repo"); defaultRepo != want {
		t.Errorf("the CLI's repository is %q, want the lab's %s", defaultRepo, want)
	}
	if pw := os.Getenv("SWARMBACKUP_PASSWORD_FILE"); !strings.HasPrefix(pw, l.dir+"/") {
		t.Errorf("the CLI's password file is %q, want one in the lab", pw)
	}
}
