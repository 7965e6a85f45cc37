package lapic

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPriorityClasses: of two requests in different classes the higher is
// presented first; the lower waits until the higher's EOI.
func TestPriorityClasses(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.l.Deliver(0x31, false)
	r.l.Deliver(0x51, false)
	if got := r.l.Pending(); got != 0x51 {
		t.Fatalf("Pending = %#x, want 0x51", got)
	}
	if got := r.take(t); got != 0x51 {
		t.Fatalf("took %#x, want 0x51", got)
	}
	if got := r.read(RegPPR); got != 0x50 {
		t.Errorf("PPR with 0x51 in service = %#x, want 0x50", got)
	}
	if got := r.l.Pending(); got != -1 {
		t.Errorf("Pending with 0x51 in service = %#x, want -1 (0x31 is a lower class)", got)
	}
	r.eoi()
	if got := r.take(t); got != 0x31 {
		t.Errorf("after EOI took %#x, want 0x31", got)
	}
	r.eoi()
	if got := r.l.Pending(); got != -1 {
		t.Errorf("Pending after both EOIs = %#x, want -1", got)
	}
}

// TestTPRBlocksLowerClasses: a request is presented only when its class
// is above TPR's.
func TestTPRBlocksLowerClasses(t *testing.T) {
	for _, c := range []struct {
		tpr    uint32
		vector uint8
		want   bool
	}{
		{0x00, 0x10, true},
		{0x0F, 0x10, true}, // TPR bits 3:0 do not block
		{0x10, 0x1F, false},
		{0x10, 0x20, true},
		{0x45, 0x4F, false},
		{0x45, 0x50, true},
		{0xEF, 0xEF, false},
		{0xEF, 0xF0, true},
		{0xFF, 0xFF, false},
	} {
		r := newRig(t, 0)
		r.enable()
		r.write(RegTPR, c.tpr)
		r.l.Deliver(c.vector, false)
		got := r.l.Pending() == int(c.vector)
		if got != c.want {
			t.Errorf("TPR %#x, vector %#x: presented %v, want %v", c.tpr, c.vector, got, c.want)
		}
		if !r.bitOf(RegIRR, c.vector) {
			t.Errorf("TPR %#x, vector %#x: not held in IRR", c.tpr, c.vector)
		}
		r.write(RegTPR, 0)
		if got := r.l.Pending(); got != int(c.vector) {
			t.Errorf("TPR %#x, vector %#x: after TPR 0, Pending = %#x", c.tpr, c.vector, got)
		}
	}
}

// TestISRNesting: a higher class interrupts one in service, the same or a
// lower class waits; EOIs end the highest in service first.
func TestISRNesting(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.l.Deliver(0x52, false)
	r.take(t)
	r.l.Deliver(0x55, false) // same class: waits
	if got := r.l.Pending(); got != -1 {
		t.Fatalf("Pending = %#x with 0x52 in service, want -1 for 0x55", got)
	}
	r.l.Deliver(0x81, false)
	if got := r.take(t); got != 0x81 {
		t.Fatalf("took %#x, want 0x81 (a higher class nests)", got)
	}
	r.l.Deliver(0xC0, false)
	if got := r.take(t); got != 0xC0 {
		t.Fatalf("took %#x, want 0xc0", got)
	}
	isr := func() []int {
		var vs []int
		for v := 0; v < 256; v++ {
			if r.bitOf(RegISR, uint8(v)) {
				vs = append(vs, v)
			}
		}
		return vs
	}
	for _, want := range [][]int{{0x52, 0x81, 0xC0}, {0x52, 0x81}, {0x52}, nil} {
		if diff := cmp.Diff(want, isr()); diff != "" {
			t.Errorf("ISR (-want +got):\n%s", diff)
		}
		if len(want) == 1 {
			// 0x52 is the last in service; 0x55 still waits.
			if got := r.l.Pending(); got != -1 {
				t.Errorf("Pending = %#x with 0x52 in service", got)
			}
		}
		r.eoi()
	}
	if got := r.take(t); got != 0x55 {
		t.Errorf("after the last EOI took %#x, want 0x55", got)
	}
}

// TestPPRAndAPR reads the computed priority registers.
func TestPPRAndAPR(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegTPR, 0x34)
	if got := r.read(RegPPR); got != 0x34 {
		t.Errorf("PPR = %#x with TPR 0x34 and nothing in service, want 0x34", got)
	}
	if got := r.read(RegAPR); got != 0x34 {
		t.Errorf("APR = %#x with TPR 0x34 and no request, want 0x34", got)
	}
	r.l.Deliver(0x61, false)
	if got := r.read(RegAPR); got != 0x60 {
		t.Errorf("APR = %#x with 0x61 requested, want 0x60", got)
	}
	r.take(t)
	if got := r.read(RegPPR); got != 0x60 {
		t.Errorf("PPR = %#x with 0x61 in service, want 0x60", got)
	}
	r.write(RegTPR, 0x75)
	if got := r.read(RegPPR); got != 0x75 {
		t.Errorf("PPR = %#x with TPR 0x75 over 0x61 in service, want 0x75", got)
	}
}

// TestIllegalVectors: vectors 0-15 are never accepted; receiving one sets
// ESR bit 6, sending a fixed or lowest-priority one sets bit 5 and sends
// nothing. An NMI's or INIT's vector field is not a vector and is sent.
func TestIllegalVectors(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	for v := 0; v < 16; v++ {
		r.l.Deliver(uint8(v), false)
		r.l.Deliver(uint8(v), true)
	}
	if r.interrupts != 0 {
		t.Errorf("OnInterrupt called %d times for illegal vectors", r.interrupts)
	}
	for i := uint32(0); i < 8; i++ {
		if got := r.read(RegIRR + i*0x10); got != 0 {
			t.Errorf("IRR word %d = %#x after illegal vectors", i, got)
		}
	}
	if got := r.l.Pending(); got != -1 {
		t.Errorf("Pending = %#x after illegal vectors", got)
	}
	r.write(RegESR, 0)
	if got := r.read(RegESR); got != ESRReceiveIllegalVector {
		t.Errorf("ESR = %#x, want %#x", got, ESRReceiveIllegalVector)
	}
	r.l.Deliver(16, false)
	if got := r.l.Pending(); got != 16 {
		t.Errorf("vector 16 not accepted: Pending = %d", got)
	}

	for _, mode := range []DeliveryMode{Fixed, LowestPriority} {
		r.write(RegESR, 0)
		r.write(RegICRHigh, 1<<24)
		r.write(RegICRLow, uint32(mode)<<8|0x0F)
		r.write(RegESR, 0)
		if got := r.read(RegESR); got != ESRSendIllegalVector {
			t.Errorf("%v IPI with vector 15: ESR = %#x, want %#x", mode, got, ESRSendIllegalVector)
		}
	}
	if len(r.sent) != 0 {
		t.Errorf("illegal IPIs were sent: %+v", r.sent)
	}
	r.write(RegICRLow, uint32(NMI)<<8)
	r.write(RegICRLow, uint32(INIT)<<8|icrAssert)
	if len(r.sent) != 2 {
		t.Errorf("NMI and INIT with vector 0 not sent: %+v", r.sent)
	}
}

// TestErrorInterrupt: an unmasked error LVT entry raises its vector when
// an error is logged; an illegal vector in it is logged without raising
// anything (and without recursing).
func TestErrorInterrupt(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegLVTError, 0xFE)
	r.l.Deliver(7, false)
	if got := r.l.Pending(); got != 0xFE {
		t.Fatalf("Pending = %#x after an illegal vector, want the error vector 0xfe", got)
	}
	r.take(t)
	r.eoi()
	r.write(RegLVTError, 0x05)
	r.l.Deliver(7, false)
	if got := r.l.Pending(); got != -1 {
		t.Errorf("Pending = %#x with an illegal error vector", got)
	}
	r.write(RegESR, 0)
	if got := r.read(RegESR); got != ESRReceiveIllegalVector {
		t.Errorf("ESR = %#x, want %#x", got, ESRReceiveIllegalVector)
	}
}

// TestLevelTriggeredEOI: a level-triggered interrupt sets its TMR bit, and
// its EOI calls OnLevelEOI; an edge-triggered one's does not.
func TestLevelTriggeredEOI(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.l.Deliver(0x61, true)
	if !r.bitOf(RegTMR, 0x61) {
		t.Fatal("TMR bit of a level-triggered interrupt clear")
	}
	r.take(t)
	r.eoi()
	r.l.Deliver(0x62, false)
	r.take(t)
	r.eoi()
	if diff := cmp.Diff([]uint8{0x61}, r.levelEOIs); diff != "" {
		t.Errorf("OnLevelEOI calls (-want +got):\n%s", diff)
	}
	r.eoi() // nothing in service: nothing happens
	if len(r.levelEOIs) != 1 {
		t.Errorf("EOI with nothing in service called OnLevelEOI: %v", r.levelEOIs)
	}
}

// TestAckOnlyDeliverable: Ack moves a vector only if it is requested and
// above PPR; one overtaken by a higher request since Pending is still
// taken, and the higher one nests above it.
func TestAckOnlyDeliverable(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	if r.l.Ack(0x40) {
		t.Error("Ack of a vector not requested succeeded")
	}
	r.write(RegTPR, 0x40)
	r.l.Deliver(0x45, false)
	if r.l.Ack(0x45) || r.bitOf(RegISR, 0x45) {
		t.Error("Ack of a vector TPR blocks succeeded")
	}
	r.write(RegTPR, 0)
	if got := r.l.Pending(); got != 0x45 {
		t.Fatalf("Pending = %#x, want 0x45", got)
	}
	r.l.Deliver(0x90, false) // arrives between Pending and Ack
	if !r.l.Ack(0x45) || !r.bitOf(RegISR, 0x45) || r.bitOf(RegIRR, 0x45) {
		t.Error("Ack(0x45) did not move it from IRR to ISR")
	}
	if got := r.take(t); got != 0x90 {
		t.Errorf("after 0x45 took %#x, want 0x90 nested above it", got)
	}
	r.l.Deliver(0x50, false)
	if r.l.Ack(0x50) {
		t.Error("Ack of 0x50 succeeded below 0x90 in service")
	}
}

// TestDisabledRefusesFixed: a software-disabled APIC drops fixed
// interrupts, and keeps presenting what it held before.
func TestDisabledRefusesFixed(t *testing.T) {
	r := newRig(t, 0)
	r.l.Deliver(0x40, false)
	if got := r.l.Pending(); got != -1 || r.interrupts != 0 {
		t.Errorf("software-disabled APIC accepted 0x40: Pending %#x, %d OnInterrupt", got, r.interrupts)
	}
	r.enable()
	r.l.Deliver(0x40, false)
	r.write(RegSVR, 0xFF)
	r.l.Deliver(0x50, false)
	if got := r.l.Pending(); got != 0x40 {
		t.Errorf("after software disable Pending = %#x, want 0x40 held from before", got)
	}
}

// TestOnInterrupt is called once per accepted interrupt, after the lock is
// released (the callback reads the LAPIC).
func TestOnInterrupt(t *testing.T) {
	clk := &fakeClock{}
	var l *LAPIC
	var seen []int
	l, err := New(Config{ID: 0, Clock: clk, OnInterrupt: func() { seen = append(seen, l.Pending()) }})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(RegSVR, 4, SVREnable|0xFF)
	l.Deliver(0x33, false)
	l.Deliver(0x44, false)
	if diff := cmp.Diff([]int{0x33, 0x44}, seen); diff != "" {
		t.Errorf("Pending seen from OnInterrupt (-want +got):\n%s", diff)
	}
}
