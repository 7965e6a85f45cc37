//go:build !amd64

package jit

import "unsafe"

// Available reports whether this host can run translated code: only amd64
// hosts can, and elsewhere the interpreter runs alone.
const Available = false

// Enter panics: there is no translated code to run on this host.
func Enter(code uintptr, ctx unsafe.Pointer) uint64 {
	panic("jit: no translator on this host")
}
