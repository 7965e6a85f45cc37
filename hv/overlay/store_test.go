package overlay

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/virtio"
)

// testBase writes a base image of size pseudo-random bytes and returns its
// path and contents.
func testBase(t *testing.T, size int, seed int64) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(b)
	p := filepath.Join(t.TempDir(), "base.img")
	if err := os.WriteFile(p, b, 0o400); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// openBase opens the base read-only, as hv does under an overlay.
func openBase(t *testing.T, path string) virtio.BlockStore {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := virtio.NewFileStore(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openStore(t *testing.T, ovl, base string, o Options) *Store {
	t.Helper()
	s, err := Open(ovl, openBase(t, base), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t *testing.T, s *Store) []byte {
	t.Helper()
	b := make([]byte, s.Size())
	if n, err := s.ReadAt(b, 0); err != nil || n != len(b) {
		t.Fatalf("read the whole disk: %d of %d bytes, %v", n, len(b), err)
	}
	return b
}

// sameBytes fails naming the first differing offset.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: byte %d is %#x, want %#x", what, i, got[i], want[i])
		}
	}
}

func TestReadsFallThrough(t *testing.T) {
	base, want := testBase(t, 300<<10+512, 1)
	s := openStore(t, filepath.Join(t.TempDir(), "ovl"), base, Options{})
	defer s.Close()
	sameBytes(t, "a new overlay", readAll(t, s), want)
	// Reads across cluster boundaries and at the partial last cluster.
	for _, r := range [][2]int{{0, 512}, {65536 - 512, 1024}, {1000, 200000}, {len(want) - 512, 512}} {
		got := make([]byte, r[1])
		if _, err := s.ReadAt(got, int64(r[0])); err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "a read", got, want[r[0]:r[0]+r[1]])
	}
	if _, err := s.ReadAt(make([]byte, 1024), int64(len(want)-512)); err == nil {
		t.Error("a read past the disk's end succeeded")
	}
	if s.Clusters() != 0 {
		t.Errorf("reads put %d clusters in the overlay", s.Clusters())
	}
}

// writes is a mix of partial-cluster, cross-cluster, whole-cluster and
// last-cluster writes, the same whatever the cluster size.
var writes = [][2]int{{512, 512}, {0, 512}, {65536 - 1024, 2048}, {3 * 65536, 65536}, {131072 + 4096, 130000 & ^511},
	{300<<10 - 512, 1024}, {4096, 4096}, {512, 1536}}

func applyWrites(t *testing.T, s *Store, model []byte, seed int64) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	for _, w := range writes {
		p := make([]byte, w[1])
		rng.Read(p)
		if n, err := s.WriteAt(p, int64(w[0])); err != nil || n != len(p) {
			t.Fatalf("write %d bytes at %d: %d, %v", w[1], w[0], n, err)
		}
		copy(model[w[0]:], p)
	}
}

func TestWritesNeverTouchBase(t *testing.T) {
	for _, cs := range []int64{MinClusterSize, DefaultClusterSize, MaxClusterSize} {
		t.Run(fmt.Sprint(cs), func(t *testing.T) {
			base, orig := testBase(t, 300<<10+512, 2)
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(base, old, old); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, filepath.Join(t.TempDir(), "ovl"), base, Options{ClusterSize: cs})
			model := bytes.Clone(orig)
			applyWrites(t, s, model, 3)
			sameBytes(t, "after the writes", readAll(t, s), model)
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(base)
			if err != nil {
				t.Fatal(err)
			}
			sameBytes(t, "the base after the writes", got, orig)
			fi, err := os.Stat(base)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.ModTime().Equal(old) {
				t.Errorf("the base's mtime changed from %v to %v", old, fi.ModTime())
			}
		})
	}
}

func TestReopenContinues(t *testing.T) {
	base, orig := testBase(t, 300<<10+512, 4)
	ovl := filepath.Join(t.TempDir(), "ovl")
	s := openStore(t, ovl, base, Options{ClusterSize: 4096})
	model := bytes.Clone(orig)
	applyWrites(t, s, model, 5)
	n := s.Clusters()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, it keeps its own cluster size and every cluster.
	s = openStore(t, ovl, base, Options{ClusterSize: DefaultClusterSize})
	if s.ClusterSize() != 4096 || s.Clusters() != n {
		t.Fatalf("reopened: cluster size %d and %d clusters, want 4096 and %d", s.ClusterSize(), s.Clusters(), n)
	}
	sameBytes(t, "reopened", readAll(t, s), model)
	applyWrites(t, s, model, 6)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, ovl, base, Options{ReadOnly: true})
	defer s.Close()
	sameBytes(t, "reopened read-only", readAll(t, s), model)
	if _, err := s.WriteAt(make([]byte, 512), 0); err == nil {
		t.Error("a read-only overlay took a write")
	}
}

func TestOverlayLocked(t *testing.T) {
	base, _ := testBase(t, 64<<10, 7)
	ovl := filepath.Join(t.TempDir(), "ovl")
	s := openStore(t, ovl, base, Options{})
	defer s.Close()
	if s2, err := Open(ovl, openBase(t, base), Options{}); err == nil {
		s2.Close()
		t.Fatal("a second store opened an overlay in use")
	} else if !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open: %v", err)
	}
}

func TestBaseMismatchRefused(t *testing.T) {
	base, orig := testBase(t, 300<<10+512, 8)
	ovl := filepath.Join(t.TempDir(), "ovl")
	s := openStore(t, ovl, base, Options{})
	applyWrites(t, s, bytes.Clone(orig), 9)
	s.Close()
	ovlBytes, _ := os.ReadFile(ovl)
	// One byte of the base changed, and another size.
	other := bytes.Clone(orig)
	other[100000] ^= 1
	for name, b := range map[string][]byte{"one byte": other, "size": orig[:64<<10]} {
		p := filepath.Join(t.TempDir(), "other.img")
		if err := os.WriteFile(p, b, 0o400); err != nil {
			t.Fatal(err)
		}
		_, err := Open(ovl, openBase(t, p), Options{})
		if err == nil || !strings.Contains(err.Error(), "not this one") {
			t.Errorf("%s: open over another base: %v", name, err)
		}
	}
	// A refusal changes nothing in the overlay.
	after, _ := os.ReadFile(ovl)
	if !bytes.Equal(after, ovlBytes) {
		t.Error("a refused open changed the overlay")
	}
	// The right base still opens it (negative control).
	s = openStore(t, ovl, base, Options{ReadOnly: true})
	s.Close()
}

// TestCorruptRefused edits an overlay's header and map; each is refused
// with an error naming what is wrong.
func TestCorruptRefused(t *testing.T) {
	base, orig := testBase(t, 300<<10+512, 10)
	ovl := filepath.Join(t.TempDir(), "ovl")
	s := openStore(t, ovl, base, Options{ClusterSize: 4096})
	applyWrites(t, s, bytes.Clone(orig), 11)
	s.Close()
	good, _ := os.ReadFile(ovl)
	le := binary.LittleEndian
	reseal := func(b []byte) { // a header edited by someone who recomputes the checksum
		sum := sha256.Sum256(b[:88])
		copy(b[88:headerUsed], sum[:])
	}
	entry := func(b []byte, c int) []byte { return b[HeaderSize+4*c:] }
	// The first mapped clusters.
	var mapped []int
	for c := 0; c < 80; c++ {
		if le.Uint32(entry(good, c)) != 0 {
			mapped = append(mapped, c)
		}
	}
	if len(mapped) < 2 {
		t.Fatalf("only %d clusters mapped", len(mapped))
	}
	cases := []struct {
		name, want string
		edit       func(b []byte) []byte
	}{
		{"magic", "no overlay magic", func(b []byte) []byte { b[1] = 'X'; return b }},
		{"version", "version 2 is not supported", func(b []byte) []byte { le.PutUint16(b[8:], 2); return b }},
		{"checksum", "checksum", func(b []byte) []byte { b[20] ^= 1; return b }},
		{"flags", "flags", func(b []byte) []byte { le.PutUint16(b[10:], 1); reseal(b); return b }},
		{"reserved", "reserved", func(b []byte) []byte { b[4000] = 1; return b }},
		{"cluster size", "cluster size", func(b []byte) []byte { le.PutUint32(b[12:], 3000); reseal(b); return b }},
		{"sizes", "wants them equal", func(b []byte) []byte { le.PutUint64(b[16:], 1<<20); reseal(b); return b }},
		{"entries", "entries", func(b []byte) []byte { le.PutUint64(b[72:], 1<<40); reseal(b); return b }},
		{"data offset", "data at", func(b []byte) []byte { le.PutUint64(b[80:], 3*4096); reseal(b); return b }},
		{"slot beyond", "beyond the", func(b []byte) []byte { le.PutUint32(entry(b, mapped[0]), 1000); return b }},
		{"slot shared", "another cluster has", func(b []byte) []byte {
			le.PutUint32(entry(b, mapped[1]), le.Uint32(entry(b, mapped[0])))
			return b
		}},
		{"short header", "shorter than the", func(b []byte) []byte { return b[:100] }},
		{"short map", "shorter than its map", func(b []byte) []byte { return b[:HeaderSize+100] }},
		{"truncated data", "beyond the", func(b []byte) []byte { return b[:len(b)-8192] }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ovl")
			if err := os.WriteFile(p, c.edit(bytes.Clone(good)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(p, openBase(t, base), Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	// Negative control: the unedited file opens.
	p := filepath.Join(t.TempDir(), "ovl")
	os.WriteFile(p, good, 0o600)
	s = openStore(t, p, base, Options{})
	s.Close()
}

// TestMapAfterData: the on-disk map names a new slot only after Sync, so
// a copy of the file taken before it (what a crash leaves) reads the
// cluster from the base, and one taken after it reads the write.
func TestMapAfterData(t *testing.T) {
	base, orig := testBase(t, 256<<10, 12)
	dir := t.TempDir()
	ovl := filepath.Join(dir, "ovl")
	s := openStore(t, ovl, base, Options{})
	defer s.Close()
	p := bytes.Repeat([]byte{0xab}, 512)
	if _, err := s.WriteAt(p, 70000&^511); err != nil {
		t.Fatal(err)
	}
	crash := func(name string) []byte {
		b, err := os.ReadFile(ovl)
		if err != nil {
			t.Fatal(err)
		}
		c := filepath.Join(dir, name)
		os.WriteFile(c, b, 0o600)
		r := openStore(t, c, base, Options{})
		defer r.Close()
		return readAll(t, r)
	}
	sameBytes(t, "a crash before Sync", crash("before"), orig)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(orig)
	copy(want[70000&^511:], p)
	sameBytes(t, "a crash after Sync", crash("after"), want)
}

func TestDeltaRoundTrip(t *testing.T) {
	base, orig := testBase(t, 300<<10+512, 13)
	dir := t.TempDir()
	s := openStore(t, filepath.Join(dir, "a"), base, Options{ClusterSize: 4096})
	model := bytes.Clone(orig)
	applyWrites(t, s, model, 14)
	var d1 bytes.Buffer
	if err := s.WriteDelta(&d1); err != nil {
		t.Fatal(err)
	}
	if int64(d1.Len()) != s.DeltaLen() {
		t.Fatalf("delta of %d bytes, DeltaLen %d", d1.Len(), s.DeltaLen())
	}
	s.Close()
	// Into a new overlay of another cluster size: it takes the delta's.
	r := openStore(t, filepath.Join(dir, "b"), base, Options{})
	if err := r.ReadDelta(bytes.NewReader(d1.Bytes()), uint64(d1.Len())); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "restored", readAll(t, r), model)
	var d2 bytes.Buffer
	if err := r.WriteDelta(&d2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d1.Bytes(), d2.Bytes()) {
		t.Error("the restored overlay's delta is not the saved one")
	}
	r.Close()
	// Reopened, the restored overlay has the same clusters.
	r = openStore(t, filepath.Join(dir, "b"), base, Options{ReadOnly: true})
	defer r.Close()
	sameBytes(t, "restored, reopened", readAll(t, r), model)
	info, err := ReadDeltaHeader(bytes.NewReader(d1.Bytes()), uint64(d1.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DeltaInfo{ClusterSize: 4096, Base: r.Base(), Clusters: int64(r.Clusters())}, info); diff != "" {
		t.Errorf("delta header (-want +got):\n%s", diff)
	}
}

// TestDeltaRefused: a hostile delta is refused, before anything is
// written when its fixed part or indexes are bad.
func TestDeltaRefused(t *testing.T) {
	base, orig := testBase(t, 300<<10+512, 15)
	dir := t.TempDir()
	s := openStore(t, filepath.Join(dir, "a"), base, Options{})
	applyWrites(t, s, bytes.Clone(orig), 16)
	var d bytes.Buffer
	s.WriteDelta(&d)
	s.Close()
	good := d.Bytes()
	le := binary.LittleEndian
	n := int(le.Uint64(good[56:]))
	last := DeltaHeaderSize + 4*n + n*DefaultClusterSize - 1 // the last cluster's last byte: past the disk's end
	cases := []struct {
		name, want string
		early      bool // refused before anything is written
		edit       func(b []byte) []byte
	}{
		{"short", "shorter than", true, func(b []byte) []byte { return b[:10] }},
		{"reserved", "reserved", true, func(b []byte) []byte { b[5] = 1; return b }},
		{"cluster size", "cluster size", true, func(b []byte) []byte { le.PutUint32(b, 1000); return b }},
		{"base digest", "not this one", true, func(b []byte) []byte { b[30] ^= 1; return b }},
		{"base size", "want them equal", true, func(b []byte) []byte { le.PutUint64(b[16:], 4096); return b }},
		{"count", "clusters", true, func(b []byte) []byte { le.PutUint64(b[56:], 1<<40); return b }},
		{"length", "bytes long, not", true, func(b []byte) []byte { return b[:len(b)-1] }},
		{"descending", "ascending", true, func(b []byte) []byte {
			x, y := le.Uint32(b[DeltaHeaderSize:]), le.Uint32(b[DeltaHeaderSize+4:])
			le.PutUint32(b[DeltaHeaderSize:], y)
			le.PutUint32(b[DeltaHeaderSize+4:], x)
			return b
		}},
		{"beyond", "ascending", true, func(b []byte) []byte { le.PutUint32(b[DeltaHeaderSize+4*(n-1):], 1000); return b }},
		{"tail", "past the disk's end", false, func(b []byte) []byte { b[last] = 1; return b }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ovl")
			r := openStore(t, p, base, Options{})
			defer r.Close()
			b := c.edit(bytes.Clone(good))
			err := r.ReadDelta(bytes.NewReader(b), uint64(len(b)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if c.early && r.Clusters() != 0 {
				t.Errorf("%d clusters written before the refusal", r.Clusters())
			}
		})
	}
	// A delta goes into an empty overlay only.
	r := openStore(t, filepath.Join(dir, "c"), base, Options{})
	defer r.Close()
	if err := r.ReadDelta(bytes.NewReader(good), uint64(len(good))); err != nil {
		t.Fatal(err) // negative control
	}
	if err := r.ReadDelta(bytes.NewReader(good), uint64(len(good))); err == nil {
		t.Error("a second delta went into a filled overlay")
	}
}

func TestBaseIdentityShortRead(t *testing.T) {
	if _, err := BaseIdentity(shortStore{}); !errors.Is(err, errShort) {
		t.Errorf("a base that reads short: %v", err)
	}
}

var errShort = errors.New("short")

type shortStore struct{}

func (shortStore) ReadAt(p []byte, off int64) (int, error) { return len(p) / 2, errShort }
func (shortStore) Size() int64                             { return 4096 }
