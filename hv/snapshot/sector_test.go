package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// IEEE 1619-2007 Annex B, XTS-AES-256: Key1 (data) and Key2 (tweak), a
// 512-byte data unit of bytes 00..ff twice.
const (
	ieeeKey = "2718281828459045235360287471352662497757247093699959574966967627" +
		"3141592653589793238462643383279502884197169399375105820974944592"
	// Vector 10: data unit sequence number 0xff.
	ieeeV10 = "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b" +
		"5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd" +
		"5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0" +
		"c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca" +
		"2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0" +
		"b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f" +
		"93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec" +
		"583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a" +
		"84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1" +
		"505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae" +
		"9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29" +
		"a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac" +
		"6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f" +
		"645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385" +
		"1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa" +
		"773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ieeePlaintext() []byte {
	p := make([]byte, 512)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// TestSectorCipherKnownAnswers checks XTS-AES-256 against IEEE 1619
// vector 10 in full, and against OpenSSL's XTS (an independent
// implementation) for higher sector numbers and a 4 KiB sector; the first
// 16 bytes at sector 0xffffffffff match the first block of IEEE 1619's
// ciphertext-stealing vector at that data unit number.
func TestSectorCipherKnownAnswers(t *testing.T) {
	c, err := NewSectorCipher(unhex(t, ieeeKey), 512)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		sector uint64
		want   string // hex prefix of the ciphertext
		full   bool
	}{
		{0xff, ieeeV10, true},
		{0xffff, "77a31251618a15e6b92d1d66dffe7b50b50bad552305ba0217a610688eff7e11", false},
		{0xffffffffff, "64497e5a831e4a932c09be3e5393376daa599548b816031d224bbf50a818ed23", false},
	} {
		ct := make([]byte, 512)
		if err := c.Encrypt(ct, ieeePlaintext(), v.sector); err != nil {
			t.Fatal(err)
		}
		got := hex.EncodeToString(ct)
		if v.full && got != v.want || !strings.HasPrefix(got, v.want) {
			t.Errorf("sector %#x: ciphertext %s..., want %s...", v.sector, got[:64], v.want[:64])
		}
		pt := make([]byte, 512)
		if err := c.Decrypt(pt, ct, v.sector); err != nil || !bytes.Equal(pt, ieeePlaintext()) {
			t.Errorf("sector %#x: decrypt does not invert encrypt (%v)", v.sector, err)
		}
	}
	// 4 KiB sector, key bytes 00..3f, sector 2^64-1, plaintext the
	// SHA-256 of the counters 0..127 (little-endian uint32).
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(i)
	}
	c4, err := NewSectorCipher(key, 4096)
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, 0, 4096)
	for i := uint32(0); i < 128; i++ {
		s := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)})
		pt = append(pt, s[:]...)
	}
	ct := make([]byte, 4096)
	if err := c4.Encrypt(ct, pt, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(ct); hex.EncodeToString(sum[:]) != "9aaf20f1913e0d0848a5a7f29002eadb048854502c9b12df758ee55c6f0bee17" {
		t.Errorf("4 KiB sector: SHA-256 of ciphertext %x", sum)
	}
}

// TestSectorCipherRoundTrip: runs of sectors, in place and not, decrypt to
// what was encrypted; each sector's ciphertext depends on its number.
func TestSectorCipherRoundTrip(t *testing.T) {
	key := make([]byte, 64)
	(&detRand{seed: "xts"}).Read(key)
	c, err := NewSectorCipher(key, 512)
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, 8*512)
	(&detRand{seed: "xts-pt"}).Read(pt)
	ct := make([]byte, len(pt))
	if err := c.Encrypt(ct, pt, 1000); err != nil {
		t.Fatal(err)
	}
	// Sector by sector gives the same as the run.
	for i := 0; i < 8; i++ {
		one := make([]byte, 512)
		c.Encrypt(one, pt[i*512:(i+1)*512], uint64(1000+i))
		if !bytes.Equal(one, ct[i*512:(i+1)*512]) {
			t.Fatalf("sector %d differs from the run's", i)
		}
	}
	// Same plaintext at two sector numbers: different ciphertext.
	same := bytes.Repeat(pt[:512], 2)
	sct := make([]byte, len(same))
	c.Encrypt(sct, same, 7)
	if bytes.Equal(sct[:512], sct[512:]) {
		t.Error("equal sectors at different numbers encrypt equally")
	}
	buf := append([]byte(nil), ct...)
	if err := c.Decrypt(buf, buf, 1000); err != nil || !bytes.Equal(buf, pt) {
		t.Fatalf("in-place decrypt: %v", err)
	}
	// Another disk's key (DiskKey with another ID) does not decrypt it.
	k := testKey(t)
	ka, _ := DiskKey(k, bytes.Repeat([]byte{1}, 16))
	kb, _ := DiskKey(k, bytes.Repeat([]byte{2}, 16))
	if bytes.Equal(ka, kb) || len(ka) != SectorKeySize {
		t.Fatal("disk keys for two disk IDs are equal")
	}
	ca, _ := NewSectorCipher(ka, 512)
	cb, _ := NewSectorCipher(kb, 512)
	ca.Encrypt(buf, pt, 0)
	cb.Decrypt(buf, buf, 0)
	if bytes.Equal(buf, pt) {
		t.Error("another disk's key decrypts")
	}
}

// TestSectorCipherHidesMarker: a disk image full of a marker string shows
// none of it once encrypted, even repeated in every sector.
func TestSectorCipherHidesMarker(t *testing.T) {
	marker := []byte("PVISOR-DISK-MARKER")
	img := bytes.Repeat(append(marker, ' '), 64<<10/(len(marker)+1)+1)[:64<<10]
	key := make([]byte, 64)
	(&detRand{seed: "marker"}).Read(key)
	c, _ := NewSectorCipher(key, 4096)
	ct := make([]byte, len(img))
	if err := c.Encrypt(ct, img, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, marker) || bytes.Contains(ct, marker[:8]) {
		t.Fatal("marker visible in ciphertext")
	}
	if !bytes.Contains(img, marker) {
		t.Fatal("the test image lacks the marker")
	}
}

// TestSectorCipherRefuses: bad keys, sector sizes, lengths and sector
// ranges are errors, never panics.
func TestSectorCipherRefuses(t *testing.T) {
	key := make([]byte, 64)
	(&detRand{seed: "refuse"}).Read(key)
	for _, k := range [][]byte{key[:32], key[:63], append(key, 0), bytes.Repeat(key[:32], 2)} {
		if _, err := NewSectorCipher(k, 512); err == nil {
			t.Errorf("%d-byte key (halves equal: %v) accepted", len(k), len(k) == 64)
		}
	}
	for _, ss := range []int{0, 8, 500, 65536 + 16} {
		if _, err := NewSectorCipher(key, ss); err == nil {
			t.Errorf("sector size %d accepted", ss)
		}
	}
	c, _ := NewSectorCipher(key, 512)
	buf := make([]byte, 1024)
	for name, f := range map[string]func() error{
		"empty":         func() error { return c.Encrypt(buf, nil, 0) },
		"partial":       func() error { return c.Encrypt(buf, buf[:513], 0) },
		"short dst":     func() error { return c.Decrypt(buf[:512], buf, 0) },
		"sector wraps":  func() error { return c.Encrypt(buf, buf, ^uint64(0)) },
		"decrypt wraps": func() error { return c.Decrypt(buf, buf, ^uint64(0)) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := c.Encrypt(buf[:512], buf[:512], ^uint64(0)); err != nil {
		t.Errorf("last sector: %v", err)
	}
	pk, _ := Passphrase([]byte("pw"))
	if _, err := DiskKey(pk, make([]byte, 16)); err == nil {
		t.Error("disk key from a passphrase without a salt")
	}
	if _, err := DiskKey(testKey(t), make([]byte, 8)); err == nil {
		t.Error("8-byte disk ID accepted")
	}
}
