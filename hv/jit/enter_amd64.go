package jit

import "unsafe"

// Available reports whether this host can run translated code.
const Available = true

// Enter runs the translated code at code (an address in a sealed Arena
// page) with ctx in RDI and returns what the code leaves in RAX. See the
// package documentation for what translated code may do.
//
//go:noescape
func Enter(code uintptr, ctx unsafe.Pointer) uint64
