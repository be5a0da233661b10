package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// restoreTarget is an empty file system for one restore, mounted from a sparse image file
// below work: each peer's restore starts on the same fresh ext4, with a journal as on most
// hosts, many times larger than what is restored, as a host's volume directory is, and with
// its inode tables written by mkfs rather than by a kernel thread during the restore.
//
// Restoring into the work directory itself measured the previous restore's deletion: ext4
// without a journal (as this machine's root) passes over inodes freed in the last five
// minutes when it allocates new ones (fs/ext4/ialloc.c, recently_deleted), so creating 30,000
// files right after removing 30,000 others scans the freed ones each time. The same tar
// restore took 3.3 s on a fresh file system and 12-13 s in the work directory. The size of
// the file system counts too: our restore of the 1 GiB set took 7.0-7.5 s into 2 GiB, 3-4 s
// into 4 to 16 GiB.
type restoreTarget struct {
	image, mount string
	mounted      bool
}

// newRestoreTarget makes and mounts a file system of size bytes with at least inodes inodes.
// Where that cannot be done (not root, no loop devices), the restore goes to a directory in
// work and the report says so.
func newRestoreTarget(work string, size int64, inodes int) (*restoreTarget, error) {
	t := &restoreTarget{image: filepath.Join(work, "restore.img"), mount: filepath.Join(work, "restore-fs")}
	if err := os.MkdirAll(t.mount, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(t.image)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := command("mkfs.ext4", "-q", "-F", "-N", fmt.Sprint(inodes), "-E", "lazy_itable_init=0,lazy_journal_init=0", t.image); err != nil {
		fmt.Fprintf(os.Stderr, "bench: restores go to a directory, not a fresh file system: %v\n", err)
		return t, os.Remove(t.image)
	}
	if err := command("mount", "-o", "loop", t.image, t.mount); err != nil {
		fmt.Fprintf(os.Stderr, "bench: restores go to a directory, not a fresh file system: %v\n", err)
		return t, os.Remove(t.image)
	}
	t.mounted = true
	return t, nil
}

// dir is where the restore writes.
func (t *restoreTarget) dir() string { return filepath.Join(t.mount, "restore") }

// Close unmounts and removes the file system.
func (t *restoreTarget) Close() error {
	if t.mounted {
		if err := command("umount", t.mount); err != nil {
			return err
		}
		t.mounted = false
		_ = os.Remove(t.image)
	}
	return os.RemoveAll(t.mount)
}

func command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
