//go:build linux

package sched

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// getcpu returns the CPU the calling thread runs on (getcpu(2); x/sys/unix
// has no wrapper for it).
func getcpu() int {
	var cpu uint32
	if _, _, errno := unix.Syscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); errno != 0 {
		return -1
	}
	return int(cpu)
}
