package lapic

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBaseMSR: the boot vCPU reads 0xFEE00900 and the others 0xFEE00800;
// writes that move the base, set reserved bits or x2APIC mode are refused
// and change nothing; the BSP bit is read-only.
func TestBaseMSR(t *testing.T) {
	bsp, ap := newRig(t, 0), newRig(t, 1)
	if got := bsp.l.ReadBaseMSR(); got != 0xFEE00900 {
		t.Errorf("BSP's APIC base = %#x, want 0xfee00900", got)
	}
	if got := ap.l.ReadBaseMSR(); got != 0xFEE00800 {
		t.Errorf("AP's APIC base = %#x, want 0xfee00800", got)
	}
	for _, v := range []uint64{
		0xFEE00900 | BaseX2APIC,
		0xFEE00D00,             // x2APIC with enable
		0xFED00900,             // moved
		0xFEE01900,             // moved by a page
		0x1_FEE00900,           // a bit above 32
		0xFEE00900 | 1<<63,     // reserved
		0xFEE00901, 0xFEE00B00, // reserved bits 0 and 9
		0,
	} {
		before := bsp.l.Save()
		err := bsp.l.WriteBaseMSR(v)
		if !errors.Is(err, ErrBaseMSR) {
			t.Errorf("WriteBaseMSR(%#x) = %v, want ErrBaseMSR", v, err)
		}
		if diff := cmp.Diff(before, bsp.l.Save()); diff != "" {
			t.Errorf("refused WriteBaseMSR(%#x) changed the state (-before +after):\n%s", v, diff)
		}
	}
	if err := ap.l.WriteBaseMSR(0xFEE00900); err != nil {
		t.Errorf("AP writing the BSP bit: %v", err)
	}
	if got := ap.l.ReadBaseMSR(); got != 0xFEE00800 {
		t.Errorf("AP's APIC base after writing the BSP bit = %#x, want 0xfee00800", got)
	}
}

// TestGlobalDisable: clearing the enable bit resets the registers; the
// page then reads 0, ignores writes and takes no interrupt; enabling again
// leaves the power-up state.
func TestGlobalDisable(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegTPR, 0x20)
	r.write(RegLVTTimer, timerVector)
	r.write(RegTimerInitial, 1000)
	r.l.Deliver(0x40, false)
	if err := r.l.WriteBaseMSR(0xFEE00100); err != nil {
		t.Fatal(err)
	}
	if got := r.l.ReadBaseMSR(); got != 0xFEE00100 {
		t.Errorf("APIC base after disabling = %#x", got)
	}
	if r.l.Enabled() {
		t.Error("Enabled after clearing bit 11")
	}
	for _, off := range allRegisters() {
		if got := r.read(off); got != 0 {
			t.Errorf("disabled APIC: register %#x reads %#x", off, got)
		}
	}
	r.write(RegSVR, SVREnable|0xFF)
	r.l.Deliver(0x50, false)
	if got := r.l.Pending(); got != -1 {
		t.Errorf("disabled APIC presents %#x", got)
	}
	if _, ok := r.l.NextDeadline(); ok || r.fired(t, 5000) {
		t.Error("disabled APIC's timer runs")
	}
	if err := r.l.WriteBaseMSR(0xFEE00900); err != nil {
		t.Fatal(err)
	}
	fresh := newRig(t, 0)
	if diff := cmp.Diff(fresh.dump(), r.dump()); diff != "" {
		t.Errorf("re-enabled APIC's registers differ from power-up (-power-up +got):\n%s", diff)
	}
}

// TestResets: Reset is power-up; InitReset keeps the base MSR.
func TestResets(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegTPR, 0x20)
	r.l.Deliver(0x40, false)
	if err := r.l.WriteBaseMSR(Base | BaseBSP); err != nil {
		t.Fatal(err)
	}
	r.l.InitReset()
	if r.l.Enabled() {
		t.Error("InitReset enabled a globally disabled APIC")
	}
	r.l.Reset()
	if !r.l.Enabled() {
		t.Error("Reset left the APIC globally disabled")
	}
	if diff := cmp.Diff(newRig(t, 0).dump(), r.dump()); diff != "" {
		t.Errorf("registers after Reset (-power-up +got):\n%s", diff)
	}
	if r.reprograms == 0 {
		t.Error("resets did not call OnReprogram")
	}
}
