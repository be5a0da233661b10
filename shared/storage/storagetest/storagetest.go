// Package storagetest holds the behaviour every storage backend must show, run against each.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/storage"
)

// Run checks b, which must be empty.
func Run(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	t.Run("PutGetStat", func(t *testing.T) {
		data := bytes.Repeat([]byte("swarm"), 1000)
		if err := b.Put(ctx, "data/ab/abcdef", data); err != nil {
			t.Fatal(err)
		}
		got, err := b.Get(ctx, "data/ab/abcdef", 1<<20)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get: %d bytes, %v", len(got), err)
		}
		size, err := b.Stat(ctx, "data/ab/abcdef")
		if err != nil || size != int64(len(data)) {
			t.Fatalf("stat: %d, %v", size, err)
		}
		part := make([]byte, 10)
		if err := b.ReadAt(ctx, "data/ab/abcdef", 5, part); err != nil || !bytes.Equal(part, data[5:15]) {
			t.Fatalf("range: %q, %v", part, err)
		}
		if err := b.ReadAt(ctx, "data/ab/abcdef", int64(len(data))-2, part); err == nil {
			t.Error("a range past the end succeeded")
		}
	})
	t.Run("GetRefusesWhatIsTooLarge", func(t *testing.T) {
		if err := b.Put(ctx, "index/large", make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, "index/large", 999); !errors.Is(err, storage.ErrTooLarge) {
			t.Fatalf("get beyond the limit: %v", err)
		}
		if got, err := b.Get(ctx, "index/large", 1000); err != nil || len(got) != 1000 {
			t.Fatalf("get at the limit: %d bytes, %v", len(got), err)
		}
		if err := b.Delete(ctx, "index/large"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("GetWhileAWriterReplacesIt", func(t *testing.T) {
		// Progress records are replaced while others read them: every read sees one whole version.
		versions := [][]byte{bytes.Repeat([]byte("a"), 70000), bytes.Repeat([]byte("b"), 30000)}
		if err := b.Put(ctx, "setreports/busy", versions[0]); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			for i := 1; ; i++ {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if err := b.Put(ctx, "setreports/busy", versions[i%2]); err != nil {
					done <- err
					return
				}
			}
		}()
		for i := 0; i < 300; i++ {
			got, err := b.Get(ctx, "setreports/busy", 1<<20)
			if err != nil {
				close(stop)
				<-done
				t.Fatalf("read %d while the record was replaced: %v", i, err)
			}
			if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
				t.Fatalf("read %d: %d bytes that are neither version", i, len(got))
			}
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("PutReplaces", func(t *testing.T) {
		if err := b.Put(ctx, "config", []byte("one")); err != nil {
			t.Fatal(err)
		}
		if err := b.Put(ctx, "config", []byte("two")); err != nil {
			t.Fatal(err)
		}
		got, err := b.Get(ctx, "config", 1<<20)
		if err != nil || string(got) != "two" {
			t.Fatalf("get after replace: %q, %v", got, err)
		}
	})
	t.Run("CreateOnlyOnce", func(t *testing.T) {
		const writers = 8
		errs := make(chan error, writers)
		for i := range writers {
			go func() { errs <- b.Create(ctx, "locks/exclusive", []byte{byte(i)}) }()
		}
		created := 0
		for range writers {
			err := <-errs
			switch {
			case err == nil:
				created++
			case !errors.Is(err, storage.ErrExists):
				t.Errorf("create: %v", err)
			}
		}
		if created != 1 {
			t.Errorf("%d of %d concurrent creates succeeded, want exactly 1", created, writers)
		}
		if got := list(t, b, "locks/"); !equal(got, []string{"locks/exclusive"}) {
			t.Errorf("after creates: %v", got)
		}
		if err := b.Delete(ctx, "locks/exclusive"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		if _, err := b.Get(ctx, "snapshots/missing", 1<<20); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("get missing: %v", err)
		}
		if _, err := b.Stat(ctx, "snapshots/missing"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("stat missing: %v", err)
		}
		if err := b.Delete(ctx, "snapshots/missing"); err != nil {
			t.Errorf("delete missing: %v", err)
		}
	})
	t.Run("ListAndDelete", func(t *testing.T) {
		for _, n := range []string{"index/1", "index/2", "indexes-not/3", "locks/4"} {
			if err := b.Put(ctx, n, []byte(n)); err != nil {
				t.Fatal(err)
			}
		}
		got := list(t, b, "index/")
		if want := []string{"index/1", "index/2"}; !equal(got, want) {
			t.Errorf("list index/: %v, want %v", got, want)
		}
		if err := b.Delete(ctx, "index/1"); err != nil {
			t.Fatal(err)
		}
		if got := list(t, b, "index/"); !equal(got, []string{"index/2"}) {
			t.Errorf("list after delete: %v", got)
		}
		all := list(t, b, "")
		if len(all) < 4 {
			t.Errorf("list of everything: %v", all)
		}
	})
}

func list(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	var names []string
	err := b.List(context.Background(), prefix, func(name string, size int64) error {
		names = append(names, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
