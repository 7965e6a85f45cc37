package sandbox

import "unsafe"

// uintptrOf passes a pointer to a system call made through psx. The
// caller keeps the pointee alive across the call.
func uintptrOf[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }
