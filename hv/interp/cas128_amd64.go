package interp

import "unsafe"

// haveCAS128: the host has a 16-byte compare-and-swap (CMPXCHG16B, in
// every x86-64 CPU that runs a current Go).
const haveCAS128 = true

// cas128 compares the 16 bytes at p (16-byte aligned) with old and, if
// equal, stores new, atomically (LOCK CMPXCHG16B). It reports whether it
// stored.
//
//go:noescape
func cas128(p unsafe.Pointer, oldLo, oldHi, newLo, newHi uint64) bool
