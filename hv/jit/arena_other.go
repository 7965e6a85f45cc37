//go:build !unix

package jit

import "errors"

// PageSize is the unit an Arena seals.
var PageSize = 4096

// Arena is unavailable on this host: translated code needs mmap and
// mprotect.
type Arena struct{}

// ErrArenaFull is returned by Alloc when the Arena has no pages left.
var ErrArenaFull = errors.New("jit: arena full")

var errNoArena = errors.New("jit: no executable memory on this host")

func NewArena(size int) (*Arena, error)                  { return nil, errNoArena }
func (a *Arena) Close() error                            { return nil }
func (a *Arena) Alloc(pages int) (int, []byte, error)    { return 0, nil, errNoArena }
func (a *Arena) Seal(first, pages int) error             { return errNoArena }
func (a *Arena) Unseal(first, pages int) ([]byte, error) { return nil, errNoArena }
func (a *Arena) Reset() error                            { return nil }
func (a *Arena) Addr(first, off int) uintptr             { return 0 }
func (a *Arena) Bounds() (lo, hi uintptr)                { return 0, 0 }
