package emul

import (
	"testing"
	"time"
)

// pitRig is a PIT on a fake clock, with the PIC programmed as Linux does
// and IRQ 0 unmasked.
type pitRig struct {
	clk *FakeClock
	pic *PIC
	pit *PIT
	sys *SysCtl
}

func newPITRig(t *testing.T) *pitRig {
	t.Helper()
	// The devices exist from power-on; the guest programs the PIC later.
	r := &pitRig{clk: &FakeClock{}, pic: NewPIC()}
	r.pit = NewPIT(r.clk, r.pic)
	r.sys = NewSysCtl(r.pit)
	linuxInitPIC(t, r.pic, 0x01)
	unmask(r.pic, 0)
	return r
}

// at moves the clock to the first instant of PIT tick k.
func (r *pitRig) at(k int64) { r.clk.Set(pitTime(k)) }

// program writes a control word and, unless access is latch, a count.
func (r *pitRig) program(ch int, control uint8, count uint16) {
	outb(r.pit, PITControl, control)
	port := PITCounter0 + uint16(ch)
	switch (control >> 4) & 3 {
	case 1:
		outb(r.pit, port, uint8(count))
	case 2:
		outb(r.pit, port, uint8(count>>8))
	case 3:
		outb(r.pit, port, uint8(count))
		outb(r.pit, port, uint8(count>>8))
	}
}

// latched reads counter ch through the counter-latch command (Linux's
// i8253 clocksource read: control 0x00 then LSB and MSB).
func (r *pitRig) latched(ch int) uint16 {
	outb(r.pit, PITControl, uint8(ch)<<6)
	port := PITCounter0 + uint16(ch)
	lo := inb(r.pit, port)
	hi := inb(r.pit, port)
	return uint16(lo) | uint16(hi)<<8
}

// ackIRQ0 reports whether IRQ 0 is pending and, if so, takes and ends it.
func (r *pitRig) ackIRQ0(t *testing.T) bool {
	t.Helper()
	if !r.pic.Pending() {
		return false
	}
	if v, ok := r.pic.Ack(); v != 0x30 || !ok {
		t.Fatalf("Ack = %#x %v, want IRQ 0's 0x30", v, ok)
	}
	linuxEOI(r.pic, 0)
	return true
}

func TestPITTickConversion(t *testing.T) {
	for _, k := range []int64{0, 1, 2, 1193, 1193181, 1193182, 1193183, 4773 * 250, 3600 * PITFrequency * 5, 1<<40 + 7} {
		d := pitTime(k)
		if got := pitTicks(d); got != k {
			t.Errorf("pitTicks(pitTime(%d)) = %d", k, got)
		}
		if k > 0 && pitTicks(d-1) >= k {
			t.Errorf("pitTime(%d) = %v is not the first instant of the tick", k, d)
		}
	}
	if got := pitTicks(time.Second); got != PITFrequency {
		t.Errorf("ticks in a second = %d", got)
	}
	if got := pitTicks(10 * time.Hour); got != 10*3600*PITFrequency {
		t.Errorf("ticks in ten hours = %d", got)
	}
}

func TestPITCountAndOutput(t *testing.T) {
	tests := []struct {
		name    string
		control uint8
		count   uint16
		tick    int64
		want    uint16
		out     bool
	}{
		// Mode 2, Linux's HZ=1000 period (PIT_LATCH 1193).
		{"mode 2 at load", 0x34, 1193, 0, 1193, true},
		{"mode 2 one tick", 0x34, 1193, 1, 1192, true},
		{"mode 2 count 1 is low", 0x34, 1193, 1192, 1, false},
		{"mode 2 reload", 0x34, 1193, 1193, 1193, true},
		{"mode 2 periods later", 0x34, 1193, 1193*7 + 100, 1093, true},
		{"mode 2 count 0 is 65536", 0x34, 0, 1, 0xFFFF, true},
		// Mode 0 one-shot.
		{"mode 0 at load", 0x30, 1000, 0, 1000, false},
		{"mode 0 before terminal", 0x30, 1000, 999, 1, false},
		{"mode 0 terminal count", 0x30, 1000, 1000, 0, true},
		{"mode 0 wraps and stays high", 0x30, 1000, 1001, 0xFFFF, true},
		{"mode 0 count 0", 0x30, 0, 65535, 1, false},
		{"mode 0 count 0 terminal", 0x30, 0, 65536, 0, true},
		// Mode 4 software strobe: low for the tick at terminal count.
		{"mode 4 before", 0x38, 500, 499, 1, true},
		{"mode 4 strobe", 0x38, 500, 500, 0, false},
		{"mode 4 after", 0x38, 500, 501, 0xFFFF, true},
		// Mode 3 square wave, even count: high half then low half.
		{"mode 3 start", 0x36, 100, 0, 100, true},
		{"mode 3 high half", 0x36, 100, 10, 80, true},
		{"mode 3 low half", 0x36, 100, 50, 100, false},
		{"mode 3 low half later", 0x36, 100, 60, 80, false},
		{"mode 3 next period", 0x36, 100, 100, 100, true},
		{"mode 3 odd high", 0x36, 101, 50, 1, true},
		{"mode 3 odd low", 0x36, 101, 51, 101, false},
		// LSB-only and MSB-only access.
		{"LSB only", 0x14, 200, 50, 150, true},
		{"MSB only", 0x24, 0x0200, 0x100, 0x100, true},
		// BCD: 1000 decimal counts as 0x1000 in BCD.
		{"BCD mode 2", 0x35, 0x1000, 1, 0x0999, true},
		{"BCD mode 0 wrap", 0x31, 0x0005, 6, 0x9999, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPITRig(t)
			r.at(1000)
			r.program(0, tt.control, tt.count)
			r.at(1000 + tt.tick)
			var got uint16
			switch (tt.control >> 4) & 3 {
			case 1:
				outb(r.pit, PITControl, 0x00)
				got = uint16(inb(r.pit, PITCounter0))
			case 2:
				outb(r.pit, PITControl, 0x00)
				got = uint16(inb(r.pit, PITCounter0)) << 8
			default:
				got = r.latched(0)
			}
			mask := uint16(0xFFFF)
			switch (tt.control >> 4) & 3 {
			case 1:
				mask = 0x00FF
			case 2:
				mask = 0xFF00
			}
			if got != tt.want&mask {
				t.Errorf("count = %#x, want %#x", got, tt.want&mask)
			}
			if o := r.pit.Output(0); o != tt.out {
				t.Errorf("output = %v, want %v", o, tt.out)
			}
		})
	}
}

func TestPITPeriodicIRQ(t *testing.T) {
	r := newPITRig(t)
	var reprogrammed int
	r.pit.OnReprogram = func() { reprogrammed++ }
	if _, ok := r.pit.NextDeadline(); ok {
		t.Error("deadline before counter 0 is programmed")
	}
	r.at(500)
	// clockevent_i8253's periodic set-up: mode 2, binary, LSB then MSB.
	r.program(0, 0x34, 1193)
	if reprogrammed == 0 {
		t.Error("OnReprogram not called")
	}
	if r.ackIRQ0(t) {
		t.Error("IRQ 0 right after programming (the output was already high)")
	}
	for i := int64(1); i <= 5; i++ {
		d, ok := r.pit.NextDeadline()
		if want := pitTime(500 + i*1193); !ok || d != want {
			t.Fatalf("period %d: deadline %v %v, want %v", i, d, ok, want)
		}
		r.pit.Advance(d - 1)
		if r.ackIRQ0(t) {
			t.Fatalf("period %d: IRQ 0 before the deadline", i)
		}
		r.pit.Advance(d)
		if !r.ackIRQ0(t) {
			t.Fatalf("period %d: no IRQ 0 at the deadline", i)
		}
	}
	// Missing several periods yields one interrupt, and the next deadline
	// is the next period after the Advance.
	d, _ := r.pit.NextDeadline()
	late := d + 10*time.Millisecond
	r.pit.Advance(late)
	if !r.ackIRQ0(t) {
		t.Fatal("no IRQ 0 after missed periods")
	}
	if r.ackIRQ0(t) {
		t.Fatal("more than one IRQ 0 for missed periods")
	}
	next, _ := r.pit.NextDeadline()
	if next <= late || next-late > pitTime(1193) {
		t.Errorf("deadline after catching up = %v, last advance %v", next, late)
	}
	// Advancing backwards does nothing.
	r.pit.Advance(late - time.Millisecond)
	if r.ackIRQ0(t) {
		t.Error("IRQ 0 from a backwards Advance")
	}
}

func TestPITOneShotIRQ(t *testing.T) {
	r := newPITRig(t)
	r.at(100)
	// pit_shutdown: mode 0 with no count drives the output low.
	outb(r.pit, PITControl, 0x30)
	if r.pit.Output(0) {
		t.Error("mode 0 output high after the control word")
	}
	// pit_set_oneshot then pit_next_event: mode 4, count 2000.
	outb(r.pit, PITControl, 0x38)
	if !r.ackIRQ0(t) {
		t.Error("mode 4's output rising from mode 0's low gives no IRQ 0")
	}
	r.at(200)
	outb(r.pit, PITCounter0, uint8(2000&0xFF))
	outb(r.pit, PITCounter0, uint8(2000>>8))
	d, ok := r.pit.NextDeadline()
	if want := pitTime(200 + 2000 + 1); !ok || d != want {
		t.Fatalf("mode 4 deadline %v %v, want %v", d, ok, want)
	}
	r.pit.Advance(d - 1)
	if r.ackIRQ0(t) {
		t.Fatal("IRQ 0 before the strobe ends")
	}
	r.pit.Advance(d)
	if !r.ackIRQ0(t) {
		t.Fatal("no IRQ 0 at the end of the strobe")
	}
	if _, ok := r.pit.NextDeadline(); ok {
		t.Error("a mode 4 count fires once")
	}
	r.pit.Advance(d + time.Second)
	if r.ackIRQ0(t) {
		t.Error("a second strobe after the counter wrapped")
	}
	// Mode 0 one-shot on counter 0.
	r.at(pitTicks(d+time.Second) + 10)
	start := pitTicks(r.clk.Now())
	r.program(0, 0x30, 3000)
	d, ok = r.pit.NextDeadline()
	if want := pitTime(start + 3000); !ok || d != want {
		t.Fatalf("mode 0 deadline %v %v, want %v", d, ok, want)
	}
	r.pit.Advance(d)
	if !r.ackIRQ0(t) {
		t.Fatal("no IRQ 0 at mode 0 terminal count")
	}
	if _, ok := r.pit.NextDeadline(); ok {
		t.Error("deadline after mode 0 fired")
	}
}

// TestPITCalibrationLoops runs the two ways Linux 6.12 (no HPET) measures
// the TSC against counter 2, through port 0x61 as Linux does.
func TestPITCalibrationLoops(t *testing.T) {
	t.Run("pit_calibrate_tsc", func(t *testing.T) {
		r := newPITRig(t)
		r.at(12345)
		// Gate high, speaker off.
		outb(r.sys, SysCtlPortB, inb(r.sys, SysCtlPortB)&^0x02|0x01)
		// Counter 2, mode 0, binary, 10 ms: latch 11931.
		const latch = PITFrequency / 100
		outb(r.pit, PITControl, 0xB0)
		outb(r.pit, PITCounter2, latch&0xFF)
		outb(r.pit, PITCounter2, latch>>8)
		start := r.clk.Now()
		polls := 0
		for inb(r.sys, SysCtlPortB)&0x20 == 0 {
			r.clk.Add(3 * time.Microsecond)
			if polls++; polls > 10000 {
				t.Fatal("counter 2 output never rose")
			}
		}
		elapsed := r.clk.Now() - start
		if elapsed < 10*time.Millisecond-time.Microsecond || elapsed > 10*time.Millisecond+4*time.Microsecond {
			t.Errorf("terminal count after %v, want 10ms", elapsed)
		}
	})
	t.Run("quick_pit_calibrate", func(t *testing.T) {
		r := newPITRig(t)
		r.at(777)
		outb(r.sys, SysCtlPortB, inb(r.sys, SysCtlPortB)&^0x02|0x01)
		outb(r.pit, PITControl, 0xB0)
		outb(r.pit, PITCounter2, 0xFF)
		outb(r.pit, PITCounter2, 0xFF)
		start := pitTicks(r.clk.Now())
		// pit_verify_msb / pit_expect_msb read LSB then MSB, no latch;
		// the MSB must step down once every 256 ticks.
		for i := int64(0); i < 200; i++ {
			r.at(start + i*256 + 128)
			inb(r.pit, PITCounter2)
			if msb := inb(r.pit, PITCounter2); msb != uint8(0xFF-i) {
				t.Fatalf("at tick %d: MSB %#x, want %#x", i*256+128, msb, 0xFF-i)
			}
		}
	})
	t.Run("gate off holds the count", func(t *testing.T) {
		r := newPITRig(t)
		outb(r.pit, PITControl, 0xB0)
		outb(r.pit, PITCounter2, 0x00)
		outb(r.pit, PITCounter2, 0x10) // 4096, gate still off
		r.at(1000)
		if got := r.latched(2); got != 0x1000 {
			t.Errorf("count with the gate off = %#x", got)
		}
		outb(r.sys, SysCtlPortB, 0x01)
		r.at(1100)
		if got := r.latched(2); got != 0x1000-100 {
			t.Errorf("count after 100 ticks gated on = %#x", got)
		}
		outb(r.sys, SysCtlPortB, 0x00)
		r.at(5000)
		if got := r.latched(2); got != 0x1000-100 {
			t.Errorf("count paused = %#x", got)
		}
		outb(r.sys, SysCtlPortB, 0x01)
		r.at(5000 + 0x1000 - 101)
		if inb(r.sys, SysCtlPortB)&0x20 != 0 {
			t.Error("output high a tick early")
		}
		r.at(5000 + 0x1000 - 100)
		if inb(r.sys, SysCtlPortB)&0x20 == 0 {
			t.Error("output low at terminal count")
		}
	})
	t.Run("mode 2 gate restarts", func(t *testing.T) {
		r := newPITRig(t)
		outb(r.sys, SysCtlPortB, 0x01)
		r.program(2, 0xB4, 300)
		r.at(250)
		outb(r.sys, SysCtlPortB, 0x00)
		if !r.pit.Output(2) {
			t.Error("mode 2 output low with the gate off")
		}
		r.at(400)
		outb(r.sys, SysCtlPortB, 0x01)
		r.at(410)
		if got := r.latched(2); got != 290 {
			t.Errorf("count after the gate restarted = %d, want 290", got)
		}
	})
}

func TestPITLatch(t *testing.T) {
	r := newPITRig(t)
	r.program(0, 0x34, 10000)
	r.at(100)
	outb(r.pit, PITControl, 0x00)
	r.at(200)
	outb(r.pit, PITControl, 0x00) // ignored: the first latch is unread
	r.at(300)
	if got := inb(r.pit, PITCounter0); got != uint8(9900&0xFF) {
		t.Errorf("latched LSB = %#x", got)
	}
	r.at(400)
	if got := inb(r.pit, PITCounter0); got != uint8(9900>>8) {
		t.Errorf("latched MSB = %#x", got)
	}
	// Unlatched reads follow the counter, LSB then MSB.
	r.at(500)
	lo := inb(r.pit, PITCounter0)
	hi := inb(r.pit, PITCounter0)
	if got := uint16(lo) | uint16(hi)<<8; got != 9500 {
		t.Errorf("live read = %d, want 9500", got)
	}
	// A control word drops a pending latch and stops the count.
	outb(r.pit, PITControl, 0x00)
	outb(r.pit, PITControl, 0x34)
	r.at(900)
	if got := r.latched(0); got != 9500 {
		t.Errorf("count held after control word = %d, want 9500", got)
	}
}

func TestPITReadBack(t *testing.T) {
	r := newPITRig(t)
	r.program(0, 0x34, 1193)
	outb(r.pit, PITControl, 0xB6)
	r.at(10)
	// Latch count and status of counters 0 and 2.
	outb(r.pit, PITControl, 0xC0|0x08|0x02)
	r.at(50)
	if st := inb(r.pit, PITCounter0); st != 0x80|0x34 {
		t.Errorf("counter 0 status = %#x, want %#x", st, 0x80|0x34)
	}
	if got := uint16(inb(r.pit, PITCounter0)) | uint16(inb(r.pit, PITCounter0))<<8; got != 1183 {
		t.Errorf("counter 0 count = %d, want 1183", got)
	}
	if st := inb(r.pit, PITCounter2); st != 0x80|0x40|0x36 {
		t.Errorf("counter 2 status = %#x, want %#x (null count)", st, 0x80|0x40|0x36)
	}
	// Status only.
	outb(r.pit, PITControl, 0xC0|0x20|0x02)
	outb(r.pit, PITControl, 0x00) // a count latch after it
	if st := inb(r.pit, PITCounter0); st != 0x80|0x34 {
		t.Errorf("status-only read-back = %#x", st)
	}
	if got := uint16(inb(r.pit, PITCounter0)) | uint16(inb(r.pit, PITCounter0))<<8; got != 1193-50 {
		t.Errorf("count after status = %d", got)
	}
	if got := inb(r.pit, PITControl); got != 0xFF {
		t.Errorf("control register read = %#x", got)
	}
}

func TestPITNewCountInMode2(t *testing.T) {
	r := newPITRig(t)
	r.program(0, 0x34, 1000)
	r.at(2500)
	// A new count takes effect at the end of the current period (3000).
	outb(r.pit, PITCounter0, 500&0xFF)
	outb(r.pit, PITCounter0, 500>>8)
	if got := r.latched(0); got != 500 {
		t.Errorf("count right after the write = %d, want 500 (old period)", got)
	}
	d, _ := r.pit.NextDeadline()
	if d != pitTime(3000) {
		t.Errorf("deadline = %v, want the old period's end %v", d, pitTime(3000))
	}
	r.pit.Advance(d)
	if !r.ackIRQ0(t) {
		t.Fatal("no IRQ at the old period's end")
	}
	d, _ = r.pit.NextDeadline()
	if d != pitTime(3500) {
		t.Errorf("deadline = %v, want the new period's %v", d, pitTime(3500))
	}
	r.at(3100)
	if got := r.latched(0); got != 400 {
		t.Errorf("count in the new period = %d, want 400", got)
	}
	// Read-back status shows null count until the reload.
	r.at(3200)
	outb(r.pit, PITCounter0, 100)
	outb(r.pit, PITCounter0, 0)
	outb(r.pit, PITControl, 0xE2)
	if st := inb(r.pit, PITCounter0); st&0x40 == 0 {
		t.Errorf("status %#x without null count before the reload", st)
	}
	// An Advance that covers the reload and the new short periods gives
	// one interrupt, and the deadlines follow the new period.
	r.pit.Advance(pitTime(3800))
	if !r.ackIRQ0(t) {
		t.Fatal("no IRQ across the reload")
	}
	d, _ = r.pit.NextDeadline()
	if d != pitTime(3900) {
		t.Errorf("deadline = %v, want %v", d, pitTime(3900))
	}
}

func TestPITMode0FirstByteStops(t *testing.T) {
	r := newPITRig(t)
	r.program(0, 0x30, 100)
	r.at(150)
	if !r.pit.Output(0) {
		t.Fatal("mode 0 output low after terminal count")
	}
	outb(r.pit, PITCounter0, 50)
	if r.pit.Output(0) {
		t.Error("output still high after the first byte of a new count")
	}
	r.at(1000)
	if r.pit.Output(0) {
		t.Error("counted with half a count written")
	}
	outb(r.pit, PITCounter0, 0)
	r.at(1049)
	if r.pit.Output(0) {
		t.Error("output high early")
	}
	r.at(1050)
	if !r.pit.Output(0) {
		t.Error("output low at the new terminal count")
	}
}

func TestPITHardwareTriggeredModes(t *testing.T) {
	r := newPITRig(t)
	// Mode 1 on counter 2: armed by the count, started by the gate.
	r.program(2, 0xB2, 100)
	r.at(500)
	if !r.pit.Output(2) {
		t.Error("mode 1 output low before the trigger")
	}
	outb(r.sys, SysCtlPortB, 0x01)
	r.at(550)
	if r.pit.Output(2) {
		t.Error("mode 1 output high during the one-shot")
	}
	r.at(600)
	if !r.pit.Output(2) {
		t.Error("mode 1 output low after the one-shot")
	}
	// Mode 5: strobe one tick after terminal count.
	outb(r.sys, SysCtlPortB, 0x00)
	r.program(2, 0xBA, 10)
	r.at(700)
	outb(r.sys, SysCtlPortB, 0x01)
	r.at(710)
	if r.pit.Output(2) {
		t.Error("mode 5 no strobe at terminal count")
	}
	r.at(711)
	if !r.pit.Output(2) {
		t.Error("mode 5 strobe longer than a tick")
	}
}

func TestPITNewCountOnCounter2(t *testing.T) {
	r := newPITRig(t)
	outb(r.sys, SysCtlPortB, 0x01)
	r.program(2, 0xB4, 1000) // mode 2
	r.at(1500)
	outb(r.pit, PITCounter2, 200&0xFF)
	outb(r.pit, PITCounter2, 200>>8)
	r.at(2050)
	if got := r.latched(2); got != 150 {
		t.Errorf("count after the reload = %d, want 150", got)
	}
	// A write after the reload point takes the pending reload first.
	outb(r.pit, PITCounter2, 50)
	outb(r.pit, PITCounter2, 0)
	r.at(2199)
	if r.pit.Output(2) {
		t.Error("output high at count 1")
	}
	r.at(2250)
	if got := r.latched(2); got != 50 {
		t.Errorf("count in the third period = %d, want 50", got)
	}
	// A control word freezes the count where it is.
	outb(r.pit, PITControl, 0xB4)
	r.at(9000)
	if got := r.latched(2); got != 50 {
		t.Errorf("count after the control word = %d, want 50", got)
	}
	// Gate changes on counter 0 and out-of-range counters are ignored.
	r.pit.SetGate(0, false)
	r.pit.SetGate(0, true)
	r.pit.SetGate(3, true)
	if r.pit.Output(3) {
		t.Error("counter 3 output")
	}
}
