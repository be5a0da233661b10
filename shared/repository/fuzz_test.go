package repository

import (
	"encoding/json"
	"testing"
)

// Decoders of stored data must reject anything malformed without panicking.

func FuzzDecodePackHeader(f *testing.F) {
	hdr := encodePackHeader([]packEntry{
		{Type: DataBlob, ID: ID{1}, Length: 100, RawLength: 200},
		{Type: TreeBlob, ID: ID{2}, Length: 50, RawLength: 40},
	})
	f.Add(hdr, int64(150))
	f.Add(hdr[:40], int64(100))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, data []byte, dataLen int64) {
		entries, err := decodePackHeader(data, dataLen)
		if err != nil {
			return
		}
		var end int64
		for _, e := range entries {
			if int64(e.Offset) != end || e.Length < sealOverhead {
				t.Fatalf("accepted a bad entry %+v", e)
			}
			end += int64(e.Length)
		}
		if end != dataLen {
			t.Fatalf("accepted blobs covering %d of %d bytes", end, dataLen)
		}
	})
}

func FuzzSplitPack(f *testing.F) {
	c, _ := newCrypter(make([]byte, 32))
	p := &packer{}
	p.add(c, DataBlob, ID{1}, make([]byte, 64), 10)
	f.Add(p.finish(c))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, pack []byte) {
		data, hdr, err := splitPack(pack)
		if err != nil {
			return
		}
		if len(data)+len(hdr)+4 != len(pack) {
			t.Fatalf("split %d bytes into %d + %d + 4", len(pack), len(data), len(hdr))
		}
	})
}

func FuzzDecodeIndexFile(f *testing.F) {
	good, _ := json.Marshal(indexFile{Packs: []indexPack{{ID: ID{9}, Size: 1000, Blobs: []indexBlob{{ID: ID{1}, Offset: 0, Length: 100, RawLength: 90}}}}})
	f.Add(good)
	f.Add([]byte(`{"packs":[{"id":"zz"}]}`))
	f.Add([]byte(`{"packs":[{"blobs":[{"o":4294967295,"l":4294967295}]}]}`))
	f.Add(encodeIndexFile(sampleIndexFile()))
	f.Add(append(append([]byte(nil), indexMagic...), 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := decodeIndexFile(data)
		if err != nil {
			return
		}
		for _, p := range x.Packs {
			for _, b := range p.Blobs {
				if int64(b.Offset)+int64(b.Length) > p.Size {
					t.Fatalf("accepted a blob past its pack's end: %+v in %d", b, p.Size)
				}
			}
		}
	})
}

func FuzzOpenKeyFile(f *testing.F) {
	mk := newMasterKey()
	// Cheap parameters keep the fuzzer fast; the decoder's checks are what is exercised.
	kf := keyFile{Version: 1, KDF: "scrypt", N: 2, R: 1, P: 1, Salt: make([]byte, 16)}
	c, _ := kf.cipher("pw")
	plain, _ := json.Marshal(mk)
	kf.Sealed = c.seal(nil, plain, []byte("swarmbackup key"))
	good, _ := json.Marshal(kf)
	f.Add(good, "pw")
	f.Add(good, "wrong")
	f.Add([]byte(`{"version":1,"kdf":"scrypt","n":1073741824,"r":1,"p":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="}`), "pw")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		got, err := openKeyFile(data, password)
		if err == nil && !got.valid() {
			t.Fatal("accepted an invalid master key")
		}
	})
}
