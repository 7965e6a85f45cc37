package hv

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
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

const consoleInMax = 64 << 10 // bytes held for the guest; input beyond them is dropped

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

// consoleOut carries guest console output (console_write and the UART) to
// the operator's writer on its own goroutine, so that a writer nobody
// reads (a full pipe, a stopped terminal) never blocks a vCPU or the VM's
// stop. Output that finds consoleOutMax bytes already waiting is dropped
// and counted. mu protects buf, inflight, closed, dropped and written.
type consoleOut struct {
	w        io.Writer
	mu       sync.Mutex
	buf      []byte
	inflight int    // bytes the drainer is writing
	closed   bool   // the VM stopped: no more output
	dropped  uint64 // bytes never written
	written  uint64
	wake     chan struct{} // cap 1: output or close arrived
	done     chan struct{} // closed when the drainer has written everything
	// fail stops the VM when the writer panics (a fault of the host side,
	// which stops this VM only).
	fail func(reason string)
}

const (
	consoleOutMax = 1 << 20 // bytes waiting for the writer before output is dropped
	// consoleFlushStall is how long a VM's stop waits for the writer to
	// take buffered output while it makes no progress.
	consoleFlushStall = time.Second
)

func newConsoleOut(w io.Writer, fail func(reason string)) *consoleOut {
	return &consoleOut{w: w, fail: fail, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Write implements io.Writer; it never blocks on the operator's writer.
func (c *consoleOut) Write(b []byte) (int, error) {
	c.mu.Lock()
	n := 0
	if !c.closed {
		n = min(len(b), consoleOutMax-len(c.buf))
		c.buf = append(c.buf, b[:n]...)
	}
	c.dropped += uint64(len(b) - n)
	c.mu.Unlock()
	c.kick()
	return len(b), nil
}

func (c *consoleOut) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// start runs the drainer until close.
func (c *consoleOut) start() {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				c.mu.Lock()
				c.closed = true
				c.dropped += uint64(len(c.buf) + c.inflight)
				c.buf, c.inflight = nil, 0
				c.mu.Unlock()
				close(c.done)
				c.fail(fmt.Sprintf("console: internal error: %v", r))
			}
		}()
		var out []byte
		for {
			c.mu.Lock()
			for len(c.buf) == 0 && !c.closed {
				c.mu.Unlock()
				<-c.wake
				c.mu.Lock()
			}
			if len(c.buf) == 0 {
				c.mu.Unlock()
				close(c.done)
				return
			}
			out, c.buf = c.buf, out[:0]
			c.inflight = len(out)
			c.mu.Unlock()
			c.w.Write(out) // a console error loses output, never the VM
			c.mu.Lock()
			c.written += uint64(c.inflight)
			c.inflight = 0
			c.mu.Unlock()
		}
	}()
}

// close takes no more output and gives the writer what is buffered, as
// long as it keeps taking it; it returns the bytes dropped, counting those
// a stalled writer never took.
func (c *consoleOut) close() uint64 {
	c.mu.Lock()
	c.closed = true
	last := c.written
	c.mu.Unlock()
	c.kick()
	for {
		select {
		case <-c.done:
		case <-time.After(consoleFlushStall):
			c.mu.Lock()
			w := c.written
			c.mu.Unlock()
			if w != last { // still taking output: give it more time
				last = w
				continue
			}
		}
		break
	}
	return c.lost()
}

// lost returns the bytes dropped or not yet written.
func (c *consoleOut) lost() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped + uint64(len(c.buf)+c.inflight)
}

// flush returns once everything written so far has been given to the
// writer, or the writer has taken nothing for consoleFlushStall, or the
// console is closed. A snapshot flushes the console so that the output
// before it is out before the snapshot is.
func (c *consoleOut) flush() {
	c.kick()
	last, since := uint64(0), time.Now()
	for {
		c.mu.Lock()
		done := c.closed || len(c.buf) == 0 && c.inflight == 0
		w := c.written
		c.mu.Unlock()
		if done {
			return
		}
		if w != last {
			last, since = w, time.Now()
		} else if time.Since(since) >= consoleFlushStall {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
