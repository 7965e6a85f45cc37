package virtio

import (
	"encoding/binary"
	"errors"
	"testing"
)

// The net fuzz input: one queue of a net device, as FuzzVirtqueue lays it
// out (fuzz_test.go), with a first header byte choosing the queue and the
// frames waiting at the port:
//
//	0      bit 0: the transmit queue (else receive); bit 1 INDIRECT_DESC;
//	       bit 2 EVENT_IDX; bits 3-4: frames waiting at the port (0..3)
//	1      log2 of the queue size n (mod 9: 1..256)
//	2-3    the device's starting avail/used index
//	4-15   descriptor table, available ring, used ring addresses (as
//	       FuzzVirtqueue's, mod fuzzRAM+2048)
//	16-17  length of each waiting frame (mod 1515; under 14 made 14)
//	18-    the descriptor table, the available ring, then RAM from 0
const netFuzzHeader = 18

// netProbe is the Net backend with the fuzz checks around each request:
// what it wrote lies in the chain's writable buffers, and a completion
// reports no more than they hold.
type netProbe struct {
	*Net
	t       *testing.T
	mem     *fakeMem
	allowed []bool
	handled int
}

func (p *netProbe) Handle(q int, c *Chain) (uint32, error) {
	mark := len(p.mem.written)
	n, err := p.Net.Handle(q, c)
	bufs := c.Writable()
	for _, r := range p.mem.written[mark:] {
		for len(bufs) > 0 && !(r[0] >= bufs[0].Addr && r[1] <= bufs[0].Addr+uint64(bufs[0].Len)) {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			p.t.Fatalf("chain %d wrote [%#x, %#x), outside its writable buffers", c.Head, r[0], r[1])
		}
		for i := r[0]; i < r[1]; i++ {
			p.allowed[i] = true
		}
	}
	p.mem.written = p.mem.written[:mark]
	if err == nil {
		p.handled++
		if uint64(n) > c.WriteLen() {
			p.t.Fatalf("completion of %d bytes for %d writable", n, c.WriteLen())
		}
	}
	return n, err
}

var netFuzzScratch = struct {
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

func FuzzNetRequest(f *testing.F) {
	for _, s := range netFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkNet(t, data) })
}

// TestNetFuzzSeedsServe checks that the fuzzer starts from requests the
// device serves.
func TestNetFuzzSeedsServe(t *testing.T) {
	for i, s := range netFuzzSeeds(t) {
		if n, err := checkNet(t, s); err != nil || n != netFuzzSeedReqs[i] {
			t.Errorf("seed %d: %d requests served, error %v; want %d, nil", i, n, err, netFuzzSeedReqs[i])
		}
	}
}

// checkNet serves one fuzz input's queue and checks: no panic; only
// rule errors end it; nothing outside RAM, in the hole, or outside the
// used ring and the chains' writable buffers changed; each frame handed to
// the port is 14..1514 bytes; a receive completion takes one waiting frame.
func checkNet(t *testing.T, data []byte) (handled int, err error) {
	if len(data) < netFuzzHeader {
		return 0, nil
	}
	txq := data[0]&1 != 0
	var features uint64 = FeatureVersion1
	if data[0]&2 != 0 {
		features |= FeatureIndirectDesc
	}
	if data[0]&4 != 0 {
		features |= FeatureEventIdx
	}
	waiting := int(data[0]>>3) & 3
	size := uint16(1) << (data[1] % 9)
	start := binary.LittleEndian.Uint16(data[2:])
	addr := func(o int) uint64 { return uint64(binary.LittleEndian.Uint32(data[o:])) % (fuzzRAM + 2048) }
	flen := max(int(binary.LittleEndian.Uint16(data[16:]))%(EthMaxFrame+1), EthHeaderSize)

	m := netFuzzScratch.mem
	clear(m.ram)
	m.written = m.written[:0]
	m.record = false
	m.holeStart, m.holeEnd = fuzzHole, fuzzHole+fuzzHoleSize
	s := QueueState{Size: size, Ready: true, Desc: addr(4), Driver: addr(8), Device: addr(12),
		NextAvail: start, AvailIdx: start, NextUsed: start, SignalledUsed: start}
	rest := data[netFuzzHeader:]
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
	if s.checkLayout(netQueueSize, m, eventIdx) != "" {
		return 0, nil // refused at SetQueue
	}
	port := &fakePort{mac: testMAC}
	for i := range waiting {
		port.rxq = append(port.rxq, ethFrame(flen, byte(i)))
	}
	clear(netFuzzScratch.allowed)
	p := &netProbe{Net: NewNet(port), t: t, mem: m, allowed: netFuzzScratch.allowed}
	dev := NewDevice(p, m, netFuzzScratch.sig, Options{})
	qi := netRxQueue
	if txq {
		qi = netTxQueue
	}
	w := newWorker(dev)
	q := newQueue(qi, s, netQueueSize, m, features)
	w.queues[qi] = q
	before := append(netFuzzScratch.before[:0], m.ram...)
	m.record = true
	for pass := 0; pass < 3; pass++ {
		more, e := w.serve(q)
		var re *RingError
		if e != nil && !errors.As(e, &re) && !errors.Is(e, ErrBufferGone) && !isNetRule(e) {
			t.Fatalf("serve: unexpected error %v", e)
		}
		if e != nil || !more {
			err = e
			break
		}
	}
	if got := int(q.NextUsed - start); got != p.handled {
		t.Fatalf("used idx advanced by %d for %d requests", got, p.handled)
	}
	if !txq && waiting-len(port.rxq) != p.handled {
		t.Fatalf("%d frames taken for %d receive completions", waiting-len(port.rxq), p.handled)
	}
	for _, f := range port.sent {
		if len(f) < EthHeaderSize || len(f) > EthMaxFrame {
			t.Fatalf("a frame of %d bytes reached the port", len(f))
		}
	}
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
		for i := r[0]; i < r[1]; i++ {
			p.allowed[i] = true
		}
	}
	for i := range m.ram {
		if m.ram[i] != before[i] && !p.allowed[i] {
			t.Fatalf("byte %#x changed without being reported", i)
		}
	}
	return p.handled, err
}

func isNetRule(err error) bool {
	for _, r := range []error{errNetRxReadable, errNetRxShort, errNetTxWritable, errNetTxLength, errNetTxFlags, errNetTxGSO} {
		if err == r {
			return true
		}
	}
	return false
}

var netFuzzSeedReqs = []int{2, 2, 1, 2}

// netFuzzSeeds are requests a Linux-like driver made: two receive rings
// with frames waiting and two transmit rings.
func netFuzzSeeds(t testing.TB) [][]byte {
	seeds := []struct {
		tx       bool
		size     uint16
		features uint64
		start    uint16
		frames   int
	}{
		{false, 4, FeatureVersion1, 0, 2},
		{false, 8, allRing, 0xfffe, 3},
		{true, 4, FeatureVersion1, 0, 0},
		{true, 8, allRing, 7, 0},
	}
	var out [][]byte
	for i, s := range seeds {
		m := newFakeMem(fuzzRAM)
		d := newDriver(t, m, 0x1000, s.size, s.features)
		d.q.Device = (d.q.Driver + availBytes(s.size, true) + usedAlign - 1) &^ (usedAlign - 1)
		d.heap = 0x10
		d.availIdx = s.start
		m.put16(d.q.Driver+2, s.start)
		for k := range netFuzzSeedReqs[i] {
			if s.tx {
				d.add([][]byte{netHdr(0, 0), ethFrame(60+k, byte(k))}, nil)
			} else {
				d.add(nil, []uint32{netMinRxBuffers})
			}
		}
		if d.heap > d.q.Desc {
			t.Fatalf("seed buffers overlap the rings")
		}
		hdr := make([]byte, netFuzzHeader)
		if s.tx {
			hdr[0] |= 1
		}
		if s.features&FeatureIndirectDesc != 0 {
			hdr[0] |= 2
		}
		if s.features&FeatureEventIdx != 0 {
			hdr[0] |= 4
		}
		hdr[0] |= byte(s.frames) << 3
		for l := range 9 {
			if 1<<l == int(s.size) {
				hdr[1] = byte(l)
			}
		}
		binary.LittleEndian.PutUint16(hdr[2:], s.start)
		binary.LittleEndian.PutUint32(hdr[4:], uint32(d.q.Desc))
		binary.LittleEndian.PutUint32(hdr[8:], uint32(d.q.Driver))
		binary.LittleEndian.PutUint32(hdr[12:], uint32(d.q.Device))
		binary.LittleEndian.PutUint16(hdr[16:], 100)
		in := append(hdr, m.ram[d.q.Desc:d.q.Desc+descTableBytes(s.size)]...)
		in = append(in, m.ram[d.q.Driver:d.q.Driver+availBytes(s.size, true)]...)
		out = append(out, append(in, m.ram[:d.heap]...))
	}
	return out
}
