package diskcrypt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pvisor/pvisor/hv/virtio"
)

// benchStoreSize is the image the benchmarks read and write, 4 KiB at a
// time, stepping through it (larger than the store's buffer, smaller than
// the page cache: the figures are the cipher's and the store's, not the
// disk's).
const benchStoreSize = 64 << 20

func benchStore(b *testing.B, s virtio.BlockStore, write bool) {
	p := make([]byte, 4096)
	for i := range p {
		p[i] = byte(i)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		var err error
		if write {
			_, err = s.WriteAt(p, off)
		} else {
			_, err = s.ReadAt(p, off)
		}
		if err != nil {
			b.Fatal(err)
		}
		off = (off + 4096) % benchStoreSize
	}
}

func benchEncrypted(b *testing.B, write bool) {
	k := testKey(b, 1)
	s := openStore(b, newImage(b, benchStoreSize, k, nil), k)
	benchStore(b, s, write)
}

func benchRaw(b *testing.B, write bool) {
	p := filepath.Join(b.TempDir(), "raw.img")
	if err := os.WriteFile(p, make([]byte, benchStoreSize), 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	s, err := virtio.NewFileStore(f)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchStore(b, s, write)
}

// BenchmarkRead4K: 4 KiB reads through an encrypted Store.
func BenchmarkRead4K(b *testing.B) { benchEncrypted(b, false) }

// BenchmarkWrite4K: 4 KiB writes through an encrypted Store (no sync).
func BenchmarkWrite4K(b *testing.B) { benchEncrypted(b, true) }

// BenchmarkRawRead4K: the same reads through virtio.FileStore, the raw
// image, for the ratio.
func BenchmarkRawRead4K(b *testing.B) { benchRaw(b, false) }

// BenchmarkRawWrite4K: the same writes through virtio.FileStore.
func BenchmarkRawWrite4K(b *testing.B) { benchRaw(b, true) }
