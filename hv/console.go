package hv

import (
	"io"
	"sync"
	"sync/atomic"
)

// consoleIn buffers console input read from the terminal (or any reader)
// on its own goroutine; the vCPU takes it with console_read. mu protects
// buf and open.
type consoleIn struct {
	mu      sync.Mutex
	buf     []byte
	open    bool // the reader may still deliver bytes
	arrived atomic.Bool
}

const consoleInMax = 64 << 10 // bytes held before the reader waits

// start reads r until EOF, kicking the VM's first vCPU when bytes arrive.
func (ci *consoleIn) start(r io.Reader, vm *VM) {
	if r == nil {
		return
	}
	ci.open = true
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			if n > 0 && vm.dev != nil {
				vm.dev.pc.UART.Feed(b[:n]) // the UART is the console
			} else if n > 0 {
				ci.mu.Lock()
				if len(ci.buf)+n <= consoleInMax {
					ci.buf = append(ci.buf, b[:n]...)
				}
				ci.mu.Unlock()
				ci.arrived.Store(true)
				if len(vm.vcpus) > 0 {
					vm.vcpus[0].notify()
				}
			}
			if err != nil || vm.Stopped() {
				ci.mu.Lock()
				ci.open = false
				ci.mu.Unlock()
				return
			}
		}
	}()
}

// take moves up to len(dst) pending bytes to dst.
func (ci *consoleIn) take(dst []byte) int {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	n := copy(dst, ci.buf)
	ci.buf = ci.buf[n:]
	return n
}

// live reports whether input may still arrive or is waiting.
func (ci *consoleIn) live() bool {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return ci.open || len(ci.buf) > 0
}
