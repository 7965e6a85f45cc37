package main

import (
	"bufio"
	"io"
	"os"
	"sync"
)

// consoleHub is a daemon VM's console: it keeps the last consoleRing
// bytes of output (pvisor logs, and the backlog an attaching client gets
// first), copies live output to every attached client, and feeds what
// clients type to the guest. Attaching and detaching never touch the VM.
type consoleHub struct {
	mu      sync.Mutex
	ring    []byte // the last len(ring) bytes of output, oldest first
	total   uint64 // bytes of output ever written
	clients map[*consoleClient]struct{}
	inW     *io.PipeWriter // the running VM's console input; nil when none
}

// consoleRing is how much output a hub keeps.
const consoleRing = 256 << 10

// consoleClient is one attached client's output queue: a client that
// does not keep up loses output (counted), never blocks the VM.
type consoleClient struct {
	out     chan []byte
	dropped uint64
}

func newConsoleHub() *consoleHub {
	return &consoleHub{clients: map[*consoleClient]struct{}{}}
}

// writer is the Console of a VM run.
func (h *consoleHub) writer() io.Writer { return hubWriter{h} }

type hubWriter struct{ h *consoleHub }

func (w hubWriter) Write(p []byte) (int, error) {
	h := w.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total += uint64(len(p))
	h.ring = append(h.ring, p...)
	if n := len(h.ring) - consoleRing; n > 0 {
		h.ring = append(h.ring[:0], h.ring[n:]...)
	}
	for c := range h.clients {
		select {
		case c.out <- append([]byte(nil), p...):
		default:
			c.dropped += uint64(len(p))
		}
	}
	return len(p), nil
}

// reader is the ConsoleIn of a new VM run; the previous run's input ends.
func (h *consoleHub) reader() io.Reader {
	r, w := io.Pipe()
	h.mu.Lock()
	if h.inW != nil {
		h.inW.Close()
	}
	h.inW = w
	h.mu.Unlock()
	return r
}

// input feeds p to the running VM's console; false when there is none.
func (h *consoleHub) input(p []byte) bool {
	h.mu.Lock()
	w := h.inW
	h.mu.Unlock()
	if w == nil {
		return false
	}
	_, err := w.Write(p)
	return err == nil
}

// backlog returns the kept output.
func (h *consoleHub) backlog() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]byte(nil), h.ring...)
}

// attach adds a client; it gets the backlog first.
func (h *consoleHub) attach() (*consoleClient, []byte) {
	c := &consoleClient{out: make(chan []byte, 256)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	return c, append([]byte(nil), h.ring...)
}

// detach removes a client.
func (h *consoleHub) detach(c *consoleClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

// newBufReader reads a snapshot file with a large buffer.
func newBufReader(f *os.File) *bufio.Reader { return bufio.NewReaderSize(f, 1<<20) }
