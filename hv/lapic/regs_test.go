package lapic

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// allRegisters are the offsets of every implemented register.
func allRegisters() []uint32 {
	offs := []uint32{RegID, RegVersion, RegTPR, RegAPR, RegPPR, RegEOI, RegRRD, RegLDR, RegDFR, RegSVR}
	for i := uint32(0); i < 8; i++ {
		offs = append(offs, RegISR+i*0x10, RegTMR+i*0x10, RegIRR+i*0x10)
	}
	offs = append(offs, RegESR, RegLVTCMCI, RegICRLow, RegICRHigh)
	for i := LVTTimer; i < NumLVT; i++ {
		offs = append(offs, lvtOffset(i))
	}
	return append(offs, RegTimerInitial, RegTimerCurrent, RegTimerDivide)
}

// dump reads every implemented register.
func (r *rig) dump() map[string]uint32 {
	m := map[string]uint32{}
	for _, off := range allRegisters() {
		m[fmt.Sprintf("%#03x", off)] = r.read(off)
	}
	return m
}

// TestPowerUpValues checks every register after New, as SDM 11.4.7.1
// gives them: ID in bits 31:24, version 0x14 with max LVT 6, DFR all
// ones, SVR 0xFF (software disabled), every LVT entry masked, everything
// else 0.
func TestPowerUpValues(t *testing.T) {
	for _, id := range []uint32{0, 3, MaxID} {
		r := newRig(t, id)
		want := map[string]uint32{}
		for _, off := range allRegisters() {
			want[fmt.Sprintf("%#03x", off)] = 0
		}
		want["0x020"] = id << 24
		want["0x030"] = 0x00060014
		want["0x0e0"] = 0xFFFFFFFF
		want["0x0f0"] = 0xFF
		for i := range NumLVT {
			want[fmt.Sprintf("%#03x", lvtOffset(i))] = 0x00010000
		}
		if diff := cmp.Diff(want, r.dump()); diff != "" {
			t.Errorf("ID %d: registers after power-up (-want +got):\n%s", id, diff)
		}
	}
}

// TestRegisterWriteMasks writes all ones (and then zero) to each writable
// register and reads back only the bits the register implements.
func TestRegisterWriteMasks(t *testing.T) {
	for _, c := range []struct {
		name      string
		off       uint32
		ones, zer uint32 // read back after writing 0xFFFFFFFF, then 0
	}{
		{"TPR", RegTPR, 0xFF, 0},
		{"LDR", RegLDR, 0xFF000000, 0},
		{"DFR", RegDFR, 0xFFFFFFFF, 0x0FFFFFFF},
		{"ICR high", RegICRHigh, 0xFF000000, 0},
		{"LVT CMCI", RegLVTCMCI, 0x000107FF, 0},
		{"LVT timer", RegLVTTimer, 0x000700FF, 0},
		{"LVT thermal", RegLVTThermal, 0x000107FF, 0},
		{"LVT perf", RegLVTPerf, 0x000107FF, 0},
		{"LVT LINT0", RegLVTLINT0, 0x0001A7FF, 0},
		{"LVT LINT1", RegLVTLINT1, 0x0001A7FF, 0},
		{"LVT error", RegLVTError, 0x000100FF, 0},
		{"initial count", RegTimerInitial, 0xFFFFFFFF, 0},
		{"divide", RegTimerDivide, 0xB, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, 1)
			r.enable()
			r.write(c.off, 0xFFFFFFFF)
			if got := r.read(c.off); got != c.ones {
				t.Errorf("after writing all ones: %#x, want %#x", got, c.ones)
			}
			r.write(c.off, 0)
			if got := r.read(c.off); got != c.zer {
				t.Errorf("after writing 0: %#x, want %#x", got, c.zer)
			}
		})
	}
	// SVR: bits 9:0; writing 0 disables the APIC again.
	r := newRig(t, 1)
	r.write(RegSVR, 0xFFFFFFFF)
	if got := r.read(RegSVR); got != 0x3FF {
		t.Errorf("SVR after writing all ones: %#x, want 0x3ff", got)
	}
	// ICR low: the IPI's fields; delivery status (bit 12) reads 0.
	r.write(RegICRHigh, 0xFF000000)
	r.write(RegICRLow, 0xFFFFFFFF)
	if got := r.read(RegICRLow); got != 0x000CCFFF {
		t.Errorf("ICR low after writing all ones: %#x, want 0xccfff", got)
	}
}

// TestReadOnlyRegisters writes to each read-only register and checks that
// neither it nor anything else changed.
func TestReadOnlyRegisters(t *testing.T) {
	r := newRig(t, 2)
	r.enable()
	r.write(RegTPR, 0x20)
	r.l.Deliver(0x41, true) // IRR and TMR
	r.l.Deliver(0x92, false)
	r.take(t) // 0x92 into ISR
	r.write(RegTimerInitial, 5000)
	r.clk.add(1000)
	before := r.dump()
	var ro []uint32
	ro = append(ro, RegID, RegVersion, RegAPR, RegPPR, RegRRD, RegTimerCurrent)
	for i := uint32(0); i < 8; i++ {
		ro = append(ro, RegISR+i*0x10, RegTMR+i*0x10, RegIRR+i*0x10)
	}
	for _, off := range ro {
		for _, v := range []uint32{0, 0xFFFFFFFF, 0x12345678} {
			r.write(off, v)
		}
	}
	if diff := cmp.Diff(before, r.dump()); diff != "" {
		t.Errorf("writes to read-only registers changed registers (-before +after):\n%s", diff)
	}
	if got := r.l.Pending(); got != -1 {
		t.Errorf("Pending = %#x, want -1 (0x41 is below 0x92 in service)", got)
	}
}

// TestOtherAccesses: sizes other than 4, unaligned offsets and offsets
// beyond the page read 0 and change nothing, without an error; reserved
// aligned offsets read 0, change nothing and set ESR bit 7.
func TestOtherAccesses(t *testing.T) {
	r := newRig(t, 1)
	r.enable()
	r.write(RegTPR, 0x30)
	before := r.dump()
	for _, a := range []struct {
		off  uint64
		size int
	}{
		{RegTPR, 1}, {RegTPR, 2}, {RegTPR, 8}, {RegTPR + 1, 4}, {RegTPR + 4, 4}, {RegTPR + 8, 1},
		{PageSize, 4}, {PageSize + RegTPR, 4}, {1 << 63, 4}, {RegSVR, 0}, {RegSVR, -4},
	} {
		if got := r.l.Read(a.off, a.size); got != 0 {
			t.Errorf("Read(%#x, %d) = %#x, want 0", a.off, a.size, got)
		}
		r.l.Write(a.off, a.size, 0)
	}
	r.write(RegESR, 0)
	if diff := cmp.Diff(before, r.dump()); diff != "" {
		t.Errorf("odd accesses changed registers (-before +after):\n%s", diff)
	}

	reserved := []uint32{0x000, 0x010, 0x040, 0x070, 0x290, 0x2E0, 0x3A0, 0x3D0, 0x3F0, 0x400, 0xFF0}
	for _, off := range reserved {
		r.write(RegESR, 0)
		r.write(RegESR, 0) // clear what the previous round latched
		if got := r.read(off); got != 0 {
			t.Errorf("reserved %#x reads %#x, want 0", off, got)
		}
		r.write(RegESR, 0)
		if got := r.read(RegESR); got != ESRIllegalRegister {
			t.Errorf("after reading reserved %#x: ESR %#x, want %#x", off, got, ESRIllegalRegister)
		}
		r.write(off, 0xFFFFFFFF)
		r.write(RegESR, 0)
		if got := r.read(RegESR); got != ESRIllegalRegister {
			t.Errorf("after writing reserved %#x: ESR %#x, want %#x", off, got, ESRIllegalRegister)
		}
	}
}

// TestSoftwareDisableMasksLVT: clearing SVR bit 8 masks every LVT entry,
// and no entry can be unmasked until the APIC is software enabled again.
func TestSoftwareDisableMasksLVT(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	for i := range NumLVT {
		r.write(lvtOffset(i), 0x40+uint32(i))
		if got := r.read(lvtOffset(i)); got&LVTMasked != 0 {
			t.Fatalf("LVT %d still masked after an unmasking write while enabled: %#x", i, got)
		}
	}
	r.write(RegSVR, 0xFF)
	for i := range NumLVT {
		if got, want := r.read(lvtOffset(i)), 0x40+uint32(i)|LVTMasked; got != want {
			t.Errorf("LVT %d after software disable: %#x, want %#x", i, got, want)
		}
		r.write(lvtOffset(i), 0x50)
		if got := r.read(lvtOffset(i)); got != 0x50|LVTMasked {
			t.Errorf("LVT %d unmasked while software disabled: %#x", i, got)
		}
	}
	r.enable()
	if got := r.read(RegLVTLINT0); got&LVTMasked == 0 {
		t.Errorf("software enable unmasked LINT0: %#x", got)
	}
}

// TestLINTQueries: LINT0ExtINT and LINT1NMI follow the LVT entries, and
// are true with the APIC globally disabled (the pins then go straight to
// the CPU).
func TestLINTQueries(t *testing.T) {
	r := newRig(t, 0)
	if r.l.LINT0ExtINT() || r.l.LINT1NMI() {
		t.Fatal("LINT0 or LINT1 reported open after power-up, when both are masked")
	}
	r.enable()
	r.write(RegLVTLINT0, 0x700) // ExtINT, unmasked (Linux's virtual wire)
	r.write(RegLVTLINT1, 0x400) // NMI
	if !r.l.LINT0ExtINT() || !r.l.LINT1NMI() {
		t.Error("virtual-wire LINT0 ExtINT and LINT1 NMI not reported")
	}
	r.write(RegLVTLINT0, 0x700|LVTMasked)
	r.write(RegLVTLINT1, 0x000) // fixed mode
	if r.l.LINT0ExtINT() || r.l.LINT1NMI() {
		t.Error("masked LINT0 or fixed-mode LINT1 reported open")
	}
	if err := r.l.WriteBaseMSR(Base | BaseBSP); err != nil {
		t.Fatal(err)
	}
	if !r.l.LINT0ExtINT() || !r.l.LINT1NMI() {
		t.Error("globally disabled APIC: LINT0 and LINT1 are the INTR and NMI pins")
	}
}

// TestESRLatch: errors are seen only after a write to the ESR, and the
// next write clears them.
func TestESRLatch(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.l.Deliver(3, false)
	if got := r.read(RegESR); got != 0 {
		t.Errorf("ESR before the latching write: %#x, want 0", got)
	}
	r.write(RegESR, 0)
	if got := r.read(RegESR); got != ESRReceiveIllegalVector {
		t.Errorf("ESR after the latching write: %#x, want %#x", got, ESRReceiveIllegalVector)
	}
	r.write(RegESR, 0xFFFFFFFF) // the value written does not matter
	if got := r.read(RegESR); got != 0 {
		t.Errorf("ESR after a second write: %#x, want 0", got)
	}
}
