package snapshot

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

func FuzzDecodeTree(f *testing.F) {
	sub := repository.ID{7}
	good, _ := (&Tree{Nodes: []Node{
		{Name: "a", Type: TypeFile, Size: 3, Content: []repository.ID{{1}}},
		{Name: "b", Type: TypeDir, Subtree: &sub},
		{Name: "c", Type: TypeSymlink, LinkTarget: "a"},
	}}).Encode()
	f.Add(good)
	legacy, _ := json.Marshal(&Tree{Nodes: []Node{{Name: "a", Type: TypeFile}}})
	f.Add(legacy)
	sample, _ := sampleTree().Encode()
	f.Add(sample)
	f.Add([]byte(`{"nodes":[{"name":"..","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"x/y","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"b","type":"dir"},{"name":"a","type":"file"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree, err := DecodeTree(data)
		if err != nil {
			return
		}
		for i, n := range tree.Nodes {
			if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
				t.Fatalf("accepted the name %q", n.Name)
			}
			if i > 0 && tree.Nodes[i-1].Name >= n.Name {
				t.Fatal("accepted unsorted names")
			}
			if n.Type == TypeDir && n.Subtree == nil {
				t.Fatal("accepted a directory without a subtree")
			}
		}
	})
}
