//go:build linux && amd64

// Package native runs generated x86-64 machine code on the host CPU for the
// interpreter's differential tests. It is imported only by tests.
//
// The design is an in-process trampoline rather than a ptrace'd child: a
// batch of test cases is emitted as one straight-line block of machine code
// in an RWX mapping (each case: load GPRs and RFLAGS from a record, run the
// instruction under test, store GPRs and RFLAGS to a record), and one call
// runs the whole batch. That costs a few nanoseconds per case where a
// single-stepped child would cost microseconds of system calls.
package native

import "fmt"

func call(fn uintptr)

// Region is an RWX mapping at a fixed host address, so code and data have
// the same addresses natively as in the guest.
type Region struct {
	Addr uint64
	Mem  []byte
}

// Map maps size bytes read-write-execute at addr (which must be free).
func Map(addr, size uint64) (*Region, error) {
	b, err := mmapFixed(addr, size)
	if err != nil {
		return nil, fmt.Errorf("native: mmap %#x+%#x: %w", addr, size, err)
	}
	return &Region{Addr: addr, Mem: b}, nil
}

// Unmap releases the mapping.
func (r *Region) Unmap() error { return munmap(r.Addr, uint64(len(r.Mem))) }

// Call runs the code at host address fn. The code must return with RET on
// the stack it was called with, with every register the Go ABI reserves
// restored and DF clear.
func Call(fn uint64) { call(uintptr(fn)) }

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// CPUID returns the host's CPUID leaf, subleaf (EAX, EBX, ECX, EDX). The
// tests read the vendor and a few feature bits with it, to know which of
// the behaviours the manuals leave to the implementation the host shows.
func CPUID(leaf, sub uint32) (a, b, c, d uint32) { return cpuid(leaf, sub) }
