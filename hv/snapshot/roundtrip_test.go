package snapshot

import (
	"bytes"
	"encoding/gob"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type protCase struct {
	name string
	opt  func(t testing.TB) Options
	ropt func(t testing.TB) ReaderOptions
}

var protCases = []protCase{
	{"digest", func(testing.TB) Options { return Options{} }, func(testing.TB) ReaderOptions { return ReaderOptions{} }},
	{"hmac", func(t testing.TB) Options { return Options{Protection: MAC, Key: testKey(t)} },
		func(t testing.TB) ReaderOptions { return ReaderOptions{Key: testKey(t)} }},
	{"aes-gcm", func(t testing.TB) Options { return Options{Protection: Encrypted, Key: testKey(t)} },
		func(t testing.TB) ReaderOptions { return ReaderOptions{Key: testKey(t)} }},
	{"aes-gcm-argon2id", func(t testing.TB) Options {
		return Options{Protection: Encrypted, Key: testPassphrase(t), Argon2: cheapArgon2}
	}, func(t testing.TB) ReaderOptions { return ReaderOptions{Key: testPassphrase(t)} }},
}

// TestSnapshotRoundTrip writes every section kind (gob state, empty, memory,
// streamed raw) in every protection and chunk size, reads it back and
// compares each with cmp.Diff.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, pc := range protCases {
		for _, cs := range []int{MinChunkSize, 4096, DefaultChunkSize} {
			t.Run(pc.name+"/"+itoa(cs), func(t *testing.T) {
				s := newSample(64, 3*cs+17)
				opt := pc.opt(t)
				opt.ChunkSize = cs
				var out bytes.Buffer
				w, err := NewWriter(&out, s.md, opt)
				if err != nil {
					t.Fatal(err)
				}
				written := w.Header()
				b := writeSample(t, s, opt)
				r, err := NewReader(bytes.NewReader(b), pc.ropt(t))
				if err != nil {
					t.Fatal(err)
				}
				h := r.Header()
				written.SnapshotID, written.Salt, written.keySeed, written.keyCheck = h.SnapshotID, h.Salt, h.keySeed, h.keyCheck // random per snapshot
				if written != h {
					t.Errorf("header read %+v, written %+v", h, written)
				}
				if diff := cmp.Diff(s.md, h.Metadata); diff != "" {
					t.Errorf("metadata (-want +got):\n%s", diff)
				}
				if h.Protection != opt.Protection || h.ChunkSize != uint32(cs) || h.Version != Version {
					t.Errorf("header %v/%d/%d", h.Protection, h.ChunkSize, h.Version)
				}
				next := func(want Tag) *Section {
					t.Helper()
					sec, err := r.Next()
					if err != nil {
						t.Fatal(err)
					}
					if sec.Tag != want {
						t.Fatalf("tag %v, want %v", sec.Tag, want)
					}
					return sec
				}
				var vm sampleState
				if err := next(TagVM).DecodeGob(&vm); err != nil {
					t.Fatal(err)
				}
				got := []sampleState{}
				for range s.states {
					var st sampleState
					if err := next(TagVCPU).DecodeGob(&st); err != nil {
						t.Fatal(err)
					}
					got = append(got, st)
				}
				if diff := cmp.Diff(append([]sampleState{s.states[0]}, s.states...), append([]sampleState{vm}, got...)); diff != "" {
					t.Errorf("gob sections (-want +got):\n%s", diff)
				}
				if sec := next(TagDevice); sec.Len != 0 {
					t.Errorf("empty section of %d bytes", sec.Len)
				}
				mem := next(TagMemory)
				ram := make([]byte, len(s.ram))
				if err := mem.LoadMemory(ram); err != nil {
					t.Fatal(err)
				}
				want := append([]byte(nil), s.ram...)
				clear(want[5*PageSize : 6*PageSize]) // the hole is left out
				if !bytes.Equal(ram, want) {
					t.Error("memory differs")
				}
				// 4 resident runs: {1,2}, {7}, {63}: 3 runs, 4 pages (page 5 is a hole).
				if wantLen := uint64(16 + 3*16 + 4*PageSize); mem.Len != wantLen {
					t.Errorf("memory section of %d bytes, want %d (resident pages only)", mem.Len, wantLen)
				}
				raw := next(TagDisk)
				rb, err := io.ReadAll(raw)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(rb, s.raw) {
					t.Error("raw section differs")
				}
				if _, err := r.Next(); err != io.EOF {
					t.Fatalf("after the last section: %v, want io.EOF", err)
				}
			})
		}
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// TestGobSectionEncoding: a WriteGob section is exactly a fresh gob
// Encoder's output, so save -> encode -> decode -> encode is byte-identical
// for any conventional State value.
func TestGobSectionRoundTrip(t *testing.T) {
	st := sampleStates()[0]
	var want bytes.Buffer
	if err := gob.NewEncoder(&want).Encode(st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := NewWriter(&out, testMetadata(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteGob(TagVCPU, st); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _, err := readAll(out.Bytes(), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(recs[0].data, want.Bytes()) {
		t.Error("gob section is not the plain gob encoding")
	}
}

// TestMemoryReadPages: ReadMemory hands back exactly the resident pages in
// ascending order.
func TestMemoryReadPages(t *testing.T) {
	s := newSample(16, 10)
	b := writeSample(t, s, Options{ChunkSize: 1000})
	r, err := NewReader(bytes.NewReader(b), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		sec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if sec.Tag != TagMemory {
			continue
		}
		var gfns []uint64
		err = sec.ReadMemory(func(gfn uint64, page []byte) error {
			gfns = append(gfns, gfn)
			if !bytes.Equal(page, s.ram[gfn*PageSize:(gfn+1)*PageSize]) {
				t.Errorf("page %d differs", gfn)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]uint64{1, 2, 7, 15}, gfns); diff != "" {
			t.Errorf("pages (-want +got):\n%s", diff)
		}
		return
	}
}
