//go:build !amd64

package interp

import "unsafe"

// haveCAS128: no 16-byte host compare-and-swap; a locked CMPXCHG16B runs
// with the other vCPUs parked.
const haveCAS128 = false

func cas128(p unsafe.Pointer, oldLo, oldHi, newLo, newHi uint64) bool {
	panic("interp: cas128 without host support")
}
