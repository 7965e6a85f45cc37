package virtio

import (
	"bytes"
	"encoding/gob"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clone returns a copy of m's RAM (guards included), as a snapshot holds
// the guest's memory.
func (m *fakeMem) clone() *fakeMem {
	c := newFakeMem(len(m.ram))
	copy(c.back, m.back)
	return c
}

// sleeper is a device's rate-limit wait for tests: while park is set it
// reports entering and waits for the device to be stopped (Quiesce, reset),
// as a long wait would; otherwise it moves clk by the wait and returns.
type sleeper struct {
	clk     *fakeClock
	entered chan struct{}

	mu   sync.Mutex
	park bool
}

func newSleeper(park bool) *sleeper {
	return &sleeper{clk: &fakeClock{now: testEpoch}, entered: make(chan struct{}, 16), park: park}
}

func (s *sleeper) setPark(p bool) {
	s.mu.Lock()
	s.park = p
	s.mu.Unlock()
}

func (s *sleeper) sleep(d time.Duration, stop <-chan struct{}) bool {
	s.mu.Lock()
	park := s.park
	s.mu.Unlock()
	if !park {
		s.clk.advance(d)
		return true
	}
	s.entered <- struct{}{}
	<-stop
	return false
}

func (s *sleeper) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(deadline):
		t.Fatalf("the device never waited for the rate limiter")
	}
}

// waitRequests waits until dev has completed n requests.
func waitRequests(t testing.TB, dev *Device, n uint64) {
	t.Helper()
	start := time.Now()
	for dev.Stats().Requests < n {
		if time.Since(start) > deadline {
			t.Fatalf("%d requests completed within %v, want %d", dev.Stats().Requests, deadline, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// roundTrip saves a quiesced device, gob-encodes the state, decodes it,
// restores it into to (quiescing it first), saves that again, and checks
// that the two encodings are byte-identical and the states equal.
func roundTrip(t *testing.T, from, to *Device) DeviceState {
	t.Helper()
	st, err := from.Save()
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	enc1 := gobBytes(t, st)
	var dec DeviceState
	if err := gob.NewDecoder(bytes.NewReader(enc1)).Decode(&dec); err != nil {
		t.Fatal(err)
	}
	to.Quiesce()
	if err := to.Restore(dec); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	st2, err := to.Save()
	if err != nil {
		t.Fatalf("Save after Restore: %v", err)
	}
	if d := cmp.Diff(st, st2); d != "" {
		t.Fatalf("state after restore differs (-saved +restored):\n%s", d)
	}
	if enc2 := gobBytes(t, st2); !bytes.Equal(enc1, enc2) {
		t.Fatalf("encodings differ after restore")
	}
	return st
}

func gobBytes(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func copyFile(t *testing.T, from string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "copy.img")
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestDeviceRoundTrip saves each backend's device mid-stream (requests
// completed, one held back by the rate limiter, more made available and
// notified while quiesced, EVENT_IDX on), restores it over a copy of the
// guest's memory, and lets both go on: they serve the pending requests
// alike, to the same used ring and the same bytes.
func TestDeviceRoundTrip(t *testing.T) {
	t.Run("block", testBlockRoundTrip)
	t.Run("rng", testRngRoundTrip)
	t.Run("net", testNetRoundTrip)
}

func testBlockRoundTrip(t *testing.T) {
	limits := Limits{OpsPerSec: 1, OpsBurst: 3}
	path := newImage(t)
	b, err := OpenBlock(path, BlockOptions{ID: "disk0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sl := newSleeper(true)
	m := newFakeMem(rigRAM)
	r := &rig{t: t, mem: m, sig: newSignals()}
	r.dev = NewDevice(b, m, r.sig, Options{Limits: limits, Clock: sl.clk})
	r.dev.sleep = sl.sleep
	r.bringUp(allRing, 16)
	defer r.dev.SetStatus(0)

	// Three requests take the burst.
	r.do([][]byte{blkHeader(blockReqIn, 1)}, []uint32{SectorSize, 1})
	r.do([][]byte{blkHeader(blockReqOut, 2), bytes.Repeat([]byte{0xee}, SectorSize)}, []uint32{1})
	r.do([][]byte{blkHeader(blockReqGetID, 0)}, []uint32{blockIDSize, 1})
	// The fourth waits for a token: Quiesce puts it back.
	r.drv.add([][]byte{blkHeader(blockReqIn, 2)}, []uint32{SectorSize, 1})
	r.dev.Notify(0)
	sl.waitEntered(t)
	r.dev.Quiesce()
	// Two more, notified while quiesced.
	r.drv.add([][]byte{blkHeader(blockReqOut, 3), bytes.Repeat([]byte{0x33}, 2*SectorSize)}, []uint32{1})
	r.drv.add([][]byte{blkHeader(blockReqIn, 3)}, []uint32{SectorSize, SectorSize, 1})
	r.dev.Notify(0)

	m2 := m.clone()
	path2 := copyFile(t, path)
	b2, err := OpenBlock(path2, BlockOptions{ID: "disk0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	sl2 := newSleeper(false)
	dev2 := NewDevice(b2, m2, newSignals(), Options{Limits: limits, Clock: sl2.clk})
	dev2.sleep = sl2.sleep
	defer dev2.SetStatus(0)
	st := roundTrip(t, r.dev, dev2)
	q := st.Queues[0]
	if q.NextAvail != 3 || q.AvailIdx != 4 || q.NextUsed != 3 || !q.Notified {
		t.Fatalf("saved queue %+v: want the throttled request put back (next avail 3, avail idx 4 read, 3 used) and a notification", q)
	}
	if st.Block != (BlockState{Capacity: testSectors, ID: b.id}) {
		t.Fatalf("block state %+v", st.Block)
	}

	sl.setPark(false)
	r.dev.Unquiesce()
	dev2.Unquiesce()
	waitRequests(t, r.dev, 6)
	waitRequests(t, dev2, 3)
	r.dev.Quiesce()
	dev2.Quiesce()
	if !bytes.Equal(m.ram, m2.ram) {
		t.Fatalf("guest memory differs after both served the pending requests")
	}
	if used := m.get16(r.drv.q.Device + 2); used != 6 {
		t.Fatalf("used idx %d, want 6", used)
	}
	i1, _ := os.ReadFile(path)
	i2, _ := os.ReadFile(path2)
	if !bytes.Equal(i1, i2) || !bytes.Equal(i1[3*SectorSize:4*SectorSize], bytes.Repeat([]byte{0x33}, SectorSize)) {
		t.Fatalf("images differ, or the pending write is missing")
	}
}

func testRngRoundTrip(t *testing.T) {
	limits := Limits{OpsPerSec: 1, OpsBurst: 2}
	sl := newSleeper(true)
	m := newFakeMem(rigRAM)
	r := &rig{t: t, mem: m, sig: newSignals()}
	r.dev = NewDevice(Rng{}, m, r.sig, Options{Limits: limits, Clock: sl.clk})
	r.dev.sleep = sl.sleep
	r.bringUp(allRing, 8)
	defer r.dev.SetStatus(0)
	r.do(nil, []uint32{16})
	r.do(nil, []uint32{32})
	r.drv.add(nil, []uint32{8})
	r.dev.Notify(0)
	sl.waitEntered(t)
	r.dev.Quiesce()
	r.drv.add(nil, []uint32{4, 4})
	r.dev.Notify(0)

	m2 := m.clone()
	sl2 := newSleeper(false)
	dev2 := NewDevice(Rng{}, m2, newSignals(), Options{Limits: limits, Clock: sl2.clk})
	dev2.sleep = sl2.sleep
	defer dev2.SetStatus(0)
	st := roundTrip(t, r.dev, dev2)
	if q := st.Queues[0]; q.NextAvail != 2 || q.NextUsed != 2 || !q.Notified {
		t.Fatalf("saved queue %+v", q)
	}
	sl.setPark(false)
	r.dev.Unquiesce()
	dev2.Unquiesce()
	waitRequests(t, r.dev, 4)
	waitRequests(t, dev2, 2)
	r.dev.Quiesce()
	dev2.Quiesce()
	// The bytes are random; the used rings (heads and lengths) are the
	// same, and so is the rest of the rings' memory.
	used := r.drv.q.Device
	n := usedBytes(8, true)
	if !bytes.Equal(m.ram[used:used+n], m2.ram[used:used+n]) {
		t.Fatalf("used rings differ")
	}
	if got := m.get16(used + 2); got != 4 {
		t.Fatalf("used idx %d, want 4", got)
	}
}

func testNetRoundTrip(t *testing.T) {
	var mu sync.Mutex
	budget := 2
	limited := true
	admit := func(uint64) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		if !limited {
			return 0
		}
		if budget == 0 {
			return time.Second
		}
		budget--
		return 0
	}
	port := &fakePort{mac: testMAC, admit: admit}
	n := NewNet(port)
	n.txHoldoff = time.Hour // held at Quiesce whatever the machine's speed
	sl := newSleeper(true)
	m := newFakeMem(rigRAM)
	r := &netRig{t: t, mem: m, sig: newSignals(), port: port}
	r.dev = NewDevice(n, m, r.sig, Options{})
	r.dev.sleep = sl.sleep
	r.bringUp(allRing)
	defer r.dev.SetStatus(0)

	// Two frames sent, one received.
	for i := range 2 {
		r.tx.add([][]byte{append(netHdr(0, 0), ethFrame(60, byte(i))...)}, nil)
	}
	r.dev.Notify(netTxQueue)
	waitRequests(t, r.dev, 2)
	posted := map[uint16]Buffer{}
	for _, q := range r.postRx(3, netMinRxBuffers) {
		posted[q.head] = q.in[0]
	}
	port.arrive(ethFrame(70, 0x70))
	r.received(posted)
	// The third frame waits for the port's limits.
	r.tx.add([][]byte{append(netHdr(0, 0), ethFrame(80, 3)...)}, nil)
	r.dev.Notify(netTxQueue)
	sl.waitEntered(t)
	r.dev.Quiesce()
	r.tx.add([][]byte{append(netHdr(0, 0), ethFrame(90, 4)...)}, nil)
	r.dev.Notify(netTxQueue)
	port.queue(ethFrame(100, 0x99)) // waiting at the port: Save drops it

	m2 := m.clone()
	port2 := &fakePort{mac: testMAC}
	n2 := NewNet(port2)
	n2.txHoldoff = time.Hour
	dev2 := NewDevice(n2, m2, newSignals(), Options{})
	defer dev2.SetStatus(0)
	st := roundTrip(t, r.dev, dev2)
	if n.SaveDrops() != 1 || port.Waiting() {
		t.Fatalf("Save dropped %d frames, want the 1 waiting", n.SaveDrops())
	}
	if st.Net != (NetState{MAC: testMAC, LinkUp: true}) {
		t.Fatalf("net state %+v", st.Net)
	}
	tx := st.Queues[netTxQueue]
	if tx.NextAvail != 2 || tx.AvailIdx != 3 || tx.NextUsed != 2 || !tx.Held || !tx.Notified {
		t.Fatalf("saved transmit queue %+v: want frame 3 put back, the interrupt held and a notification", tx)
	}
	mu.Lock()
	limited = false
	mu.Unlock()
	sl.setPark(false)
	r.dev.Unquiesce()
	dev2.Unquiesce()
	waitRequests(t, r.dev, 5)
	waitRequests(t, dev2, 2)
	port.arrive(ethFrame(110, 0x11))
	port2.arrive(ethFrame(110, 0x11))
	waitRequests(t, r.dev, 6)
	waitRequests(t, dev2, 3)
	r.dev.Quiesce()
	dev2.Quiesce()
	if !bytes.Equal(m.ram, m2.ram) {
		t.Fatalf("guest memory differs after both served the pending requests")
	}
	sent, sent2 := port.sentFrames(), port2.sentFrames()
	if len(sent) != 4 || len(sent2) != 2 || !bytes.Equal(sent[2], sent2[0]) || !bytes.Equal(sent[3], sent2[1]) {
		t.Fatalf("frames sent after the save differ: %d and %d", len(sent)-2, len(sent2))
	}
}

// TestQuiesceStopsMemoryAccess: Quiesce waits for the request in progress,
// and once it returns the device touches no guest memory and signals
// nothing, whatever is notified; Unquiesce serves what was notified.
func TestQuiesceStopsMemoryAccess(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	gate := &gated{echo: echo{max: 8, fill: 5}, entered: entered, release: release}
	r := newRig(t, gate, allRing, 8, Options{})
	r.drv.add(nil, []uint32{4})
	r.dev.Notify(0)
	<-entered // the device is inside the request
	w := r.dev.run.Load()
	quiet := make(chan struct{})
	go func() {
		r.dev.Quiesce()
		close(quiet)
	}()
	close(release)
	<-quiet
	select {
	case <-w.done:
	default:
		t.Fatalf("the device goroutine runs on after Quiesce returned")
	}
	if got := r.mem.get16(r.drv.q.Device + 2); got != 1 {
		t.Fatalf("used idx %d after Quiesce, want the request in progress completed", got)
	}
	for len(r.sig.used) > 0 {
		<-r.sig.used
	}
	r.mem.mu.Lock()
	r.mem.record = true
	r.mem.mu.Unlock()
	before := r.mem.slices.Load()
	for range 3 {
		r.drv.add(nil, []uint32{4})
		r.dev.Notify(0)
	}
	if _, err := r.dev.Save(); err != nil {
		t.Fatal(err)
	}
	r.dev.Notify(0)
	if n := r.mem.slices.Load() - before; n != 0 || len(r.mem.written) != 0 || len(r.sig.used) != 0 || gate.handled() != 1 {
		t.Fatalf("while quiesced: %d guest memory accesses, %d writes, %d interrupts, %d requests", n, len(r.mem.written), len(r.sig.used), gate.handled())
	}
	r.dev.Unquiesce()
	waitRequests(t, r.dev, 4)
	r.dev.Quiesce() // the device may still be deciding on the interrupt
	for i := range 4 {
		if _, _, ok := r.drv.used(); !ok {
			t.Fatalf("%d of 4 requests completed after Unquiesce", i)
		}
	}
}

// gated is echo whose first request waits for release.
type gated struct {
	echo
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (g *gated) Handle(q int, c *Chain) (uint32, error) {
	g.mu.Lock()
	g.n++
	first := g.n == 1
	g.mu.Unlock()
	if first {
		close(g.entered)
		<-g.release
	}
	return g.echo.Handle(q, c)
}

func (g *gated) handled() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// TestQuiesceThrottled: a request the rate limiter holds back when the
// device is quiesced is not consumed, and is served after Unquiesce
// without a new notification.
func TestQuiesceThrottled(t *testing.T) {
	sl := newSleeper(true)
	m := newFakeMem(rigRAM)
	r := &rig{t: t, mem: m, sig: newSignals()}
	r.dev = NewDevice(&echo{max: 8, fill: 1}, m, r.sig, Options{Limits: Limits{OpsPerSec: 1, OpsBurst: 1}, Clock: sl.clk})
	r.dev.sleep = sl.sleep
	r.bringUp(allRing, 8)
	defer r.dev.SetStatus(0)
	r.do(nil, []uint32{1})
	want, _ := r.drv.add(nil, []uint32{2})
	r.dev.Notify(0)
	sl.waitEntered(t)
	r.dev.Quiesce()
	st, err := r.dev.Save()
	if err != nil {
		t.Fatal(err)
	}
	if q := st.Queues[0]; q.NextAvail != 1 || q.NextUsed != 1 || !q.Notified {
		t.Fatalf("queue %+v after Quiesce: want the throttled request put back and still notified", q)
	}
	sl.setPark(false)
	r.dev.Unquiesce()
	r.sig.waitUsed(t)
	head, n, ok := r.drv.used()
	if !ok || head != want.head || n != 2 {
		t.Fatalf("used: head %d len %d ok %v, want head %d len 2", head, n, ok, want.head)
	}
}

// TestQuiesceHoldoff: an interrupt held back by net's holdoff when the
// device is quiesced is decided one holdoff after Unquiesce.
func TestQuiesceHoldoff(t *testing.T) {
	port := &fakePort{mac: testMAC}
	n := NewNet(port)
	n.txHoldoff = time.Hour
	m := newFakeMem(rigRAM)
	r := &netRig{t: t, mem: m, sig: newSignals(), port: port}
	r.dev = NewDevice(n, m, r.sig, Options{})
	r.bringUp(allRing)
	defer r.dev.SetStatus(0)
	r.tx.add([][]byte{append(netHdr(0, 0), ethFrame(60, 1)...)}, nil)
	r.dev.Notify(netTxQueue)
	waitRequests(t, r.dev, 1)
	r.dev.Quiesce()
	st, err := r.dev.Save()
	if err != nil {
		t.Fatal(err)
	}
	if q := st.Queues[netTxQueue]; !q.Held || q.SignalledUsed != 0 || q.NextUsed != 1 {
		t.Fatalf("transmit queue %+v: want its interrupt held", q)
	}
	if len(r.sig.used) != 0 {
		t.Fatalf("interrupt raised before the holdoff")
	}
	n.txHoldoff = time.Millisecond
	r.dev.Unquiesce()
	r.sig.waitUsed(t)
}

// TestQuiesceReset: a reset while quiesced resets the device, which stays
// quiesced: brought up again, it serves nothing until Unquiesce.
func TestQuiesceReset(t *testing.T) {
	r := newRig(t, &echo{max: 8, fill: 2}, allRing, 8, Options{})
	r.do(nil, []uint32{1})
	r.dev.Quiesce()
	r.dev.SetStatus(0)
	if r.dev.Status() != 0 || !r.dev.Quiesced() {
		t.Fatalf("status %#x, quiesced %v after a reset while quiesced", r.dev.Status(), r.dev.Quiesced())
	}
	if q, _ := r.dev.Queue(0); q.Ready || q.NextAvail != 0 {
		t.Fatalf("queue %+v after reset", q)
	}
	r.bringUp(allRing, 8)
	before := r.mem.slices.Load()
	r.drv.add(nil, []uint32{3})
	r.dev.Notify(0)
	st, err := r.dev.Save()
	if err != nil {
		t.Fatal(err)
	}
	if q := st.Queues[0]; q.NextAvail != 0 || !q.Notified {
		t.Fatalf("queue %+v: want the new request not served and notified", q)
	}
	if got := r.mem.slices.Load() - before; got != 0 {
		t.Fatalf("%d guest memory accesses by a quiesced device brought up again", got)
	}
	r.dev.Unquiesce()
	r.sig.waitUsed(t)
	if _, n, ok := r.drv.used(); !ok || n != 3 {
		t.Fatalf("used len %d ok %v, want 3", n, ok)
	}
}

// TestSaveNeedsQuiesce: Save and Restore refuse a running device.
func TestSaveNeedsQuiesce(t *testing.T) {
	r := newRig(t, Rng{}, allRing, 8, Options{})
	if _, err := r.dev.Save(); err != ErrNotQuiesced {
		t.Fatalf("Save of a running device: %v", err)
	}
	if err := r.dev.Restore(DeviceState{}); err != ErrNotQuiesced {
		t.Fatalf("Restore of a running device: %v", err)
	}
}

// TestDeviceRestoreRefuses: each kind of value a device could not have
// produced is refused with an error naming it, and the device is left as
// it was.
func TestDeviceRestoreRefuses(t *testing.T) {
	b, err := OpenBlock(newImage(t), BlockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := newRig(t, b, allRing, 16, Options{})
	r.do([][]byte{blkHeader(blockReqIn, 1)}, []uint32{SectorSize, 1})
	r.dev.Quiesce()
	good, err := r.dev.Save()
	if err != nil {
		t.Fatal(err)
	}
	ready := StatusAcknowledge | StatusDriver | StatusFeaturesOK
	tests := []struct {
		name   string
		change func(st *DeviceState)
		want   string
	}{
		{"type", func(st *DeviceState) { st.Type = TypeNet }, "device type"},
		{"unknown status bit", func(st *DeviceState) { st.Status |= 0x10 }, "bits no device sets"},
		{"status order", func(st *DeviceState) { st.Status = StatusAcknowledge | StatusDriverOK }, "predecessor"},
		{"needs reset without error", func(st *DeviceState) { st.Status |= StatusDeviceNeedsReset }, "DEVICE_NEEDS_RESET"},
		{"error without needs reset", func(st *DeviceState) { st.Err = "x" }, "DEVICE_NEEDS_RESET"},
		{"broken before features", func(st *DeviceState) {
			*st = DeviceState{Type: TypeBlock, Status: StatusAcknowledge | StatusDeviceNeedsReset, Err: "x", Queues: []QueueState{{Size: 256}}, Block: good.Block}
		}, "FEATURES_OK"},
		{"features without DRIVER", func(st *DeviceState) {
			*st = DeviceState{Type: TypeBlock, DriverFeatures: 1, Queues: []QueueState{{Size: 256}}, Block: good.Block}
		}, "without DRIVER"},
		{"features not offered", func(st *DeviceState) { st.DriverFeatures |= 1 << 40 }, "beyond the device's"},
		{"features without VERSION_1", func(st *DeviceState) { st.DriverFeatures &^= FeatureVersion1 }, "VERSION_1"},
		{"config generation", func(st *DeviceState) { st.ConfigGeneration = 1 }, "config generation"},
		{"queue count", func(st *DeviceState) { st.Queues = append(st.Queues, st.Queues[0]) }, "queues"},
		{"queue size", func(st *DeviceState) { st.Queues[0].Size = 12 }, "power of two"},
		{"queue size beyond maximum", func(st *DeviceState) { st.Queues[0].Size = 512 }, "power of two"},
		{"misaligned descriptors", func(st *DeviceState) { st.Queues[0].Desc += 8 }, "misaligned"},
		{"misaligned used ring", func(st *DeviceState) { st.Queues[0].Device += 2 }, "misaligned"},
		{"ring outside RAM", func(st *DeviceState) { st.Queues[0].Device = rigRAM - 16 }, "not RAM"},
		{"ring wrapping", func(st *DeviceState) { st.Queues[0].Desc = ^uint64(0) &^ 15 }, "not RAM"},
		{"ready before FEATURES_OK", func(st *DeviceState) {
			st.Status = StatusAcknowledge | StatusDriver
			st.Queues[0].NextAvail, st.Queues[0].AvailIdx, st.Queues[0].NextUsed, st.Queues[0].SignalledUsed = 0, 0, 0, 0
		}, "before FEATURES_OK"},
		{"positions before DRIVER_OK", func(st *DeviceState) { st.Status = ready }, "never served"},
		{"positions on a queue not ready", func(st *DeviceState) { st.Queues[0].Ready = false }, "never served"},
		{"avail idx too far ahead", func(st *DeviceState) { st.Queues[0].AvailIdx += 17 }, "more than the size"},
		{"avail idx behind", func(st *DeviceState) { st.Queues[0].AvailIdx-- }, "more than the size"},
		{"request taken, not completed", func(st *DeviceState) { st.Queues[0].NextAvail++; st.Queues[0].AvailIdx++ }, "completed every request"},
		{"broken with two requests open", func(st *DeviceState) {
			st.Status |= StatusDeviceNeedsReset
			st.Err = "x"
			st.Queues[0].NextAvail += 2
			st.Queues[0].AvailIdx += 2
		}, "at most the request"},
		{"interrupt not decided", func(st *DeviceState) { st.Queues[0].SignalledUsed-- }, "none held"},
		{"held without holdoff", func(st *DeviceState) { st.Queues[0].Held = true }, "without a holdoff"},
		{"net state on a disk", func(st *DeviceState) { st.Net.LinkUp = true }, "not a net device"},
		{"capacity", func(st *DeviceState) { st.Block.Capacity++ }, "capacity"},
		{"read-only", func(st *DeviceState) { st.Block.ReadOnly = true }, "read-only"},
		{"serial", func(st *DeviceState) { st.Block.ID[0] = 'x' }, "serial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := good
			st.Queues = append([]QueueState(nil), good.Queues...)
			tt.change(&st)
			err := r.dev.Restore(st)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore: %v, want an error about %q", err, tt.want)
			}
			after, err := r.dev.Save()
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(good, after); d != "" {
				t.Fatalf("refused Restore changed the device:\n%s", d)
			}
		})
	}
	// The good state is taken, and a broken device's state too.
	broken := good
	broken.Queues = append([]QueueState(nil), good.Queues...)
	broken.Status |= StatusDeviceNeedsReset
	broken.Err = "virtio: queue 0: chain head 99 beyond queue size 16"
	broken.Queues[0].NextAvail++
	broken.Queues[0].AvailIdx++
	if err := r.dev.Restore(broken); err != nil {
		t.Fatalf("Restore of a broken device's state: %v", err)
	}
	if r.dev.Err() == nil || r.dev.Err().Error() != broken.Err {
		t.Fatalf("restored error %v, want %q", r.dev.Err(), broken.Err)
	}
	if err := r.dev.Restore(good); err != nil {
		t.Fatalf("Restore(good): %v", err)
	}
}

// TestNetRestoreRefuses: a net state for another address, or with the
// link down, is refused.
func TestNetRestoreRefuses(t *testing.T) {
	r := newNetRig(t, nil, allRing)
	r.dev.Quiesce()
	good, err := r.dev.Save()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		change func(*NetState)
		want   string
	}{
		{"mac", func(n *NetState) { n.MAC[5]++ }, "MAC"},
		{"link down", func(n *NetState) { n.LinkUp = false }, "link down"},
	} {
		st := good
		st.Queues = append([]QueueState(nil), good.Queues...)
		tt.change(&st.Net)
		if err := r.dev.Restore(st); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Restore: %v, want an error about %q", tt.name, err, tt.want)
		}
	}
	held := good
	held.Queues = append([]QueueState(nil), good.Queues...)
	held.Queues[netRxQueue].Held = true
	if err := r.dev.Restore(held); err == nil || !strings.Contains(err.Error(), "without a holdoff") {
		t.Errorf("held receive queue: Restore: %v", err)
	}
}

// echo keeps no state beyond the device's.
func (e *echo) saveState(*DeviceState)           {}
func (e *echo) checkState(st *DeviceState) error { return onlyBackend(st, e.Type()) }

// cloneOn returns a copy of the driver over m (a copy of its memory).
func (d *driver) cloneOn(m *fakeMem) *driver {
	c := *d
	c.mem = m
	c.chainLen = append([]int(nil), d.chainLen...)
	return &c
}

// mmioRigOn is newMMIORig over memory m and the image at path.
func mmioRigOn(t *testing.T, m *fakeMem, path string) *mmioRig {
	t.Helper()
	b, err := OpenBlock(path, BlockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := &mmioRig{t: t, mem: m, irq: make(chan struct{}, 1)}
	r.mmio = NewMMIO(b, m, Options{}, func() {
		select {
		case r.irq <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() {
		r.w(mmioStatus, 0)
		b.Close()
	})
	return r
}

// TestMMIORoundTrip saves a virtio-mmio block device with a request
// completed and its interrupt not yet acknowledged, selectors set, and a
// request notified while quiesced; the restored copy reads the same
// registers and serves the pending request alike.
func TestMMIORoundTrip(t *testing.T) {
	path := newImage(t)
	r := mmioRigOn(t, newFakeMem(rigRAM), path)
	feat := allRing | BlockFeatureFlush
	r.probe(feat)
	drv := newDriver(t, r.mem, 0x10000, 16, feat)
	r.setupQueue(drv.q)
	r.w(mmioStatus, uint32(StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK))
	drv.add([][]byte{blkHeader(blockReqIn, 3)}, []uint32{SectorSize, 1})
	r.w(mmioQueueNotify, 0)
	r.waitIRQ()
	r.w(mmioDeviceFeaturesSel, 1)
	r.w(mmioDriverFeaturesSel, 7)
	r.w(mmioQueueSel, 3)
	r.mmio.Device().Quiesce()
	drv.add([][]byte{blkHeader(blockReqOut, 4), bytes.Repeat([]byte{0x44}, SectorSize)}, []uint32{1})
	r.w(mmioQueueNotify, 0)

	st, err := r.mmio.Save()
	if err != nil {
		t.Fatal(err)
	}
	enc := gobBytes(t, st)
	var dec MMIOState
	if err := gob.NewDecoder(bytes.NewReader(enc)).Decode(&dec); err != nil {
		t.Fatal(err)
	}
	path2 := copyFile(t, path)
	r2 := mmioRigOn(t, r.mem.clone(), path2)
	drv2 := drv.cloneOn(r2.mem)
	r2.mmio.Device().Quiesce()
	if err := r2.mmio.Restore(dec); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	st2, err := r2.mmio.Save()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(st, st2); d != "" {
		t.Fatalf("state after restore differs (-saved +restored):\n%s", d)
	}
	if !bytes.Equal(enc, gobBytes(t, st2)) {
		t.Fatalf("encodings differ after restore")
	}
	if st.InterruptStatus != InterruptUsedBuffer || st.DeviceFeaturesSel != 1 || st.DriverFeaturesSel != 7 || st.QueueSel != 3 {
		t.Fatalf("saved registers %+v", st)
	}
	for _, off := range []uint64{mmioInterruptStatus, mmioStatus, mmioDeviceFeatures, mmioQueueNumMax, mmioQueueReady, mmioConfig} {
		if a, b := r.r(off), r2.r(off); a != b {
			t.Errorf("register %#x: %#x, restored %#x", off, a, b)
		}
	}
	for _, x := range []*mmioRig{r, r2} {
		x.mmio.Device().Unquiesce()
		waitRequests(t, x.mmio.Device(), 1) // the pending write (the restored device's first)
	}
	waitRequests(t, r.mmio.Device(), 2)
	for i, x := range []*mmioRig{r, r2} {
		x.w(mmioInterruptACK, InterruptUsedBuffer)
		x.w(mmioQueueSel, 0)
		d := []*driver{drv, drv2}[i]
		x.mmio.Device().Quiesce()
		d.add([][]byte{blkHeader(blockReqIn, 4)}, []uint32{SectorSize, 1})
		x.mmio.Device().Unquiesce()
		x.w(mmioQueueNotify, 0)
	}
	waitRequests(t, r.mmio.Device(), 3)
	waitRequests(t, r2.mmio.Device(), 2)
	r.mmio.Device().Quiesce()
	r2.mmio.Device().Quiesce()
	if !bytes.Equal(r.mem.ram, r2.mem.ram) {
		t.Fatalf("guest memory differs after both went on")
	}
	if a, b := r.r(mmioInterruptStatus), r2.r(mmioInterruptStatus); a != b {
		t.Fatalf("InterruptStatus %#x, restored %#x", a, b)
	}
	if _, _, ok := drv.used(); !ok {
		t.Fatalf("no used entry")
	}
}

// TestMMIORestoreRefuses: interrupt bits the transport never sets are
// refused, and so is a bad device state, with nothing changed.
func TestMMIORestoreRefuses(t *testing.T) {
	r := newMMIORig(t)
	r.probe(allRing)
	r.w(mmioQueueSel, 5)
	r.mmio.Device().Quiesce()
	good, err := r.mmio.Save()
	if err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.InterruptStatus = 4
	bad.QueueSel = 0
	if err := r.mmio.Restore(bad); err == nil || !strings.Contains(err.Error(), "interrupt status") {
		t.Fatalf("Restore: %v, want interrupt status refused", err)
	}
	bad = good
	bad.Device.Status |= 0x10
	bad.QueueSel = 0
	if err := r.mmio.Restore(bad); err == nil {
		t.Fatalf("Restore of a bad device state succeeded")
	}
	if after, _ := r.mmio.Save(); after.QueueSel != 5 {
		t.Fatalf("a refused Restore changed QueueSel to %d", after.QueueSel)
	}
}

// TestHcallRoundTrip saves an rng device on the hypercall transport with
// interrupt bits not yet taken and a request notified while quiesced; the
// restored copy has the same bits and serves the request alike.
func TestHcallRoundTrip(t *testing.T) {
	m := newFakeMem(rigRAM)
	kicks := make(chan struct{}, 16)
	kick := func() {
		select {
		case kicks <- struct{}{}:
		default:
		}
	}
	h := NewHcall(Rng{}, m, Options{}, kick)
	defer h.SetStatus(0)
	drv := newDriver(t, m, 0x10000, 8, allRing)
	h.SetStatus(StatusAcknowledge)
	h.SetStatus(StatusAcknowledge | StatusDriver)
	h.Device().SetDriverFeatures(allRing)
	h.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK)
	if err := h.SetupQueue(0, 8, drv.q.Desc, drv.q.Driver, drv.q.Device); err != nil {
		t.Fatal(err)
	}
	if st := h.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK | StatusDriverOK); st&StatusDriverOK == 0 {
		t.Fatalf("status %#x", st)
	}
	drv.add(nil, []uint32{16})
	h.Device().Notify(0)
	waitRequests(t, h.Device(), 1)
	h.Device().Quiesce()
	drv.add(nil, []uint32{8})
	h.Device().Notify(0)

	st, err := h.Save()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != InterruptUsedBuffer {
		t.Fatalf("pending %#x, want the used-buffer bit", st.Pending)
	}
	enc := gobBytes(t, st)
	var dec HcallState
	if err := gob.NewDecoder(bytes.NewReader(enc)).Decode(&dec); err != nil {
		t.Fatal(err)
	}
	m2 := m.clone()
	h2 := NewHcall(Rng{}, m2, Options{}, kick)
	defer h2.SetStatus(0)
	h2.Device().Quiesce()
	if err := h2.Restore(dec); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	st2, err := h2.Save()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(st, st2); d != "" {
		t.Fatalf("state after restore differs (-saved +restored):\n%s", d)
	}
	if !bytes.Equal(enc, gobBytes(t, st2)) {
		t.Fatalf("encodings differ after restore")
	}
	if a, b := h.Info(), h2.Info(); a != b {
		t.Fatalf("virtio_info %+v, restored %+v", a, b)
	}
	if a, b := h.TakeInterrupts(), h2.TakeInterrupts(); a != b || a != InterruptUsedBuffer {
		t.Fatalf("pending bits %#x, restored %#x", a, b)
	}
	h.Device().Unquiesce()
	h2.Device().Unquiesce()
	waitRequests(t, h.Device(), 2)
	waitRequests(t, h2.Device(), 1)
	h.Device().Quiesce()
	h2.Device().Quiesce()
	used := drv.q.Device
	n := usedBytes(8, true)
	if !bytes.Equal(m.ram[used:used+n], m2.ram[used:used+n]) {
		t.Fatalf("used rings differ")
	}
	bad := st
	bad.Pending = 8
	if err := h2.Restore(bad); err == nil || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("Restore with pending %#x: %v", bad.Pending, err)
	}
}

// BenchmarkQuiesceUnquiesce is a pause's cost per idle running device:
// ending its goroutine and starting another.
func BenchmarkQuiesceUnquiesce(b *testing.B) {
	r := newRig(b, Rng{}, allRing, 8, Options{})
	for b.Loop() {
		r.dev.Quiesce()
		r.dev.Unquiesce()
	}
}

// BenchmarkSaveRestore is the cost of saving a quiesced block device,
// encoding the state with gob, decoding it and restoring it; it reports
// the encoding's size.
func BenchmarkSaveRestore(b *testing.B) {
	blk, err := OpenBlock(newImage(b), BlockOptions{ID: "disk0"})
	if err != nil {
		b.Fatal(err)
	}
	defer blk.Close()
	r := newRig(b, blk, allRing, 16, Options{})
	r.dev.Quiesce()
	var size int
	for b.Loop() {
		st, err := r.dev.Save()
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(st); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
		var dec DeviceState
		if err := gob.NewDecoder(&buf).Decode(&dec); err != nil {
			b.Fatal(err)
		}
		if err := r.dev.Restore(dec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "state-bytes")
}
