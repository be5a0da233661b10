package repository

import (
	"bufio"
	"bytes"
	"container/heap"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// spillFile holds the sorted runs of a large table, then merges them into the table in a
// file of its own mapped into memory. Both files are unlinked as soon as they are made, so
// a process that is killed leaves nothing behind. Every write is synced before the next:
// dirty pages cannot be dropped, and a memory limit (a cgroup's) that fills with them kills
// the process, where clean ones are reclaimed.
type spillFile struct {
	dir  string
	f    *os.File
	ends []int64 // where each run ends
}

func newSpillFile(dir string) (*spillFile, error) {
	f, err := newUnlinked(dir)
	if err != nil {
		return nil, err
	}
	return &spillFile{dir: dir, f: f}, nil
}

func newUnlinked(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "index-table-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (s *spillFile) size() int64 {
	if len(s.ends) == 0 {
		return 0
	}
	return s.ends[len(s.ends)-1]
}

// writeRun appends a sorted run of records.
func (s *spillFile) writeRun(recs []byte) error {
	if _, err := s.f.WriteAt(recs, s.size()); err != nil {
		return fmt.Errorf("spill the index to a file: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("spill the index to a file: %w", err)
	}
	s.ends = append(s.ends, s.size()+int64(len(recs)))
	return nil
}

// readBack returns every run written, on the heap, and closes the file: the way back when
// the directory cannot take the table.
func (s *spillFile) readBack() ([]byte, error) {
	defer s.f.Close()
	buf := make([]byte, s.size())
	if _, err := s.f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("read the index back from its file: %w", err)
	}
	return buf, nil
}

// merge writes the records of every run that keep accepts, in order, to a new file and
// maps it into memory, read-only; it closes the runs' file.
func (s *spillFile) merge(keep func(rec []byte) bool) ([]byte, error) {
	defer s.f.Close()
	out, err := newUnlinked(s.dir)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	var runs runHeap
	start := int64(0)
	for _, end := range s.ends {
		r := &run{src: bufio.NewReaderSize(io.NewSectionReader(s.f, start, end-start), 64<<10)}
		start = end
		if err := r.next(); err != nil {
			return nil, err
		}
		if r.ok {
			runs = append(runs, r)
		}
	}
	heap.Init(&runs)
	w := bufio.NewWriterSize(out, 1<<20)
	var written int64
	for len(runs) > 0 {
		r := runs[0]
		if keep(r.rec[:]) {
			if _, err := w.Write(r.rec[:]); err != nil {
				return nil, fmt.Errorf("merge the index: %w", err)
			}
			written += int64(recordSize)
			if written%(16<<20) == 0 {
				if err := syncWriter(w, out); err != nil {
					return nil, err
				}
			}
		}
		if err := r.next(); err != nil {
			return nil, err
		}
		if r.ok {
			heap.Fix(&runs, 0)
		} else {
			heap.Pop(&runs)
		}
	}
	if err := syncWriter(w, out); err != nil {
		return nil, err
	}
	if written == 0 {
		return []byte{}, nil
	}
	m, err := unix.Mmap(int(out.Fd()), 0, int(written), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the index file: %w", err)
	}
	return m, nil
}

func syncWriter(w *bufio.Writer, f *os.File) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("merge the index: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("merge the index: %w", err)
	}
	return nil
}

// run reads one sorted run, a record at a time.
type run struct {
	src io.Reader
	rec [recordSize]byte
	ok  bool
}

func (r *run) next() error {
	_, err := io.ReadFull(r.src, r.rec[:])
	r.ok = err == nil
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the index's runs: %w", err)
	}
	return nil
}

// runHeap orders runs by their current record.
type runHeap []*run

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return bytes.Compare(h[i].rec[:32], h[j].rec[:32]) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*run)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// unmapWhenGone releases a table's mapping once nothing reads the table any more.
func unmapWhenGone(t *blobTable, mapped []byte) {
	if len(mapped) == 0 {
		return
	}
	// Lookups are random: reading ahead would only evict other pages.
	_ = unix.Madvise(mapped, unix.MADV_RANDOM)
	runtime.AddCleanup(t, func(m []byte) { _ = unix.Munmap(m) }, mapped)
}
