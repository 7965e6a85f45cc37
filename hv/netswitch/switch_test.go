package netswitch

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/virtio"
)

var broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// frame is an Ethernet frame from src to dst with a payload of n bytes of
// fill.
func frame(dst, src MAC, n int, fill byte) []byte {
	f := make([]byte, 14+n)
	copy(f[0:], dst[:])
	copy(f[6:], src[:])
	f[12], f[13] = 0x88, 0xb5 // IEEE local experimental EtherType
	for i := range n {
		f[14+i] = fill
	}
	return f
}

func mac(last byte) MAC { return MAC{0x02, 0, 0, 0, 0, last} }

// attach plugs a port with MAC mac(last) into segment seg of s.
func attach(t *testing.T, s *Switch, seg string, last byte) *Port {
	t.Helper()
	p, err := s.Attach(seg, PortConfig{Owner: fmt.Sprintf("%s/p%d", seg, last), MAC: mac(last)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// drain takes every frame waiting at p.
func drain(p *Port) [][]byte {
	var out [][]byte
	for {
		b := make([]byte, MaxFrame)
		n, ok := p.Receive(b)
		if !ok {
			return out
		}
		out = append(out, b[:n])
	}
}

// got is how many frames each port has waiting, draining them.
func got(ports ...*Port) []int {
	n := make([]int, len(ports))
	for i, p := range ports {
		n[i] = len(drain(p))
	}
	return n
}

func TestDeriveMAC(t *testing.T) {
	seen := map[MAC]string{}
	for _, vm := range []string{"a", "b", "web", "db", "a0"} {
		for nic := range 3 {
			m := DeriveMAC(vm, nic)
			if m != DeriveMAC(vm, nic) {
				t.Fatalf("DeriveMAC(%q, %d) is not deterministic", vm, nic)
			}
			if m[0]&1 != 0 || m[0]&2 == 0 {
				t.Errorf("DeriveMAC(%q, %d) = %v: want unicast and locally administered", vm, nic, m)
			}
			if o, ok := seen[m]; ok {
				t.Errorf("DeriveMAC(%q, %d) = %v, as for %s", vm, nic, m, o)
			}
			seen[m] = vm
		}
	}
}

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in      string
		want    MAC
		wantErr string
	}{
		{in: "02:00:00:00:00:01", want: mac(1)},
		{in: "52:54:00:AB:cd:ef", want: MAC{0x52, 0x54, 0, 0xab, 0xcd, 0xef}},
		{in: "01:00:5e:00:00:01", wantErr: "multicast"},
		{in: "ff:ff:ff:ff:ff:ff", wantErr: "multicast"},
		{in: "00:00:00:00:00:00", wantErr: "all zeros"},
		{in: "02:00:00:00:01", wantErr: "six hex bytes"},
		{in: "02:00:00:00:00:00:00:01", wantErr: "six hex bytes"},
		{in: "zz:00:00:00:00:01", wantErr: "six hex bytes"},
		{in: "", wantErr: "six hex bytes"},
	}
	for _, tt := range tests {
		m, err := ParseMAC(tt.in)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseMAC(%q): %v", tt.in, err)
		case tt.wantErr == "" && m != tt.want:
			t.Errorf("ParseMAC(%q) = %v, want %v", tt.in, m, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseMAC(%q) error %v, want one saying %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestAttachChecks(t *testing.T) {
	s := New()
	attach(t, s, "a", 1)
	for _, tt := range []struct {
		seg     string
		c       PortConfig
		wantErr string
	}{
		{"a", PortConfig{MAC: mac(1)}, "already"},
		{"a", PortConfig{MAC: broadcast}, "unicast"},
		{"a", PortConfig{MAC: MAC{}}, "unicast"},
		{"", PortConfig{MAC: mac(2)}, "segment"},
		{"-x", PortConfig{MAC: mac(2)}, "segment"},
		{"a b", PortConfig{MAC: mac(2)}, "segment"},
		{strings.Repeat("x", 65), PortConfig{MAC: mac(2)}, "segment"},
		{"a", PortConfig{MAC: mac(2), QueueLen: -1}, "queue"},
		{"a", PortConfig{MAC: mac(2), QueueLen: maxQueueLen + 1}, "queue"},
	} {
		if _, err := s.Attach(tt.seg, tt.c); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Attach(%q, %v): error %v, want one saying %q", tt.seg, tt.c.MAC, err, tt.wantErr)
		}
	}
	// The same MAC on another segment is another station.
	if _, err := s.Attach("b", PortConfig{MAC: mac(1)}); err != nil {
		t.Errorf("the same MAC on another segment: %v", err)
	}
}

// TestLearning: unicast to an address not yet seen floods the segment;
// once its owner has sent, frames to it reach that port alone.
func TestLearning(t *testing.T) {
	s := New()
	a, b, c := attach(t, s, "s", 1), attach(t, s, "s", 2), attach(t, s, "s", 3)
	a.Send(frame(mac(2), mac(1), 46, 1))
	if n := got(a, b, c); !cmp.Equal(n, []int{0, 1, 1}) {
		t.Fatalf("unknown unicast reached %v frames (a, b, c), want it flooded to b and c", n)
	}
	b.Send(frame(mac(1), mac(2), 46, 2))
	if n := got(a, b, c); !cmp.Equal(n, []int{1, 0, 0}) {
		t.Fatalf("unicast to learned a reached %v, want a only", n)
	}
	a.Send(frame(mac(2), mac(1), 46, 3))
	if n := got(a, b, c); !cmp.Equal(n, []int{0, 1, 0}) {
		t.Fatalf("unicast to learned b reached %v, want b only", n)
	}
	// A frame to the sender's own address goes nowhere.
	a.Send(frame(mac(1), mac(1), 46, 4))
	if n := got(a, b, c); !cmp.Equal(n, []int{0, 0, 0}) {
		t.Fatalf("a frame to its own sender reached %v, want nobody", n)
	}
	// Group addresses flood, learned or not.
	for _, dst := range []MAC{broadcast, {0x01, 0x00, 0x5e, 0, 0, 1}, {0x33, 0x33, 0, 0, 0, 1}} {
		c.Send(frame(dst, mac(3), 46, 5))
		if n := got(a, b, c); !cmp.Equal(n, []int{1, 1, 0}) {
			t.Fatalf("group frame to %v reached %v, want a and b", dst, n)
		}
	}
}

// TestSegmentIsolation: nothing sent on one segment reaches a port of
// another, whatever its destination: broadcast, multicast, unknown
// unicast, or the address of a port on the other segment (learned there).
// The other segment's counters show no frame.
func TestSegmentIsolation(t *testing.T) {
	s := New()
	a1, a2 := attach(t, s, "A", 1), attach(t, s, "A", 2)
	b1, b2 := attach(t, s, "B", 3), attach(t, s, "B", 4)
	b1.Send(frame(mac(4), mac(3), 46, 0)) // B learns b1
	b2.Send(frame(mac(3), mac(4), 46, 0)) // and b2
	got(b1, b2)
	before := s.Segments()[1].Stats
	for _, dst := range []MAC{broadcast, {0x01, 0, 0x5e, 0, 0, 0xfb}, mac(99), mac(3), mac(4)} {
		a1.Send(frame(dst, mac(1), 100, 7))
		a2.Send(frame(dst, mac(2), 100, 7))
	}
	if n := got(b1, b2); !cmp.Equal(n, []int{0, 0}) {
		t.Fatalf("segment B's ports received %v frames from segment A", n)
	}
	segs := s.Segments()
	if segs[0].Name != "A" || segs[1].Name != "B" {
		t.Fatalf("segments %v", segs)
	}
	if d := cmp.Diff(before, segs[1].Stats); d != "" {
		t.Errorf("segment B's counters moved while only A sent (-before +after):\n%s", d)
	}
	if segs[0].TxFrames != 10 {
		t.Errorf("segment A sent %d frames, want 10", segs[0].TxFrames)
	}
	for _, p := range []*Port{b1, b2} {
		if st := p.Stats(); st.RxFrames != 1 {
			t.Errorf("%s: %d frames received, want the 1 from its own segment", p.Owner(), st.RxFrames)
		}
	}
}

// TestSpoofing: a frame whose source is not the sending port's MAC is
// dropped and counted, reaches nobody, and teaches the segment nothing:
// frames to the address it claimed still go to that address's port.
func TestSpoofing(t *testing.T) {
	s := New()
	a, b, c := attach(t, s, "s", 1), attach(t, s, "s", 2), attach(t, s, "s", 3)
	b.Send(frame(broadcast, mac(2), 46, 0)) // the segment learns b
	got(a, b, c)
	for _, src := range []MAC{mac(2), mac(9), broadcast, {}} {
		a.Send(frame(broadcast, src, 46, 1))
		a.Send(frame(mac(3), src, 46, 1))
	}
	if n := got(a, b, c); !cmp.Equal(n, []int{0, 0, 0}) {
		t.Fatalf("spoofed frames reached %v (a, b, c), want none", n)
	}
	if st := a.Stats(); st.SpoofDrops != 8 || st.TxFrames != 0 {
		t.Errorf("a: %d spoof drops and %d frames sent, want 8 and 0", st.SpoofDrops, st.TxFrames)
	}
	if st := s.Segments()[0]; st.SpoofDrops != 8 {
		t.Errorf("segment: %d spoof drops, want 8", st.SpoofDrops)
	}
	c.Send(frame(mac(2), mac(3), 46, 2))
	if n := got(a, b, c); !cmp.Equal(n, []int{0, 1, 0}) {
		t.Fatalf("after a claimed b's address, a frame to b reached %v, want b only", n)
	}
}

// TestFramesCopied: the switch keeps its own copy of each frame per
// destination, so a sender changing its buffer afterwards, or one
// receiver's frame, changes nothing another receives.
func TestFramesCopied(t *testing.T) {
	s := New()
	a, b, c := attach(t, s, "s", 1), attach(t, s, "s", 2), attach(t, s, "s", 3)
	f := frame(broadcast, mac(1), 200, 0x5a)
	want := bytes.Clone(f)
	a.Send(f)
	for i := range f {
		f[i] = 0
	}
	fb := drain(b)
	fc := drain(c)
	if len(fb) != 1 || len(fc) != 1 || !bytes.Equal(fb[0], want) || !bytes.Equal(fc[0], want) {
		t.Fatalf("received %d and %d frames; equal to what was sent: %v %v", len(fb), len(fc),
			len(fb) == 1 && bytes.Equal(fb[0], want), len(fc) == 1 && bytes.Equal(fc[0], want))
	}
	// Each port's queue is its own: frames for b alone leave c's queue
	// as it was.
	a.Send(frame(broadcast, mac(1), 10, 1))
	c.Send(frame(mac(2), mac(3), 10, 2)) // c learned; to b only
	b.Send(frame(mac(1), mac(2), 10, 3))
	a.Send(frame(mac(2), mac(1), 1500, 4))
	fc = drain(c)
	if len(fc) != 1 || !bytes.Equal(fc[0], frame(broadcast, mac(1), 10, 1)) {
		t.Fatalf("c's queue holds %d frames, changed by frames for b", len(fc))
	}
}

func TestQueueFullAndBadFrames(t *testing.T) {
	s := New()
	a := attach(t, s, "s", 1)
	b, err := s.Attach("s", PortConfig{Owner: "b", MAC: mac(2), QueueLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a.Send(frame(mac(2), mac(1), 46, byte(i)))
	}
	a.Send(make([]byte, MinFrame-1))
	a.Send(frame(mac(2), mac(1), MaxFrame-14+1, 0))
	fb := drain(b)
	if len(fb) != 2 || fb[0][14] != 0 || fb[1][14] != 1 {
		t.Fatalf("b received %d frames, want the first 2", len(fb))
	}
	want := Stats{RxFrames: 2, RxBytes: 120, FullDrops: 1}
	if d := cmp.Diff(want, b.Stats()); d != "" {
		t.Errorf("b's counters (-want +got):\n%s", d)
	}
	want = Stats{TxFrames: 3, TxBytes: 180, BadDrops: 2}
	if d := cmp.Diff(want, a.Stats()); d != "" {
		t.Errorf("a's counters (-want +got):\n%s", d)
	}
	want = Stats{TxFrames: 3, TxBytes: 180, RxFrames: 2, RxBytes: 120, FullDrops: 1, BadDrops: 2}
	if d := cmp.Diff(want, s.Segments()[0].Stats); d != "" {
		t.Errorf("segment counters (-want +got):\n%s", d)
	}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestPortLimits: a port's token buckets bound what its VM sends, and
// each refusal is a throttled wait in the port's and segment's counters.
func TestPortLimits(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	s := New()
	p, err := s.Attach("s", PortConfig{MAC: mac(1), Clock: clk,
		Limits: virtio.Limits{BytesPerSec: 10000, BytesBurst: 3000, OpsPerSec: 100, OpsBurst: 100}})
	if err != nil {
		t.Fatal(err)
	}
	free := attach(t, s, "s", 2)
	admitted := uint64(0)
	for range 200 {
		if w := p.Admit(1000); w != 0 {
			clk.advance(w)
			continue
		}
		admitted += 1000
	}
	// 3000 bytes of burst, then 10000 bytes/s over the time waited.
	elapsed := clk.Now().Sub(time.Unix(1e9, 0))
	if limit := 3000 + uint64(elapsed.Seconds()*10000) + 1000; admitted > limit {
		t.Errorf("%d bytes admitted in %v, more than burst + rate·t (%d)", admitted, elapsed, limit)
	}
	st := p.Stats()
	if st.Throttled == 0 || st.Throttled != s.Segments()[0].Throttled {
		t.Errorf("throttled waits: port %d, segment %d; want equal and not 0", st.Throttled, s.Segments()[0].Throttled)
	}
	for range 100 {
		if w := free.Admit(1 << 20); w != 0 {
			t.Fatalf("a port without limits was made to wait %v", w)
		}
	}
}

func TestDetach(t *testing.T) {
	s := New()
	a, b, c := attach(t, s, "s", 1), attach(t, s, "s", 2), attach(t, s, "s", 3)
	b.Send(frame(broadcast, mac(2), 46, 0))
	a.Send(frame(mac(2), mac(1), 46, 0))
	b.Detach()
	b.Detach()
	if b.Waiting() {
		t.Errorf("a detached port still holds frames")
	}
	a.Send(frame(mac(2), mac(1), 46, 0)) // b is forgotten: floods to c
	b.Send(frame(mac(1), mac(2), 46, 0)) // a detached port sends nothing
	if n := got(a, b, c); !cmp.Equal(n, []int{1, 0, 2}) {
		t.Fatalf("after b detached: %v frames (a, b, c), want b's broadcast at a, and it and the flood at c", n)
	}
	if segs := s.Segments(); !cmp.Equal(segs[0].Ports, []string{"s/p1", "s/p3"}) {
		t.Errorf("ports after detach: %v", segs[0].Ports)
	}
	if _, err := s.Attach("s", PortConfig{MAC: mac(2)}); err != nil {
		t.Errorf("b's MAC after b detached: %v", err)
	}
}

func TestWake(t *testing.T) {
	s := New()
	a, b := attach(t, s, "s", 1), attach(t, s, "s", 2)
	woken := 0
	b.SetWake(func() { woken++ })
	a.Send(frame(broadcast, mac(1), 46, 0))
	a.Send(frame(broadcast, mac(1), 46, 0))
	if woken != 2 || !b.Waiting() {
		t.Fatalf("woken %d times, waiting %v; want 2, true", woken, b.Waiting())
	}
	b.SetWake(nil)
	a.Send(frame(broadcast, mac(1), 46, 0))
	if woken != 2 {
		t.Fatalf("woken after SetWake(nil)")
	}
}

// TestConcurrent sends from several ports while others attach, detach,
// receive and read counters (for -race): nothing is lost that was
// accepted into a queue, and counters add up.
func TestConcurrent(t *testing.T) {
	s := New()
	senders := []*Port{attach(t, s, "s", 1), attach(t, s, "s", 2), attach(t, s, "s", 3)}
	sink := attach(t, s, "s", 9)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, p := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := frame(broadcast, mac(byte(i+1)), 100, byte(i))
			for range 2000 {
				p.Send(f)
			}
		}()
	}
	var received int
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		buf := make([]byte, MaxFrame)
		for {
			select {
			case <-stop:
				for {
					if _, ok := sink.Receive(buf); !ok {
						return
					}
					received++
				}
			default:
			}
			if _, ok := sink.Receive(buf); ok {
				received++
			}
		}
	}()
	for i := range 50 {
		p := attach(t, s, "s", byte(100+i))
		s.Segments()
		p.Detach()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	st := sink.Stats()
	if uint64(received) != st.RxFrames || st.RxFrames+st.FullDrops != 6000 {
		t.Errorf("sink: %d taken, %d received, %d dropped full; want all 6000 accounted for", received, st.RxFrames, st.FullDrops)
	}
}
