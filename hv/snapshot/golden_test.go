package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/golden-*.snap (a format change: bump Version)")

// goldenCases are the checked-in snapshots: fixed inputs, a fixed key, a
// deterministic random source and 512-byte chunks, so that each covers
// several chunks and every section kind.
var goldenCases = []struct {
	name string
	opt  func(t testing.TB) Options
	ropt func(t testing.TB) ReaderOptions
}{
	{"digest", func(testing.TB) Options { return Options{} }, func(testing.TB) ReaderOptions { return ReaderOptions{} }},
	{"hmac", func(t testing.TB) Options { return Options{Protection: MAC, Key: testKey(t)} },
		func(t testing.TB) ReaderOptions { return ReaderOptions{Key: testKey(t)} }},
	{"aes-gcm", func(t testing.TB) Options { return Options{Protection: Encrypted, Key: testKey(t)} },
		func(t testing.TB) ReaderOptions { return ReaderOptions{Key: testKey(t)} }},
	{"aes-gcm-argon2id", func(t testing.TB) Options {
		return Options{Protection: Encrypted, Key: testPassphrase(t), Argon2: cheapArgon2}
	}, func(t testing.TB) ReaderOptions { return ReaderOptions{Key: testPassphrase(t)} }},
}

func testPassphrase(t testing.TB) *Key {
	k, err := Passphrase([]byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func goldenSample() *sample { return newSample(12, 700) }

func goldenBytes(t testing.TB, i int) []byte {
	c := goldenCases[i]
	opt := c.opt(t)
	opt.ChunkSize = 512
	opt.Rand = &detRand{seed: "golden-" + c.name}
	return writeSample(t, goldenSample(), opt)
}

// TestGoldenLayout pins the byte layout of docs/snapshot.md: a snapshot
// written from fixed inputs must equal the checked-in file byte for byte,
// and the checked-in file must still read back to those inputs.
func TestGoldenLayout(t *testing.T) {
	for i, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			got := goldenBytes(t, i)
			path := filepath.Join("testdata", "golden-"+c.name+".snap")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGoldenLayout -update once, deliberately)", err)
			}
			if !bytes.Equal(got, want) {
				at := 0
				for at < len(got) && at < len(want) && got[at] == want[at] {
					at++
				}
				t.Fatalf("layout changed: %d bytes vs golden %d, first difference at offset %d; a format change must bump Version and update docs/snapshot.md", len(got), len(want), at)
			}
			recs, h, err := readAll(want, c.ropt(t))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(goldenSample().md, h.Metadata); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			if len(recs) != 6 {
				t.Fatalf("%d sections, want 6", len(recs))
			}
		})
	}
}

// TestLayoutOffsets checks the documented offsets of the header and the
// first chunk frame directly, independently of the writer's marshalling.
func TestLayoutOffsets(t *testing.T) {
	md := testMetadata(12)
	b := goldenBytes(t, 2) // aes-gcm
	le := binary.LittleEndian
	if !bytes.Equal(b[0:8], []byte("\x89PVS\r\n\x1a\n")) {
		t.Fatalf("magic % x", b[0:8])
	}
	if v := le.Uint16(b[8:]); v != 1 {
		t.Errorf("version %d at 8", v)
	}
	if f := le.Uint16(b[10:]); f != FlagEncrypted {
		t.Errorf("flags %#x at 10", f)
	}
	mlen := int(le.Uint32(b[12:]))
	if want := 184 + 1 + len(md.Mode) + 2 + len(md.Name); mlen != want {
		t.Fatalf("metadata length %d, want %d", mlen, want)
	}
	m := b[16:]
	if !bytes.Equal(m[16:32], md.LineageID[:]) || !bytes.Equal(m[32:48], md.GenerationID[:]) {
		t.Error("lineage or generation ID not at metadata offsets 16, 32")
	}
	if int64(le.Uint64(m[48:])) != md.Created.UnixNano() || le.Uint64(m[56:]) != md.MemorySize || le.Uint64(m[64:]) != md.PatchLevel {
		t.Error("created, memory size or patch level not at metadata offsets 48, 56, 64")
	}
	if !bytes.Equal(m[72:104], md.KernelDigest[:]) || le.Uint32(m[104:]) != 512 || m[108] != byte(KDFKeyFile) {
		t.Error("kernel digest, chunk size or KDF not at metadata offsets 72, 104, 108")
	}
	if m[184] != byte(len(md.Mode)) || string(m[185:185+len(md.Mode)]) != md.Mode {
		t.Error("mode not at metadata offset 184")
	}
	o := 185 + len(md.Mode)
	if int(le.Uint16(m[o:])) != len(md.Name) || string(m[o+2:o+2+len(md.Name)]) != md.Name {
		t.Error("name not after the mode")
	}
	c := b[16+mlen+32:] // after the header tag: the first chunk frame
	if le.Uint32(c[0:]) != 512 || c[4] != 0 {
		t.Errorf("first chunk frame % x, want length 512, not final", c[:5])
	}
	if c := b[16+mlen+32+5+512+16:]; le.Uint32(c[0:]) != 512 {
		t.Errorf("second chunk frame % x", c[:5])
	}
}

// TestDigestTrailer: a digest-only snapshot ends with the SHA-256 of every
// byte before it, so `head -c -32 f | sha256sum` checks it.
func TestDigestTrailer(t *testing.T) {
	b := goldenBytes(t, 0)
	sum := sha256.Sum256(b[:len(b)-32])
	if !bytes.Equal(sum[:], b[len(b)-32:]) {
		t.Fatal("last 32 bytes are not the SHA-256 of the rest")
	}
}
