package archiver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/archiver"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// openLive opens dir as a live source for the length of the test.
func openLive(t *testing.T, dir string) *archiver.LiveDir {
	t.Helper()
	live, err := archiver.Dir(dir)
	must(t, err)
	t.Cleanup(func() { live.Close() })
	return live
}

// gatedSource holds the opens of files below gateFiles until the directory gateDir has been
// listed; the listing of gateDir fails when fail is set.
type gatedSource struct {
	archiver.Source
	gateFiles, gateDir string
	fail               bool
	listed             chan struct{}
	once               sync.Once
}

func (s *gatedSource) List(rel string) ([]snapshot.Node, error) {
	if rel != s.gateDir {
		return s.Source.List(rel)
	}
	s.once.Do(func() { close(s.listed) })
	if s.fail {
		return nil, fmt.Errorf("read directory %s: %w", rel, os.ErrPermission)
	}
	return s.Source.List(rel)
}

func (s *gatedSource) Open(rel string) (*os.File, error) {
	if filepath.Dir(rel) == s.gateFiles {
		select {
		case <-s.listed:
		case <-time.After(20 * time.Second):
			return nil, fmt.Errorf("open %s: %s was never listed while it waited", rel, s.gateDir)
		}
	}
	return s.Source.Open(rel)
}

// A directory still storing a large file does not hold up the walk of its siblings: the
// backup of a volume whose first directory holds one big changed file reads the rest of the
// tree meanwhile, instead of leaving the other worker idle.
func TestTheWalkGoesOnWhileADirectoryWaitsForItsFiles(t *testing.T) {
	vol := t.TempDir()
	write(t, filepath.Join(vol, "a/big.bin"), randomBytes(1<<20))
	write(t, filepath.Join(vol, "b/small.txt"), []byte("small"))
	src := &gatedSource{Source: openLive(t, vol), gateFiles: "a", gateDir: "b", listed: make(chan struct{})}

	r := openRepo(t)
	res, err := archiver.SnapshotFrom(context.Background(), r, src, archiver.Options{})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if res.Stats.Files != 2 || res.Stats.Dirs != 2 {
		t.Errorf("snapshot holds %d files and %d directories, want 2 and 2", res.Stats.Files, res.Stats.Dirs)
	}
}

// When the walk of one directory fails while files elsewhere are being stored, the error
// says what failed, not that the files' jobs were cancelled.
func TestAFailedWalkReportsItsOwnError(t *testing.T) {
	vol := t.TempDir()
	write(t, filepath.Join(vol, "a/x/y"), []byte("y"))
	for i := range 4 {
		write(t, filepath.Join(vol, fmt.Sprintf("b/f%d", i)), randomBytes(1<<20))
	}
	src := &gatedSource{Source: openLive(t, vol), gateFiles: "b", gateDir: "a/x", fail: true, listed: make(chan struct{})}
	_, err := archiver.SnapshotFrom(context.Background(), openRepo(t), src, archiver.Options{})
	if !errors.Is(err, os.ErrPermission) {
		t.Fatalf("snapshot: %v, want the permission error of a/x", err)
	}
}
