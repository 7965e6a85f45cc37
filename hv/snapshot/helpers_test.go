package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// detRand is a deterministic random source for tests: SHA-256 of a seed
// and a counter. Never used outside tests.
type detRand struct {
	seed string
	n    uint64
	buf  []byte
}

func (d *detRand) Read(p []byte) (int, error) {
	for i := range p {
		if len(d.buf) == 0 {
			var c [8]byte
			binary.LittleEndian.PutUint64(c[:], d.n)
			d.n++
			s := sha256.Sum256(append([]byte(d.seed), c[:]...))
			d.buf = s[:]
		}
		p[i] = d.buf[0]
		d.buf = d.buf[1:]
	}
	return len(p), nil
}

var testKeyBytes = func() []byte {
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func testKey(t testing.TB) *Key {
	k, err := KeyFromBytes(testKeyBytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// cheapArgon2 keeps passphrase tests fast; the golden file pins it.
var cheapArgon2 = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func testMetadata(memPages int) Metadata {
	m := Metadata{
		Name:       "web-1",
		Mode:       "pv",
		MemorySize: uint64(memPages) * PageSize,
		PatchLevel: 42,
		Created:    time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC),
	}
	for i := range m.KernelDigest {
		m.KernelDigest[i] = byte(0xd0 + i)
	}
	for i := range m.GenerationID {
		m.GenerationID[i] = byte(0x60 + i)
		m.LineageID[i] = byte(0x10 + i)
	}
	return m
}

// sampleState is a gob section payload in the style of a subsystem State.
type sampleState struct {
	RIP     uint64
	Regs    [4]uint64
	Halted  bool
	Name    string
	Pending []uint8
	Inner   struct{ A, B uint32 }
}

func sampleStates() []sampleState {
	return []sampleState{
		{RIP: 0xffffffff81000000, Regs: [4]uint64{1, 2, 3, 4}, Halted: true, Name: "vcpu0", Pending: []uint8{14, 32}, Inner: struct{ A, B uint32 }{7, 9}},
		{RIP: 0x1000, Name: "vcpu1"},
	}
}

// sampleMemory returns guest memory of pages pages with non-zero pages at
// 1, 2, 5 (a hole, so left out), 7 and the last one; every other page zero.
func sampleMemory(pages int) (ram []byte, hole func(uint64) bool) {
	ram = make([]byte, pages*PageSize)
	for _, g := range []int{1, 2, 5, 7, pages - 1} {
		p := ram[g*PageSize : (g+1)*PageSize]
		for i := range p {
			p[i] = byte(g*31 + i*7 + 1)
		}
	}
	return ram, func(gfn uint64) bool { return gfn == 5 }
}

// sample is what writeSample puts in a snapshot, in order.
type sample struct {
	md     Metadata
	states []sampleState
	raw    []byte // TagDisk, streamed with WriteSectionFrom
	ram    []byte
	hole   func(uint64) bool
}

func newSample(memPages, rawLen int) *sample {
	ram, hole := sampleMemory(memPages)
	raw := make([]byte, rawLen)
	(&detRand{seed: "raw"}).Read(raw)
	return &sample{md: testMetadata(memPages), states: sampleStates(), raw: raw, ram: ram, hole: hole}
}

func writeSample(t testing.TB, s *sample, opt Options) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, s.md, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteGob(TagVM, s.states[0]); err != nil {
		t.Fatal(err)
	}
	for _, st := range s.states {
		if err := w.WriteGob(TagVCPU, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteSection(TagDevice, nil); err != nil { // empty section
		t.Fatal(err)
	}
	if err := w.WriteMemory(s.ram, s.hole); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSectionFrom(TagDisk, int64(len(s.raw)), bytes.NewReader(s.raw)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// record is one section as a reader yielded it: its tag and the payload
// bytes it handed back (all of them when complete).
type record struct {
	tag      Tag
	data     []byte
	complete bool
}

// readAll reads every section's raw payload until io.EOF or an error.
func readAll(b []byte, opt ReaderOptions) ([]record, *Header, error) {
	r, err := NewReader(bytes.NewReader(b), opt)
	if err != nil {
		return nil, nil, err
	}
	h := r.Header()
	var recs []record
	for {
		s, err := r.Next()
		if err == io.EOF {
			return recs, &h, nil
		}
		if err != nil {
			return recs, &h, err
		}
		data, err := io.ReadAll(s)
		recs = append(recs, record{tag: s.Tag, data: data, complete: err == nil})
		if err != nil {
			return recs, &h, err
		}
	}
}

// checkAuthenticPrefix fails unless got is a prefix of want: every record
// but the last complete and equal, the last one a prefix of its original.
// This is "the reader yields nothing unauthenticated".
func checkAuthenticPrefix(got, want []record) error {
	if len(got) > len(want) {
		return fmt.Errorf("yielded %d sections, the snapshot has %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.tag != w.tag {
			return fmt.Errorf("section %d: tag %v, want %v", i, g.tag, w.tag)
		}
		if !bytes.HasPrefix(w.data, g.data) {
			return fmt.Errorf("section %d (%v): yielded bytes that are not the original's", i, g.tag)
		}
		if i < len(got)-1 && len(g.data) != len(w.data) {
			return fmt.Errorf("section %d (%v): short but not last", i, g.tag)
		}
	}
	return nil
}

// refused reports whether err is one of the package's refusals.
func refused(err error) bool {
	var ve *VersionError
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotSnapshot) || errors.Is(err, ErrWrongKey) || errors.As(err, &ve)
}
