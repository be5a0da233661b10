package repository

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// spillFile holds the records of a large table in a file mapped into memory: its pages
// are the page cache's, which the kernel writes back and reclaims when memory runs short,
// where records on the heap would count against a plugin's limit until the process died.
type spillFile struct {
	f    *os.File
	size int
}

func newSpillFile(dir string) (*spillFile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "index-table-*")
	if err != nil {
		return nil, err
	}
	// Unlinked at once: the records last while the file is open or mapped, and a process
	// that is killed leaves nothing behind.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return &spillFile{f: f}, nil
}

func (s *spillFile) write(recs []byte) error {
	n, err := s.f.Write(recs)
	s.size += n
	if err != nil {
		return fmt.Errorf("spill the index to a file: %w", err)
	}
	return nil
}

// readBack returns the first n bytes written, on the heap, and closes the file: the way back
// when the file cannot take more.
func (s *spillFile) readBack(n int) ([]byte, error) {
	defer s.f.Close()
	buf := make([]byte, n)
	if _, err := s.f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("read the index back from its file: %w", err)
	}
	return buf, nil
}

// mapAll maps the records into memory, shared with the file so that sorting them dirties
// file pages and not the heap, and closes the file (the mapping keeps it).
func (s *spillFile) mapAll() ([]byte, error) {
	m, err := unix.Mmap(int(s.f.Fd()), 0, s.size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the index file: %w", err)
	}
	return m, s.f.Close()
}

// unmapWhenGone releases a table's mapping once nothing reads the table any more.
func unmapWhenGone(t *blobTable, mapped []byte) {
	// Lookups are random: reading ahead would only evict other pages.
	_ = unix.Madvise(mapped, unix.MADV_RANDOM)
	runtime.AddCleanup(t, func(m []byte) { _ = unix.Munmap(m) }, mapped)
}
