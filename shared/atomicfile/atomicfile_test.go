package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesContentAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "two" {
		t.Fatalf("content = %q, %v", b, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
}

func TestWriteFileIntoMissingDirectoryFails(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "missing", "f"), []byte("x"), 0o600)
	if err == nil {
		t.Fatal("no error")
	}
}

func TestCreateSucceedsOnceAmongConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- Create(path, []byte("x"), 0o600) }()
	}
	ok := 0
	for range 8 {
		err := <-errs
		if err == nil {
			ok++
		} else if !errors.Is(err, fs.ErrExist) {
			t.Errorf("create: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d creates succeeded", ok)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d entries left, want the file alone", len(entries))
	}
}
