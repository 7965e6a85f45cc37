package emul

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pitRigState is what a pitRig's devices save.
type pitRigState struct {
	PIT PITState
	PIC PICState
	Sys SysCtlState
}

func (r *pitRig) save() pitRigState {
	return pitRigState{r.pit.Save(), r.pic.Save(), r.sys.Save()}
}

// gate2 sets counter 2's gate through port 0x61.
func (r *pitRig) gate2(on bool) {
	v := inb(r.sys, SysCtlPortB) &^ portBGate2
	if on {
		v |= portBGate2
	}
	outb(r.sys, SysCtlPortB, v)
}

// probe continues a rig over the next ticks and returns what a guest
// sees: counts, outputs, read-back status, IRQ 0 deadlines and vectors.
func (r *pitRig) probe(t *testing.T, from int64) []string {
	var log []string
	for k := int64(1); k <= 24; k++ {
		r.at(from + k*137)
		for ch := range 3 {
			log = append(log, fmt.Sprintf("k=%d ch%d out %v count %d", k, ch, r.pit.Output(ch), r.latched(ch)))
		}
		outb(r.pit, PITControl, 0xDE) // read-back status, all counters
		log = append(log, fmt.Sprintf("status %#02x %#02x %#02x", inb(r.pit, PITCounter0), inb(r.pit, PITCounter1), inb(r.pit, PITCounter2)))
		dl, ok := r.pit.NextDeadline()
		r.pit.Advance(r.clk.Now())
		log = append(log, fmt.Sprintf("deadline %v %v irq0 %v", dl, ok, r.ackIRQ0(t)))
		switch k {
		case 8:
			r.gate2(true)
		case 16:
			r.gate2(false)
		}
	}
	return log
}

// TestPITRoundTrip saves a PIT in each phase of each mode, restores it
// into a fresh PIT on a clock reading the same, and continues both.
func TestPITRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(r *pitRig)
	}{
		{"mode 0 stopped by its first byte", func(r *pitRig) {
			r.program(0, 0x30, 5000)
			r.at(1000)
			outb(r.pit, PITCounter0, 0x34)
		}},
		{"mode 1 armed", func(r *pitRig) { r.program(2, 0xB2, 300) }},
		{"mode 1 triggered mid-count", func(r *pitRig) {
			r.program(2, 0xB2, 3000)
			r.at(50)
			r.gate2(true)
			r.at(1200)
		}},
		{"mode 2 stopped by its gate", func(r *pitRig) {
			r.program(2, 0xB4, 500)
			r.gate2(true)
			r.at(777)
			r.gate2(false)
		}},
		{"mode 2 after a reload from a new count", func(r *pitRig) {
			r.program(0, 0x34, 1000)
			r.at(1500)
			outb(r.pit, PITCounter0, uint8(700&0xFF))
			outb(r.pit, PITCounter0, uint8(700>>8))
			r.at(2300)
			r.pit.Advance(r.clk.Now())
		}},
		{"mode 3 odd count with count and status latched", func(r *pitRig) {
			r.program(0, 0x36, 1001)
			r.at(2500)
			outb(r.pit, PITControl, 0xC2) // read-back count and status of counter 0
			_ = inb(r.pit, PITCounter0)   // the status
		}},
		{"mode 4 paused by its gate", func(r *pitRig) {
			r.program(2, 0xB8, 1000)
			r.gate2(true)
			r.at(400)
			r.gate2(false)
		}},
		{"mode 5 counting, BCD", func(r *pitRig) {
			r.program(2, 0xBB, 0x2000)
			r.gate2(true)
			r.at(900)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newPITRig(t)
			a.at(100)
			c.setup(a)
			st, enc1 := gobRoundTrip(t, a.save())
			b := newPITRig(t)
			b.clk.Set(a.clk.Now())
			if err := b.pic.Restore(st.PIC); err != nil {
				t.Fatal(err)
			}
			if err := b.pit.Restore(st.PIT); err != nil {
				t.Fatal(err)
			}
			if err := b.sys.Restore(st.Sys); err != nil {
				t.Fatal(err)
			}
			st2 := b.save()
			if d := cmp.Diff(a.save(), st2); d != "" {
				t.Fatalf("state after restore differs (-saved +restored):\n%s", d)
			}
			if _, enc2 := gobRoundTrip(t, st2); !bytes.Equal(enc1, enc2) {
				t.Fatal("encodings differ with equal states")
			}
			now := pitTicks(a.clk.Now())
			if d := cmp.Diff(a.probe(t, now), b.probe(t, now)); d != "" {
				t.Errorf("restored PIT behaves differently (-original +restored):\n%s", d)
			}
		})
	}
}
