package archiver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// LiveDir reads a directory tree as it is at each moment. The tree belongs to containers,
// which may swap any directory for a symlink or any file for a FIFO or a device while it is
// read; the plugin reading it runs as root. So every name is resolved beneath the handle of
// the top directory, opened once, without following a symlink at any step, and only regular
// files are ever opened for reading, without blocking.
type LiveDir struct {
	root *os.File
	path string // for messages only, never opened again
}

var _ Source = (*LiveDir)(nil)

// ErrChanged says an entry changed its type while the tree was read: a directory that became
// a symlink or a file, a file that became a FIFO or a device.
var ErrChanged = errors.New("changed type while being read")

// Dir opens the live directory tree below root; Close releases it.
func Dir(root string) (*LiveDir, error) {
	f, err := os.OpenFile(root, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("%s is not a directory", root)
		}
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	return &LiveDir{root: f, path: root}, nil
}

// Close releases the handle on the top directory.
func (d *LiveDir) Close() error { return d.root.Close() }

// Root returns the top directory's metadata.
func (d *LiveDir) Root() (snapshot.Node, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(d.root.Fd()), &st); err != nil {
		return snapshot.Node{}, fmt.Errorf("stat %s: %w", d.path, err)
	}
	return nodeFromStat(".", d.path, &st, nil)
}

// List reads the directory rel through a handle of its own: the names it returns are
// examined relative to that handle, never by a path that could be resolved anew.
func (d *LiveDir) List(rel string) ([]snapshot.Node, error) {
	path := filepath.Join(d.path, rel)
	fd, err := d.openBeneath(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", path, err)
	}
	dir := os.NewFile(uintptr(fd), path)
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", path, err)
	}
	nodes := make([]snapshot.Node, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", filepath.Join(path, name), err)
		}
		readlink := func() (string, error) { return readlinkat(fd, name) }
		node, err := nodeFromStat(name, filepath.Join(path, name), &st, readlink)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, node)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, nil
}

// Open opens the regular file rel. Anything else found there now (a FIFO, whose open would
// block until a writer came; a device, whose open can act on hardware) is refused with
// ErrChanged before a byte is read.
func (d *LiveDir) Open(rel string) (*os.File, error) {
	path := filepath.Join(d.path, rel)
	fd, err := d.openBeneath(rel, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: %w", path, ErrChanged)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openBeneath opens rel below the top directory, refusing symlinks at every step and any
// escape from the tree. openat2 does it in one call; kernels before 5.6 walk the path one
// name at a time, each opened relative to the handle of the one before.
func (d *LiveDir) openBeneath(rel string, flags int) (int, error) {
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	how := unix.OpenHow{
		Flags:   uint64(flags),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 8 {
		fd, err := unix.Openat2(int(d.root.Fd()), rel, &how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EAGAIN): // a rename raced the lookup: look again
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
			// No openat2 here, or a seccomp profile that refuses it.
			return d.openByHandles(rel, flags)
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
			return -1, ErrChanged
		default:
			return -1, err
		}
	}
	return -1, unix.EAGAIN
}

func (d *LiveDir) openByHandles(rel string, flags int) (int, error) {
	parts := strings.Split(filepath.Clean(rel), "/")
	fd := int(d.root.Fd())
	own := false
	defer func() {
		if own {
			unix.Close(fd)
		}
	}()
	for i, name := range parts {
		if name == ".." {
			return -1, fmt.Errorf("%s leaves the tree", rel)
		}
		f := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags
		}
		next, err := unix.Openat(fd, name, f, 0)
		if errors.Is(err, unix.ELOOP) || (errors.Is(err, unix.ENOTDIR) && i < len(parts)-1) {
			return -1, ErrChanged
		}
		if err != nil {
			return -1, err
		}
		if own {
			unix.Close(fd)
		}
		fd, own = next, true
	}
	own = false
	return fd, nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// skippable reports whether an error says an entry vanished or changed while being read:
// busy applications do that all the time, and it is a warning in the snapshot, not a failure.
func skippable(err error) bool {
	return err != nil && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrChanged) ||
		errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP))
}

// nodeFromStat describes one entry; readlink reads a symlink's target.
func nodeFromStat(name, path string, st *unix.Stat_t, readlink func() (string, error)) (snapshot.Node, error) {
	n := snapshot.Node{
		Name:       name,
		Mode:       fileMode(st.Mode),
		UID:        st.Uid,
		GID:        st.Gid,
		ModTime:    st.Mtim.Nano(),
		ChangeTime: st.Ctim.Nano(),
		AccessTime: st.Atim.Nano(),
		Inode:      st.Ino,
		DeviceID:   st.Dev,
		Links:      uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = snapshot.TypeFile
		n.Size = uint64(st.Size)
	case unix.S_IFDIR:
		n.Type = snapshot.TypeDir
	case unix.S_IFLNK:
		n.Type = snapshot.TypeSymlink
		if readlink == nil {
			return n, fmt.Errorf("read link %s: no directory handle", path)
		}
		target, err := readlink()
		if err != nil {
			return n, fmt.Errorf("read link %s: %w", path, err)
		}
		n.LinkTarget = target
	case unix.S_IFCHR:
		n.Type = snapshot.TypeCharDev
		n.Rdev = st.Rdev
	case unix.S_IFBLK:
		n.Type = snapshot.TypeDevice
		n.Rdev = st.Rdev
	case unix.S_IFIFO:
		n.Type = snapshot.TypeFIFO
	case unix.S_IFSOCK:
		n.Type = snapshot.TypeSocket
	default:
		return n, fmt.Errorf("%s: unsupported file type %o", path, st.Mode&unix.S_IFMT)
	}
	return n, nil
}

// fileMode converts a stat mode to Go's, as os.Lstat does.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
