package diskcrypt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/snapshot"
)

// TestRoundTrip: random writes of random lengths at random offsets (whole
// sectors, parts of sectors, more than the store's buffer) read back as
// an in-memory model of the disk says, at once and after reopening, with
// a key file and with a passphrase; what is read is never the ciphertext.
func TestRoundTrip(t *testing.T) {
	for _, k := range []*snapshot.Key{testKey(t, 1), testPassphrase(t, "correct horse")} {
		name := "keyfile"
		if k.IsPassphrase() {
			name = "passphrase"
		}
		t.Run(name, func(t *testing.T) {
			const size = 1 << 20
			src := detRand(2)
			r := rand.New(src)
			model := make([]byte, size)
			src.Read(model[:size/2]) // the first half from the source, the rest zeros
			path := newImage(t, size, k, model)
			s := openStore(t, path, k)
			if s.Size() != size {
				t.Fatalf("Size %d, want %d", s.Size(), size)
			}
			got := make([]byte, size)
			for i := 0; i < 300; i++ {
				var off, n int
				switch i % 3 {
				case 0: // whole sectors, up to three buffers' worth
					off = r.IntN(size/SectorSize) * SectorSize
					n = r.IntN(min(3*bufSize, size-off)/SectorSize+1) * SectorSize
				case 1: // anywhere, short
					off = r.IntN(size)
					n = r.IntN(min(3*SectorSize, size-off) + 1)
				default: // anywhere, long
					off = r.IntN(size)
					n = r.IntN(size-off) + 1
				}
				p := make([]byte, n)
				src.Read(p)
				if w, err := s.WriteAt(p, int64(off)); err != nil || w != n {
					t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", n, off, w, err)
				}
				copy(model[off:], p)
				// Read back an overlapping range.
				roff := max(0, off-r.IntN(2*SectorSize))
				rn := min(size-roff, n+r.IntN(2*SectorSize))
				if m, err := s.ReadAt(got[:rn], int64(roff)); err != nil || m != rn {
					t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", rn, roff, m, err)
				}
				if !bytes.Equal(got[:rn], model[roff:roff+rn]) {
					t.Fatalf("step %d: read %d bytes at %d differ from what was written", i, rn, roff)
				}
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s2 := openStore(t, path, k)
			if _, err := s2.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, model) {
				t.Fatal("after reopening, the disk is not what was written")
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(raw[HeaderSize:], model) {
				t.Fatal("the payload is stored in plaintext")
			}
		})
	}
}

// TestStoreRefuses: reads and writes beyond the disk, and writes to a
// read-only store, are errors that change nothing.
func TestStoreRefuses(t *testing.T) {
	k := testKey(t, 1)
	path := newImage(t, 8*SectorSize, k, nil)
	s := openStore(t, path, k)
	for _, c := range []struct {
		n   int
		off int64
	}{{1, -1}, {1, 8 * SectorSize}, {SectorSize + 1, 7 * SectorSize}, {0, 8*SectorSize + 1}, {1, 1 << 62}} {
		if _, err := s.ReadAt(make([]byte, c.n), c.off); err == nil || !strings.Contains(err.Error(), "beyond") {
			t.Errorf("ReadAt(%d bytes, %d): %v, want a beyond-the-disk error", c.n, c.off, err)
		}
		if _, err := s.WriteAt(make([]byte, c.n), c.off); err == nil {
			t.Errorf("WriteAt(%d bytes, %d) succeeded", c.n, c.off)
		}
	}
	before, _ := os.ReadFile(path)
	ro, err := Open(path, k, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.WriteAt(make([]byte, SectorSize), 0); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("WriteAt on a read-only store: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("refused writes changed the image")
	}
}

// TestWrongKey: another key file, a passphrase for a key-file image, a key
// file for a passphrase image, another passphrase and no key are refused
// as such (ErrWrongKey), before anything is read; the right key opens.
func TestWrongKey(t *testing.T) {
	kf, pp := testKey(t, 1), testPassphrase(t, "right")
	imgKF := newImage(t, 4096, kf, nil)
	imgPP := newImage(t, 4096, pp, nil)
	for _, c := range []struct {
		name string
		path string
		key  *snapshot.Key
		want string // in the error, beside ErrWrongKey
	}{
		{"other key file", imgKF, testKey(t, 2), ""},
		{"passphrase for a key-file image", imgKF, testPassphrase(t, "right"), "keyed with a key file"},
		{"key file for a passphrase image", imgPP, kf, "keyed with a passphrase"},
		{"other passphrase", imgPP, testPassphrase(t, "wrong"), ""},
	} {
		_, err := Open(c.path, c.key, Options{})
		if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrWrongKey (%q)", c.name, err, c.want)
		}
	}
	if _, err := Open(imgKF, nil, Options{}); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("no key: %v", err)
	}
	// Negative control: the right keys open both.
	openStore(t, imgKF, kf)
	openStore(t, imgPP, pp)
}

// TestCiphertextDiffers: identical plaintext in every sector gives a
// different ciphertext in every sector (the tweak), and in two images
// under the same key (their disk IDs), and none holds the plaintext.
func TestCiphertextDiffers(t *testing.T) {
	const sectors = 256
	marker := []byte("pvisor-diskcrypt-marker-0123456789")
	plain := bytes.Repeat(append(marker, make([]byte, SectorSize-len(marker))...), sectors)
	k := testKey(t, 7)
	var payloads [2][]byte
	for i := range payloads {
		b, err := os.ReadFile(newImage(t, int64(len(plain)), k, plain))
		if err != nil {
			t.Fatal(err)
		}
		payloads[i] = b[HeaderSize:]
		if bytes.Contains(b, marker[:16]) {
			t.Errorf("image %d holds the plaintext marker", i)
		}
		seen := map[string]int{}
		for s := 0; s < sectors; s++ {
			sec := string(payloads[i][s*SectorSize : (s+1)*SectorSize])
			if j, ok := seen[sec]; ok {
				t.Fatalf("image %d: sectors %d and %d have the same ciphertext", i, j, s)
			}
			seen[sec] = s
		}
	}
	for s := 0; s < sectors; s++ {
		if bytes.Equal(payloads[0][s*SectorSize:(s+1)*SectorSize], payloads[1][s*SectorSize:(s+1)*SectorSize]) {
			t.Fatalf("sector %d has the same ciphertext in two images under one key", s)
		}
	}
}

// TestKeyFileDiskKey: a key-file image's XTS key is
// snapshot.DiskKey(master, disk ID), as docs/snapshot.md's key table says.
func TestKeyFileDiskKey(t *testing.T) {
	k := testKey(t, 3)
	h, ks, err := newHeader(4096, k, CreateOptions{Rand: detRand(1)})
	if err != nil {
		t.Fatal(err)
	}
	want, err := snapshot.DiskKey(k, h.DiskID[:])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ks.xts, want) {
		t.Fatal("XTS key is not snapshot.DiskKey's")
	}
}

// TestCreateRefuses: an existing path, a bad size, a short source and no
// key are refused, and leave nothing behind.
func TestCreateRefuses(t *testing.T) {
	dir := t.TempDir()
	k := testKey(t, 1)
	exists := filepath.Join(dir, "exists")
	os.WriteFile(exists, []byte("x"), 0o600)
	for _, c := range []struct {
		name, path string
		size       int64
		src        []byte
		key        *snapshot.Key
		want       string
	}{
		{"existing path", exists, 4096, nil, k, "exists"},
		{"zero size", filepath.Join(dir, "a"), 0, nil, k, "disk size"},
		{"partial sector", filepath.Join(dir, "b"), 1000, nil, k, "multiple of 512"},
		{"negative size", filepath.Join(dir, "c"), -512, nil, k, "disk size"},
		{"short source", filepath.Join(dir, "d"), 8192, make([]byte, 4096), k, "source ended"},
		{"no key", filepath.Join(dir, "e"), 4096, nil, nil, "needs a key"},
	} {
		var err error
		if c.src != nil {
			_, err = Create(c.path, c.size, c.key, bytes.NewReader(c.src), CreateOptions{})
		} else {
			_, err = Create(c.path, c.size, c.key, nil, CreateOptions{})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	if _, err := Create(filepath.Join(dir, "f"), 4096, testPassphrase(t, "p"), nil,
		CreateOptions{Argon2: snapshot.Argon2Params{Time: 1, MemoryKiB: 2 << 20, Threads: 1}}); err == nil || !strings.Contains(err.Error(), "argon2id") {
		t.Errorf("argon2id memory above the bound: %v", err)
	}
}
