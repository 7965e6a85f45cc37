package virtio

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// echo is a test backend: it reads every readable byte and fills every
// writable byte with fill, returning the writable length.
type echo struct {
	max  uint16
	fill byte
	seen [][]byte // readable bytes of each request, if keep
	keep bool
}

func (e *echo) Type() DeviceType        { return 0x7f }
func (e *echo) Features() uint64        { return 0 }
func (e *echo) QueueMax() []uint16      { return []uint16{e.max} }
func (e *echo) ConfigSize() int         { return 0 }
func (e *echo) ReadConfig(int, []byte)  {}
func (e *echo) WriteConfig(int, []byte) {}
func (e *echo) Activate(uint64)         {}
func (e *echo) Reset()                  {}

func (e *echo) Handle(_ int, c *Chain) (uint32, error) {
	var in []byte
	if e.keep {
		in = make([]byte, c.ReadLen())
	}
	var off uint64
	err := c.EachReadable(0, c.ReadLen(), func(b []byte) error {
		if e.keep {
			copy(in[off:], b)
		}
		off += uint64(len(b))
		return nil
	})
	if err != nil {
		return 0, err
	}
	if e.keep {
		e.seen = append(e.seen, in)
	}
	n := c.WriteLen()
	err = c.EachWritable(0, n, func(b []byte) error {
		for i := range b {
			b[i] = e.fill
		}
		return nil
	})
	return uint32(n), err
}

func TestRequestLayouts(t *testing.T) {
	tests := []struct {
		name     string
		features uint64
		out      [][]byte
		in       []uint32
	}{
		{"one readable", FeatureVersion1, [][]byte{[]byte("hello")}, nil},
		{"one writable", FeatureVersion1, nil, []uint32{7}},
		{"direct chain", FeatureVersion1, [][]byte{[]byte("ab"), []byte("cde")}, []uint32{3, 1}},
		{"indirect chain", allRing, [][]byte{[]byte("ab"), []byte("cde"), {}}, []uint32{3, 0, 1}},
		{"zero-length buffers", allRing, [][]byte{{}}, []uint32{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &echo{max: 8, fill: 0xee, keep: true}
			r := newRig(t, e, tt.features, 8, Options{})
			for round := range 20 { // wraps the ring several times
				n, got := r.do(tt.out, tt.in)
				var wantIn []byte
				for _, b := range tt.out {
					wantIn = append(wantIn, b...)
				}
				if diff := cmp.Diff(wantIn, e.seen[round], cmp.Comparer(bytes.Equal)); diff != "" {
					t.Fatalf("round %d: readable bytes (-want +got):\n%s", round, diff)
				}
				var total uint32
				for i, b := range got {
					total += tt.in[i]
					if want := bytes.Repeat([]byte{0xee}, int(tt.in[i])); !bytes.Equal(b, want) {
						t.Fatalf("round %d: writable buffer %d = %x, want %x", round, i, b, want)
					}
				}
				if n != total {
					t.Fatalf("round %d: used len %d, want %d", round, n, total)
				}
			}
			if st := r.dev.Status(); st&StatusDeviceNeedsReset != 0 {
				t.Fatalf("device broke: %v", r.dev.Err())
			}
		})
	}
}

// syncQueue is a device with a queue served on the test's goroutine (no
// device goroutine), for tests of the ring rules themselves.
type syncQueue struct {
	mem *fakeMem
	drv *driver
	dev *Device
	w   *worker
	q   *queue
	sig *signals
}

func newSyncQueue(t testing.TB, b Backend, features uint64, size uint16, start uint16) *syncQueue {
	m := newFakeMem(1 << 20)
	sig := newSignals()
	dev := NewDevice(b, m, sig, Options{})
	drv := newDriver(t, m, 0x1000, size, features)
	drv.availIdx, drv.lastUsed = start, start
	m.put16(drv.q.Driver+2, start)
	m.put16(drv.q.Device+2, start)
	s := drv.q
	s.NextAvail, s.AvailIdx, s.NextUsed, s.SignalledUsed = start, start, start, start
	w := newWorker(dev)
	q := newQueue(0, s, b.QueueMax()[0], m, features)
	w.queues[0] = q
	return &syncQueue{mem: m, drv: drv, dev: dev, w: w, q: q, sig: sig}
}

// TestIndirectBeyondQueueSize: an indirect table may hold more buffers than
// the size the driver chose, up to the queue's maximum (as Linux does).
func TestIndirectBeyondQueueSize(t *testing.T) {
	r := newRig(t, &echo{max: 8, fill: 3}, allRing, 1, Options{})
	out := [][]byte{{1}, {2}, {3}, {4}, {5}, {6}}
	if n, _ := r.do(out, []uint32{2, 2}); n != 4 {
		t.Fatalf("used len %d, want 4", n)
	}
	// The device may still be polling its one-entry ring (a full pass
	// looks again): the driver writes the ring while it is parked.
	r.dev.Quiesce()
	r.drv.add(append(out, []byte{7}), []uint32{2, 2}) // 9 > 8
	r.dev.Unquiesce()
	r.dev.Notify(0)
	if err := r.broken(); err == nil || !bytes.Contains([]byte(err.Error()), []byte("indirect table of 144 bytes")) {
		t.Fatalf("error %v, want an indirect table too large", err)
	}
}

func TestQueueIndexWrap(t *testing.T) {
	s := newSyncQueue(t, &echo{max: 4, fill: 1}, allRing, 4, 0xfffd)
	for i := range 8 {
		s.drv.add([][]byte{{byte(i)}}, []uint32{2})
		s.drv.add(nil, []uint32{1})
		if _, err := s.w.serve(s.q); err != nil {
			t.Fatalf("round %d (avail idx %#x): %v", i, s.drv.availIdx, err)
		}
		for k := range 2 {
			if _, _, ok := s.drv.used(); !ok {
				t.Fatalf("round %d: used entry %d missing", i, k)
			}
		}
	}
	const want = 0xfffd + 16 - 1<<16
	if s.q.NextAvail != want || s.q.NextUsed != want {
		t.Fatalf("NextAvail %#x NextUsed %#x, want %#x", s.q.NextAvail, s.q.NextUsed, want)
	}
}

func TestInterruptSuppression(t *testing.T) {
	tests := []struct {
		name      string
		features  uint64
		usedEvent uint16 // with EVENT_IDX: the driver's used_event
		noIntr    bool   // without: VIRTQ_AVAIL_F_NO_INTERRUPT
		want      bool
	}{
		{"flags: interrupt", FeatureVersion1, 0, false, true},
		{"flags: NO_INTERRUPT", FeatureVersion1, 0, true, false},
		{"event idx: first of three", allRing, 100, false, true},
		{"event idx: last of three", allRing, 102, false, true},
		{"event idx: one past", allRing, 103, false, false},
		{"event idx: already passed", allRing, 99, false, false},
		{"event idx: flags ignored", allRing, 101, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSyncQueue(t, &echo{max: 8}, tt.features, 8, 100)
			if tt.noIntr {
				s.mem.put16(s.drv.q.Driver, availFlagNoInterrupt)
			}
			for range 3 {
				s.drv.add(nil, []uint32{1})
			}
			if _, err := s.w.serve(s.q); err != nil {
				t.Fatal(err)
			}
			if tt.features&FeatureEventIdx != 0 {
				// serve decided before the test set used_event: decide
				// again over the same three entries.
				s.mem.put16(s.drv.q.Driver+4+2*8, tt.usedEvent)
				s.q.SignalledUsed = 100
				for len(s.sig.used) > 0 {
					<-s.sig.used
				}
				if err := s.w.interrupt(s.q); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(s.sig.used) > 0; got != tt.want {
				t.Fatalf("interrupt %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAvailEvent(t *testing.T) {
	s := newSyncQueue(t, &echo{max: 8}, allRing, 8, 0)
	_, kick := s.drv.add(nil, []uint32{1})
	if !kick {
		t.Fatalf("first request: driver would not notify")
	}
	if _, err := s.w.serve(s.q); err != nil {
		t.Fatal(err)
	}
	if got := s.mem.get16(s.drv.q.Device + 4 + usedElemSize*8); got != 1 {
		t.Fatalf("avail_event %d after serving one request, want 1", got)
	}
	_, kick = s.drv.add(nil, []uint32{1})
	_, kick2 := s.drv.add(nil, []uint32{1})
	if !kick || kick2 {
		t.Fatalf("kicks %v, %v: want a notification for the first new entry only", kick, kick2)
	}
}

// badRing describes one malformed ring: set writes it into a fresh queue's
// memory (the driver's queue is in d.q; the device has not served
// anything).
type badRing struct {
	name     string
	features uint64
	set      func(m *fakeMem, q QueueState)
	want     string // in the error
}

const bufGPA = 0x100000

func publish(m *fakeMem, q QueueState, heads ...uint16) {
	for i, h := range heads {
		m.put16(q.Driver+4+2*uint64(i), h)
	}
	m.put16(q.Driver+2, uint16(len(heads)))
}

var badRings = []badRing{
	{"self loop", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, bufGPA, 8, descFlagNext, 0)
		publish(m, q, 0)
	}, "longer than 8 buffers"},
	{"two-descriptor loop", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, bufGPA, 8, descFlagNext, 1)
		m.putDesc(q.Desc, 1, bufGPA, 8, descFlagNext, 0)
		publish(m, q, 0)
	}, "longer than 8 buffers"},
	{"head beyond the table", FeatureVersion1, func(m *fakeMem, q QueueState) {
		publish(m, q, q.Size)
	}, "beyond queue size"},
	{"next beyond the table", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, bufGPA, 8, descFlagNext, q.Size)
		publish(m, q, 0)
	}, "beyond its table"},
	{"buffer past the end of RAM", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, rigRAM-8, 16, 0, 0)
		publish(m, q, 0)
	}, "not RAM"},
	{"buffer wrapping past 2^64", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, ^uint64(0)-7, 16, descFlagWrite, 0)
		publish(m, q, 0)
	}, "not RAM"},
	{"huge length", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, bufGPA, 0xffffffff, descFlagWrite, 0)
		publish(m, q, 0)
	}, "not RAM"},
	{"buffer in a hole", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.holeStart, m.holeEnd = 0x200000, 0x201000
		m.putDesc(q.Desc, 0, 0x200ff0, 0x20, descFlagWrite, 0)
		publish(m, q, 0)
	}, "not RAM"},
	{"readable after writable", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, bufGPA, 8, descFlagWrite|descFlagNext, 1)
		m.putDesc(q.Desc, 1, bufGPA, 8, 0, 0)
		publish(m, q, 0)
	}, "readable buffer after"},
	{"indirect not negotiated", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.putDesc(bufGPA, 0, bufGPA+0x1000, 8, 0, 0)
		m.putDesc(q.Desc, 0, bufGPA, 16, descFlagIndirect, 0)
		publish(m, q, 0)
	}, "without INDIRECT_DESC"},
	{"indirect in indirect", allRing, func(m *fakeMem, q QueueState) {
		m.putDesc(bufGPA, 0, bufGPA, 16, descFlagIndirect, 0)
		m.putDesc(q.Desc, 0, bufGPA, 16, descFlagIndirect, 0)
		publish(m, q, 0)
	}, "inside an indirect table"},
	{"indirect with NEXT", allRing, func(m *fakeMem, q QueueState) {
		m.putDesc(bufGPA, 0, bufGPA+0x1000, 8, 0, 0)
		m.putDesc(q.Desc, 0, bufGPA, 16, descFlagIndirect|descFlagNext, 1)
		publish(m, q, 0)
	}, "with NEXT"},
	{"indirect table of 17 bytes", allRing, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, bufGPA, 17, descFlagIndirect, 0)
		publish(m, q, 0)
	}, "indirect table of"},
	{"empty indirect table", allRing, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, bufGPA, 0, descFlagIndirect, 0)
		publish(m, q, 0)
	}, "indirect table of"},
	{"indirect table larger than the queue", allRing, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, bufGPA, 9*descSize, descFlagIndirect, 0)
		publish(m, q, 0)
	}, "indirect table of"},
	{"indirect table past the end of RAM", allRing, func(m *fakeMem, q QueueState) {
		m.putDesc(q.Desc, 0, rigRAM-16, 32, descFlagIndirect, 0)
		publish(m, q, 0)
	}, "not RAM"},
	{"loop inside an indirect table", allRing, func(m *fakeMem, q QueueState) {
		m.putDesc(bufGPA, 0, bufGPA+0x1000, 8, descFlagNext, 1)
		m.putDesc(bufGPA, 1, bufGPA+0x1000, 8, descFlagNext, 0)
		m.putDesc(q.Desc, 0, bufGPA, 2*descSize, descFlagIndirect, 0)
		publish(m, q, 0)
	}, "longer than 8 buffers"},
	{"available ring ballooned out", FeatureVersion1, func(m *fakeMem, q QueueState) {
		publish(m, q, 0)
		m.holeStart, m.holeEnd = q.Driver&^0xfff, q.Driver&^0xfff+0x1000
	}, "available ring is not RAM"},
	{"avail idx jumps past the queue size", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.put16(q.Driver+2, q.Size+1)
	}, "more than the queue size"},
	{"avail idx goes backwards", FeatureVersion1, func(m *fakeMem, q QueueState) {
		m.put16(q.Driver+2, 0xffff)
	}, "more than the queue size"},
}

func TestMalformedRings(t *testing.T) {
	for _, tt := range badRings {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, &echo{max: 8}, tt.features, 8, Options{})
			tt.set(r.mem, r.drv.q)
			r.dev.Notify(0)
			err := r.broken()
			var re *RingError
			if !errors.As(err, &re) || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("error %v, want a RingError saying %q", err, tt.want)
			}
			if got := r.dev.Stats(); got.Broken != 1 || got.Requests != 0 {
				t.Fatalf("stats %+v, want Broken 1, Requests 0", got)
			}
			// A broken device ignores notifications and status writes
			// until reset.
			r.dev.Notify(0)
			r.dev.SetStatus(r.dev.Status() | StatusDriverOK)
			if r.mem.get16(r.drv.q.Device+2) != 0 {
				t.Fatalf("used idx moved on a broken device")
			}
		})
	}
}
