package virtio

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeMem is guest RAM as a byte slice, between two guard areas that no
// access may change, with an optional hole (a ballooned-out range) that
// Slice refuses. It can record what the device invalidates, so that a test
// can check that every byte that changed was reported.
type fakeMem struct {
	back      []byte
	ram       []byte
	holeStart uint64 // [holeStart, holeEnd) is not RAM
	holeEnd   uint64
	slices    atomic.Uint64

	mu      sync.Mutex
	record  bool
	written [][2]uint64 // [gpa, gpa+n) from Invalidate, while record
}

const guardSize = 4096
const guardByte = 0xa5

func newFakeMem(size int) *fakeMem {
	back := make([]byte, size+2*guardSize)
	for i := range guardSize {
		back[i] = guardByte
		back[len(back)-1-i] = guardByte
	}
	return &fakeMem{back: back, ram: back[guardSize : guardSize+size : guardSize+size]}
}

func (m *fakeMem) Slice(gpa, n uint64) ([]byte, bool) {
	m.slices.Add(1)
	end := gpa + n
	if end < gpa || end > uint64(len(m.ram)) {
		return nil, false
	}
	if n != 0 && gpa < m.holeEnd && end > m.holeStart {
		return nil, false
	}
	return m.ram[gpa:end:end], true
}

func (m *fakeMem) Invalidate(gpa, n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.record {
		m.written = append(m.written, [2]uint64{gpa, gpa + n})
	}
}

// checkGuards fails the test if anything wrote outside the RAM.
func (m *fakeMem) checkGuards(t testing.TB) {
	t.Helper()
	for i := range guardSize {
		if m.back[i] != guardByte || m.back[len(m.back)-1-i] != guardByte {
			t.Fatalf("guard byte changed: an access outside guest RAM")
		}
	}
}

func (m *fakeMem) put16(gpa uint64, v uint16) { binary.LittleEndian.PutUint16(m.ram[gpa:], v) }
func (m *fakeMem) get16(gpa uint64) uint16    { return binary.LittleEndian.Uint16(m.ram[gpa:]) }
func (m *fakeMem) get32(gpa uint64) uint32    { return binary.LittleEndian.Uint32(m.ram[gpa:]) }

func (m *fakeMem) putDesc(table uint64, i uint16, addr uint64, n uint32, flags, next uint16) {
	p := m.ram[table+uint64(i)*descSize:]
	binary.LittleEndian.PutUint64(p[0:], addr)
	binary.LittleEndian.PutUint32(p[8:], n)
	binary.LittleEndian.PutUint16(p[12:], flags)
	binary.LittleEndian.PutUint16(p[14:], next)
}

// driver is the driver side of one split virtqueue, laid out and used as
// Linux's drivers/virtio/virtio_ring.c does: a free list threaded through
// the descriptors' next fields, an indirect table for any request of more
// than one buffer when INDIRECT_DESC is negotiated, used_event and
// avail_event with EVENT_IDX. Buffers come from a bump allocator above the
// rings.
type driver struct {
	t        testing.TB
	mem      *fakeMem
	q        QueueState
	eventIdx bool
	indirect bool
	freeHead uint16
	numFree  int
	chainLen []int // per head: descriptors it took from the table
	availIdx uint16
	lastUsed uint16
	heap     uint64
}

// newDriver lays out a queue of size entries at base, as vring_init does:
// the descriptor table, then the available ring, then the used ring at the
// next 4 KiB boundary.
func newDriver(t testing.TB, m *fakeMem, base uint64, size uint16, features uint64) *driver {
	desc := base
	avail := desc + descTableBytes(size)
	used := (avail + availBytes(size, true) + 4095) &^ 4095
	end := used + usedBytes(size, true)
	d := &driver{
		t: t, mem: m,
		q:        QueueState{Size: size, Ready: true, Desc: desc, Driver: avail, Device: used},
		eventIdx: features&FeatureEventIdx != 0,
		indirect: features&FeatureIndirectDesc != 0,
		numFree:  int(size),
		chainLen: make([]int, size),
		heap:     (end + 4095) &^ 4095,
	}
	for i := range size {
		m.putDesc(desc, i, 0, 0, 0, i+1)
	}
	return d
}

// alloc returns n bytes of guest memory for a buffer or table.
func (d *driver) alloc(n uint64) uint64 {
	a := d.heap
	d.heap = (d.heap + n + 15) &^ 15
	if d.heap > uint64(len(d.mem.ram)) {
		d.t.Fatalf("test guest out of memory")
	}
	return a
}

// req is a request the driver made available.
type req struct {
	head uint16
	in   []Buffer // the device-writable buffers
}

// add makes a request of the readable buffers out and writable buffers of
// the sizes in available, and says whether the driver would notify
// (virtqueue_kick_prepare).
func (d *driver) add(out [][]byte, in []uint32) (req, bool) {
	d.t.Helper()
	type seg struct {
		addr  uint64
		n     uint32
		write bool
	}
	var segs []seg
	for _, b := range out {
		a := d.alloc(uint64(len(b)))
		copy(d.mem.ram[a:], b)
		segs = append(segs, seg{a, uint32(len(b)), false})
	}
	r := req{}
	for _, n := range in {
		a := d.alloc(uint64(n))
		segs = append(segs, seg{a, n, true})
		r.in = append(r.in, Buffer{a, n})
	}
	put := func(table uint64, i uint16, s seg, last bool, next uint16) {
		var fl uint16
		if s.write {
			fl |= descFlagWrite
		}
		if !last {
			fl |= descFlagNext
		}
		d.mem.putDesc(table, i, s.addr, s.n, fl, next)
	}
	if d.indirect && len(segs) > 1 {
		if d.numFree < 1 {
			d.t.Fatalf("queue full")
		}
		tab := d.alloc(uint64(len(segs)) * descSize)
		for i, s := range segs {
			put(tab, uint16(i), s, i == len(segs)-1, uint16(i+1))
		}
		head := d.freeHead
		d.freeHead = d.nextOf(head)
		d.mem.putDesc(d.q.Desc, head, tab, uint32(len(segs))*descSize, descFlagIndirect, 0)
		d.numFree--
		d.chainLen[head] = 1
		r.head = head
	} else {
		if d.numFree < len(segs) {
			d.t.Fatalf("queue full")
		}
		head := d.freeHead
		i := head
		for k, s := range segs {
			nx := d.nextOf(i)
			put(d.q.Desc, i, s, k == len(segs)-1, nx)
			if k < len(segs)-1 {
				i = nx
			} else {
				d.freeHead = nx
			}
		}
		d.numFree -= len(segs)
		d.chainLen[head] = len(segs)
		r.head = head
	}
	d.mem.put16(d.q.Driver+4+2*uint64(d.availIdx%d.q.Size), r.head)
	old := d.availIdx
	d.availIdx++
	d.mem.put16(d.q.Driver+2, d.availIdx)
	return r, d.needKick(old)
}

func (d *driver) nextOf(i uint16) uint16 {
	return binary.LittleEndian.Uint16(d.mem.ram[d.q.Desc+uint64(i)*descSize+14:])
}

// needKick is virtqueue_kick_prepare for the entries since old.
func (d *driver) needKick(old uint16) bool {
	if d.eventIdx {
		ev := d.mem.get16(d.q.Device + 4 + usedElemSize*uint64(d.q.Size))
		return d.availIdx-ev-1 < d.availIdx-old
	}
	return d.mem.get16(d.q.Device)&1 == 0
}

// used takes the next used entry, if any, returning its descriptors to the
// free list; with EVENT_IDX it asks for an interrupt at the next one, as
// virtqueue_enable_cb does.
func (d *driver) used() (head uint16, n uint32, ok bool) {
	if d.mem.get16(d.q.Device+2) == d.lastUsed {
		return 0, 0, false
	}
	e := d.q.Device + 4 + usedElemSize*uint64(d.lastUsed%d.q.Size)
	head, n = uint16(d.mem.get32(e)), d.mem.get32(e+4)
	d.lastUsed++
	if d.eventIdx {
		d.mem.put16(d.q.Driver+4+2*uint64(d.q.Size), d.lastUsed)
	}
	if int(head) >= len(d.chainLen) || d.chainLen[head] == 0 {
		d.t.Fatalf("used entry for head %d, which is not in flight", head)
	}
	last := head
	for range d.chainLen[head] - 1 {
		last = d.nextOf(last)
	}
	p := d.mem.ram[d.q.Desc+uint64(last)*descSize+14:]
	binary.LittleEndian.PutUint16(p, d.freeHead)
	d.freeHead = head
	d.numFree += d.chainLen[head]
	d.chainLen[head] = 0
	return head, n, true
}

// bytes returns a copy of buffer b's contents.
func (d *driver) bytes(b Buffer) []byte {
	return append([]byte(nil), d.mem.ram[b.Addr:b.Addr+uint64(b.Len)]...)
}

// signals records a device's interrupts.
type signals struct {
	used   chan int
	config chan struct{}
}

func newSignals() *signals {
	return &signals{used: make(chan int, 1024), config: make(chan struct{}, 16)}
}

// UsedBuffer and ConfigChanged never block (Signaller's rule): like an
// interrupt line already raised, a signal nobody has taken yet absorbs
// the next.
func (s *signals) UsedBuffer(q int) {
	select {
	case s.used <- q:
	default:
	}
}

func (s *signals) ConfigChanged() {
	select {
	case s.config <- struct{}{}:
	default:
	}
}

const deadline = 10 * time.Second

func (s *signals) waitUsed(t testing.TB) {
	t.Helper()
	select {
	case <-s.used:
	case <-s.config:
		t.Fatalf("device broke while a used-buffer interrupt was expected")
	case <-time.After(deadline):
		t.Fatalf("no used-buffer interrupt within %v", deadline)
	}
}

func (s *signals) waitConfig(t testing.TB) {
	t.Helper()
	select {
	case <-s.config:
	case <-time.After(deadline):
		t.Fatalf("no config-change interrupt within %v", deadline)
	}
}

// rig is a device brought up by a driver over fake memory.
type rig struct {
	t   testing.TB
	mem *fakeMem
	dev *Device
	sig *signals
	drv *driver
}

const rigRAM = 4 << 20

// newRig brings up a device for b as a driver does (section 3.1.1),
// accepting features (the ring features and VERSION_1 included) and one
// queue of size entries.
func newRig(t testing.TB, b Backend, features uint64, size uint16, o Options) *rig {
	t.Helper()
	m := newFakeMem(rigRAM)
	sig := newSignals()
	dev := NewDevice(b, m, sig, o)
	r := &rig{t: t, mem: m, dev: dev, sig: sig}
	r.bringUp(features, size)
	t.Cleanup(func() {
		dev.SetStatus(0)
		m.checkGuards(t)
	})
	return r
}

// bringUp resets the device and starts it again with a fresh driver.
func (r *rig) bringUp(features uint64, size uint16) {
	r.t.Helper()
	dev := r.dev
	dev.SetStatus(0)
	clear(r.mem.ram)
	r.drv = newDriver(r.t, r.mem, 0x10000, size, features)
	dev.SetStatus(StatusAcknowledge)
	dev.SetStatus(StatusAcknowledge | StatusDriver)
	dev.SetDriverFeatures(features)
	dev.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK)
	if dev.Status()&StatusFeaturesOK == 0 {
		r.t.Fatalf("features %#x refused (device offers %#x)", features, dev.DeviceFeatures())
	}
	if err := dev.SetQueue(0, r.drv.q); err != nil {
		r.t.Fatalf("SetQueue: %v", err)
	}
	dev.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK | StatusDriverOK)
	if st := dev.Status(); st != StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK {
		r.t.Fatalf("status %#x after bring-up", st)
	}
}

// do submits one request, notifies, waits for its interrupt and returns
// the bytes written and the writable buffers' contents.
func (r *rig) do(out [][]byte, in []uint32) (uint32, [][]byte) {
	r.t.Helper()
	q, _ := r.drv.add(out, in)
	r.dev.Notify(0)
	r.sig.waitUsed(r.t)
	head, n, ok := r.drv.used()
	if !ok || head != q.head {
		r.t.Fatalf("used ring: head %d ok %v, want head %d", head, ok, q.head)
	}
	var got [][]byte
	for _, b := range q.in {
		got = append(got, r.drv.bytes(b))
	}
	return n, got
}

// broken waits for the device to report DEVICE_NEEDS_RESET and returns the
// violation.
func (r *rig) broken() error {
	r.t.Helper()
	r.sig.waitConfig(r.t)
	if r.dev.Status()&StatusDeviceNeedsReset == 0 {
		r.t.Fatalf("status %#x after a config change, want DEVICE_NEEDS_RESET", r.dev.Status())
	}
	return r.dev.Err()
}

var allRing = FeatureVersion1 | FeatureIndirectDesc | FeatureEventIdx
