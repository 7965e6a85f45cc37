package lapic

import (
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv/emul"
)

// fakeClock is the devices' test clock (hv/emul), with the short names
// these tests use.
type fakeClock struct{ emul.FakeClock }

func (c *fakeClock) set(t time.Duration)               { c.Set(t) }
func (c *fakeClock) add(d time.Duration) time.Duration { return c.Add(d) }

// rig is one LAPIC on a fake clock, counting its callbacks.
type rig struct {
	l          *LAPIC
	clk        *fakeClock
	interrupts int
	reprograms int
	levelEOIs  []uint8
	sent       []IPI
}

// SendIPI records the IPIs the rig's LAPIC sends when it has no Group.
func (r *rig) SendIPI(src uint32, ipi IPI) { r.sent = append(r.sent, ipi) }

func newRig(t testing.TB, id uint32) *rig {
	t.Helper()
	r := &rig{clk: &fakeClock{}}
	l, err := New(Config{
		ID: id, BSP: id == 0, Clock: r.clk, Bus: r,
		OnInterrupt: func() { r.interrupts++ },
		OnReprogram: func() { r.reprograms++ },
		OnLevelEOI:  func(v uint8) { r.levelEOIs = append(r.levelEOIs, v) },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.l = l
	return r
}

func (r *rig) read(off uint32) uint32     { return r.l.Read(uint64(off), 4) }
func (r *rig) write(off uint32, v uint32) { r.l.Write(uint64(off), 4, v) }

// enable software-enables the APIC with spurious vector 0xFF, as Linux's
// setup_local_APIC does.
func (r *rig) enable() { r.write(RegSVR, SVREnable|0xFF) }

// take is the CPU taking the pending interrupt: Pending, then Ack. It
// returns -1 when nothing is pending.
func (r *rig) take(t testing.TB) int {
	t.Helper()
	v := r.l.Pending()
	if v < 0 {
		return -1
	}
	if !r.l.Ack(uint8(v)) {
		t.Fatalf("Ack(%#x) of the pending vector failed", v)
	}
	return v
}

// eoi writes the EOI register.
func (r *rig) eoi() { r.write(RegEOI, 0) }

// bitOf reports whether vector v is set in the 256-bit register at base
// (ISR, TMR or IRR).
func (r *rig) bitOf(base uint32, v uint8) bool {
	return r.read(base+uint32(v/32)*0x10)&(1<<(v%32)) != 0
}
