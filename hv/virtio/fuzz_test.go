package virtio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// The fuzz input: a header choosing the queue, then what the driver wrote,
// as far as the input goes (the rest of RAM is zero):
//
//	0      log2 of the queue size n (mod 9: 1..256)
//	1      bit 0 INDIRECT_DESC, bit 1 EVENT_IDX
//	2-3    the device's starting avail/used index
//	4-7    descriptor table address (mod fuzzRAM+2048, so sometimes outside)
//	8-11   available ring address
//	12-15  used ring address
//	16-    the descriptor table (16·n bytes), then the available ring
//	       (flags, idx, n entries, used_event), then RAM from address 0
//	       (indirect tables, buffers) under the two
//
// Keeping the input to what matters keeps it short, which the fuzzer's
// minimisation of each new input needs.
const (
	fuzzHeader   = 16
	fuzzRAM      = 8 << 10
	fuzzHole     = 7 << 10 // [fuzzHole, fuzzHole+fuzzHoleSize) is a hole
	fuzzHoleSize = 1 << 10
)

// hostile is the fuzz backend: it reads and writes a bounded number of
// bytes of each chain, checks that the chain's writes landed in its
// writable buffers, and, as a guest racing the device, rewrites the
// descriptor at the chain's head while the request is in flight.
type hostile struct {
	t       *testing.T
	mem     *fakeMem
	desc    uint64
	allowed []bool // RAM bytes the device or the "guest" was entitled to change
	handled int
}

func (h *hostile) allow(lo, hi uint64) {
	for i := lo; i < hi && i < uint64(len(h.allowed)); i++ {
		h.allowed[i] = true
	}
}

func (h *hostile) Type() DeviceType        { return 0x7e }
func (h *hostile) Features() uint64        { return 0 }
func (h *hostile) QueueMax() []uint16      { return []uint16{256} }
func (h *hostile) ConfigSize() int         { return 0 }
func (h *hostile) ReadConfig(int, []byte)  {}
func (h *hostile) WriteConfig(int, []byte) {}
func (h *hostile) Activate(uint64)         {}
func (h *hostile) Reset()                  {}

func (h *hostile) Handle(_ int, c *Chain) (uint32, error) {
	h.handled++
	if d := h.desc + uint64(c.Head)*descSize; d+descSize <= uint64(len(h.mem.ram)) {
		for i := range descSize {
			h.mem.ram[d+uint64(i)] ^= 0xff
		}
		h.allow(d, d+descSize)
	}
	mark := len(h.mem.written)
	defer func() {
		// Each piece the chain wrote lies in one of its writable
		// buffers, in order.
		bufs := c.Writable()
		for _, r := range h.mem.written[mark:] {
			for len(bufs) > 0 && !(r[0] >= bufs[0].Addr && r[1] <= bufs[0].Addr+uint64(bufs[0].Len)) {
				bufs = bufs[1:]
			}
			if len(bufs) == 0 {
				h.t.Fatalf("chain %d wrote [%#x, %#x), outside its writable buffers", c.Head, r[0], r[1])
			}
			h.allow(r[0], r[1])
		}
		h.mem.written = h.mem.written[:mark]
	}()
	var buf [4096]byte
	if err := c.ReadAt(buf[:min(c.ReadLen(), 4096)], 0); err != nil {
		return 0, err
	}
	n := min(c.WriteLen(), 256)
	for i := range buf[:n] {
		buf[i] = byte(i) | 1
	}
	if err := c.WriteAt(buf[:n], 0); err != nil {
		return 0, err
	}
	return uint32(n), nil
}

func FuzzVirtqueue(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkVirtqueue(t, data) })
}

// TestFuzzSeedsServe checks that the fuzzer starts from rings the device
// serves in full.
func TestFuzzSeedsServe(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		if n, err := checkVirtqueue(t, s); err != nil || n != fuzzSeedReqs[i] {
			t.Errorf("seed %d: %d requests served, error %v; want %d, nil", i, n, err, fuzzSeedReqs[i])
		}
	}
}

// fuzzScratch is reused from input to input (the fuzz function runs one
// input at a time in each process), so that an input costs little more
// than the device's own work.
var fuzzScratch = struct {
	mem     *fakeMem
	allowed []bool
	before  []byte
	sig     *signals
}{
	mem:     newFakeMem(fuzzRAM),
	allowed: make([]bool, fuzzRAM),
	before:  make([]byte, fuzzRAM),
	sig:     &signals{used: make(chan int, 1), config: make(chan struct{}, 1)},
}

// cut splits b after n bytes, or at its end.
func cut(b []byte, n int) ([]byte, []byte) {
	n = min(n, len(b))
	return b[:n], b[n:]
}

// checkVirtqueue serves one fuzz input's queue and checks the promises. It
// returns the number of requests served and the error that ended them.
func checkVirtqueue(t *testing.T, data []byte) (handled int, ringErr error) {
	if len(data) < fuzzHeader {
		return 0, nil
	}
	size := uint16(1) << (data[0] % 9)
	var features uint64 = FeatureVersion1
	if data[1]&1 != 0 {
		features |= FeatureIndirectDesc
	}
	if data[1]&2 != 0 {
		features |= FeatureEventIdx
	}
	start := binary.LittleEndian.Uint16(data[2:])
	addr := func(o int) uint64 { return uint64(binary.LittleEndian.Uint32(data[o:])) % (fuzzRAM + 2048) }
	m := fuzzScratch.mem
	clear(m.ram)
	m.written = m.written[:0]
	m.record = false
	m.holeStart, m.holeEnd = fuzzHole, fuzzHole+fuzzHoleSize
	s := QueueState{Size: size, Ready: true, Desc: addr(4), Driver: addr(8), Device: addr(12),
		NextAvail: start, AvailIdx: start, NextUsed: start, SignalledUsed: start}
	rest := data[fuzzHeader:]
	descArea, rest := cut(rest, int(descTableBytes(size)))
	availArea, rest := cut(rest, int(availBytes(size, true)))
	copy(m.ram, rest)
	if s.Desc < fuzzRAM {
		copy(m.ram[s.Desc:], descArea)
	}
	if s.Driver < fuzzRAM {
		copy(m.ram[s.Driver:], availArea)
	}
	for i := range m.ram[fuzzHole : fuzzHole+fuzzHoleSize] {
		m.ram[fuzzHole+i] = 0x5a
	}
	eventIdx := features&FeatureEventIdx != 0
	if s.checkLayout(256, m, eventIdx) != "" {
		return 0, nil // refused at SetQueue (TestQueueSetup)
	}
	clear(fuzzScratch.allowed)
	h := &hostile{t: t, mem: m, desc: s.Desc, allowed: fuzzScratch.allowed}
	dev := NewDevice(h, m, fuzzScratch.sig, Options{})
	w := newWorker(dev)
	q := newQueue(0, s, 256, m, features)
	w.queues[0] = q
	before := append(fuzzScratch.before[:0], m.ram...)
	m.record = true

	// Bounded work: per pass at most Size chains, each of at most
	// max+1 descriptor copies and max+1 range checks (max = 256, the
	// queue's maximum, bounds a chain), two copies by the backend per
	// buffer, four ring accesses; plus the interrupt decision and
	// avail_event.
	const max = 256
	bound := uint64(size)*(2*(max+1)+2*max+8) + 16
	for pass := 0; pass < 3; pass++ {
		s0 := m.slices.Load()
		more, err := w.serve(q)
		if work := m.slices.Load() - s0; work > bound {
			t.Fatalf("pass %d: %d guest accesses, bound %d (size %d)", pass, work, bound, size)
		}
		var re *RingError
		if err != nil && !errors.As(err, &re) && !errors.Is(err, ErrBufferGone) {
			t.Fatalf("serve: unexpected error %v", err)
		}
		if err != nil || !more {
			ringErr = err
			break
		}
	}
	if got := int(q.NextUsed - start); got != h.handled {
		t.Fatalf("used idx advanced by %d for %d requests", got, h.handled)
	}

	// Nothing outside RAM or in the hole changed; outside requests
	// the device wrote only its used ring; every byte that changed
	// was reported through Invalidate (or written by the "guest").
	m.checkGuards(t)
	for i, b := range m.ram[fuzzHole : fuzzHole+fuzzHoleSize] {
		if b != 0x5a {
			t.Fatalf("hole byte %#x changed", fuzzHole+i)
		}
	}
	usedEnd := s.Device + usedBytes(size, eventIdx)
	for _, r := range m.written {
		if r[0] < s.Device || r[1] > usedEnd {
			t.Fatalf("device wrote [%#x, %#x), outside the used ring and the writable buffers", r[0], r[1])
		}
		h.allow(r[0], r[1])
	}
	for blk := 0; blk < len(m.ram); blk += 64 {
		if bytes.Equal(m.ram[blk:blk+64], before[blk:blk+64]) {
			continue
		}
		for i := blk; i < blk+64; i++ {
			if m.ram[i] != before[i] && !h.allowed[i] {
				t.Fatalf("byte %#x changed without being reported", i)
			}
		}
	}
	return h.handled, ringErr
}

var fuzzSeedQueues = []struct {
	size     uint16
	features uint64
	start    uint16
}{
	{8, FeatureVersion1, 0},
	{16, allRing, 0xfffe},
	{4, FeatureVersion1 | FeatureIndirectDesc, 7},
	{1, allRing, 0},
	{64, allRing, 0x8000},
}

var fuzzSeedReqs = []int{2, 5, 4, 1, 2}

// fuzzSeeds are rings a Linux-like driver built (driver_test.go), for the
// fuzzer to start from.
func fuzzSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for i, s := range fuzzSeedQueues {
		m := newFakeMem(fuzzRAM)
		d := newDriver(t, m, 0x1000, s.size, s.features)
		// Packed rings (the specification's alignments, no page
		// rounding), buffers from address 0.
		d.q.Device = (d.q.Driver + availBytes(s.size, true) + usedAlign - 1) &^ (usedAlign - 1)
		d.heap = 0x10
		d.availIdx = s.start
		m.put16(d.q.Driver+2, s.start)
		for i := range fuzzSeedReqs[i] {
			d.add([][]byte{{byte(i), 2, 3}, {4}}, []uint32{8, 1})
		}
		if d.heap > d.q.Desc {
			t.Fatalf("seed buffers overlap the rings")
		}
		hdr := make([]byte, fuzzHeader)
		for l := range 9 {
			if 1<<l == int(s.size) {
				hdr[0] = byte(l)
			}
		}
		if s.features&FeatureIndirectDesc != 0 {
			hdr[1] |= 1
		}
		if s.features&FeatureEventIdx != 0 {
			hdr[1] |= 2
		}
		binary.LittleEndian.PutUint16(hdr[2:], s.start)
		binary.LittleEndian.PutUint32(hdr[4:], uint32(d.q.Desc))
		binary.LittleEndian.PutUint32(hdr[8:], uint32(d.q.Driver))
		binary.LittleEndian.PutUint32(hdr[12:], uint32(d.q.Device))
		in := append(hdr, m.ram[d.q.Desc:d.q.Desc+descTableBytes(s.size)]...)
		in = append(in, m.ram[d.q.Driver:d.q.Driver+availBytes(s.size, true)]...)
		out = append(out, append(in, m.ram[:d.heap]...))
	}
	return out
}
