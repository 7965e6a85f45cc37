package lapic

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// signal is one call of Group.Signal.
type signal struct {
	Dst    uint32
	Mode   DeliveryMode
	Vector uint8
}

// groupRig is a VM of LAPICs with IDs ids on one Group.
type groupRig struct {
	g       *Group
	clk     *fakeClock
	l       map[uint32]*LAPIC
	signals []signal
}

func newGroupRig(t *testing.T, ids ...uint32) *groupRig {
	t.Helper()
	gr := &groupRig{clk: &fakeClock{}, l: map[uint32]*LAPIC{}}
	gr.g = NewGroup(func(dst uint32, ipi IPI) {
		gr.signals = append(gr.signals, signal{dst, ipi.Mode, ipi.Vector})
	})
	for _, id := range ids {
		l, err := New(Config{ID: id, BSP: id == 0, Clock: gr.clk, Bus: gr.g})
		if err != nil {
			t.Fatal(err)
		}
		if err := gr.g.Add(l); err != nil {
			t.Fatal(err)
		}
		l.Write(RegSVR, 4, SVREnable|0xFF)
		gr.l[id] = l
	}
	return gr
}

// send writes ICR high then low on LAPIC src, as Linux does.
func (gr *groupRig) send(src uint32, ipi IPI) {
	lo, hi := ipi.ICR()
	gr.l[src].Write(RegICRHigh, 4, hi)
	gr.l[src].Write(RegICRLow, 4, lo)
}

// receivers returns the IDs whose LAPIC has vector v pending, and takes it.
func (gr *groupRig) receivers(t *testing.T, v uint8) []uint32 {
	t.Helper()
	var ids []uint32
	for id := uint32(0); id <= MaxID; id++ {
		l := gr.l[id]
		if l == nil {
			continue
		}
		if got := l.Pending(); got >= 0 {
			if got != int(v) {
				t.Fatalf("ID %d: Pending = %#x, want %#x", id, got, v)
			}
			l.Ack(v)
			l.Write(RegEOI, 4, 0)
			ids = append(ids, id)
		}
	}
	return ids
}

// TestIPIRouting sends fixed IPIs from LAPIC 1 to each kind of
// destination and checks who receives them.
func TestIPIRouting(t *testing.T) {
	gr := newGroupRig(t, 0, 1, 2, 3)
	// Logical IDs: flat bits 0x01, 0x02, 0x04, 0x08 for IDs 0-3.
	for id, l := range gr.l {
		l.Write(RegLDR, 4, 1<<(24+id))
	}
	for _, c := range []struct {
		name string
		ipi  IPI
		want []uint32
	}{
		{"physical ID 2", IPI{Dest: 2}, []uint32{2}},
		{"physical ID 1 (itself)", IPI{Dest: 1}, []uint32{1}},
		{"physical absent ID 9", IPI{Dest: 9}, nil},
		{"physical broadcast", IPI{Dest: 0xFF}, []uint32{0, 1, 2, 3}},
		{"self", IPI{Shorthand: Self, Dest: 3}, []uint32{1}},
		{"all including self", IPI{Shorthand: AllIncludingSelf}, []uint32{0, 1, 2, 3}},
		{"all excluding self", IPI{Shorthand: AllExcludingSelf, Dest: 1}, []uint32{0, 2, 3}},
		{"logical flat 0x0C", IPI{Logical: true, Dest: 0x0C}, []uint32{2, 3}},
		{"logical flat 0x10 (nobody)", IPI{Logical: true, Dest: 0x10}, nil},
		{"logical flat broadcast", IPI{Logical: true, Dest: 0xFF}, []uint32{0, 1, 2, 3}},
		{"lowest priority as fixed", IPI{Mode: LowestPriority, Logical: true, Dest: 0x05}, []uint32{0, 2}},
	} {
		c.ipi.Vector = 0x80
		if c.ipi.Mode == Fixed {
			c.ipi.Assert = true
		}
		gr.send(1, c.ipi)
		if diff := cmp.Diff(c.want, gr.receivers(t, 0x80)); diff != "" {
			t.Errorf("%s: receivers (-want +got):\n%s", c.name, diff)
		}
	}
	if len(gr.signals) != 0 {
		t.Errorf("fixed IPIs reached Signal: %v", gr.signals)
	}
}

// TestIPILogicalCluster: in the cluster model the destination's high
// nibble selects a cluster (0xF all) and its low nibble the members.
func TestIPILogicalCluster(t *testing.T) {
	gr := newGroupRig(t, 0, 1, 2, 3)
	ldr := map[uint32]uint32{0: 0x11, 1: 0x12, 2: 0x21, 3: 0x22} // cluster 1 and 2, members 1 and 2
	for id, l := range gr.l {
		l.Write(RegDFR, 4, 0x0FFFFFFF)
		l.Write(RegLDR, 4, ldr[id]<<24)
	}
	for _, c := range []struct {
		dest uint8
		want []uint32
	}{
		{0x11, []uint32{0}},
		{0x13, []uint32{0, 1}},
		{0x22, []uint32{3}},
		{0x31, nil},
		{0xF1, []uint32{0, 2}},
		{0xFF, []uint32{0, 1, 2, 3}},
	} {
		gr.send(0, IPI{Vector: 0x90, Logical: true, Dest: c.dest, Assert: true})
		if diff := cmp.Diff(c.want, gr.receivers(t, 0x90)); diff != "" {
			t.Errorf("cluster destination %#x: receivers (-want +got):\n%s", c.dest, diff)
		}
	}
	// A reserved DFR model matches nothing.
	gr.l[2].Write(RegDFR, 4, 0x5FFFFFFF)
	gr.send(0, IPI{Vector: 0x90, Logical: true, Dest: 0xF1})
	if diff := cmp.Diff([]uint32{0}, gr.receivers(t, 0x90)); diff != "" {
		t.Errorf("reserved DFR model: receivers (-want +got):\n%s", diff)
	}
}

// TestIPISignals: NMI, INIT and SIPI reach Signal with their target and
// the start-up page; INIT resets the target's LAPIC; INIT level de-assert
// and the modes that are not IPIs are dropped, and so is anything to a
// globally disabled LAPIC.
func TestIPISignals(t *testing.T) {
	gr := newGroupRig(t, 0, 1, 2)
	gr.l[2].Write(RegTPR, 4, 0x40)
	// Linux's wakeup_secondary_cpu_via_init: INIT assert, INIT de-assert,
	// then two SIPIs at the trampoline's page.
	gr.send(0, IPI{Mode: INIT, Assert: true, LevelTriggered: true, Dest: 2})
	if got := gr.l[2].Read(RegTPR, 4); got != 0 {
		t.Errorf("TPR of the INIT target = %#x, want 0 after its reset", got)
	}
	if got := gr.l[2].Read(RegSVR, 4); got != 0xFF {
		t.Errorf("SVR of the INIT target = %#x, want 0xff after its reset", got)
	}
	gr.send(0, IPI{Mode: INIT, LevelTriggered: true, Dest: 2})
	gr.send(0, IPI{Mode: StartUp, Vector: 0x9A, Assert: true, Dest: 2})
	gr.send(0, IPI{Mode: StartUp, Vector: 0x9A, Assert: true, Dest: 2})
	gr.send(0, IPI{Mode: NMI, Assert: true, Shorthand: AllExcludingSelf})
	gr.send(0, IPI{Mode: NMI, Assert: true, Shorthand: Self})           // invalid with self
	gr.send(0, IPI{Mode: SMI, Assert: true, Dest: 1})                   // no SMM
	gr.send(0, IPI{Mode: ExtINT, Assert: true, Dest: 1})                // not an IPI
	gr.send(0, IPI{Mode: modeReserved, Vector: 0x40, Dest: 1})          // remote read
	gr.send(0, IPI{Mode: StartUp, Vector: 0x10, Assert: true, Dest: 7}) // absent
	if err := gr.l[1].WriteBaseMSR(Base); err != nil {
		t.Fatal(err)
	}
	gr.send(0, IPI{Mode: INIT, Assert: true, Dest: 1}) // globally disabled
	gr.send(0, IPI{Mode: StartUp, Vector: 0x10, Assert: true, Dest: 1})
	want := []signal{
		{2, INIT, 0},
		{2, StartUp, 0x9A},
		{2, StartUp, 0x9A},
		{1, NMI, 0},
		{2, NMI, 0},
	}
	if diff := cmp.Diff(want, gr.signals); diff != "" {
		t.Errorf("Signal calls (-want +got):\n%s", diff)
	}
	for id, l := range gr.l {
		if got := l.Pending(); got != -1 {
			t.Errorf("ID %d has %#x pending from a non-fixed IPI", id, got)
		}
	}
}

// TestGroupAdd refuses a second LAPIC with the same ID and finds LAPICs
// by ID.
func TestGroupAdd(t *testing.T) {
	gr := newGroupRig(t, 0, 5)
	dup, err := New(Config{ID: 5, Clock: gr.clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := gr.g.Add(dup); err == nil {
		t.Error("a second LAPIC with ID 5 was added")
	}
	if gr.g.LAPIC(5) != gr.l[5] || gr.g.LAPIC(1) != nil || gr.g.LAPIC(1<<31) != nil {
		t.Error("LAPIC lookups by ID wrong")
	}
	if _, err := New(Config{ID: 0xFF, Clock: gr.clk}); err == nil {
		t.Error("New accepted APIC ID 0xff, the broadcast ID")
	}
	if _, err := New(Config{ID: 1}); err == nil {
		t.Error("New accepted a LAPIC without a clock")
	}
}

// TestICRFields decodes the ICR values Linux 6.12 writes and encodes them
// back.
func TestICRFields(t *testing.T) {
	for _, c := range []struct {
		name   string
		lo, hi uint32
		want   IPI
	}{
		// apic_icr_write(APIC_INT_LEVELTRIG | APIC_INT_ASSERT | APIC_DM_INIT, 3)
		{"INIT assert", 0xC500, 3 << 24, IPI{Mode: INIT, Assert: true, LevelTriggered: true, Dest: 3}},
		{"INIT de-assert", 0x8500, 3 << 24, IPI{Mode: INIT, LevelTriggered: true, Dest: 3}},
		// APIC_DM_STARTUP | (start_ip >> 12) for a trampoline at 0x9A000
		{"SIPI", 0x069A, 3 << 24, IPI{Mode: StartUp, Vector: 0x9A, Dest: 3}},
		// __default_send_IPI_shortcut(RESCHEDULE_VECTOR 0xFD, all-but-self)
		{"fixed all-but-self", 0xC00FD, 0, IPI{Vector: 0xFD, Shorthand: AllExcludingSelf}},
		{"NMI self logical", 0x40C00, 0xFF000000, IPI{Mode: NMI, Logical: true, Shorthand: Self, Dest: 0xFF}},
	} {
		got := DecodeICR(c.lo, c.hi)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s: DecodeICR(%#x, %#x) (-want +got):\n%s", c.name, c.lo, c.hi, diff)
		}
		if lo, hi := got.ICR(); lo != c.lo || hi != c.hi {
			t.Errorf("%s: ICR() = %#x, %#x, want %#x, %#x", c.name, lo, hi, c.lo, c.hi)
		}
	}
}

// TestSendIPIAllocates nothing: a guest sending IPIs in a loop costs the
// host no garbage.
func TestSendIPIAllocatesNothing(t *testing.T) {
	gr := newGroupRig(t, 0, 1, 2, 3)
	gr.g.Signal = nil
	lo, hi := IPI{Vector: 0x80, Shorthand: AllIncludingSelf}.ICR()
	l := gr.l[1]
	l.Write(RegICRHigh, 4, hi)
	allocs := testing.AllocsPerRun(100, func() {
		l.Write(RegICRLow, 4, lo)
		gr.g.SendIPI(1, IPI{Mode: INIT, Assert: true, Dest: 2})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per IPI, want 0", allocs)
	}
}
