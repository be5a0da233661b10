package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// Node types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	TypeDevice  = "dev"
	TypeCharDev = "chardev"
	TypeFIFO    = "fifo"
	TypeSocket  = "socket"
)

// Node is one directory entry with everything needed to restore it as it was.
type Node struct {
	Name string      `json:"name"`
	Type string      `json:"type"`
	Mode fs.FileMode `json:"mode"`
	UID  uint32      `json:"uid"`
	GID  uint32      `json:"gid"`
	// Times in nanoseconds since the epoch.
	ModTime    int64 `json:"mtime"`
	ChangeTime int64 `json:"ctime"`
	AccessTime int64 `json:"atime,omitempty"`
	// Inode, DeviceID and Links tell hardlinks apart and let the next backup skip
	// unchanged files.
	Inode    uint64 `json:"inode,omitempty"`
	DeviceID uint64 `json:"devid,omitempty"`
	Links    uint64 `json:"links,omitempty"`

	Size       uint64          `json:"size,omitempty"`
	Content    []repository.ID `json:"content,omitempty"`
	Subtree    *repository.ID  `json:"subtree,omitempty"`
	LinkTarget string          `json:"target,omitempty"`
	Rdev       uint64          `json:"rdev,omitempty"` // device number of device nodes
}

// Tree is a directory listing, sorted by name.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Find returns the node with the given name, or nil.
func (t *Tree) Find(name string) *Node {
	if t == nil {
		return nil
	}
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= name })
	if i < len(t.Nodes) && t.Nodes[i].Name == name {
		return &t.Nodes[i]
	}
	return nil
}

// Encode returns the stored form of t (codec.go).
func (t *Tree) Encode() ([]byte, error) {
	return t.encodeBinary()
}

// DecodeTree parses and validates a stored tree, binary or JSON: names must be single path
// elements, unique and sorted, so that a damaged or hostile tree cannot write outside a
// restore target.
func DecodeTree(data []byte) (*Tree, error) {
	var t *Tree
	switch {
	case len(data) > 0 && data[0] == treeFormat:
		var err error
		if t, err = decodeBinary(data); err != nil {
			return nil, err
		}
	case len(data) > 0 && data[0] == '{':
		t = &Tree{}
		if err := json.Unmarshal(data, t); err != nil {
			return nil, fmt.Errorf("tree: %w", err)
		}
	default:
		return nil, errors.New("tree: unknown format")
	}
	for i, n := range t.Nodes {
		if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
			return nil, fmt.Errorf("tree: invalid entry name %q", n.Name)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("tree: entries are not sorted and unique at %q", n.Name)
		}
		switch n.Type {
		case TypeDir:
			if n.Subtree == nil {
				return nil, fmt.Errorf("tree: directory %q has no subtree", n.Name)
			}
		case TypeFile, TypeSymlink, TypeDevice, TypeCharDev, TypeFIFO, TypeSocket:
		default:
			return nil, fmt.Errorf("tree: entry %q has unknown type %q", n.Name, n.Type)
		}
	}
	return t, nil
}
