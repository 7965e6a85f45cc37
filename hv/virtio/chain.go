package virtio

import "errors"

// Buffer is one guest buffer of a chain, as its descriptor gave it.
type Buffer struct {
	Addr uint64
	Len  uint32
}

// Chain is one request: a descriptor chain the driver made available,
// copied into host memory and validated (queue.go, walk). Its buffers are
// the device-readable ones followed by the device-writable ones; each lies
// inside RAM as checked when it was copied. The buffers' contents stay in
// guest memory and are reached only by the bounded copies below, each of
// which checks the range through Mem again (the guest may balloon memory
// out from under a request).
//
// A Chain is reused from request to request; a backend must not keep it, or
// any slice of guest memory it handed out, after Handle returns.
type Chain struct {
	Head uint16

	mem      Mem
	bufs     []Buffer // readable first, then writable
	nRead    int
	readLen  uint64
	writeLen uint64
}

// Errors of a chain's copies. Both mean the request cannot be served as the
// driver laid it out.
var (
	// ErrBeyondChain: an offset or length beyond the chain's readable or
	// writable bytes.
	ErrBeyondChain = errors.New("virtio: access beyond the descriptor chain")
	// ErrBufferGone: a buffer that was RAM when the chain was copied is not
	// any more.
	ErrBufferGone = errors.New("virtio: buffer no longer in guest RAM")
)

// ReadLen is the total length of the device-readable buffers.
func (c *Chain) ReadLen() uint64 { return c.readLen }

// WriteLen is the total length of the device-writable buffers.
func (c *Chain) WriteLen() uint64 { return c.writeLen }

// Readable returns the device-readable buffers.
func (c *Chain) Readable() []Buffer { return c.bufs[:c.nRead] }

// Writable returns the device-writable buffers.
func (c *Chain) Writable() []Buffer { return c.bufs[c.nRead:] }

// reset empties c for the chain at head.
func (c *Chain) reset(head uint16) {
	c.Head = head
	c.bufs = c.bufs[:0]
	c.nRead = 0
	c.readLen, c.writeLen = 0, 0
}

// ReadAt copies readable bytes [off, off+len(p)) into p.
func (c *Chain) ReadAt(p []byte, off uint64) error {
	return c.EachReadable(off, uint64(len(p)), func(b []byte) error {
		p = p[copy(p, b):]
		return nil
	})
}

// WriteAt copies p to writable bytes [off, off+len(p)).
func (c *Chain) WriteAt(p []byte, off uint64) error {
	return c.EachWritable(off, uint64(len(p)), func(b []byte) error {
		p = p[copy(b, p):]
		return nil
	})
}

// EachReadable calls fn with the guest memory of readable bytes
// [off, off+n), one piece per buffer, in order. fn must not keep b. It
// stops at fn's first error and returns it.
func (c *Chain) EachReadable(off, n uint64, fn func(b []byte) error) error {
	if off > c.readLen || n > c.readLen-off {
		return ErrBeyondChain
	}
	return c.each(c.bufs[:c.nRead], off, n, false, fn)
}

// EachWritable calls fn with the guest memory of writable bytes
// [off, off+n), one piece per buffer, in order, and tells the engine each
// piece was written. fn must not keep b. It stops at fn's first error and
// returns it.
func (c *Chain) EachWritable(off, n uint64, fn func(b []byte) error) error {
	if off > c.writeLen || n > c.writeLen-off {
		return ErrBeyondChain
	}
	return c.each(c.bufs[c.nRead:], off, n, true, fn)
}

// each walks bufs over [off, off+n). Precondition: the range lies within
// the buffers' total length.
func (c *Chain) each(bufs []Buffer, off, n uint64, write bool, fn func([]byte) error) error {
	for _, bf := range bufs {
		if n == 0 {
			return nil
		}
		l := uint64(bf.Len)
		if off >= l {
			off -= l
			continue
		}
		k := min(l-off, n)
		gpa := bf.Addr + off
		b, ok := c.mem.Slice(gpa, k)
		if !ok {
			return ErrBufferGone
		}
		err := fn(b)
		if write {
			c.mem.Invalidate(gpa, k)
		}
		if err != nil {
			return err
		}
		off, n = 0, n-k
	}
	return nil
}
