package restorer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Files are written through bare descriptors rather than os.File: a regular file gains
// nothing from the runtime's poller, and os.OpenFile's extra fcntl and epoll calls, with a
// path lookup for each of chmod and utimensat, were half the system calls of restoring many
// small files.

// createSized creates path empty at size (holes where nothing is written later).
func createSized(path string, size int64) error {
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	err = unix.Ftruncate(fd, size)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// writeWhole creates a one-blob file with its content, owner, mode and times, all through
// one descriptor.
func writeWhole(fs *fileState, data []byte, zero bool) error {
	mode, exact := createMode(fs.node)
	fd, err := unix.Open(fs.path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", fs.path, err)
	}
	if zero {
		err = unix.Ftruncate(fd, int64(len(data)))
	} else {
		err = writeAll(fd, data, -1)
	}
	if err == nil {
		err = finishFD(fd, fs.node, exact)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", fs.path, err)
	}
	return nil
}

// writeAt writes one blob of a file that has several.
func writeAt(path string, data []byte, offset int64) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = writeAll(fd, data, offset)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeAll writes data at offset, or at the descriptor's position when offset is negative.
func writeAll(fd int, data []byte, offset int64) error {
	for len(data) > 0 {
		var n int
		var err error
		if offset < 0 {
			n, err = unix.Write(fd, data)
		} else {
			n, err = unix.Pwrite(fd, data, offset)
			offset += int64(n)
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		data = data[n:]
	}
	return nil
}

// finishFD applies a file's owner, mode and times through its descriptor, in that order:
// chown clears the set-user and set-group ID bits, and a write after the times would move
// them again. A file created with its mode exactly needs no chmod.
func finishFD(fd int, n snapshot.Node, modeSet bool) error {
	if n.UID != euid || n.GID != egid {
		if err := unix.Fchown(fd, int(n.UID), int(n.GID)); err != nil && !errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if !modeSet {
		if err := unix.Fchmod(fd, unixMode(n.Mode)); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := [2]unix.Timespec{unix.NsecToTimespec(n.AccessTime), unix.NsecToTimespec(n.ModTime)}
	// utimensat with no path is futimens: it sets the times of the descriptor's file.
	if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0); errno != 0 {
		return fmt.Errorf("set times: %w", errno)
	}
	return nil
}

// unixMode is the permission and special bits of m as the kernel spells them.
func unixMode(m os.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		mode |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	return mode
}

// createMode is the mode to create a file with, and whether it comes out exactly as n's: the
// umask only clears bits, so a mode with none of the umask's bits and no special bits needs
// no chmod after. Until then, and otherwise, a file is its owner's alone.
func createMode(n snapshot.Node) (uint32, bool) {
	want := unixMode(n.Mode)
	mask := processUmask()
	if mask < 0 || want&^0o777 != 0 || want&uint32(mask) != 0 {
		return 0o600, false
	}
	return want, true
}

// processUmask is this process's umask, or -1 where the kernel does not say (before Linux
// 4.7); reading it with umask(2) would change it for a moment under every other goroutine.
var processUmask = sync.OnceValue(func() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return -1
			}
			return int(mask)
		}
	}
	return -1
})
