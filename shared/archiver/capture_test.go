package archiver_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/archiver"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
)

// A capture is the tree at the moment it was taken: what happens to the live files between
// the capture and the (slow) archiving is not in the snapshot.
func TestSnapshotOfCaptureIsTheTreeAtCaptureTime(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	unchanged := randomBytes(2 << 20)
	write(t, filepath.Join(src, "db/unchanged.dat"), unchanged)
	write(t, filepath.Join(src, "db/changed.dat"), []byte("first"))
	write(t, filepath.Join(src, "db/deleted.dat"), []byte("deleted after the capture"))
	r := openRepo(t)
	first := backup(t, r, src, nil)

	write(t, filepath.Join(src, "db/changed.dat"), []byte("second"))
	write(t, filepath.Join(src, "db/new.dat"), []byte("new"))
	parent := archiver.NewParent(r, first)
	if err := parent.Preload(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := archiver.CaptureTree(ctx, r, src, t.TempDir(), parent)
	if err != nil {
		t.Fatal(err)
	}
	if c.Files != 2 {
		t.Errorf("the capture copied %d files, want the 2 that changed", c.Files)
	}

	// The users are released: they change everything.
	write(t, filepath.Join(src, "db/changed.dat"), []byte("third, after the capture"))
	write(t, filepath.Join(src, "db/unchanged.dat"), []byte("overwritten after the capture"))
	must(t, os.Remove(filepath.Join(src, "db/deleted.dat")))
	write(t, filepath.Join(src, "late.dat"), []byte("created after the capture"))

	res, err := archiver.SnapshotFrom(ctx, r, c, archiver.Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	must(t, r.Flush(ctx))
	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := restorer.Restore(ctx, r, res.Tree, dst, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"db/unchanged.dat": unchanged,
		"db/changed.dat":   []byte("second"),
		"db/deleted.dat":   []byte("deleted after the capture"),
		"db/new.dat":       []byte("new"),
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s restored as %.40q (%v), want %.40q", name, got, err, data)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "late.dat")); !os.IsNotExist(err) {
		t.Errorf("a file created after the capture is in the snapshot")
	}
}
