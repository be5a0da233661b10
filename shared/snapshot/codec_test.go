package snapshot

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

func sampleTree() *Tree {
	sub := repository.ID{9, 9}
	return &Tree{Nodes: []Node{
		{Name: "a.txt", Type: TypeFile, Mode: 0o4751, UID: 1234, GID: 5678, ModTime: 1_700_000_000_123_456_789,
			ChangeTime: -5, AccessTime: 42, Inode: 1 << 40, DeviceID: 2049, Links: 2, Size: 3 << 20,
			Content: []repository.ID{{1}, {2}, {3}}},
		{Name: "dev", Type: TypeCharDev, Mode: 0o666, Rdev: 1<<8 | 3},
		{Name: "empty", Type: TypeFile},
		{Name: "fifo", Type: TypeFIFO, Mode: 0o600},
		{Name: "link", Type: TypeSymlink, LinkTarget: "../a.txt"},
		{Name: "sock", Type: TypeSocket},
		{Name: "sub", Type: TypeDir, Mode: 0o750 | 1<<31, Subtree: &sub},
		{Name: "ünïcode", Type: TypeDevice, Rdev: 7},
	}}
}

// A tree reads back as it was written, every field of every type; the same tree always
// encodes to the same bytes (an unchanged directory keeps its ID); and trees stored as JSON
// by earlier versions read as the same tree.
func TestTreesReadBackAsWrittenInEitherForm(t *testing.T) {
	want := sampleTree()
	data, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTree(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%+v\nwrote\n%+v", got, want)
	}
	again, _ := sampleTree().Encode()
	if string(again) != string(data) {
		t.Error("one tree encoded to two forms")
	}
	legacy, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	old, err := DecodeTree(legacy)
	if err != nil || !reflect.DeepEqual(old, want) {
		t.Errorf("a JSON tree read as %+v, %v", old, err)
	}
	if len(data) >= len(legacy)/2 {
		t.Logf("binary %d bytes, JSON %d", len(data), len(legacy))
	}
	for cut := range len(data) {
		if _, err := DecodeTree(data[:cut]); err == nil {
			t.Fatalf("a tree cut at %d of %d bytes was read", cut, len(data))
		}
	}
}

// BenchmarkDecodeTree reads a listing of 100 files in both forms:
// go test -run '^$' -bench DecodeTree ./shared/snapshot
func BenchmarkDecodeTree(b *testing.B) {
	tree := &Tree{}
	for i := range 100 {
		tree.Nodes = append(tree.Nodes, Node{Name: string(rune('a'+i/26)) + string(rune('a'+i%26)) + ".txt", Type: TypeFile,
			Mode: 0o644, UID: 1000, GID: 1000, ModTime: 1_700_000_000_000_000_000 + int64(i), ChangeTime: 1_700_000_000_000_000_000,
			Inode: uint64(1_000_000 + i), DeviceID: 2049, Links: 1, Size: 4096, Content: []repository.ID{{byte(i)}}})
	}
	binaryForm, _ := tree.Encode()
	jsonForm, _ := json.Marshal(tree)
	for _, form := range []struct {
		name string
		data []byte
	}{{"binary", binaryForm}, {"json", jsonForm}} {
		b.Run(form.name, func(b *testing.B) {
			b.SetBytes(int64(len(form.data)))
			for range b.N {
				if _, err := DecodeTree(form.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
