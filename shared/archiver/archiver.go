// Package archiver turns a directory tree into a snapshot tree in a repository: files are cut
// into content-defined chunks, each stored once; files unchanged since the parent snapshot
// (same size, mtime, ctime and inode) are not read at all.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc" // registers the algorithm
	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Chunk sizes: small enough that a local change re-stores little, large enough that the
// index stays small. FastCDC with normalised chunking cuts about 300 KiB chunks, in text as
// in random data, at about 1.7 GB/s on one core of the benchmark machine; its gear table is
// derived from the repository's key. UltraCDC, used before, found no cut point in text: it
// cut every 1 MiB, so bytes inserted near the start of a dump shifted every chunk after them.
// A larger minimum with a denser cut test (FastCDC's first masks) chunks three times as fast
// but falls back in step slowly after an overwritten region: 4.7 MiB stored for 2 MiB
// overwritten, against 2.8 MiB with these settings.
const (
	chunkMin    = 128 << 10
	chunkNormal = 256 << 10
	chunkMax    = 1 << 20
	algorithm   = "fastcdc-v1.0.0"
)

// Progress is reported while a backup runs.
type Progress struct {
	Files     uint64
	Bytes     uint64 // bytes of files done, read or skipped
	BytesRead uint64
	BytesNew  uint64
}

// Options tune a backup.
type Options struct {
	// Parent is the previous snapshot of the same source; its unchanged files are not read.
	Parent *Parent
	// Workers read and chunk files in parallel; zero means two.
	Workers int
	// Progress, when set, receives the running totals from time to time.
	Progress func(Progress)
	// Skipped, when set, is told about entries that vanished or changed type while being
	// read; they are left out of the snapshot.
	Skipped func(path string, err error)
}

// Result is what a backup stored.
type Result struct {
	Tree repository.ID // the top directory's listing
	// Root is the top directory's own metadata (owner, mode, times), which its listing does
	// not hold: a restore gives it back to the directory it fills.
	Root  snapshot.Node
	Stats snapshot.Stats
	// Warnings name the first entries left out (vanished or changed while read), at most
	// maxWarnings; Stats.Skipped counts them all.
	Warnings []string
}

// maxWarnings bounds what a snapshot record says about skipped entries: a volume churning
// temporary files must not grow the record without end.
const maxWarnings = 100

// Archiver backs up one directory tree.
type Archiver struct {
	repo  *repository.Repository
	src   Source
	opts  Options
	work  *errgroup.Group // file jobs; its context ends at the first failure
	walks *errgroup.Group // directories walked beside the caller's walk, in the same context
	// store is the caller's context, for blob saves: the repository uploads full packs in
	// the background until the caller's Flush, beyond the end of the job group's context.
	store context.Context
	bufs  sync.Pool

	files, dirs, bytes, changed, read, blobsNew, bytesNew, skipped atomic.Uint64
	lastReport                                                     atomic.Int64 // unix nanoseconds

	mu       sync.Mutex
	warnings []string
}

// Snapshot stores the tree below dir as it is while being read. The caller flushes the
// repository and saves the snapshot record.
func Snapshot(ctx context.Context, repo *repository.Repository, dir string, opts Options) (Result, error) {
	src, err := Dir(dir)
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	return SnapshotFrom(ctx, repo, src, opts)
}

// SnapshotFrom stores the tree a source presents: a live directory, or a capture of one.
// Every file job it starts has ended when it returns, whatever happened.
func SnapshotFrom(ctx context.Context, repo *repository.Repository, src Source, opts Options) (Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	root, err := src.Root()
	if err != nil {
		return Result{}, err
	}
	parent, err := opts.Parent.root(ctx)
	if err != nil {
		return Result{}, err
	}
	work, wctx := errgroup.WithContext(ctx)
	work.SetLimit(opts.Workers)
	walks, wctx := errgroup.WithContext(wctx)
	walks.SetLimit(opts.Workers)
	a := &Archiver{repo: repo, src: src, opts: opts, work: work, walks: walks, store: ctx}
	a.bufs.New = func() any { b := make([]byte, 2*chunkMax); return &b }
	id, err := a.saveDir(wctx, ".", parent)
	// Walkers start file jobs, so they end first.
	walkErr := walks.Wait()
	err = cause(work.Wait(), walkErr, err)
	if err != nil {
		return Result{}, err
	}
	a.report()
	return Result{Tree: id, Root: root, Stats: a.stats(), Warnings: a.warnings}, nil
}

// cause picks the error that says what went wrong: a failure anywhere cancels the rest, whose
// errors then only say they were cancelled.
func cause(errs ...error) error {
	var first error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (a *Archiver) stats() snapshot.Stats {
	return snapshot.Stats{
		Files: a.files.Load(), Dirs: a.dirs.Load(), Bytes: a.bytes.Load(),
		FilesChanged: a.changed.Load(), BytesRead: a.read.Load(),
		BlobsNew: a.blobsNew.Load(), BytesNew: a.bytesNew.Load(), Skipped: a.skipped.Load(),
	}
}

// maybeReport reports progress at most ten times a second.
func (a *Archiver) maybeReport() {
	if a.opts.Progress == nil {
		return
	}
	now, last := time.Now().UnixNano(), a.lastReport.Load()
	if now-last > int64(100*time.Millisecond) && a.lastReport.CompareAndSwap(last, now) {
		a.report()
	}
}

func (a *Archiver) report() {
	if a.opts.Progress != nil {
		a.opts.Progress(Progress{Files: a.files.Load(), Bytes: a.bytes.Load(), BytesRead: a.read.Load(), BytesNew: a.bytesNew.Load()})
	}
}

// pending is an entry whose content is still being stored: a file's chunks, or the
// listings below a directory.
type pending struct {
	node *snapshot.Node
	done chan error
}

// saveDir stores the listing of the directory rel after all its entries; the parent tree,
// when known, lets unchanged files through without reading them. Files are stored by the
// file jobs, subdirectories walked by another walker when one is free (else right here),
// so that a directory waiting on its last large file does not hold up its siblings. An
// error that says rel itself vanished or changed type is for the caller to skip.
func (a *Archiver) saveDir(ctx context.Context, rel string, parent *snapshot.Tree) (repository.ID, error) {
	nodes, err := a.src.List(rel)
	if err != nil {
		return repository.ID{}, err
	}
	// Pending entries point into tree.Nodes, so it must never grow beyond its capacity: it
	// is sized for every entry up front.
	tree := &snapshot.Tree{Nodes: make([]snapshot.Node, 0, len(nodes))}
	var waits []pending
	for _, node := range nodes {
		if err := ctx.Err(); err != nil {
			return repository.ID{}, err
		}
		path := filepath.Join(rel, node.Name)
		switch node.Type {
		case snapshot.TypeDir:
			sub, err := a.opts.Parent.subtree(ctx, parent.Find(node.Name))
			if err != nil {
				return repository.ID{}, fmt.Errorf("read the parent's listing of %s: %w", path, err)
			}
			tree.Nodes = append(tree.Nodes, node)
			p := pending{node: &tree.Nodes[len(tree.Nodes)-1], done: make(chan error, 1)}
			waits = append(waits, p)
			walk := func() error {
				id, err := a.saveDir(ctx, path, sub)
				if err == nil {
					p.node.Subtree = &id
					a.dirs.Add(1)
				}
				p.done <- err
				if skippable(err) {
					return nil // left out with a warning, below
				}
				return err
			}
			if !a.walks.TryGo(walk) {
				if err := walk(); err != nil {
					return repository.ID{}, err
				}
			}
		case snapshot.TypeFile:
			a.files.Add(1)
			if old := parent.Find(node.Name); reusable(a.repo, old, &node) {
				node.Content = old.Content
				a.bytes.Add(node.Size)
				a.maybeReport()
				tree.Nodes = append(tree.Nodes, node)
				break
			}
			tree.Nodes = append(tree.Nodes, node)
			p := pending{node: &tree.Nodes[len(tree.Nodes)-1], done: make(chan error, 1)}
			waits = append(waits, p)
			a.work.Go(func() error {
				err := a.saveFile(ctx, path, p.node)
				p.done <- err
				a.maybeReport()
				if skippable(err) {
					return nil // left out with a warning, below
				}
				return err
			})
		default:
			tree.Nodes = append(tree.Nodes, node)
		}
	}
	var vanished map[string]bool
	for _, p := range waits {
		err := <-p.done
		if skippable(err) {
			a.skip(filepath.Join(rel, p.node.Name), err)
			if vanished == nil {
				vanished = map[string]bool{}
			}
			vanished[p.node.Name] = true
			continue
		}
		if err != nil {
			return repository.ID{}, err
		}
	}
	if vanished != nil {
		kept := tree.Nodes[:0]
		for _, n := range tree.Nodes {
			if !vanished[n.Name] {
				kept = append(kept, n)
			}
		}
		tree.Nodes = kept
	}
	id, err := snapshot.SaveTree(a.store, a.repo, tree)
	if err != nil {
		return repository.ID{}, fmt.Errorf("store the listing of %s: %w", rel, err)
	}
	return id, nil
}

func (a *Archiver) skip(path string, err error) {
	a.skipped.Add(1)
	// Walkers skip entries at once; the caller's callback is told one at a time.
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.warnings) < maxWarnings {
		a.warnings = append(a.warnings, fmt.Sprintf("%s: %v", path, err))
	}
	if a.opts.Skipped != nil {
		a.opts.Skipped(path, err)
	}
}

// reusable reports whether a file may keep the parent's content without being read: it looks
// unchanged (same size, mtime, ctime, inode) and the repository still holds every chunk.
func reusable(repo *repository.Repository, old, cur *snapshot.Node) bool {
	if old == nil || old.Type != snapshot.TypeFile ||
		old.Size != cur.Size || old.ModTime != cur.ModTime || old.ChangeTime != cur.ChangeTime ||
		old.Inode != cur.Inode || old.DeviceID != cur.DeviceID {
		return false
	}
	for _, id := range old.Content {
		if !repo.HasBlob(id) {
			return false
		}
	}
	return true
}

// saveFile stores a file's content, chunk by chunk, and records the chunk IDs in node.
func (a *Archiver) saveFile(ctx context.Context, path string, node *snapshot.Node) error {
	f, err := a.src.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	a.changed.Add(1)

	bufp := a.bufs.Get().(*[]byte)
	defer a.bufs.Put(bufp)
	var size uint64
	store := func(chunk []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		id, isNew, err := a.repo.SaveBlob(a.store, repository.DataBlob, chunk)
		if err != nil {
			return fmt.Errorf("store %s: %w", path, err)
		}
		if isNew {
			a.blobsNew.Add(1)
			a.bytesNew.Add(uint64(len(chunk)))
		}
		node.Content = append(node.Content, id)
		size += uint64(len(chunk))
		a.read.Add(uint64(len(chunk)))
		a.bytes.Add(uint64(len(chunk)))
		return nil
	}

	if node.Size < chunkMin {
		// Small files are one chunk: no chunker needed.
		buf := (*bufp)[:cap(*bufp)]
		n, err := io.ReadFull(f, buf[:chunkMin])
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if n > 0 {
			if err := store(buf[:n]); err != nil {
				return err
			}
		}
		if n == chunkMin {
			// It grew while being read; chunk the rest.
			if err := a.chunkRest(f, path, bufp, store); err != nil {
				return err
			}
		}
	} else if err := a.chunkRest(f, path, bufp, store); err != nil {
		return err
	}
	// The size is what was read: a file that changed while read is stored as read.
	node.Size = size
	return nil
}

func (a *Archiver) chunkRest(r io.Reader, path string, bufp *[]byte, store func([]byte) error) error {
	return chunk(namedReader{r, path}, a.repo.ChunkKey(), *bufp, store)
}

// chunk cuts what r holds into chunks where key puts the cut points, and hands each to store;
// buf holds at least chunkMax bytes.
func chunk(r io.Reader, key, buf []byte, store func([]byte) error) error {
	c, err := chunkers.NewChunkerBuffer(algorithm, r, &chunkers.ChunkerOpts{
		MinSize: chunkMin, NormalSize: chunkNormal, MaxSize: chunkMax, Key: key,
	}, buf)
	if err != nil {
		return err
	}
	for {
		chunk, err := c.Next()
		if err != nil && err != io.EOF {
			return err
		}
		if len(chunk) > 0 {
			if serr := store(chunk); serr != nil {
				return serr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// namedReader says which file a read error came from.
type namedReader struct {
	r    io.Reader
	path string
}

func (n namedReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read %s: %w", n.path, err)
	}
	return k, err
}
