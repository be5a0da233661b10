package driver

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/volume"
	"golang.org/x/sys/unix"

	"github.com/swarmbackup/swarmbackup/shared/volumeopts"
)

// The driver bind-mounts for real, which needs root, as the plugin has.
func newTestDriver(t *testing.T) (*Driver, string, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the volume driver's bind mounts need root")
	}
	dataDir, mountDir := t.TempDir(), t.TempDir()
	d, err := New(dataDir, mountDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAll(mountDir) })
	return d, dataDir, mountDir
}

func unmountAll(mountDir string) {
	entries, _ := os.ReadDir(mountDir)
	for _, e := range entries {
		for unix.Unmount(filepath.Join(mountDir, e.Name()), unix.MNT_DETACH) == nil {
		}
	}
}

func reopen(t *testing.T, dataDir, mountDir string) *Driver {
	t.Helper()
	d, err := New(dataDir, mountDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustCreate(t *testing.T, d *Driver, name string, opts map[string]string) {
	t.Helper()
	if err := d.Create(&volume.CreateRequest{Name: name, Options: opts}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func mustMount(t *testing.T, d *Driver, name, id string) string {
	t.Helper()
	resp, err := d.Mount(&volume.MountRequest{Name: name, ID: id})
	if err != nil {
		t.Fatalf("mount %s: %v", name, err)
	}
	return resp.Mountpoint
}

func TestDataWrittenThroughTheMountpointSurvivesUnmountAndRemount(t *testing.T) {
	d, _, _ := newTestDriver(t)
	mustCreate(t, d, "db", nil)
	mp := mustMount(t, d, "db", "c1")
	if err := os.WriteFile(filepath.Join(mp, "table"), []byte("rows"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Unmount(&volume.UnmountRequest{Name: "db", ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mp, "table")); !os.IsNotExist(err) {
		t.Errorf("the volume is still visible at %s after its last unmount", mp)
	}
	mp = mustMount(t, d, "db", "c2")
	b, err := os.ReadFile(filepath.Join(mp, "table"))
	if err != nil || string(b) != "rows" {
		t.Fatalf("after remount: %q, %v", b, err)
	}
}

func TestMountsAreCountedByID(t *testing.T) {
	d, _, _ := newTestDriver(t)
	mustCreate(t, d, "shared", nil)
	mp := mustMount(t, d, "shared", "a")
	mustMount(t, d, "shared", "b")
	mustMount(t, d, "shared", "b") // a repeated ID counts once
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Unmount(&volume.UnmountRequest{Name: "shared", ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mp, "f")); err != nil {
		t.Fatalf("unmounting one of two users hid the volume from the other: %v", err)
	}
	if err := d.Remove(&volume.RemoveRequest{Name: "shared"}); err == nil || !strings.Contains(err.Error(), "mounted by 1") {
		t.Errorf("remove of a mounted volume: %v", err)
	}
	if err := d.Unmount(&volume.UnmountRequest{Name: "shared", ID: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Unmount(&volume.UnmountRequest{Name: "shared", ID: "b"}); err != nil {
		t.Errorf("a repeated unmount failed: %v", err)
	}
	if err := d.Remove(&volume.RemoveRequest{Name: "shared"}); err != nil {
		t.Errorf("remove after the last unmount: %v", err)
	}
}

func TestVolumesAndMountsSurviveARestart(t *testing.T) {
	d, dataDir, mountDir := newTestDriver(t)
	mustCreate(t, d, "keep", map[string]string{"schedule": "@daily"})
	mustCreate(t, d, "idle", nil)
	mp := mustMount(t, d, "keep", "c1")
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A restarted engine takes the propagated mounts down with the plugin.
	unmountAll(mountDir)

	d2 := reopen(t, dataDir, mountDir)
	list, err := d2.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range list.Volumes {
		names = append(names, v.Name)
	}
	if strings.Join(names, ",") != "idle,keep" {
		t.Errorf("volumes after restart: %v", names)
	}
	b, err := os.ReadFile(filepath.Join(mp, "f"))
	if err != nil || string(b) != "before" {
		t.Fatalf("a volume mounted before the restart is not mounted again: %q, %v", b, err)
	}
	got, err := d2.Get(&volume.GetRequest{Name: "keep"})
	if err != nil || got.Volume.Status["mounts"] != 1 {
		t.Errorf("get after restart: %+v, %v", got, err)
	}
	if err := d2.Unmount(&volume.UnmountRequest{Name: "keep", ID: "c1"}); err != nil {
		t.Errorf("unmount of a mount ID from before the restart: %v", err)
	}
	// Creating it again with the same options is what the engine does for every task.
	if err := d2.Create(&volume.CreateRequest{Name: "keep", Options: map[string]string{"schedule": "@daily"}}); err != nil {
		t.Errorf("repeated create: %v", err)
	}
	if err := d2.Create(&volume.CreateRequest{Name: "keep", Options: map[string]string{"schedule": "@hourly"}}); err == nil {
		t.Error("create with other options over an existing volume succeeded")
	}
}

func TestGetOfAnUnknownVolumeIsNotFound(t *testing.T) {
	d, _, _ := newTestDriver(t)
	_, err := d.Get(&volume.GetRequest{Name: "nope"})
	if err == nil || !strings.Contains(err.Error(), "no such volume") {
		t.Errorf("get unknown: %v", err)
	}
	if _, err := d.Mount(&volume.MountRequest{Name: "nope", ID: "x"}); err == nil {
		t.Error("mount of an unknown volume succeeded")
	}
}

func TestCreateRefusesBadNamesAndOptions(t *testing.T) {
	d, dataDir, _ := newTestDriver(t)
	for _, c := range []struct {
		name string
		opts map[string]string
		want string
	}{
		{"../escape", nil, "invalid volume name"},
		{"vol", map[string]string{"size": "1G"}, `unknown driver option "size"`},
		{"vol", map[string]string{"quiesce": "freeze"}, "quiesce"},
	} {
		err := d.Create(&volume.CreateRequest{Name: c.name, Options: c.opts})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("create %q %v: %v, want %q", c.name, c.opts, err, c.want)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dataDir, "volumes"))
	if len(entries) != 0 {
		t.Errorf("refused creates left %d directories behind", len(entries))
	}
}

func TestRemoveDeletesTheData(t *testing.T) {
	d, dataDir, _ := newTestDriver(t)
	mustCreate(t, d, "gone", nil)
	if err := os.WriteFile(filepath.Join(d.DataPath("gone"), "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(&volume.RemoveRequest{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "volumes", "gone")); !os.IsNotExist(err) {
		t.Errorf("data left after remove: %v", err)
	}
	d2 := reopen(t, dataDir, t.TempDir())
	if _, err := d2.Get(&volume.GetRequest{Name: "gone"}); err == nil {
		t.Error("a removed volume came back after a restart")
	}
}

func TestDamagedStateFailsStartWithThePath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "state.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(dataDir, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "state.json is damaged") {
		t.Errorf("New with damaged state: %v", err)
	}
}

func TestReplaceDataSwapsInAFullDirectoryAndRefusesMountedVolumes(t *testing.T) {
	d, _, _ := newTestDriver(t)
	mustCreate(t, d, "db", nil)
	if err := os.WriteFile(filepath.Join(d.DataPath("db"), "old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	stage := func(name, content string) string {
		dir, err := d.StagingDir(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "restored"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	mustMount(t, d, "db", "c1")
	if err := d.ReplaceData("db", stage("db", "x")); err == nil || !strings.Contains(err.Error(), "mounted by 1") {
		t.Fatalf("replace of a mounted volume: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.DataPath("db"), "old")); err != nil {
		t.Fatal("a refused replace touched the data")
	}
	if err := d.Unmount(&volume.UnmountRequest{Name: "db", ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := d.ReplaceData("db", stage("db", "new")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.DataPath("db"), "old")); !os.IsNotExist(err) {
		t.Error("the old data is still there")
	}
	if b, _ := os.ReadFile(filepath.Join(d.DataPath("db"), "restored")); string(b) != "new" {
		t.Errorf("restored content %q", b)
	}
	// A restore into a volume the node does not have yet creates it.
	if err := d.ReplaceData("fresh", stage("fresh", "moved")); err != nil {
		t.Fatal(err)
	}
	if !d.Exists("fresh") {
		t.Error("the restored volume does not exist")
	}
}

func TestAVolumeCreatedWithRestoreRefusesMountsUntilFilled(t *testing.T) {
	d, dataDir, mountDir := newTestDriver(t)
	filled := make(chan string, 4)
	d.SetFiller(func(name string, _ volumeopts.Options) { filled <- name })
	mustCreate(t, d, "db", map[string]string{"restore": "latest"})
	if got := <-filled; got != "db" {
		t.Fatalf("filled %q", got)
	}
	_, err := d.Mount(&volume.MountRequest{Name: "db", ID: "task1"})
	if err == nil || !strings.Contains(err.Error(), "restore in progress") {
		t.Fatalf("mount while filling: %v", err)
	}
	got, _ := d.Get(&volume.GetRequest{Name: "db"})
	if got.Volume.Status["restore"] != "in progress" {
		t.Errorf("status while filling: %v", got.Volume.Status)
	}

	// A failed fill is tried again by the next mount, which still fails.
	d.FillDone("db", errors.New("repository unreachable"))
	_, err = d.Mount(&volume.MountRequest{Name: "db", ID: "task2"})
	if err == nil || !strings.Contains(err.Error(), "repository unreachable") {
		t.Fatalf("mount after a failed fill: %v", err)
	}
	if got := <-filled; got != "db" {
		t.Fatal("the failed fill was not tried again")
	}

	// A restarted plugin takes an interrupted fill up again.
	d2 := reopen(t, dataDir, mountDir)
	d2.SetFiller(func(name string, _ volumeopts.Options) { filled <- name })
	if _, err := d2.Mount(&volume.MountRequest{Name: "db", ID: "task3"}); err == nil {
		t.Fatal("mount of an unfilled volume after a restart succeeded")
	}
	<-filled
	d2.FillDone("db", nil)
	if _, err := d2.Mount(&volume.MountRequest{Name: "db", ID: "task4"}); err != nil {
		t.Fatalf("mount after the fill: %v", err)
	}
	// Volumes without the option mount at once.
	mustCreate(t, d2, "plain", nil)
	mustMount(t, d2, "plain", "x")
}

func TestAnArmedRestoreFillsAVolumeWhateverItsOptionsSay(t *testing.T) {
	d, dataDir, mountDir := newTestDriver(t)
	type fill struct{ name, restore string }
	filled := make(chan fill, 4)
	d.SetFiller(func(name string, opts volumeopts.Options) { filled <- fill{name, opts.Restore} })
	d.SetArmed(func(name string) (string, error) {
		switch name {
		case "db", "cache":
			return "snap-of-" + name, nil
		case "ambiguous":
			return "", errors.New("set 5e7a holds volume ambiguous of several nodes")
		}
		return "", nil
	})
	mustCreate(t, d, "db", nil)
	if got := <-filled; got != (fill{"db", "snap-of-db"}) {
		t.Fatalf("filled %+v, want db from the set's snapshot", got)
	}
	if _, err := d.Mount(&volume.MountRequest{Name: "db", ID: "task1"}); err == nil {
		t.Fatal("a task started on the armed volume before its data came")
	}
	// The set's point in time wins over restore=latest.
	mustCreate(t, d, "cache", map[string]string{"restore": "latest"})
	if got := <-filled; got != (fill{"cache", "snap-of-cache"}) {
		t.Fatalf("filled %+v, want cache from the set's snapshot", got)
	}
	mustCreate(t, d, "new", nil)
	mustMount(t, d, "new", "x")
	if err := d.Create(&volume.CreateRequest{Name: "ambiguous"}); err == nil || !strings.Contains(err.Error(), "several nodes") {
		t.Fatalf("creating a volume the set cannot tell apart: %v", err)
	}

	// A failed fill, after a restart, is tried again from the set, not from the options.
	d.FillDone("db", errors.New("repository unreachable"))
	d2 := reopen(t, dataDir, mountDir)
	d2.SetFiller(func(name string, opts volumeopts.Options) { filled <- fill{name, opts.Restore} })
	if _, err := d2.Mount(&volume.MountRequest{Name: "db", ID: "task2"}); err == nil {
		t.Fatal("mount of an unfilled armed volume after a restart succeeded")
	}
	if got := <-filled; got != (fill{"db", "snap-of-db"}) {
		t.Fatalf("filled again %+v", got)
	}
}
