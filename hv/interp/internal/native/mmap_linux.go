//go:build linux && amd64

package native

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

func mmapFixed(addr, size uint64) ([]byte, error) {
	p, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(addr), uintptr(size),
		unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uintptr(0), 0)
	if errno != 0 {
		return nil, errno
	}
	if uint64(p) != addr {
		unix.Syscall(unix.SYS_MUNMAP, p, uintptr(size), 0)
		return nil, fmt.Errorf("mapped at %#x instead", p)
	}
	// p is the address of a mapping outside the Go heap.
	ptr := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	return unsafe.Slice((*byte)(ptr), size), nil
}

func munmap(addr, size uint64) error {
	if _, _, errno := unix.Syscall(unix.SYS_MUNMAP, uintptr(addr), uintptr(size), 0); errno != 0 {
		return errno
	}
	return nil
}
