package archiver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/archiver"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// racingSource is a live directory in which a container changes things right after the
// archiver listed a directory: the races of a hostile or busy container, made certain.
type racingSource struct {
	archiver.Source
	afterList func(rel string)
}

func (s racingSource) List(rel string) ([]snapshot.Node, error) {
	nodes, err := s.Source.List(rel)
	if s.afterList != nil {
		s.afterList(rel)
	}
	return nodes, err
}

// snapshotRacing archives dir while change runs after the top directory was listed, and
// fails the test when the snapshot does not end within a minute.
func snapshotRacing(t *testing.T, dir string, change func()) (archiver.Result, []string, error) {
	t.Helper()
	live, err := archiver.Dir(dir)
	must(t, err)
	src := racingSource{Source: live, afterList: func(rel string) {
		if rel == "." {
			change()
		}
	}}
	r := openRepo(t)
	type outcome struct {
		res archiver.Result
		err error
	}
	var skipped []string
	done := make(chan outcome, 1)
	go func() {
		res, err := archiver.SnapshotFrom(context.Background(), r, src, archiver.Options{
			Skipped: func(path string, err error) { skipped = append(skipped, path+": "+err.Error()) },
		})
		if err == nil {
			err = r.Flush(context.Background())
		}
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		if o.err == nil {
			dst := filepath.Join(t.TempDir(), "restored")
			_, err := restorer.Restore(context.Background(), r, o.res.Tree, dst, restorer.Options{Root: &o.res.Root})
			must(t, err)
			o.res.Root.Name = dst // where the tests look
		}
		return o.res, skipped, o.err
	case <-time.After(time.Minute):
		t.Fatal("the snapshot hung")
		return archiver.Result{}, nil, nil
	}
}

// A container swaps a directory of its volume for a symlink to a host directory while the
// plugin walks the volume: the host's files must not enter the snapshot.
func TestADirectorySwappedForASymlinkMidWalkIsNotFollowed(t *testing.T) {
	vol, host := t.TempDir(), t.TempDir()
	write(t, filepath.Join(host, "shadow"), []byte("root:the host's secret"))
	write(t, filepath.Join(vol, "b/data"), []byte("the volume's own"))

	res, skipped, err := snapshotRacing(t, vol, func() {
		must(t, os.RemoveAll(filepath.Join(vol, "b")))
		must(t, os.Symlink(host, filepath.Join(vol, "b")))
	})
	if err != nil {
		t.Fatalf("the snapshot failed: %v", err)
	}
	restored := res.Root.Name
	if data, err := os.ReadFile(filepath.Join(restored, "b/shadow")); err == nil {
		t.Fatalf("a host file entered the snapshot through a swapped symlink: %q", data)
	}
	if len(skipped) == 0 {
		t.Error("the swapped directory was not reported as skipped")
	}
}

// A container swaps a file for a FIFO (whose open blocks until a writer comes) after it was
// listed: the snapshot must neither hang nor fail, and says what it left out.
func TestAFileSwappedForAFIFOMidWalkDoesNotHangTheSnapshot(t *testing.T) {
	vol := t.TempDir()
	write(t, filepath.Join(vol, "a"), []byte("kept"))
	write(t, filepath.Join(vol, "f"), []byte("about to become a fifo"))

	res, skipped, err := snapshotRacing(t, vol, func() {
		must(t, os.Remove(filepath.Join(vol, "f")))
		must(t, syscall.Mkfifo(filepath.Join(vol, "f"), 0o600))
	})
	if err != nil {
		t.Fatalf("the snapshot failed: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(res.Root.Name, "a")); err != nil || string(data) != "kept" {
		t.Errorf("a = %q, %v", data, err)
	}
	if !strings.Contains(strings.Join(skipped, "\n"), "f: ") {
		t.Errorf("skipped %q, want f named", skipped)
	}
}

// Busy applications remove temporary directories all the time: one that vanishes between
// being listed and being read is a warning, not a failed snapshot.
func TestADirectoryThatVanishesMidWalkIsSkippedWithAWarning(t *testing.T) {
	vol := t.TempDir()
	write(t, filepath.Join(vol, "a"), []byte("kept"))
	write(t, filepath.Join(vol, "tmp/x"), []byte("temporary"))

	res, skipped, err := snapshotRacing(t, vol, func() {
		must(t, os.RemoveAll(filepath.Join(vol, "tmp")))
	})
	if err != nil {
		t.Fatalf("the snapshot failed: %v", err)
	}
	if len(skipped) != 1 || !strings.HasPrefix(skipped[0], "tmp: ") {
		t.Errorf("skipped %q, want tmp", skipped)
	}
	if _, err := os.Stat(filepath.Join(res.Root.Name, "tmp")); !os.IsNotExist(err) {
		t.Errorf("the vanished directory is in the snapshot: %v", err)
	}
	if res.Stats.Skipped != 1 {
		t.Errorf("stats count %d skipped entries, want 1", res.Stats.Skipped)
	}
}

// A non-root database owns its volume's top directory: a restore must give it back with its
// owner and mode, or the database cannot read its own data.
func TestRestoreKeepsTheRootDirectorysOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners need root")
	}
	vol := t.TempDir()
	write(t, filepath.Join(vol, "PG_VERSION"), []byte("16"))
	must(t, os.Chown(vol, 999, 998))
	must(t, os.Chmod(vol, 0o750))

	res, _, err := snapshotRacing(t, vol, func() {})
	if err != nil {
		t.Fatal(err)
	}
	st := lstat(t, res.Root.Name)
	if st.Uid != 999 || st.Gid != 998 || st.Mode&0o7777 != 0o750 {
		t.Errorf("restored root: uid %d gid %d mode %o, want 999 998 750", st.Uid, st.Gid, st.Mode&0o7777)
	}
}

// failingSource fails to open one file and is slow to open the others, and remembers every
// file it handed out.
type failingSource struct {
	archiver.Source
	mu     sync.Mutex
	opened []*os.File
	calls  int
}

func (s *failingSource) Open(rel string) (*os.File, error) {
	if rel == "a-unreadable" {
		return nil, fmt.Errorf("open %s: %w", rel, os.ErrPermission)
	}
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	f, err := s.Source.Open(rel)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls--
	if f != nil {
		s.opened = append(s.opened, f)
	}
	return f, err
}

// When one file fails, the backup fails, and nothing it started is still at work when it
// returns: the caller releases the repository's lock right after.
func TestAFailedSnapshotLeavesNoFileJobRunning(t *testing.T) {
	vol := t.TempDir()
	write(t, filepath.Join(vol, "a-unreadable"), []byte("x"))
	for i := range 6 {
		write(t, filepath.Join(vol, fmt.Sprintf("b%d", i)), randomBytes(1<<20))
	}
	src := &failingSource{Source: openLive(t, vol)}
	_, err := archiver.SnapshotFrom(context.Background(), openRepo(t), src, archiver.Options{})
	if !errors.Is(err, os.ErrPermission) {
		t.Fatalf("snapshot: %v, want the permission error", err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.calls != 0 {
		t.Errorf("%d file opens still under way after the snapshot returned", src.calls)
	}
	for _, f := range src.opened {
		if f.Fd() != ^uintptr(0) {
			t.Errorf("%s is still being read after the snapshot returned", f.Name())
		}
	}
}
