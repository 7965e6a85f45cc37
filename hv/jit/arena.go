//go:build unix

package jit

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PageSize is the unit an Arena seals: the host's page size.
var PageSize = unix.Getpagesize()

// Arena is a region of host memory for translated code (see the package
// documentation): pages are allocated read-write, sealed read-execute,
// and unsealed (read-write, not executable) to be rewritten.
//
// mu protects next and state; the bytes of an unsealed page belong to the
// caller that allocated or unsealed it.
type Arena struct {
	mem []byte // the whole mapping

	mu    sync.Mutex
	next  int         // first never-allocated page
	state []pageState // per page
}

type pageState uint8

const (
	pageFree pageState = iota // reserved, PROT_NONE
	pageWritable
	pageSealed
)

// ErrArenaFull is returned by Alloc when the Arena has no pages left.
var ErrArenaFull = errors.New("jit: arena full")

// NewArena reserves size bytes (rounded up to whole pages) of address
// space, inaccessible until allocated.
func NewArena(size int) (*Arena, error) {
	if size <= 0 {
		return nil, fmt.Errorf("jit: arena of %d bytes", size)
	}
	n := (size + PageSize - 1) / PageSize
	mem, err := unix.Mmap(-1, 0, n*PageSize, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("jit: reserving %d bytes: %w", n*PageSize, err)
	}
	return &Arena{mem: mem, state: make([]pageState, n)}, nil
}

// Close unmaps the Arena. No code in it may run again, and no page may be
// used after.
func (a *Arena) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mem == nil {
		return nil
	}
	err := unix.Munmap(a.mem)
	a.mem, a.state = nil, nil
	return err
}

// Alloc returns pages whole pages, read-write, not executable, and the
// index of the first; the caller writes code into them and then Seals
// them.
func (a *Arena) Alloc(pages int) (first int, b []byte, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if pages <= 0 || a.next+pages > len(a.state) {
		return 0, nil, ErrArenaFull
	}
	first = a.next
	b = a.mem[first*PageSize : (first+pages)*PageSize]
	if err := unix.Mprotect(b, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		return 0, nil, fmt.Errorf("jit: making pages writable: %w", err)
	}
	for i := first; i < first+pages; i++ {
		a.state[i] = pageWritable
	}
	a.next += pages
	return first, b, nil
}

// Seal makes pages [first, first+pages) read-execute: they can be run and
// no longer written.
func (a *Arena) Seal(first, pages int) error {
	return a.protect(first, pages, pageWritable, pageSealed, unix.PROT_READ|unix.PROT_EXEC)
}

// Unseal makes sealed pages read-write again, and not executable, and
// returns their bytes for rewriting. Nothing may be running in them.
func (a *Arena) Unseal(first, pages int) ([]byte, error) {
	if err := a.protect(first, pages, pageSealed, pageWritable, unix.PROT_READ|unix.PROT_WRITE); err != nil {
		return nil, err
	}
	return a.mem[first*PageSize : (first+pages)*PageSize], nil
}

func (a *Arena) protect(first, pages int, from, to pageState, prot int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if first < 0 || pages <= 0 || first+pages > a.next {
		return fmt.Errorf("jit: pages %d-%d are not allocated", first, first+pages-1)
	}
	for i := first; i < first+pages; i++ {
		if a.state[i] != from {
			return fmt.Errorf("jit: page %d is not in the state to change", i)
		}
	}
	if err := unix.Mprotect(a.mem[first*PageSize:(first+pages)*PageSize], prot); err != nil {
		return fmt.Errorf("jit: mprotect: %w", err)
	}
	for i := first; i < first+pages; i++ {
		a.state[i] = to
	}
	return nil
}

// Addr is the host address of byte off of page first, for Enter.
func (a *Arena) Addr(first, off int) uintptr {
	return uintptr(unsafe.Pointer(&a.mem[first*PageSize+off]))
}

// Bounds returns the host address range of the whole Arena.
func (a *Arena) Bounds() (lo, hi uintptr) {
	lo = uintptr(unsafe.Pointer(&a.mem[0]))
	return lo, lo + uintptr(len(a.mem))
}

// Reset makes every page inaccessible and free again: all code in the
// Arena is gone. Nothing may be running in it.
func (a *Arena) Reset() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == 0 {
		return nil
	}
	if err := unix.Mprotect(a.mem[:a.next*PageSize], unix.PROT_NONE); err != nil {
		return fmt.Errorf("jit: mprotect: %w", err)
	}
	for i := range a.state[:a.next] {
		a.state[i] = pageFree
	}
	a.next = 0
	return nil
}
