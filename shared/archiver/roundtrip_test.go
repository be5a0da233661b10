package archiver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/archiver"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
	"github.com/swarmbackup/swarmbackup/shared/storage/localfs"
)

func openRepo(t *testing.T) *repository.Repository {
	t.Helper()
	be, err := localfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := repository.OpenOrInit(context.Background(), be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// backup stores dir as a snapshot and returns it.
func backup(t *testing.T, r *repository.Repository, dir string, parent *snapshot.Snapshot) *snapshot.Snapshot {
	t.Helper()
	ctx := context.Background()
	res, err := archiver.Snapshot(ctx, r, dir, archiver.Options{Parent: archiver.NewParent(r, parent)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &snapshot.Snapshot{Time: time.Now(), Kind: snapshot.KindVolume, Source: "test", Tree: res.Tree, Root: &res.Root, Stats: res.Stats}
	if parent != nil {
		sn.Parent = &parent.ID
	}
	if err := snapshot.Save(ctx, r, sn); err != nil {
		t.Fatal(err)
	}
	return sn
}

// In batches of one file too: a hardlink to a file of an earlier batch, a directory's time
// set after the last of its files.
func TestRestoreReproducesContentAndMetadata(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners, device nodes and times need root")
	}
	for _, batch := range []int{0, 1} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) { testRestore(t, batch) })
	}
}

func testRestore(t *testing.T, batch int) {
	src := t.TempDir()
	big := randomBytes(3<<20 + 12345)
	write(t, filepath.Join(src, "big.bin"), big)
	write(t, filepath.Join(src, "dir/small.txt"), []byte("small"))
	write(t, filepath.Join(src, "dir/sub/empty"), nil)
	if err := os.MkdirAll(filepath.Join(src, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	must(t, os.Chown(filepath.Join(src, "dir/small.txt"), 1234, 5678))
	must(t, os.Chmod(filepath.Join(src, "dir/small.txt"), 0o751|os.ModeSetuid))
	// Modes the umask would clip and modes it would not.
	modes := map[string]os.FileMode{"dir/shared.txt": 0o666, "dir/private.txt": 0o640, "dir/readonly.txt": 0o444}
	for name, mode := range modes {
		write(t, filepath.Join(src, name), []byte(name))
		must(t, os.Chmod(filepath.Join(src, name), mode))
	}
	must(t, os.Symlink("../big.bin", filepath.Join(src, "dir/link")))
	must(t, os.Link(filepath.Join(src, "big.bin"), filepath.Join(src, "dir/hard.bin")))
	must(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(t, syscall.Mknod(filepath.Join(src, "dir/null"), syscall.S_IFCHR|0o666, 1<<8|3))
	sparse := filepath.Join(src, "sparse.img")
	f, err := os.Create(sparse)
	must(t, err)
	must(t, f.Truncate(64<<20))
	_, err = f.WriteAt([]byte("middle"), 32<<20)
	must(t, err)
	must(t, f.Close())
	old := time.Date(2020, 5, 1, 12, 0, 0, 123456789, time.UTC)
	must(t, os.Chtimes(filepath.Join(src, "dir/small.txt"), old, old))
	must(t, os.Chtimes(filepath.Join(src, "dir"), old, old))

	r := openRepo(t)
	sn := backup(t, r, src, nil)
	dst := filepath.Join(t.TempDir(), "restored")
	stats, err := restorer.Restore(context.Background(), r, sn.Tree, dst, restorer.Options{BatchFiles: batch})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Links != 1 {
		t.Errorf("restored %d hardlinks, want 1", stats.Links)
	}
	// What grants more than its owner's rights is named: the setuid file and the device node.
	sort.Strings(stats.Privileged)
	if stats.PrivilegedCount != 2 || strings.Join(stats.Privileged, " ") != "dir/null dir/small.txt" {
		t.Errorf("privileged entries: %d %q", stats.PrivilegedCount, stats.Privileged)
	}

	got, _ := os.ReadFile(filepath.Join(dst, "big.bin"))
	if !bytes.Equal(got, big) {
		t.Errorf("big.bin differs: %d bytes", len(got))
	}
	for name, mode := range modes {
		if st := lstat(t, filepath.Join(dst, name)); st.Mode&0o7777 != uint32(mode) {
			t.Errorf("%s: mode %o, want %o", name, st.Mode&0o7777, mode)
		}
	}
	st := lstat(t, filepath.Join(dst, "dir/small.txt"))
	if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o4751 {
		t.Errorf("small.txt: uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if mt := time.Unix(0, st.Mtim.Nano()); !mt.Equal(old) {
		t.Errorf("small.txt mtime %v, want %v", mt, old)
	}
	if mt := time.Unix(0, lstat(t, filepath.Join(dst, "dir")).Mtim.Nano()); !mt.Equal(old) {
		t.Errorf("dir mtime %v, want %v", mt, old)
	}
	if target, err := os.Readlink(filepath.Join(dst, "dir/link")); err != nil || target != "../big.bin" {
		t.Errorf("symlink: %q, %v", target, err)
	}
	if lstat(t, filepath.Join(dst, "dir/hard.bin")).Ino != lstat(t, filepath.Join(dst, "big.bin")).Ino {
		t.Error("the hardlink was restored as a copy")
	}
	if fi, err := os.Lstat(filepath.Join(dst, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "emptydir")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Errorf("empty dir: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "dir/sub/empty")); err != nil || fi.Size() != 0 {
		t.Errorf("empty file: %v, %v", fi, err)
	}
	sp := lstat(t, filepath.Join(dst, "sparse.img"))
	if sp.Size != 64<<20 || sp.Blocks*512 > 4<<20 {
		t.Errorf("sparse file: size %d, %d bytes allocated", sp.Size, sp.Blocks*512)
	}
	mid := make([]byte, 6)
	sf, _ := os.Open(filepath.Join(dst, "sparse.img"))
	_, _ = sf.ReadAt(mid, 32<<20)
	sf.Close()
	if string(mid) != "middle" {
		t.Errorf("sparse file content: %q", mid)
	}
}

func TestSecondSnapshotReadsOnlyChangedFilesAndStoresOnlyNewChunks(t *testing.T) {
	src := t.TempDir()
	for i := range 20 {
		write(t, filepath.Join(src, "files", string(rune('a'+i))), randomBytes(200<<10))
	}
	large := randomBytes(8 << 20)
	write(t, filepath.Join(src, "large.bin"), large)
	r := openRepo(t)
	first := backup(t, r, src, nil)

	// Change one small file and 1 MiB in the middle of the large one.
	write(t, filepath.Join(src, "files", "c"), randomBytes(200<<10))
	copy(large[4<<20:], randomBytes(1<<20))
	write(t, filepath.Join(src, "large.bin"), large)

	second := backup(t, r, src, first)
	if second.Stats.FilesChanged != 2 {
		t.Errorf("the second backup read %d files, want the 2 that changed", second.Stats.FilesChanged)
	}
	// A changed region costs at most a few chunks around it until the chunker falls back in
	// step with the old cut points; without deduplication this would be all 8.2 MB again.
	changed := uint64(200<<10 + 1<<20)
	if second.Stats.BytesNew > changed+4*(1<<20) {
		t.Errorf("the second backup stored %d new bytes for %d changed", second.Stats.BytesNew, changed)
	}
	if second.Stats.Files != first.Stats.Files || second.Stats.Bytes != first.Stats.Bytes {
		t.Errorf("totals differ: %+v vs %+v", second.Stats, first.Stats)
	}
	dst := t.TempDir() + "/r"
	if _, err := restorer.Restore(context.Background(), r, second.Tree, dst, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dst, "large.bin"))
	if !bytes.Equal(got, large) {
		t.Error("the incremental snapshot restores a different large.bin")
	}
}

func TestRestoreRefusesCorruptData(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "f"), randomBytes(300<<10))
	r := openRepo(t)
	sn := backup(t, r, src, nil)
	ctx := context.Background()
	be := r.Backend()
	// Damage every pack.
	err := be.List(ctx, "data/", func(name string, _ int64) error {
		data, err := be.Get(ctx, name, 1<<30)
		if err != nil {
			return err
		}
		data[len(data)/3] ^= 0xff
		return be.Put(ctx, name, data)
	})
	must(t, err)
	r2, err := repository.Open(ctx, be, "pw")
	must(t, err)
	_, err = restorer.Restore(ctx, r2, sn.Tree, t.TempDir()+"/r", restorer.Options{})
	if err == nil {
		t.Fatal("restore of damaged data succeeded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func lstat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}
