package lapic

import (
	"testing"
)

// msgLog is an InterruptBus that records the messages.
type msgLog struct {
	msgs   []IPI
	levels []bool
}

func (m *msgLog) Interrupt(msg IPI, level bool) {
	m.msgs = append(m.msgs, msg)
	m.levels = append(m.levels, level)
}

func newIOAPIC(t *testing.T) (*IOAPIC, *msgLog) {
	t.Helper()
	m := &msgLog{}
	a, err := NewIOAPIC(0, m)
	if err != nil {
		t.Fatal(err)
	}
	return a, m
}

func ioRead(a *IOAPIC, index uint32) uint32 {
	a.Write(ioRegSel, 4, index)
	return a.Read(ioWin, 4)
}

func ioWrite(a *IOAPIC, index, v uint32) {
	a.Write(ioRegSel, 4, index)
	a.Write(ioWin, 4, v)
}

// program writes pin's redirection entry, high word first, as Linux does.
func program(a *IOAPIC, pin int, low uint32, dest uint8) {
	ioWrite(a, ioIndexRedir+2*uint32(pin)+1, uint32(dest)<<24)
	ioWrite(a, ioIndexRedir+2*uint32(pin), low)
}

func TestIOAPICRegisters(t *testing.T) {
	a, m := newIOAPIC(t)
	if v := ioRead(a, ioIndexVersion); v != 0x00170011 {
		t.Errorf("version %#x", v)
	}
	ioWrite(a, ioIndexVersion, 0)
	if v := ioRead(a, ioIndexVersion); v != 0x00170011 {
		t.Errorf("version after a write: %#x", v)
	}
	ioWrite(a, ioIndexID, 0xFFFFFFFF)
	if v := ioRead(a, ioIndexID); v != 0x0F000000 {
		t.Errorf("ID after writing ones: %#x", v)
	}
	if v := ioRead(a, ioIndexArb); v != 0x0F000000 {
		t.Errorf("arbitration ID %#x", v)
	}
	for pin := 0; pin < IOAPICPins; pin++ {
		if v := ioRead(a, ioIndexRedir+2*uint32(pin)); v != redirMasked {
			t.Fatalf("entry %d at reset: %#x, want masked", pin, v)
		}
	}
	// Delivery status and remote IRR are read-only.
	ioWrite(a, ioIndexRedir, 0xFFFFFFFF)
	if v := ioRead(a, ioIndexRedir); v != uint32(redirWritable&0xFFFFFFFF) {
		t.Errorf("entry 0 after writing ones: %#x, want %#x", v, uint32(redirWritable&0xFFFFFFFF))
	}
	ioWrite(a, ioIndexRedir+1, 0xFFFFFFFF)
	if v := ioRead(a, ioIndexRedir+1); v != 0xFF000000 {
		t.Errorf("entry 0's high word after writing ones: %#x", v)
	}
	// Indexes past the last entry, other offsets and sizes: 0, ignored.
	for _, idx := range []uint32{0x03, 0x0F, ioIndexRedir + 2*IOAPICPins, 0xFF} {
		ioWrite(a, idx, 0xFFFFFFFF)
		if v := ioRead(a, idx); v != 0 {
			t.Errorf("index %#x: %#x", idx, v)
		}
	}
	a.Write(ioRegSel, 4, 0x1FF)
	if v := a.Read(ioRegSel, 4); v != 0xFF {
		t.Errorf("IOREGSEL keeps 8 bits: %#x", v)
	}
	a.Write(ioRegSel, 2, ioIndexVersion)
	a.Write(0x04, 4, ioIndexVersion)
	if v := a.Read(ioRegSel, 4); v != 0xFF {
		t.Errorf("a 2-byte or misplaced write moved IOREGSEL: %#x", v)
	}
	if v := a.Read(ioWin, 2); v != 0 {
		t.Errorf("2-byte IOWIN read: %#x", v)
	}
	if v := a.Read(0x20, 4); v != 0 {
		t.Errorf("offset 0x20: %#x", v)
	}
	if len(m.msgs) != 0 {
		t.Errorf("register accesses sent %v", m.msgs)
	}
	if _, err := NewIOAPIC(16, m); err == nil {
		t.Error("I/O APIC ID 16 accepted")
	}
	if _, err := NewIOAPIC(0, nil); err == nil {
		t.Error("no bus accepted")
	}
}

func TestIOAPICEdge(t *testing.T) {
	a, m := newIOAPIC(t)
	// Masked: an edge is lost, and unmasking does not bring it back.
	a.SetLine(4, true)
	a.SetLine(4, false)
	program(a, 4, 0x34|uint32(LowestPriority)<<8|redirLogical, 0x03)
	if len(m.msgs) != 0 {
		t.Fatalf("masked edge or unmask sent %v", m.msgs)
	}
	a.SetLine(4, true)
	a.SetLine(4, true) // still high: no new edge
	if len(m.msgs) != 1 {
		t.Fatalf("%d messages after one rising edge", len(m.msgs))
	}
	want := IPI{Vector: 0x34, Mode: LowestPriority, Logical: true, Dest: 3}
	if m.msgs[0] != want || m.levels[0] {
		t.Errorf("message %+v level %v, want %+v edge", m.msgs[0], m.levels[0], want)
	}
	a.SetLine(4, false)
	a.SetLine(4, true)
	if len(m.msgs) != 2 {
		t.Errorf("%d messages after two rising edges", len(m.msgs))
	}
	// An EOI of the vector does nothing to an edge-triggered pin.
	a.EOI(0x34)
	if len(m.msgs) != 2 || ioRead(a, ioIndexRedir+8)&redirRemote != 0 {
		t.Error("EOI acted on an edge-triggered pin")
	}
	// Out-of-range pins are ignored.
	a.SetLine(-1, true)
	a.SetLine(IOAPICPins, true)
	if len(m.msgs) != 2 {
		t.Error("an out-of-range pin sent")
	}
}

func TestIOAPICLevel(t *testing.T) {
	a, m := newIOAPIC(t)
	a.SetLine(10, true) // high while masked
	program(a, 10, 0x41|redirLevel, 1)
	if len(m.msgs) != 1 || !m.levels[0] || m.msgs[0] != (IPI{Vector: 0x41, Dest: 1}) {
		t.Fatalf("unmasking a high level pin: %v %v, want one level message", m.msgs, m.levels)
	}
	if ioRead(a, ioIndexRedir+20)&redirRemote == 0 {
		t.Error("remote IRR not set after sending")
	}
	// Remote IRR holds further messages while the line stays high.
	a.SetLine(10, true)
	if len(m.msgs) != 1 {
		t.Fatal("sent again with remote IRR set")
	}
	// An EOI of another vector does nothing; of this one, sends again.
	a.EOI(0x42)
	if len(m.msgs) != 1 {
		t.Fatal("EOI of another vector sent")
	}
	a.EOI(0x41)
	if len(m.msgs) != 2 {
		t.Fatalf("EOI with the line high: %d messages, want 2", len(m.msgs))
	}
	// The line falls: the next EOI clears remote IRR and sends nothing.
	a.SetLine(10, false)
	a.EOI(0x41)
	if len(m.msgs) != 2 || ioRead(a, ioIndexRedir+20)&redirRemote != 0 {
		t.Fatalf("EOI with the line low: %d messages, remote IRR %v", len(m.msgs), ioRead(a, ioIndexRedir+20)&redirRemote != 0)
	}
	a.SetLine(10, true)
	if len(m.msgs) != 3 {
		t.Fatal("a new assertion did not send")
	}
	// Linux's way out of a stuck remote IRR without an EOI register:
	// mask, edge, level, unmask.
	program(a, 10, 0x41|redirMasked, 1)
	if ioRead(a, ioIndexRedir+20)&redirRemote != 0 {
		t.Error("edge mode kept remote IRR")
	}
	program(a, 10, 0x41|redirLevel|redirMasked, 1)
	program(a, 10, 0x41|redirLevel, 1)
	if len(m.msgs) != 4 {
		t.Errorf("unmasking after the edge-level dance: %d messages, want 4", len(m.msgs))
	}
}

// wired returns an I/O APIC on a Group of n software-enabled LAPICs (flat
// logical destination 1 << i for APIC ID i) whose level-triggered EOIs
// reach it; wrap, when not nil, stands between the I/O APIC and the Group.
func wired(t testing.TB, n int, wrap func(InterruptBus) InterruptBus) (*IOAPIC, []*LAPIC) {
	t.Helper()
	g := NewGroup(nil)
	var a *IOAPIC
	ls := make([]*LAPIC, n)
	for i := range ls {
		l, err := New(Config{ID: uint32(i), BSP: i == 0, Clock: &fakeClock{}, Bus: g,
			OnLevelEOI: func(v uint8) { a.EOI(v) }})
		if err != nil {
			t.Fatal(err)
		}
		l.Write(RegSVR, 4, SVREnable|0xFF)
		l.Write(RegLDR, 4, 1<<(24+i))
		if err := g.Add(l); err != nil {
			t.Fatal(err)
		}
		ls[i] = l
	}
	var bus InterruptBus = g
	if wrap != nil {
		bus = wrap(g)
	}
	var err error
	if a, err = NewIOAPIC(0, bus); err != nil {
		t.Fatal(err)
	}
	return a, ls
}

// TestIOAPICToGroup: an I/O APIC's messages reach the LAPICs they name,
// with the trigger mode in TMR, and a LAPIC's EOI of a level-triggered
// vector clears remote IRR through OnLevelEOI.
func TestIOAPICToGroup(t *testing.T) {
	a, ls := wired(t, 3, nil)
	take := func(l *LAPIC) int {
		v := l.Pending()
		if v >= 0 && !l.Ack(uint8(v)) {
			t.Fatalf("Ack(%#x) failed", v)
		}
		return v
	}
	// Physical, level-triggered, to CPU 2.
	program(a, 9, 0x51|redirLevel, 2)
	a.SetLine(9, true)
	if ls[0].Pending() >= 0 || ls[1].Pending() >= 0 {
		t.Fatal("a physical message to CPU 2 reached another CPU")
	}
	if v := take(ls[2]); v != 0x51 {
		t.Fatalf("CPU 2 took %#x, want 0x51", v)
	}
	if ls[2].Read(RegTMR+0x20, 4)&(1<<(0x51-0x40)) == 0 {
		t.Error("TMR bit of a level-triggered message clear")
	}
	a.SetLine(9, false)
	ls[2].Write(RegEOI, 4, 0)
	if ioRead(a, ioIndexRedir+18)&redirRemote != 0 {
		t.Error("the LAPIC's EOI did not clear remote IRR")
	}
	// Logical lowest priority to CPUs 1 and 2: one of them, once.
	program(a, 3, 0x62|uint32(LowestPriority)<<8|redirLogical, 0x06)
	a.SetLine(3, true)
	got := 0
	for _, l := range ls {
		if v := take(l); v == 0x62 {
			got++
		} else if v >= 0 {
			t.Errorf("took %#x", v)
		}
	}
	if got != 1 {
		t.Errorf("lowest priority delivered %d times, want 1", got)
	}
	// Logical fixed to CPUs 0 and 1: both, edge-triggered.
	program(a, 5, 0x73|redirLogical, 0x03)
	a.SetLine(5, true)
	for i, l := range ls[:2] {
		if v := take(l); v != 0x73 {
			t.Errorf("CPU %d took %#x, want 0x73", i, v)
		}
		if l.Read(RegTMR+0x30, 4)&(1<<(0x73-0x60)) != 0 {
			t.Errorf("CPU %d: TMR set for an edge-triggered message", i)
		}
	}
	// NMI, INIT, ExtINT messages are dropped.
	for _, mode := range []DeliveryMode{NMI, INIT, ExtINT, SMI} {
		program(a, 6, 0x80|uint32(mode)<<8, 0)
		a.SetLine(6, true)
		a.SetLine(6, false)
	}
	if v := ls[0].Pending(); v >= 0 && v != 0x73 {
		t.Errorf("a dropped delivery mode delivered %#x", v)
	}
}

// countBus counts messages and passes them on.
type countBus struct {
	next InterruptBus
	n    int
}

func (c *countBus) Interrupt(msg IPI, level bool) {
	c.n++
	c.next.Interrupt(msg, level)
}

// FuzzIOAPIC drives an I/O APIC wired to two LAPICs with hostile register
// writes, line changes, interrupt acknowledgements and EOIs: nothing
// panics, the read-only registers stay what they are, no edge-triggered
// entry holds remote IRR, and no operation sends more than one message
// per pin.
func FuzzIOAPIC(f *testing.F) {
	f.Add([]byte{0, 0x10, 0, 0, 0, 0x30 | 0x80, 2, 4, 1, 3, 0, 4, 0})
	f.Add([]byte{0, 0x12, 0x41, 0x80, 0, 0, 2, 1, 1, 3, 1, 4, 1, 5, 0x41})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := &fuzzInput{b: b}
		cb := &countBus{}
		a, ls := wired(t, 2, func(g InterruptBus) InterruptBus { cb.next = g; return cb })
		for in.more() {
			before := cb.n
			switch in.u8() % 6 {
			case 0: // IOREGSEL, then IOWIN
				a.Write(ioRegSel, 4, uint32(in.u8()))
				a.Write(ioWin, 4, in.u32())
			case 1: // any access
				off, size := uint64(in.u8()), int(in.u8()%9)
				if in.u8()&1 == 0 {
					a.Write(off, size, in.u32())
				} else {
					a.Read(off, size)
				}
			case 2:
				pin := int(in.u8()) - 2
				a.SetLine(pin, in.u8()&1 != 0)
			case 3: // a CPU takes its interrupt
				l := ls[in.u8()&1]
				if v := l.Pending(); v >= 0 {
					l.Ack(uint8(v))
				}
			case 4:
				ls[in.u8()&1].Write(RegEOI, 4, 0)
			case 5:
				a.EOI(in.u8())
			}
			if sent := cb.n - before; sent > IOAPICPins {
				t.Fatalf("one operation sent %d messages", sent)
			}
			if v := ioRead(a, ioIndexVersion); v != IOAPICVersion {
				t.Fatalf("version register %#x", v)
			}
			for pin := 0; pin < IOAPICPins; pin++ {
				if e := ioRead(a, ioIndexRedir+2*uint32(pin)); e&redirRemote != 0 && e&redirLevel == 0 {
					t.Fatalf("edge-triggered entry %d holds remote IRR: %#x", pin, e)
				}
			}
		}
	})
}
