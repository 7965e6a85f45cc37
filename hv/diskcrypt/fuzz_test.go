package diskcrypt

import (
	"testing"

	"github.com/pvisor/pvisor/hv/snapshot"
)

// FuzzHeader: any bytes given to ParseHeader, and a header it accepts
// given to unlock, give a header or an error, never a panic; an accepted
// header marshals back to the same bytes. Run it with
// go test ./hv/diskcrypt -run '^$' -fuzz FuzzHeader -fuzztime 100000x
func FuzzHeader(f *testing.F) {
	kf, pp := testKey(f, 1), testPassphrase(f, "fuzz")
	for _, k := range []*keyCase{{kf}, {pp}} {
		h, _, err := newHeader(8*SectorSize, k.k, CreateOptions{Argon2: testArgon2, Rand: detRand(9)})
		if err != nil {
			f.Fatal(err)
		}
		b := h.marshal()
		f.Add(b)
		f.Add(b[:100])
		redigestCopy := append([]byte(nil), b...)
		redigestCopy[49] = 0
		redigest(redigestCopy)
		f.Add(redigestCopy)
	}
	f.Add([]byte{})
	f.Add(magic[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		// As given, then padded to a header with its digest recomputed, so
		// that the fuzzer reaches the field checks behind the digest. A
		// low memory bound keeps argon2id cheap.
		parse(t, b, kf, pp)
		c := make([]byte, max(len(b), HeaderSize))
		copy(c, b)
		redigest(c)
		parse(t, c, kf, pp)
	})
}

func parse(t *testing.T, b []byte, keys ...*snapshot.Key) {
	h, err := ParseHeader(b, 256)
	if err != nil {
		if h != nil {
			t.Fatal("a header with an error")
		}
		return
	}
	if got := h.marshal(); string(got) != string(b[:HeaderSize]) {
		t.Fatal("an accepted header does not marshal back to its bytes")
	}
	for _, k := range keys {
		unlock(k, h, 256)
	}
}
