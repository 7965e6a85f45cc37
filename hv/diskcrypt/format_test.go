package diskcrypt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/snapshot"
)

// imageBytes is a whole small image (header and payload) under k.
func imageBytes(t testing.TB, k *snapshot.Key) []byte {
	t.Helper()
	b, err := os.ReadFile(newImage(t, 8*SectorSize, k, nil))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openBytes writes b to a file and opens it under k.
func openBytes(t testing.TB, b []byte, k *snapshot.Key, o Options) error {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p, k, o)
	if err == nil {
		s.Close()
	}
	return err
}

// redigest recomputes b's header digest, as an attacker editing fields
// would.
func redigest(b []byte) {
	d := sha256.Sum256(b[:digestOff])
	copy(b[digestOff:HeaderSize], d[:])
}

// TestLayoutOffsets: the header's fields sit where docs/snapshot.md's
// table says.
func TestLayoutOffsets(t *testing.T) {
	k := testPassphrase(t, "layout")
	h, _, err := newHeader(3*SectorSize, k, CreateOptions{Argon2: testArgon2, Rand: detRand(5)})
	if err != nil {
		t.Fatal(err)
	}
	b := h.marshal()
	u32 := func(o int) uint32 { return le.Uint32(b[o:]) }
	got := map[string]any{
		"magic":       string(b[0:8]),
		"version":     le.Uint16(b[8:]),
		"flags":       le.Uint16(b[10:]),
		"header size": u32(12),
		"sector size": u32(16),
		"payload":     le.Uint64(b[24:]),
		"disk ID":     [16]byte(b[32:48]),
		"kdf":         b[48],
		"threads":     b[49],
		"time":        u32(52),
		"memory":      u32(56),
		"salt":        [16]byte(b[64:80]),
		"key check":   [16]byte(b[80:96]),
		"mac":         [32]byte(b[96:128]),
		"digest":      [32]byte(b[4064:4096]),
	}
	want := map[string]any{
		"magic": "\x89PVD\r\n\x1a\n", "version": uint16(1), "flags": uint16(0), "header size": uint32(4096),
		"sector size": uint32(512), "payload": uint64(3 * SectorSize), "disk ID": h.DiskID, "kdf": byte(2),
		"threads": byte(1), "time": uint32(1), "memory": uint32(64), "salt": h.Salt, "key check": h.KeyCheck,
		"mac": h.MAC, "digest": sha256.Sum256(b[:4064]),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("header layout (-want +got):\n%s", d)
	}
	back, err := ParseHeader(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(*h, *back); d != "" {
		t.Errorf("ParseHeader(marshal) (-want +got):\n%s", d)
	}
}

// TestHeaderFlip: every bit flip of the header of a key-file and of a
// passphrase image is refused, as not an image (magic), another version,
// or corrupt (the digest), never opened and never "wrong key".
func TestHeaderFlip(t *testing.T) {
	for _, k := range []*snapshot.Key{testKey(t, 1), testPassphrase(t, "flip")} {
		orig := imageBytes(t, k)
		if err := openBytes(t, orig, k, Options{}); err != nil {
			t.Fatalf("negative control: the untouched image: %v", err)
		}
		f := memFile(t, orig)
		for i := 0; i < HeaderSize; i++ {
			for _, bit := range []byte{0x01, 0x80} {
				f.WriteAt([]byte{orig[i] ^ bit}, int64(i))
				_, err := NewStore(f, k, Options{})
				f.WriteAt(orig[i:i+1], int64(i))
				var ve *VersionError
				switch {
				case i < 8:
					if !errors.Is(err, ErrNotDiskImage) {
						t.Fatalf("byte %d ^ %#x: %v, want ErrNotDiskImage", i, bit, err)
					}
				case i < 10:
					if !errors.As(err, &ve) {
						t.Fatalf("byte %d ^ %#x: %v, want a VersionError", i, bit, err)
					}
				default:
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "digest") {
						t.Fatalf("byte %d ^ %#x: %v, want ErrCorrupt (digest)", i, bit, err)
					}
				}
			}
		}
	}
}

// TestHeaderFields: each field changed by someone who recomputes the
// digest is refused by the rule that guards it: the field's own check, the
// key check value (fields the keys derive from) or the MAC (the others).
func TestHeaderFields(t *testing.T) {
	kf, pp := testKey(t, 1), testPassphrase(t, "fields")
	set32 := func(o int, v uint32) func([]byte) { return func(b []byte) { le.PutUint32(b[o:], v) } }
	set64 := func(o int, v uint64) func([]byte) { return func(b []byte) { le.PutUint64(b[o:], v) } }
	flip := func(o int) func([]byte) { return func(b []byte) { b[o] ^= 1 } }
	for _, c := range []struct {
		name string
		pass bool // on the passphrase image
		edit func([]byte)
		is   error
		want string
	}{
		{"flags", false, func(b []byte) { b[10] = 1 }, ErrCorrupt, "flags"},
		{"header size", false, set32(12, 8192), ErrCorrupt, "header size 8192"},
		{"sector size 4096", false, set32(16, 4096), ErrCorrupt, "sector size 4096"},
		{"sector size 0", false, set32(16, 0), ErrCorrupt, "sector size 0"},
		{"reserved at 20", false, set32(20, 1), ErrCorrupt, "reserved"},
		{"reserved at 50", false, func(b []byte) { b[50] = 1 }, ErrCorrupt, "reserved"},
		{"reserved at 60", false, set32(60, 1), ErrCorrupt, "reserved"},
		{"reserved tail", false, func(b []byte) { b[3000] = 1 }, ErrCorrupt, "reserved header byte 3000"},
		{"payload size zero", false, set64(24, 0), ErrCorrupt, "payload size 0"},
		{"payload size partial sector", false, set64(24, 8*SectorSize+1), ErrCorrupt, "payload size"},
		{"payload size negative", false, set64(24, 1<<63), ErrCorrupt, "payload size"},
		{"payload size other", false, set64(24, 16*SectorSize), ErrCorrupt, "the file is"},
		{"disk ID", false, flip(40), ErrWrongKey, ""},
		{"disk ID zero", false, func(b []byte) { clear(b[32:48]) }, ErrCorrupt, "disk ID is zero"},
		{"kdf unknown", false, func(b []byte) { b[48] = 3 }, ErrCorrupt, "key derivation"},
		{"kdf zero", false, func(b []byte) { b[48] = 0 }, ErrCorrupt, "key derivation"},
		{"kdf to argon2id", false, func(b []byte) { b[48] = 2 }, ErrCorrupt, "argon2id"},
		{"argon2 fields in a key-file image", false, set32(52, 1), ErrCorrupt, "key-file image"},
		{"salt in a key-file image", false, flip(70), ErrCorrupt, "key-file image"},
		{"kdf to key file", true, func(b []byte) { b[48] = 1 }, ErrCorrupt, "key-file image"},
		{"argon2 time", true, set32(52, 2), ErrWrongKey, ""},
		{"argon2 time zero", true, set32(52, 0), ErrCorrupt, "argon2id time 0"},
		{"argon2 memory", true, set32(56, 128), ErrWrongKey, ""},
		{"argon2 threads zero", true, func(b []byte) { b[49] = 0 }, ErrCorrupt, "threads"},
		{"salt", true, flip(64), ErrWrongKey, ""},
		{"salt zero", true, func(b []byte) { clear(b[64:80]) }, ErrCorrupt, "salt is zero"},
		{"key check", false, flip(85), ErrWrongKey, ""},
		{"mac", false, flip(100), ErrCorrupt, "authentication failed"},
		{"mac (passphrase)", true, flip(127), ErrCorrupt, "authentication failed"},
	} {
		k := kf
		if c.pass {
			k = pp
		}
		b := imageBytes(t, k)
		c.edit(b)
		redigest(b)
		err := openBytes(t, b, k, Options{})
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.is, c.want)
		}
	}
}

// TestPayloadSizeAuthenticated: growing the file and its header's payload
// size together (digest recomputed) is refused by the MAC.
func TestPayloadSizeAuthenticated(t *testing.T) {
	k := testKey(t, 1)
	b := imageBytes(t, k)
	b = append(b, make([]byte, SectorSize)...)
	le.PutUint64(b[24:], 9*SectorSize)
	redigest(b)
	if err := openBytes(t, b, k, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "authentication") {
		t.Errorf("grown image: %v, want the MAC's refusal", err)
	}
	if _, err := ParseHeader(b, 0); err != nil {
		t.Errorf("without a key the grown header parses (only the MAC catches it): %v", err)
	}
}

// TestTruncated: every shorter file, and one byte more, is refused as
// corrupt (or, below the magic, as not an image); the whole file opens.
func TestTruncated(t *testing.T) {
	k := testKey(t, 1)
	orig := imageBytes(t, k)
	f := memFile(t, append(bytes.Clone(orig), 0))
	for n := len(orig) + 1; n >= 0; n-- {
		if err := f.Truncate(int64(n)); err != nil {
			t.Fatal(err)
		}
		_, err := NewStore(f, k, Options{})
		switch {
		case n == len(orig):
			if err != nil {
				t.Fatalf("whole image: %v", err)
			}
		case n < 8:
			if !errors.Is(err, ErrNotDiskImage) {
				t.Fatalf("%d bytes: %v, want ErrNotDiskImage", n, err)
			}
		default:
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") && !strings.Contains(err.Error(), "extended") {
				t.Fatalf("%d bytes: %v, want ErrCorrupt (truncated)", n, err)
			}
		}
	}
}

// TestHostileArgon2: a header asking argon2id for more memory or time
// than the bounds (digest recomputed, so only the bound refuses it) is
// refused before any derivation, and a caller's lower memory bound holds.
func TestHostileArgon2(t *testing.T) {
	k := testPassphrase(t, "hostile")
	for _, c := range []struct {
		name      string
		time, mem uint32
		threads   byte
		maxMem    uint32
		want      string
	}{
		{"4 GiB", 1, 4<<20 - 1, 1, 0, "memory 4194303 KiB"},
		{"1 GiB + 1 KiB", 1, 1<<20 + 1, 1, 0, "outside 8..1048576"},
		{"time 2^32-1", 0xffffffff, 64, 1, 0, "time 4294967295"},
		{"time 65", 65, 64, 1, 0, "time 65"},
		{"below a caller's bound", 1, 128, 1, 64, "outside 8..64"},
		{"255 threads, too little memory", 1, 64, 255, 0, "threads"},
	} {
		b := imageBytes(t, k)
		le.PutUint32(b[52:], c.time)
		le.PutUint32(b[56:], c.mem)
		b[49] = c.threads
		redigest(b)
		err := openBytes(t, b, k, Options{MaxArgon2MemoryKiB: c.maxMem})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) && !strings.Contains(err.Error(), "memory") {
			t.Errorf("%s: %v, want a refused argon2id cost (%q)", c.name, err, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), "before deriving") {
			t.Errorf("%s: %v: the refusal does not say it came before the derivation", c.name, err)
		}
	}
}

// TestVersion: another version is refused with both versions named.
func TestVersion(t *testing.T) {
	k := testKey(t, 1)
	b := imageBytes(t, k)
	le.PutUint16(b[8:], 2)
	redigest(b)
	err := openBytes(t, b, k, Options{})
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Got != 2 || ve.Want != 1 || !strings.Contains(err.Error(), "version 2") || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("version 2: %v", err)
	}
}

// TestRawImageRefused: a raw image given a key is not an encrypted image.
func TestRawImageRefused(t *testing.T) {
	err := openBytes(t, make([]byte, 1<<20), testKey(t, 1), Options{})
	if !errors.Is(err, ErrNotDiskImage) || !strings.Contains(err.Error(), "pvisor disk encrypt") {
		t.Errorf("raw image: %v", err)
	}
}
