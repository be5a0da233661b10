package localfs

import (
	"context"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/storage/storagetest"
)

func TestBackend(t *testing.T) {
	b, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Run(t, b)
}

func TestNamesCannotEscapeTheDirectory(t *testing.T) {
	b, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "a/../../x", "/etc/passwd", ""} {
		if err := b.Put(context.Background(), name, []byte("x")); err == nil {
			t.Errorf("put %q succeeded", name)
		}
	}
}
