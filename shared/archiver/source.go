package archiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Source is the tree the archiver reads: a live directory, or a capture of one.
type Source interface {
	// Root returns the metadata of the top directory (owner, mode, times).
	Root() (snapshot.Node, error)
	// List returns the entries of the directory rel ("." is the top), sorted by name, with
	// their metadata. Entries that vanish while listed are left out.
	List(rel string) ([]snapshot.Node, error)
	// Open opens the regular file rel for reading.
	Open(rel string) (*os.File, error)
}

// Parent is the previous snapshot of a source, whose listings tell which files are unchanged.
// Its listings are read from the repository as the walk reaches them, or all up front with
// Preload, when the walk must not wait on the repository.
type Parent struct {
	repo  *repository.Repository
	snap  *snapshot.Snapshot
	trees map[repository.ID]*snapshot.Tree
}

// NewParent returns the parent for a snapshot; nil when sn is nil.
func NewParent(repo *repository.Repository, sn *snapshot.Snapshot) *Parent {
	if sn == nil {
		return nil
	}
	return &Parent{repo: repo, snap: sn}
}

// Preload reads every listing of the parent into memory.
func (p *Parent) Preload(ctx context.Context) error {
	if p == nil {
		return nil
	}
	trees := map[repository.ID]*snapshot.Tree{}
	var load func(id repository.ID) error
	load = func(id repository.ID) error {
		if _, ok := trees[id]; ok {
			return nil
		}
		t, err := snapshot.LoadTree(ctx, p.repo, id)
		if err != nil {
			return err
		}
		trees[id] = t
		for _, n := range t.Nodes {
			if n.Type == snapshot.TypeDir && n.Subtree != nil {
				if err := load(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := load(p.snap.Tree); err != nil {
		return fmt.Errorf("read the parent snapshot %s: %w", p.snap.ID.Short(), err)
	}
	p.trees = trees
	return nil
}

func (p *Parent) root(ctx context.Context) (*snapshot.Tree, error) {
	if p == nil {
		return nil, nil
	}
	t, err := p.tree(ctx, p.snap.Tree)
	if err != nil {
		return nil, fmt.Errorf("read the parent snapshot %s: %w", p.snap.ID.Short(), err)
	}
	return t, nil
}

// subtree returns the listing of a directory node of the parent; nil when there is none.
func (p *Parent) subtree(ctx context.Context, n *snapshot.Node) (*snapshot.Tree, error) {
	if p == nil || n == nil || n.Type != snapshot.TypeDir || n.Subtree == nil {
		return nil, nil
	}
	return p.tree(ctx, *n.Subtree)
}

func (p *Parent) tree(ctx context.Context, id repository.ID) (*snapshot.Tree, error) {
	if t, ok := p.trees[id]; ok {
		return t, nil
	}
	return snapshot.LoadTree(ctx, p.repo, id)
}

// Capture is a tree frozen at one moment: every listing as it was, and a copy of each file
// the parent cannot provide. It is taken while the volume's users are held still, and
// archived after they are released, so that the hold does not last the upload.
type Capture struct {
	dir     string
	root    snapshot.Node
	listing map[string][]snapshot.Node
	copies  map[string]string // file -> its copy in dir
	Files   uint64            // files copied
	Bytes   uint64            // bytes copied
	// Skipped names what vanished or changed type while it was captured.
	Skipped []Skip
}

// Skip is an entry left out of a tree because it vanished or changed while being read.
type Skip struct {
	Path string
	Err  error
}

func (c *Capture) skip(path string, err error) { c.Skipped = append(c.Skipped, Skip{path, err}) }

// Root returns the top directory's metadata as it was captured.
func (c *Capture) Root() (snapshot.Node, error) { return c.root, nil }

// CaptureTree lists the tree below root and copies the files that changed since the parent
// into dir, which must be empty and should be on the same file system as root, where the
// copies are cheapest. Preload the parent first: a capture should not wait on the repository.
func CaptureTree(ctx context.Context, repo *repository.Repository, root, dir string, parent *Parent) (*Capture, error) {
	live, err := Dir(root)
	if err != nil {
		return nil, err
	}
	defer live.Close()
	top, err := live.Root()
	if err != nil {
		return nil, err
	}
	c := &Capture{dir: dir, root: top, listing: map[string][]snapshot.Node{}, copies: map[string]string{}}
	var walk func(rel string, old *snapshot.Tree) error
	walk = func(rel string, old *snapshot.Tree) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		nodes, err := live.List(rel)
		if err != nil {
			return err
		}
		kept := nodes[:0]
		for _, n := range nodes {
			path := filepath.Join(rel, n.Name)
			switch n.Type {
			case snapshot.TypeDir:
				sub, err := parent.subtree(ctx, old.Find(n.Name))
				if err != nil {
					return fmt.Errorf("read the parent's listing of %s: %w", path, err)
				}
				err = walk(path, sub)
				if skippable(err) {
					c.skip(path, err)
					continue
				}
				if err != nil {
					return err
				}
			case snapshot.TypeFile:
				if reusable(repo, old.Find(n.Name), &n) {
					break
				}
				err := c.copy(live, path)
				if skippable(err) {
					c.skip(path, err)
					continue
				}
				if err != nil {
					return err
				}
			}
			kept = append(kept, n)
		}
		c.listing[rel] = kept
		return nil
	}
	parentRoot, err := parent.root(ctx)
	if err != nil {
		return nil, err
	}
	if err := walk(".", parentRoot); err != nil {
		return nil, fmt.Errorf("capture %s: %w", root, err)
	}
	return c, nil
}

func (c *Capture) copy(live Source, rel string) error {
	src, err := live.Open(rel)
	if err != nil {
		return err
	}
	defer src.Close()
	name := filepath.Join(c.dir, fmt.Sprintf("%d", len(c.copies)))
	dst, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	// On Linux this is copy_file_range: a reflink where the file system can, in-kernel otherwise.
	n, err := dst.ReadFrom(src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", rel, err)
	}
	c.copies[rel] = name
	c.Files++
	c.Bytes += uint64(n)
	return nil
}

// List returns the listing as it was captured.
func (c *Capture) List(rel string) ([]snapshot.Node, error) {
	nodes, ok := c.listing[rel]
	if !ok {
		return nil, fmt.Errorf("directory %s is not in the capture", rel)
	}
	return append([]snapshot.Node(nil), nodes...), nil
}

// Open opens the captured copy of a changed file.
func (c *Capture) Open(rel string) (*os.File, error) {
	name, ok := c.copies[rel]
	if !ok {
		return nil, fmt.Errorf("file %s is not in the capture", rel)
	}
	return os.Open(name)
}
