package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// chunkSpans splits a snapshot into its header (with tag) and its chunks
// (frame, payload, tag), parsed from the documented layout.
func chunkSpans(t testing.TB, b []byte) (hdr []byte, chunks [][]byte) {
	t.Helper()
	mlen := int(binary.LittleEndian.Uint32(b[12:]))
	extra := tagLen
	if binary.LittleEndian.Uint16(b[10:])&FlagEncrypted != 0 {
		extra = gcmTagLen
	}
	o := headerFixedLen + mlen + tagLen
	hdr = b[:o]
	for o < len(b) {
		n := int(binary.LittleEndian.Uint32(b[o:]))
		end := o + chunkFrameLen + n + extra
		chunks = append(chunks, b[o:end])
		o = end
	}
	return hdr, chunks
}

func join(hdr []byte, chunks ...[]byte) []byte {
	out := append([]byte(nil), hdr...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out
}

// tamperSample is small (a few 256-byte chunks) so that every byte can be
// flipped and every length tried.
func tamperSample(t testing.TB, pc protCase, seed string) []byte {
	opt := pc.opt(t)
	opt.ChunkSize = MinChunkSize
	opt.Rand = &detRand{seed: seed}
	s := newSample(8, 300)
	clear(s.ram[2*PageSize:]) // one resident page, at frame 1
	s.hole = nil
	return writeSample(t, s, opt)
}

// expectRefused reads b and fails unless the reader refuses it and has
// yielded nothing that is not part of the original.
func expectRefused(t *testing.T, what string, b []byte, ropt ReaderOptions, orig genuine) {
	t.Helper()
	recs, h, err := readAll(b, ropt)
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if !refused(err) {
		t.Fatalf("%s: error %v is not a refusal", what, err)
	}
	// The header is yielded too: if NewReader returned it, it must be the
	// original's.
	if h != nil && *h != orig.hdr {
		t.Fatalf("%s: yielded a header that is not the original's", what)
	}
	if e := checkAuthenticPrefix(recs, orig.recs); e != nil {
		t.Fatalf("%s: %v", what, e)
	}
}

// genuine is what a reader yields from an untouched snapshot.
type genuine struct {
	recs []record
	hdr  Header
}

func original(t *testing.T, b []byte, ropt ReaderOptions) genuine {
	t.Helper()
	recs, h, err := readAll(b, ropt)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("%d sections", len(recs))
	}
	return genuine{recs: recs, hdr: *h}
}

// TestSnapshotTamperFlip flips each byte of a snapshot in turn (every bit,
// then the low bit): every one is refused and nothing unauthenticated is
// yielded.
func TestSnapshotTamperFlip(t *testing.T) {
	for _, pc := range protCases {
		t.Run(pc.name, func(t *testing.T) {
			b := tamperSample(t, pc, "flip")
			ropt := pc.ropt(t)
			orig := original(t, b, ropt)
			for i := range b {
				for _, x := range []byte{0xff, 0x01} {
					m := append([]byte(nil), b...)
					m[i] ^= x
					expectRefused(t, "byte "+itoa(i)+" ^ "+itoa(int(x)), m, ropt, orig)
				}
			}
		})
	}
}

// TestSnapshotTamperTruncate tries every shorter length, and one byte more.
func TestSnapshotTamperTruncate(t *testing.T) {
	for _, pc := range protCases {
		t.Run(pc.name, func(t *testing.T) {
			b := tamperSample(t, pc, "truncate")
			ropt := pc.ropt(t)
			orig := original(t, b, ropt)
			for n := 0; n < len(b); n++ {
				expectRefused(t, "length "+itoa(n), b[:n], ropt, orig)
			}
			expectRefused(t, "one byte appended", append(append([]byte(nil), b...), 0), ropt, orig)
		})
	}
}

// TestSnapshotTamperChunks swaps, drops, duplicates and splices whole
// chunks, and splices a chunk from another snapshot with the same key and
// contents.
func TestSnapshotTamperChunks(t *testing.T) {
	for _, pc := range protCases {
		t.Run(pc.name, func(t *testing.T) {
			b := tamperSample(t, pc, "chunks-a")
			other := tamperSample(t, pc, "chunks-b")
			ropt := pc.ropt(t)
			orig := original(t, b, ropt)
			hdr, cs := chunkSpans(t, b)
			ohdr, ocs := chunkSpans(t, other)
			if len(cs) < 4 || len(ocs) != len(cs) {
				t.Fatalf("%d and %d chunks", len(cs), len(ocs))
			}
			if !bytes.Equal(join(hdr, cs...), b) {
				t.Fatal("chunk parse does not cover the file")
			}
			n := len(cs)
			swap := func(i, j int) [][]byte {
				c := append([][]byte(nil), cs...)
				c[i], c[j] = c[j], c[i]
				return c
			}
			drop := func(i int) [][]byte {
				return append(append([][]byte(nil), cs[:i]...), cs[i+1:]...)
			}
			cases := map[string][]byte{
				"swap 0,1":              join(hdr, swap(0, 1)...),
				"swap 1,2":              join(hdr, swap(1, 2)...),
				"swap first,last":       join(hdr, swap(0, n-1)...),
				"swap last two":         join(hdr, swap(n-2, n-1)...),
				"drop first":            join(hdr, drop(0)...),
				"drop middle":           join(hdr, drop(1)...),
				"drop last":             join(hdr, drop(n-1)...),
				"duplicate a chunk":     join(hdr, append([][]byte{cs[0]}, cs...)...),
				"duplicate last":        join(hdr, append(append([][]byte(nil), cs...), cs[n-1])...),
				"other header":          join(ohdr, cs...),
				"other first chunk":     join(hdr, append([][]byte{ocs[0]}, cs[1:]...)...),
				"other middle chunk":    join(hdr, append(append(append([][]byte(nil), cs[:2]...), ocs[2]), cs[3:]...)...),
				"other last chunk":      join(hdr, append(append([][]byte(nil), cs[:n-1]...), ocs[n-1])...),
				"other snapshot's body": join(hdr, ocs...),
			}
			for name, m := range cases {
				want := orig
				if name == "other header" {
					// That header is genuine (the other snapshot's); A's chunks must then fail.
					want.hdr = original(t, other, ropt).hdr
				}
				expectRefused(t, name, m, ropt, want)
			}
		})
	}
}

// TestSnapshotWrongKey: a wrong key, a wrong passphrase, the wrong kind of
// key and a missing key are refused with their own errors, before any
// section; a key given for a digest-only snapshot is refused (no downgrade).
func TestSnapshotWrongKey(t *testing.T) {
	other, _ := KeyFromBytes(bytes.Repeat([]byte{7}, KeySize))
	wrongPass, _ := Passphrase([]byte("Tr0ub4dor&3"))
	key := tamperSample(t, protCases[2], "key")   // aes-gcm, key file
	mac := tamperSample(t, protCases[1], "key")   // hmac, key file
	pass := tamperSample(t, protCases[3], "key")  // aes-gcm, passphrase
	plain := tamperSample(t, protCases[0], "key") // digest
	for _, c := range []struct {
		name string
		b    []byte
		k    *Key
		want error
	}{
		{"gcm, other key", key, other, ErrWrongKey},
		{"hmac, other key", mac, other, ErrWrongKey},
		{"gcm, passphrase for a key file", key, testPassphrase(t), ErrWrongKey},
		{"argon2id, wrong passphrase", pass, wrongPass, ErrWrongKey},
		{"argon2id, key file for a passphrase", pass, testKey(t), ErrWrongKey},
		{"gcm, no key", key, nil, ErrKeyRequired},
		{"hmac, no key", mac, nil, ErrKeyRequired},
		{"digest, a key", plain, testKey(t), ErrUnauthenticated},
	} {
		_, err := NewReader(bytes.NewReader(c.b), ReaderOptions{Key: c.k})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestSnapshotWrongVersion: another version is refused with both numbers
// named, before anything else is read.
func TestSnapshotWrongVersion(t *testing.T) {
	b := tamperSample(t, protCases[2], "version")
	for _, v := range []uint16{0, 2, 0x100} {
		m := append([]byte(nil), b...)
		binary.LittleEndian.PutUint16(m[8:], v)
		_, err := NewReader(bytes.NewReader(m), ReaderOptions{}) // no key needed to learn the version
		var ve *VersionError
		if !errors.As(err, &ve) || ve.Got != v || ve.Want != Version {
			t.Fatalf("version %d: %v", v, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "version "+itoa(int(v))) || !strings.Contains(msg, "version 1") {
			t.Errorf("message %q does not name both versions", msg)
		}
	}
	if _, err := NewReader(bytes.NewReader([]byte("GIF89a..........")), ReaderOptions{}); !errors.Is(err, ErrNotSnapshot) {
		t.Errorf("not a snapshot: %v", err)
	}
}

// TestSnapshotDowngrade: an attacker who cannot forge an encrypted
// snapshot writes a digest-only one with the same metadata and their own
// contents; a reader that holds the key refuses it.
func TestSnapshotDowngrade(t *testing.T) {
	s := newSample(8, 10)
	forged := writeSample(t, s, Options{})
	if _, _, err := readAll(forged, ReaderOptions{Key: testKey(t)}); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("forged digest-only snapshot with a key: %v", err)
	}
	// MAC -> digest by clearing the flag is caught too (the tag is a MAC).
	mac := tamperSample(t, protCases[1], "downgrade")
	binary.LittleEndian.PutUint16(mac[10:], 0)
	if _, _, err := readAll(mac, ReaderOptions{}); !refused(err) {
		t.Fatalf("flag cleared: %v", err)
	}
}

// TestSnapshotHostileParameters: header values that would make the reader
// spend unbounded memory or time are refused before key derivation.
func TestSnapshotHostileParameters(t *testing.T) {
	b := tamperSample(t, protCases[3], "params") // argon2id
	set := func(off int, v uint32) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(c[headerFixedLen+off:], v)
		return c
	}
	for name, c := range map[string][]byte{
		"argon2 memory 4 TiB": set(116, 0xffffffff),
		"argon2 memory 2 GiB": set(116, 2<<20),
		"argon2 time 2^32-1":  set(112, 0xffffffff),
		"chunk size 4 GiB":    set(104, 0xffffffff),
		"chunk size 16":       set(104, 16),
	} {
		if _, err := NewReader(bytes.NewReader(c), ReaderOptions{Key: testPassphrase(t)}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A caller may lower the argon2id bound below what the file asks for.
	if _, err := NewReader(bytes.NewReader(b), ReaderOptions{Key: testPassphrase(t), MaxArgon2MemoryKiB: 32}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("lowered bound: %v", err)
	}
}
