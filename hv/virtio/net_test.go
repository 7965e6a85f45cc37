package virtio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakePort is a NetPort that records what the device sends and holds
// frames for it to receive.
type fakePort struct {
	mac   [6]byte
	admit func(n uint64) time.Duration // nil: everything goes ahead

	mu     sync.Mutex
	sent   [][]byte
	rxq    [][]byte
	wake   func()
	admits []uint64
}

func (p *fakePort) MAC() [6]byte { return p.mac }

func (p *fakePort) Send(f []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, bytes.Clone(f))
}

func (p *fakePort) Receive(b []byte) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.rxq) == 0 {
		return 0, false
	}
	n := copy(b, p.rxq[0])
	p.rxq = p.rxq[1:]
	return n, true
}

func (p *fakePort) Waiting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.rxq) > 0
}

func (p *fakePort) SetWake(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wake = f
}

func (p *fakePort) Admit(n uint64) time.Duration {
	p.mu.Lock()
	p.admits = append(p.admits, n)
	p.mu.Unlock()
	if p.admit == nil {
		return 0
	}
	return p.admit(n)
}

// arrive queues frame f for the guest and wakes the device, as the switch
// does.
func (p *fakePort) arrive(f []byte) {
	p.mu.Lock()
	p.rxq = append(p.rxq, bytes.Clone(f))
	w := p.wake
	p.mu.Unlock()
	if w != nil {
		w()
	}
}

// queue holds frame f for the guest without waking the device: for tests
// whose driver then writes the rings, which a woken device would be
// reading at the same time.
func (p *fakePort) queue(f []byte) {
	p.mu.Lock()
	p.rxq = append(p.rxq, bytes.Clone(f))
	p.mu.Unlock()
}

func (p *fakePort) sentFrames() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.sent...)
}

// netRig is a net device brought up by a driver: rx is queue 0, tx queue 1.
type netRig struct {
	t      testing.TB
	mem    *fakeMem
	dev    *Device
	sig    *signals
	port   *fakePort
	rx, tx *driver
	rxDone [][]byte // received frames (header first) not yet looked at
}

var testMAC = [6]byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}

func newNetRig(t testing.TB, port *fakePort, features uint64) *netRig {
	t.Helper()
	if port == nil {
		port = &fakePort{mac: testMAC}
	}
	m := newFakeMem(rigRAM)
	sig := newSignals()
	r := &netRig{t: t, mem: m, sig: sig, port: port, dev: NewDevice(NewNet(port), m, sig, Options{})}
	r.bringUp(features)
	t.Cleanup(func() {
		r.dev.SetStatus(0)
		m.checkGuards(t)
	})
	return r
}

func (r *netRig) bringUp(features uint64) {
	r.t.Helper()
	dev := r.dev
	dev.SetStatus(0)
	clear(r.mem.ram)
	r.rxDone = nil
	r.rx = newDriver(r.t, r.mem, 0x10000, 16, features)
	r.tx = newDriver(r.t, r.mem, 0x200000, 16, features)
	dev.SetStatus(StatusAcknowledge)
	dev.SetStatus(StatusAcknowledge | StatusDriver)
	dev.SetDriverFeatures(features)
	dev.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK)
	if dev.Status()&StatusFeaturesOK == 0 {
		r.t.Fatalf("features %#x refused (device offers %#x)", features, dev.DeviceFeatures())
	}
	for i, d := range []*driver{r.rx, r.tx} {
		if err := dev.SetQueue(i, d.q); err != nil {
			r.t.Fatalf("SetQueue(%d): %v", i, err)
		}
	}
	dev.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK | StatusDriverOK)
}

// netHdr is a transmit header with the given flags and gso_type, other
// fields as Linux leaves them without offloads (zero), except num_buffers,
// which Linux does not clear without MRG_RXBUF.
func netHdr(flags, gso byte) []byte {
	h := make([]byte, netHdrSize)
	h[0], h[1] = flags, gso
	binary.LittleEndian.PutUint16(h[10:], 0xbeef)
	return h
}

func ethFrame(n int, fill byte) []byte {
	f := make([]byte, n)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:], testMAC[:])
	f[12], f[13] = 0x08, 0x00
	for i := 14; i < n; i++ {
		f[i] = fill
	}
	return f
}

// send makes a transmit request of bufs available, notifies, and waits for
// its completion.
func (r *netRig) send(bufs ...[]byte) {
	r.t.Helper()
	q, _ := r.tx.add(bufs, nil)
	r.dev.Notify(netTxQueue)
	r.sig.waitUsed(r.t)
	head, n, ok := r.tx.used()
	if !ok || head != q.head || n != 0 {
		r.t.Fatalf("tx used ring: head %d len %d ok %v, want head %d len 0", head, n, ok, q.head)
	}
}

func (r *netRig) broken() error {
	r.t.Helper()
	r.sig.waitConfig(r.t)
	if r.dev.Status()&StatusDeviceNeedsReset == 0 {
		r.t.Fatalf("status %#x after a config change, want DEVICE_NEEDS_RESET", r.dev.Status())
	}
	return r.dev.Err()
}

func TestNetConfig(t *testing.T) {
	r := newNetRig(t, nil, allRing)
	want := NetFeatureMAC | NetFeatureMTU | NetFeatureStatus | ringFeatures
	if got := r.dev.DeviceFeatures(); got != want {
		t.Errorf("features %#x, want %#x", got, want)
	}
	if r.dev.Type() != TypeNet || r.dev.NumQueues() != 2 {
		t.Errorf("type %d with %d queues, want net (1) with 2", r.dev.Type(), r.dev.NumQueues())
	}
	cfg := make([]byte, netConfigSize)
	if !r.dev.ReadConfig(0, cfg) {
		t.Fatal("config read refused")
	}
	wantCfg := append(append([]byte(nil), testMAC[:]...), 1, 0, 1, 0, 0xdc, 0x05)
	if !bytes.Equal(cfg, wantCfg) {
		t.Errorf("config % x, want % x (mac, status LINK_UP, 1 pair, mtu 1500)", cfg, wantCfg)
	}
	r.dev.WriteConfig(0, []byte{1, 2, 3, 4, 5, 6})
	r.dev.ReadConfig(0, cfg)
	if !bytes.Equal(cfg, wantCfg) {
		t.Errorf("a config write changed the config to % x", cfg)
	}
	if r.dev.ReadConfig(netConfigSize-1, make([]byte, 2)) {
		t.Error("a read past the config space was allowed")
	}
}

// TestNetTransmit: a frame goes out as the guest laid it out, split over
// buffers or not, and the device hands the port its own copy.
func TestNetTransmit(t *testing.T) {
	for _, features := range []uint64{FeatureVersion1, allRing} {
		r := newNetRig(t, nil, features)
		small, big := ethFrame(60, 0x11), ethFrame(EthMaxFrame, 0x22)
		r.send(append(netHdr(0, 0), small...))
		r.send(netHdr(0, 0), big[:100], big[100:])
		r.send(append(netHdr(0, 0), big[:7]...), big[7:14])
		got := r.port.sentFrames()
		want := [][]byte{small, big, big[:14]}
		if len(got) != len(want) {
			t.Fatalf("%d frames sent, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("features %#x: frame %d: sent %d bytes, differing from the guest's %d", features, i, len(got[i]), len(want[i]))
			}
		}
		if len(r.port.admits) != 3 || r.port.admits[0] != 60 || r.port.admits[1] != EthMaxFrame {
			t.Errorf("admitted %v, want the frames' lengths", r.port.admits)
		}
	}
}

func TestNetTransmitMalformed(t *testing.T) {
	f := ethFrame(60, 0)
	tests := []struct {
		name string
		out  [][]byte
		in   []uint32
		want error
	}{
		{"writable buffer", [][]byte{append(netHdr(0, 0), f...)}, []uint32{16}, errNetTxWritable},
		{"header only", [][]byte{netHdr(0, 0)}, nil, errNetTxLength},
		{"short header", [][]byte{make([]byte, 11)}, nil, errNetTxLength},
		{"frame of 13 bytes", [][]byte{netHdr(0, 0), f[:13]}, nil, errNetTxLength},
		{"frame of 1515 bytes", [][]byte{netHdr(0, 0), ethFrame(EthMaxFrame+1, 0)}, nil, errNetTxLength},
		{"huge", [][]byte{netHdr(0, 0), make([]byte, 1<<20)}, nil, errNetTxLength},
		{"NEEDS_CSUM", [][]byte{append(netHdr(1, 0), f...)}, nil, errNetTxFlags},
		{"DATA_VALID", [][]byte{append(netHdr(2, 0), f...)}, nil, errNetTxFlags},
		{"GSO TCPv4", [][]byte{append(netHdr(0, 1), f...)}, nil, errNetTxGSO},
		{"GSO ECN", [][]byte{append(netHdr(0, 0x80), f...)}, nil, errNetTxGSO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newNetRig(t, nil, allRing)
			r.tx.add(tt.out, tt.in)
			r.dev.Notify(netTxQueue)
			if err := r.broken(); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if n := len(r.port.sentFrames()); n != 0 {
				t.Fatalf("%d frames sent by a broken request", n)
			}
		})
	}
}

// postRx makes n receive buffers of size bytes available, each a chain of
// one buffer as Linux's add_recvbuf_small makes it.
func (r *netRig) postRx(n int, size uint32) []req {
	var rs []req
	for range n {
		q, _ := r.rx.add(nil, []uint32{size})
		rs = append(rs, q)
	}
	return rs
}

// received returns the frame of the next receive completion, waiting for
// an interrupt when none is in the used ring. The used ring is read only
// after an interrupt, when the device has finished writing it.
func (r *netRig) received(posted map[uint16]Buffer) []byte {
	r.t.Helper()
	for len(r.rxDone) == 0 {
		r.sig.waitUsed(r.t)
		for {
			head, n, ok := r.rx.used()
			if !ok {
				break
			}
			b, found := posted[head]
			if !found || n < netHdrSize || n > b.Len {
				r.t.Fatalf("rx used entry head %d len %d: not a posted buffer or bad length", head, n)
			}
			r.rxDone = append(r.rxDone, r.rx.bytes(b)[:n])
		}
	}
	got := r.rxDone[0]
	r.rxDone = r.rxDone[1:]
	if h := got[:netHdrSize]; !bytes.Equal(h, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}) {
		r.t.Fatalf("rx header % x, want zeros and num_buffers 1", h)
	}
	return got[netHdrSize:]
}

// TestNetReceive: frames that wait at the port fill the guest's receive
// buffers, whether they arrive before the buffers are posted or after,
// one frame per buffer, in order.
func TestNetReceive(t *testing.T) {
	for _, features := range []uint64{FeatureVersion1, allRing} {
		r := newNetRig(t, nil, features)
		posted := map[uint16]Buffer{}
		frames := [][]byte{ethFrame(60, 1), ethFrame(EthMaxFrame, 2), ethFrame(14, 3), ethFrame(1000, 4)}
		// Before any buffer: the frame waits at the port.
		r.port.queue(frames[0])
		for _, q := range r.postRx(2, netMinRxBuffers) {
			posted[q.head] = q.in[0]
		}
		r.dev.Notify(netRxQueue)
		if got := r.received(posted); !bytes.Equal(got, frames[0]) {
			t.Fatalf("features %#x: frame 0: got %d bytes, not the frame sent", features, len(got))
		}
		// With a buffer waiting: the arrival alone wakes the device.
		r.port.arrive(frames[1])
		if got := r.received(posted); !bytes.Equal(got, frames[1]) {
			t.Fatalf("features %#x: frame 1: got %d bytes, not the frame sent", features, len(got))
		}
		// Out of buffers: frames wait until the driver posts more.
		r.port.queue(frames[2])
		r.port.queue(frames[3])
		for _, q := range r.postRx(2, 4096) {
			posted[q.head] = q.in[0]
		}
		r.dev.Notify(netRxQueue)
		for i := 2; i < 4; i++ {
			if got := r.received(posted); !bytes.Equal(got, frames[i]) {
				t.Fatalf("features %#x: frame %d: got %d bytes, not the frame sent", features, i, len(got))
			}
		}
		if r.dev.Stats().Broken != 0 {
			t.Fatalf("device broke: %v", r.dev.Err())
		}
	}
}

func TestNetReceiveMalformed(t *testing.T) {
	tests := []struct {
		name string
		out  [][]byte
		in   []uint32
		want error
	}{
		{"readable buffer", [][]byte{make([]byte, 12)}, []uint32{netMinRxBuffers}, errNetRxReadable},
		{"one byte short", nil, []uint32{netMinRxBuffers - 1}, errNetRxShort},
		{"header only", nil, []uint32{netHdrSize}, errNetRxShort},
		{"empty", nil, []uint32{0}, errNetRxShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newNetRig(t, nil, allRing)
			r.rx.add(tt.out, tt.in)
			r.port.arrive(ethFrame(60, 0))
			if err := r.broken(); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// TestNetThrottled: the port's limits hold the transmit queue, on the
// device goroutine, and never the receive queue.
func TestNetThrottled(t *testing.T) {
	var mu sync.Mutex
	budget := 2 // frames admitted before each wait
	port := &fakePort{mac: testMAC, admit: func(uint64) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if budget == 0 {
			return 50 * time.Millisecond
		}
		budget--
		return 0
	}}
	m := newFakeMem(rigRAM)
	sig := newSignals()
	dev := NewDevice(NewNet(port), m, sig, Options{})
	var slept []time.Duration
	dev.sleep = func(d time.Duration, stop <-chan struct{}) bool {
		slept = append(slept, d)
		mu.Lock()
		budget = 1
		mu.Unlock()
		return true
	}
	r := &netRig{t: t, mem: m, dev: dev, sig: sig, port: port}
	r.bringUp(allRing)
	defer dev.SetStatus(0)
	for i := range 4 {
		r.send(append(netHdr(0, 0), ethFrame(60, byte(i))...))
	}
	if len(slept) != 2 || slept[0] != 50*time.Millisecond {
		t.Fatalf("slept %v, want two waits of 50ms", slept)
	}
	if got := dev.Stats().Throttled; got != 2 {
		t.Fatalf("Throttled %d, want 2", got)
	}
	n := len(port.admits)
	posted := map[uint16]Buffer{}
	for _, q := range r.postRx(1, netMinRxBuffers) {
		posted[q.head] = q.in[0]
	}
	port.arrive(ethFrame(60, 9))
	r.received(posted)
	if len(port.admits) != n {
		t.Fatalf("a received frame was charged to the port's limits")
	}
}

// TestNetReset: after a reset the device serves again, and frames that
// waited at the port are still delivered.
func TestNetReset(t *testing.T) {
	r := newNetRig(t, nil, allRing)
	r.tx.add([][]byte{netHdr(1, 0), ethFrame(60, 0)}, nil)
	r.dev.Notify(netTxQueue)
	r.broken()
	r.port.arrive(ethFrame(60, 7))
	r.bringUp(allRing)
	posted := map[uint16]Buffer{}
	for _, q := range r.postRx(1, netMinRxBuffers) {
		posted[q.head] = q.in[0]
	}
	r.dev.Notify(netRxQueue)
	if got := r.received(posted); !bytes.Equal(got, ethFrame(60, 7)) {
		t.Fatalf("after reset: received %d bytes, not the waiting frame", len(got))
	}
	r.send(append(netHdr(0, 0), ethFrame(60, 8)...))
	if n := len(r.port.sentFrames()); n != 1 {
		t.Fatalf("%d frames sent after reset, want 1", n)
	}
}

// benchPort is a NetPort that allocates nothing: it discards what it is
// sent and always has a 1514-byte frame waiting.
type benchPort struct {
	frame [EthMaxFrame]byte
	sent  int
}

func (p *benchPort) MAC() [6]byte                 { return testMAC }
func (p *benchPort) Send(f []byte)                { p.sent += len(f) }
func (p *benchPort) Receive(b []byte) (int, bool) { return copy(b, p.frame[:]), true }
func (p *benchPort) Waiting() bool                { return true }
func (p *benchPort) SetWake(func())               {}
func (p *benchPort) Admit(uint64) time.Duration   { return 0 }

// benchNet serves one prepared request of queue qi per iteration on the
// calling goroutine, as benchRequest does for queue 0.
func benchNet(b *testing.B, qi int, out [][]byte, in []uint32) {
	be := NewNet(&benchPort{})
	m := newFakeMem(1 << 20)
	sig := newSignals()
	dev := NewDevice(be, m, sig, Options{})
	drv := newDriver(b, m, 0x1000, 16, allRing)
	w := newWorker(dev)
	q := newQueue(qi, drv.q, netQueueSize, m, allRing)
	w.queues[qi] = q
	r, _ := drv.add(out, in)
	if _, err := w.serve(q); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(EthMaxFrame)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		drv.resubmit(r.head)
		if _, err := w.serve(q); err != nil {
			b.Fatal(err)
		}
		if len(sig.used) > 0 {
			<-sig.used
		}
	}
}

func BenchmarkNetTx1514(b *testing.B) {
	benchNet(b, netTxQueue, [][]byte{append(netHdr(0, 0), ethFrame(EthMaxFrame, 1)...)}, nil)
}

func BenchmarkNetRx1514(b *testing.B) { benchNet(b, netRxQueue, nil, []uint32{netMinRxBuffers}) }

// TestNetTxHoldoff: transmit completions are moderated. Frames the driver
// adds while the device is busy are found by polling, without a
// notification, and one interrupt, after the holdoff, covers them all.
func TestNetTxHoldoff(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	port := &fakePort{mac: testMAC, admit: func(uint64) time.Duration {
		if first { // only the device goroutine calls Admit
			first = false
			close(entered)
			<-release
		}
		return 0
	}}
	r := newNetRig(t, port, allRing)
	r.tx.add([][]byte{append(netHdr(0, 0), ethFrame(60, 0)...)}, nil)
	r.dev.Notify(netTxQueue)
	<-entered // the device is inside frame 0's Admit, not reading the ring
	for i := 1; i < 4; i++ {
		if _, kick := r.tx.add([][]byte{append(netHdr(0, 0), ethFrame(60, byte(i))...)}, nil); kick {
			t.Fatalf("frame %d: the driver would notify a device that is busy", i)
		}
	}
	close(release)
	r.sig.waitUsed(t)
	for i := range 4 {
		if _, _, ok := r.tx.used(); !ok {
			t.Fatalf("%d of 4 frames completed at the interrupt", i)
		}
	}
	st := r.dev.Stats()
	if st.Notifies != 1 || st.Interrupts != 1 || len(port.sentFrames()) != 4 {
		t.Errorf("%d notifications, %d interrupts, %d frames sent; want 1, 1, 4", st.Notifies, st.Interrupts, len(port.sentFrames()))
	}
	// Idle again, the device asked for a notification: the next frame
	// is notified and sent.
	r.send(append(netHdr(0, 0), ethFrame(60, 9)...))
	if n := len(port.sentFrames()); n != 5 {
		t.Fatalf("%d frames sent after the device went idle, want 5", n)
	}
}
