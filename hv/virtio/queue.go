package virtio

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// QueueState is one split virtqueue: the driver's configuration and the
// device's positions in the rings. It is a plain value, which the device
// goroutine keeps while it runs and Device.Save copies.
//
// The positions are free-running 16-bit counters, as the rings' idx
// fields are. While the device is quiesced and not broken, NextUsed
// equals NextAvail (every request taken was completed or put back), and
// SignalledUsed equals NextUsed unless Held.
type QueueState struct {
	// Size is the number of entries: a power of two, 1..the queue's
	// maximum.
	Size uint16
	// Ready says the driver enabled the queue.
	Ready bool
	// Desc is the descriptor table's guest-physical address, 16-byte
	// aligned.
	Desc uint64
	// Driver is the available ring's ("driver area"), 2-byte aligned.
	Driver uint64
	// Device is the used ring's ("device area"), 4-byte aligned.
	Device uint64

	// NextAvail is the next available-ring entry the device reads.
	NextAvail uint16
	// AvailIdx is the driver's avail idx as the device last read it; the
	// entries from NextAvail up to it are taken without reading idx
	// again. At most Size ahead of NextAvail.
	AvailIdx uint16
	// NextUsed is the next used-ring entry the device writes.
	NextUsed uint16
	// SignalledUsed is NextUsed when the device last decided on an
	// interrupt (with EVENT_IDX, the old value of vring_need_event).
	SignalledUsed uint16
	// Held says the interrupt decision for the entries since
	// SignalledUsed waits for the backend's holdoff (InterruptHoldoff);
	// a device started with a held queue decides one holdoff later.
	Held bool
	// Notified says a notification (or a Source's wake-up) came that the
	// device has not yet served. The device keeps it apart from the rest
	// (vCPUs set it without a lock): only Device.Save fills it in.
	Notified bool
}

// clearPositions returns s as a queue starts: at entry 0, nothing held or
// notified.
func (s *QueueState) clearPositions() {
	s.NextAvail, s.AvailIdx, s.NextUsed, s.SignalledUsed = 0, 0, 0, 0
	s.Held, s.Notified = false, false
}

// RingError is a violation of the virtqueue rules by the driver. It breaks
// the device (DEVICE_NEEDS_RESET), never the hypervisor.
type RingError struct {
	Queue  int
	Reason string
}

func (e *RingError) Error() string {
	return fmt.Sprintf("virtio: queue %d: %s", e.Queue, e.Reason)
}

// checkLayout says whether s describes rings the device may use: its size
// and alignments are the specification's and its three areas are RAM now.
// Every later access checks its range through Mem again.
func (s *QueueState) checkLayout(max uint16, m Mem, eventIdx bool) string {
	if why := s.checkShape(max); why != "" {
		return why
	}
	areas := [...]struct {
		name   string
		gpa, n uint64
	}{
		{"descriptor table", s.Desc, descTableBytes(s.Size)},
		{"available ring", s.Driver, availBytes(s.Size, eventIdx)},
		{"used ring", s.Device, usedBytes(s.Size, eventIdx)},
	}
	for _, a := range areas {
		if _, ok := m.Slice(a.gpa, a.n); !ok {
			return fmt.Sprintf("%s [%#x, +%#x) is not RAM", a.name, a.gpa, a.n)
		}
	}
	return ""
}

// checkShape is checkLayout without looking at memory: the size and the
// alignments.
func (s *QueueState) checkShape(max uint16) string {
	switch {
	case s.Size == 0 || s.Size > max || s.Size&(s.Size-1) != 0:
		return fmt.Sprintf("size %d is not a power of two in [1, %d]", s.Size, max)
	case s.Desc%descAlign != 0 || s.Driver%availAlign != 0 || s.Device%usedAlign != 0:
		return fmt.Sprintf("misaligned rings (desc %#x, avail %#x, used %#x)", s.Desc, s.Driver, s.Device)
	}
	return ""
}

// queue is a split virtqueue being served by its device goroutine, which
// owns it while the device runs.
type queue struct {
	QueueState
	index    int
	mem      Mem
	eventIdx bool  // VIRTIO_RING_F_EVENT_IDX negotiated
	indirect bool  // VIRTIO_RING_F_INDIRECT_DESC negotiated
	maxChain int   // buffers per chain: the queue's maximum size
	chain    Chain // the request being served; its buffers' storage is reused
	fenceVar uint32
}

func newQueue(index int, s QueueState, max uint16, m Mem, features uint64) *queue {
	q := &queue{
		QueueState: s,
		index:      index,
		mem:        m,
		maxChain:   int(max),
		eventIdx:   features&FeatureEventIdx != 0,
		indirect:   features&FeatureIndirectDesc != 0,
	}
	q.chain = Chain{mem: m, bufs: make([]Buffer, 0, max)}
	return q
}

func (q *queue) fail(format string, args ...any) error {
	return &RingError{Queue: q.index, Reason: fmt.Sprintf(format, args...)}
}

// fence orders the device's earlier stores to the rings before its later
// loads (a locked instruction is a full barrier on x86). Go's plain loads
// and stores are otherwise kept in program order across the Mem calls,
// which the compiler cannot see through, and x86-TSO keeps them in order
// in hardware except a store followed by a load.
func (q *queue) fence() { atomic.AddUint32(&q.fenceVar, 1) }

// next copies and validates the next available chain into q.chain. It
// returns false when the driver has made nothing new available.
func (q *queue) next() (bool, error) {
	if q.NextAvail == q.AvailIdx {
		idx, ok := load16(q.mem, q.Driver+2)
		if !ok {
			return false, q.fail("available ring is not RAM")
		}
		if ahead := idx - q.NextAvail; ahead > q.Size {
			return false, q.fail("avail idx %d is %d entries ahead of %d, more than the queue size %d", idx, ahead, q.NextAvail, q.Size)
		}
		q.AvailIdx = idx
		if idx == q.NextAvail {
			return false, nil
		}
	}
	head, ok := load16(q.mem, q.Driver+4+2*uint64(q.NextAvail%q.Size))
	if !ok {
		return false, q.fail("available ring is not RAM")
	}
	q.NextAvail++
	return true, q.walk(head)
}

// walk copies the chain starting at head into q.chain, one descriptor at a
// time: each is copied to the host before any field of it is looked at,
// and only the copy is used afterwards, so the guest changing the table
// concurrently changes nothing the device relies on.
//
// Rules (virtio 1.1 section 2.7.5 and 2.7.5.3): the head and every next
// index lie in their table; every buffer lies in RAM, without wrapping; a
// chain holds at most the queue's maximum size of buffers, counting those
// in an indirect table, which also ends a looping chain; an indirect
// descriptor needs INDIRECT_DESC, ends its chain (no NEXT; zero or more
// direct descriptors may come before it), points to a table of 1..maximum
// whole descriptors in RAM, and never appears inside an indirect table;
// device-writable buffers follow all device-readable ones.
//
// The bound on a chain is the queue's maximum size, not the size the
// driver chose: Linux puts up to seg_max+2 buffers in one indirect table
// whatever the size (virtqueue_add_split), and the devices set seg_max
// from the maximum.
func (q *queue) walk(head uint16) error {
	c := &q.chain
	c.reset(head)
	if head >= q.Size {
		return q.fail("chain head %d beyond queue size %d", head, q.Size)
	}
	table, entries := q.Desc, uint32(q.Size)
	inIndirect := false
	i := head
	for {
		var raw [descSize]byte
		if !load(q.mem, table+uint64(i)*descSize, raw[:]) {
			return q.fail("descriptor %d of table %#x is not RAM", i, table)
		}
		addr := binary.LittleEndian.Uint64(raw[0:])
		length := binary.LittleEndian.Uint32(raw[8:])
		flags := binary.LittleEndian.Uint16(raw[12:])
		next := binary.LittleEndian.Uint16(raw[14:])
		if flags&descFlagIndirect != 0 {
			switch {
			case !q.indirect:
				return q.fail("indirect descriptor without INDIRECT_DESC")
			case inIndirect:
				return q.fail("indirect descriptor inside an indirect table")
			case flags&descFlagNext != 0:
				return q.fail("indirect descriptor with NEXT")
			case length == 0 || length%descSize != 0 || length/descSize > uint32(q.maxChain):
				return q.fail("indirect table of %d bytes (a multiple of %d, at most %d entries)", length, descSize, q.maxChain)
			}
			if _, ok := q.mem.Slice(addr, uint64(length)); !ok {
				return q.fail("indirect table [%#x, +%#x) is not RAM", addr, length)
			}
			table, entries, i, inIndirect = addr, length/descSize, 0, true
			continue
		}
		if len(c.bufs) == q.maxChain {
			return q.fail("chain from head %d longer than %d buffers (a loop?)", head, q.maxChain)
		}
		if _, ok := q.mem.Slice(addr, uint64(length)); !ok {
			return q.fail("buffer [%#x, +%#x) is not RAM", addr, length)
		}
		if flags&descFlagWrite != 0 {
			c.bufs = append(c.bufs, Buffer{addr, length})
			c.writeLen += uint64(length)
		} else {
			if len(c.bufs) > c.nRead {
				return q.fail("device-readable buffer after a device-writable one in chain %d", head)
			}
			c.bufs = append(c.bufs, Buffer{addr, length})
			c.nRead++
			c.readLen += uint64(length)
		}
		if flags&descFlagNext == 0 {
			return nil
		}
		if uint32(next) >= entries {
			return q.fail("next %d beyond its table of %d", next, entries)
		}
		i = next
	}
}

// push returns the chain at head to the driver with n bytes written.
func (q *queue) push(head uint16, n uint32) error {
	var e [usedElemSize]byte
	binary.LittleEndian.PutUint32(e[0:], uint32(head))
	binary.LittleEndian.PutUint32(e[4:], n)
	if !store(q.mem, q.Device+4+usedElemSize*uint64(q.NextUsed%q.Size), e[:]) {
		return q.fail("used ring is not RAM")
	}
	q.NextUsed++
	if !store16(q.mem, q.Device+2, q.NextUsed) {
		return q.fail("used ring is not RAM")
	}
	return nil
}

// publishAvailEvent tells an EVENT_IDX driver to notify again once it makes
// entry NextAvail available, and then makes sure the driver's next idx is
// read afresh.
func (q *queue) publishAvailEvent() error {
	if !store16(q.mem, q.Device+4+usedElemSize*uint64(q.Size), q.NextAvail) {
		return q.fail("used ring is not RAM")
	}
	q.fence()
	return nil
}

// needInterrupt says whether the driver wants an interrupt for the used
// entries pushed since the last decision: with EVENT_IDX when they pass its
// used_event (vring_need_event, section 2.7.10), otherwise unless it set
// VIRTQ_AVAIL_F_NO_INTERRUPT.
func (q *queue) needInterrupt() (bool, error) {
	old, now := q.SignalledUsed, q.NextUsed
	if old == now {
		return false, nil
	}
	q.SignalledUsed = now
	q.fence()
	if q.eventIdx {
		ev, ok := load16(q.mem, q.Driver+4+2*uint64(q.Size))
		if !ok {
			return false, q.fail("available ring is not RAM")
		}
		return now-ev-1 < now-old, nil
	}
	flags, ok := load16(q.mem, q.Driver)
	if !ok {
		return false, q.fail("available ring is not RAM")
	}
	return flags&availFlagNoInterrupt == 0, nil
}
