package repository

import (
	"encoding/json"
	"reflect"
	"testing"
)

func sampleIndexFile() *indexFile {
	return &indexFile{
		Packs: []indexPack{
			{ID: ID{1}, Size: 9000, Blobs: []indexBlob{
				{ID: ID{2}, Type: DataBlob, Offset: 0, Length: 4000, RawLength: 5000},
				{ID: ID{3}, Type: TreeBlob, Offset: 4000, Length: 100, RawLength: 72},
			}},
			{ID: ID{4}, Size: 200, Control: true, Blobs: []indexBlob{{ID: ID{5}, Offset: 10, Length: 190, RawLength: 162}}},
			{ID: ID{6}, Size: 1 << 31, Node: "worker-1", Blobs: []indexBlob{{ID: ID{7}, Offset: 1<<31 - 100, Length: 100, RawLength: 72}}},
		},
		Supersedes: []ID{{8}, {9}},
	}
}

// Index files written in the binary form read back as written; those written in JSON by
// earlier versions still read; every truncation and anything appended is refused.
func TestIndexFilesReadBackInEitherForm(t *testing.T) {
	want := sampleIndexFile()
	stored := encodeIndexFile(want)
	got, err := decodeIndexFile(stored)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("binary form: %+v, %v", got, err)
	}
	old, _ := json.Marshal(want)
	if got, err := decodeIndexFile(old); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON form: %+v, %v", got, err)
	}
	for n := len(indexMagic); n < len(stored); n++ {
		if _, err := decodeIndexFile(stored[:n]); err == nil {
			t.Fatalf("a file cut to %d of %d bytes was accepted", n, len(stored))
		}
	}
	if _, err := decodeIndexFile(append(stored, 0)); err == nil {
		t.Fatal("a byte after the end was accepted")
	}
	// A blob past its pack's end is refused in this form as in JSON.
	bad := sampleIndexFile()
	bad.Packs[0].Blobs[1].Offset = 8950
	if _, err := decodeIndexFile(encodeIndexFile(bad)); err == nil {
		t.Fatal("a blob past its pack's end was accepted")
	}
}

// The binary form takes a fraction of JSON's time to decode: it is most of an open's work
// after the key derivation.
func BenchmarkDecodeIndexFile(b *testing.B) {
	f := &indexFile{}
	for p := range 1000 {
		pack := indexPack{ID: ID{byte(p), byte(p >> 8)}, Size: 8 << 20}
		for i := range 30 {
			pack.Blobs = append(pack.Blobs, indexBlob{ID: ID{byte(p), byte(p >> 8), byte(i)}, Offset: uint32(i) << 18, Length: 1 << 18, RawLength: 1 << 18})
		}
		f.Packs = append(f.Packs, pack)
	}
	binary := encodeIndexFile(f)
	text, _ := json.Marshal(f)
	for _, form := range []struct {
		name string
		data []byte
	}{{"binary", binary}, {"json", text}} {
		b.Run(form.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeIndexFile(form.data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/30000, "ns/blob")
		})
	}
}
