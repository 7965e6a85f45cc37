// Package smpdata is the data gosmp hashes and how its digest is formed,
// shared by the guest program and the host test that checks it.
package smpdata

import "crypto/sha256"

// Blocks of BlockSize bytes: 16 MiB in all.
const (
	Blocks    = 16
	BlockSize = 1 << 20
)

// Data returns the 16 MiB: an xorshift64 stream from a fixed seed.
func Data() []byte {
	b := make([]byte, Blocks*BlockSize)
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for k := 0; k < 8; k++ {
			b[i+k] = byte(x >> (8 * k))
		}
	}
	return b
}

// Combine is the digest of the blocks' digests, in order.
func Combine(sums [][sha256.Size]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range sums {
		h.Write(s[:])
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d
}
