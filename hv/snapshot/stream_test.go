package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// countingReader counts the bytes the snapshot reader has pulled.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestReaderStreams: the reader hands a section back having read only the
// header and the chunk it starts in, not the file, whatever the
// protection.
func TestReaderStreams(t *testing.T) {
	for _, pc := range protCases[:3] {
		t.Run(pc.name, func(t *testing.T) {
			const cs = 64 << 10
			big := make([]byte, 8<<20)
			(&detRand{seed: "big"}).Read(big)
			var out bytes.Buffer
			opt := pc.opt(t)
			opt.ChunkSize = cs
			w, err := NewWriter(&out, testMetadata(1), opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteSection(TagDisk, big); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			src := &countingReader{r: bytes.NewReader(out.Bytes())}
			r, err := NewReader(src, pc.ropt(t))
			if err != nil {
				t.Fatal(err)
			}
			s, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			var first [100]byte
			if _, err := io.ReadFull(s, first[:]); err != nil {
				t.Fatal(err)
			}
			if limit := 512 + cs + 64; src.n > limit {
				t.Fatalf("read %d bytes of %d before the first section's first bytes; at most %d (one chunk)", src.n, out.Len(), limit)
			}
			if !bytes.Equal(first[:], big[:100]) {
				t.Fatal("first bytes differ")
			}
			// Next skips the rest of the section, still authenticating it.
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("Next after a partly read section: %v", err)
			}
			if src.n != out.Len() {
				t.Fatalf("read %d of %d bytes", src.n, out.Len())
			}
		})
	}
}

// TestSkippedSectionIsAuthenticated: a section the caller skips is still
// authenticated; a flipped byte in it fails the next Next.
func TestSkippedSectionIsAuthenticated(t *testing.T) {
	for _, pc := range protCases[:3] {
		b := writeSample(t, newSample(16, 5000), func() Options { o := pc.opt(t); o.ChunkSize = 1024; return o }())
		b[len(b)-3000] ^= 1 // inside the streamed disk section
		r, err := NewReader(bytes.NewReader(b), pc.ropt(t))
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = r.Next()
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", pc.name, err)
		}
	}
}

// memSnapshot writes a digest-only snapshot of pages pages holding one
// TagMemory section with the given raw payload.
func memSnapshot(t *testing.T, pages int, payload []byte) *Section {
	var out bytes.Buffer
	w, err := NewWriter(&out, testMetadata(pages), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSection(TagMemory, payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(out.Bytes()), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func memPayload(pageSize uint32, frames uint64, runs ...[2]uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, pageSize)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, frames)
	for _, r := range runs {
		b = binary.LittleEndian.AppendUint64(b, r[0])
		b = binary.LittleEndian.AppendUint64(b, r[1])
		b = append(b, bytes.Repeat([]byte{0xab}, int(min(r[1], 3))*PageSize)...)
	}
	return b
}

// TestMemorySectionRefuses: a memory section that this writer could not
// have produced is refused, with the guest memory left unwritten beyond
// the runs before the bad one.
func TestMemorySectionRefuses(t *testing.T) {
	const pages = 8
	good := memPayload(PageSize, pages, [2]uint64{1, 2}, [2]uint64{5, 1})
	if err := memSnapshot(t, pages, good).LoadMemory(make([]byte, pages*PageSize)); err != nil {
		t.Fatalf("well-formed section: %v", err)
	}
	for name, p := range map[string][]byte{
		"page size 8192":          memPayload(8192, pages, [2]uint64{1, 1}),
		"frames not the header's": memPayload(PageSize, pages+1, [2]uint64{1, 1}),
		"empty run":               memPayload(PageSize, pages, [2]uint64{1, 0}),
		"run past the end":        memPayload(PageSize, pages, [2]uint64{7, 2}),
		"run at 2^64-1":           memPayload(PageSize, pages, [2]uint64{^uint64(0), 1}),
		"count overflow":          memPayload(PageSize, pages, [2]uint64{1, ^uint64(0)}),
		"out of order":            memPayload(PageSize, pages, [2]uint64{5, 1}, [2]uint64{1, 1}),
		"overlapping":             memPayload(PageSize, pages, [2]uint64{1, 3}, [2]uint64{3, 1}),
		"adjacent (unmerged)":     memPayload(PageSize, pages, [2]uint64{1, 1}, [2]uint64{2, 1}),
		"truncated run":           memPayload(PageSize, pages, [2]uint64{1, 2})[:16+16+PageSize],
		"half a run header":       append(append([]byte(nil), good...), 1, 2, 3),
		"short header":            good[:10],
		"reserved field":          func() []byte { b := append([]byte(nil), good...); b[4] = 1; return b }(),
	} {
		err := memSnapshot(t, pages, p).LoadMemory(make([]byte, pages*PageSize))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
		err = memSnapshot(t, pages, p).ReadMemory(func(uint64, []byte) error { return nil })
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s (ReadMemory): %v", name, err)
		}
	}
	if err := memSnapshot(t, pages, good).LoadMemory(make([]byte, PageSize)); err == nil {
		t.Error("LoadMemory into memory of the wrong size")
	}
}

// TestWriterRefuses: the writer refuses what a reader would refuse.
func TestWriterRefuses(t *testing.T) {
	md := testMetadata(1)
	bad := func(f func(*Metadata)) Metadata { m := md; f(&m); return m }
	for name, m := range map[string]Metadata{
		"empty name":    bad(func(m *Metadata) { m.Name = "" }),
		"invalid UTF-8": bad(func(m *Metadata) { m.Name = "\xff" }),
		"long name":     bad(func(m *Metadata) { m.Name = string(make([]byte, MaxNameLen+1)) }),
		"empty mode":    bad(func(m *Metadata) { m.Mode = "" }),
		"mode with NUL": bad(func(m *Metadata) { m.Mode = "p\x00" }),
		"odd memory":    bad(func(m *Metadata) { m.MemorySize = 4097 }),
		"year 3000":     bad(func(m *Metadata) { m.Created = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }),
	} {
		if _, err := NewWriter(io.Discard, m, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, o := range map[string]Options{
		"chunk too small":       {ChunkSize: MinChunkSize - 1},
		"chunk too big":         {ChunkSize: MaxChunkSize + 1},
		"MAC without key":       {Protection: MAC},
		"encrypted without key": {Protection: Encrypted},
		"digest with key":       {Key: testKey(t)},
		"argon2 memory too big": {Protection: Encrypted, Key: testPassphrase(t), Argon2: Argon2Params{Time: 1, MemoryKiB: MaxArgon2MemoryKiB + 1, Threads: 1}},
	} {
		if _, err := NewWriter(io.Discard, md, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	w, _ := NewWriter(io.Discard, md, Options{})
	if err := w.WriteSection(TagEnd, nil); err == nil {
		t.Error("section with the end tag accepted")
	}
	if err := w.WriteMemory(make([]byte, 2*PageSize), nil); err == nil {
		t.Error("memory of the wrong size accepted")
	}
	if err := w.WriteSectionFrom(TagDisk, 10, bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("short streamed section accepted")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a broken section succeeded")
	}
}

// TestEncryptedHidesMarker: a marker in every kind of section appears in
// no byte of the encrypted snapshot (and does in the digest-only one, so
// the search can find it).
func TestEncryptedHidesMarker(t *testing.T) {
	marker := []byte("PVISOR-SECRET-MARKER-7f3a")
	s := newSample(16, 4096)
	s.states[1].Name = string(marker)
	copy(s.ram[7*PageSize+100:], marker)
	copy(s.raw[1000:], marker)
	for _, pc := range protCases {
		b := writeSample(t, s, pc.opt(t))
		n := bytes.Count(b, marker)
		if pc.opt(t).Protection == Encrypted && n != 0 {
			t.Errorf("%s: marker appears %d times", pc.name, n)
		}
		if pc.opt(t).Protection != Encrypted && n != 3 {
			t.Errorf("%s: marker appears %d times, want 3 (readable form)", pc.name, n)
		}
	}
}

// TestKeyFile: key files must be regular, exactly 32 bytes and private.
func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "snap.key")
	if err := WriteKeyFile(p, &detRand{seed: "kf"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 || st.Size() != KeySize {
		t.Fatalf("key file mode %v size %d", st.Mode(), st.Size())
	}
	if err := WriteKeyFile(p, nil); err == nil {
		t.Error("WriteKeyFile overwrote an existing file")
	}
	k, err := ReadKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, _ := NewWriter(&out, testMetadata(1), Options{Protection: Encrypted, Key: k})
	w.Close()
	k2, _ := ReadKeyFile(p)
	if _, err := NewReader(bytes.NewReader(out.Bytes()), ReaderOptions{Key: k2}); err != nil {
		t.Fatalf("reading with the key file: %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602} {
		os.Chmod(p, mode)
		if _, err := ReadKeyFile(p); err == nil {
			t.Errorf("mode %04o accepted", mode)
		}
	}
	os.Chmod(p, 0o400)
	if _, err := ReadKeyFile(p); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
	for _, n := range []int{0, 16, 31, 33, 64} {
		q := filepath.Join(dir, "k"+itoa(n))
		os.WriteFile(q, make([]byte, n), 0o600)
		if _, err := ReadKeyFile(q); err == nil {
			t.Errorf("%d-byte key file accepted", n)
		}
	}
	if _, err := ReadKeyFile(dir); err == nil {
		t.Error("a directory accepted as key file")
	}
	if _, err := KeyFromBytes(make([]byte, 31)); err == nil {
		t.Error("31-byte key accepted")
	}
	if _, err := Passphrase(nil); err == nil {
		t.Error("empty passphrase accepted")
	}
}
