package emul

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// gobRoundTrip encodes v, decodes it into a fresh T and returns both the
// copy and the encoding.
func gobRoundTrip[T any](t *testing.T, v T) (T, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatalf("encode: %v", err)
	}
	enc := append([]byte(nil), buf.Bytes()...)
	var out T
	if err := gob.NewDecoder(&buf).Decode(&out); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out, enc
}

// pcRig is a PC on a fake clock whose wall clock is host plus the clock:
// two rigs with different hosts stand for one VM on two host times.
type pcRig struct {
	clk     *FakeClock
	host    time.Time
	bus     Bus
	pc      *PC
	console bytes.Buffer

	changes, reprograms int
}

func newPCRig(host time.Time, at time.Duration) *pcRig {
	r := &pcRig{clk: &FakeClock{}, host: host}
	r.clk.Set(at)
	r.pc = NewPC(&r.bus, r.clk, &r.console, func() time.Time { return r.host.Add(r.clk.Now()) })
	r.pc.PIC.OnChange = func() { r.changes++ }
	r.pc.PIT.OnReprogram = func() { r.reprograms++ }
	return r
}

func (r *pcRig) out(port uint16, v uint8) { r.bus.Out(port, 1, uint32(v)) }
func (r *pcRig) in(port uint16) uint8     { return uint8(r.bus.In(port, 1)) }

var hostA = time.Date(2025, 5, 17, 8, 30, 0, 0, time.UTC)

// busyPC is a PC with something in flight in every device, as a Linux
// guest leaves it between two events:
//   - PIC: programmed as Linux does, the slave's priorities rotated, its
//     IRQ 9 level-triggered by the ELCR and requesting, IRQ 0 in service, IRQ 4 and the cascade
//     requesting behind it;
//   - PIT: counter 0 in mode 2 at 100 Hz, mid-period, with a new count
//     waiting for the period's end; counter 1 in BCD mode 3 with a
//     read-back status latched; counter 2 in mode 0 gated on by port 0x61,
//     its latched count half read;
//   - UART: 8N1 with FIFOs at trigger 14, five bytes received, a byte sent,
//     the THR-empty interrupt pending and the line high;
//   - RTC: binary mode, CMOS RAM written, NMI masked, an index selected;
//   - port 0x80 code, port 0x92, and the keyboard controller waiting for
//     the data byte of command 0xD1.
func busyPC(t *testing.T) *pcRig {
	t.Helper()
	r := newPCRig(hostA, 3*time.Second+123456789)
	pic := r.pc.PIC
	linuxInitPIC(t, pic, 0x01)
	unmask(pic, 0)
	unmask(pic, COM1IRQ)
	unmask(pic, 9)
	r.out(PICELCRSlave, 0x0E) // IRQ 9-11 level-triggered
	r.out(PICSlaveCmd, 0xC3)  // set priority: IRQ 11 lowest on the slave
	pic.SetLine(9, true)

	r.out(PITControl, 0x34) // counter 0, LSB then MSB, mode 2
	r.out(PITCounter0, uint8(11932&0xFF))
	r.out(PITCounter0, uint8(11932>>8))
	r.out(PITControl, 0x57) // counter 1, LSB, mode 3, BCD
	r.out(PITCounter1, 0x50)
	r.out(SysCtlPortB, r.in(SysCtlPortB)&^portBSpeaker|portBGate2)
	r.out(PITControl, 0xB0) // counter 2, LSB then MSB, mode 0
	r.out(PITCounter2, 0xFF)
	r.out(PITCounter2, 0xFF)

	r.clk.Add(25 * time.Millisecond)
	r.pc.PIT.Advance(r.clk.Now())
	if !pic.Pending() {
		t.Fatal("no timer interrupt after 25 ms")
	}
	if v, ok := pic.Ack(); v != 0x30 || !ok {
		t.Fatalf("Ack = %#x %v, want 0x30", v, ok)
	}
	r.out(PITCounter0, uint8(5966&0xFF)) // a new period from the next reload
	r.out(PITCounter0, uint8(5966>>8))
	r.out(PITControl, 0xE4) // read-back: counter 1's status only
	r.out(PITControl, 0x80) // latch counter 2
	_ = r.in(PITCounter2)   // and read its LSB

	r.out(com1LCR, 0x83)
	r.out(COM1Base+uartDLL, 1)
	r.out(COM1Base+uartDLM, 0)
	r.out(com1LCR, 0x03)
	r.out(com1FCR, 0xC7)
	r.out(com1MCR, mcrDTR|mcrRTS|mcrOUT2)
	r.out(com1SCR, 0x5A)
	r.out(com1IER, ierRDA|ierTHRE)
	r.pc.UART.Feed([]byte("hello"))
	r.out(com1THR, 'x')

	for i := uint8(0x10); i < 0x20; i++ {
		cmosWrite(r.pc.RTC, i, i*7)
	}
	r.pc.RTC.SetCMOS(0x40, 0xAB)
	cmosWrite(r.pc.RTC, rtcRegB, regB24|regBDM)
	r.out(RTCIndex, rtcNMIMask|rtcSeconds)

	r.out(POSTPort, 0x42)
	r.out(SysCtlPortA, portAA20)
	_ = r.in(SysCtlPortB) // toggle the refresh bit
	r.out(i8042Status, i8042CmdWriteOut)

	if pic.Pending() {
		t.Fatal("an interrupt outranks IRQ 0 in service")
	}
	return r
}

// vectorIRQ is the ISA line of a vector under linuxInitPIC.
func vectorIRQ(v uint8) int { return int(v) - 0x30 }

// script drives a PC as a guest and its VM would over the next events,
// and returns everything the guest could observe: port reads, interrupt
// vectors, deadlines, console output and wake-ups.
func script(r *pcRig) []string {
	var log []string
	note := func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) }
	before := r.console.Len()
	r.changes, r.reprograms = 0, 0

	probe := func() {
		for ch := uint16(0); ch < 3; ch++ {
			a, b := r.in(PITCounter0+ch), r.in(PITCounter0+ch)
			note("pit%d reads %#02x %#02x", ch, a, b)
		}
		r.out(PITControl, 0x00)
		note("pit0 latched %#02x %#02x", r.in(PITCounter0), r.in(PITCounter0))
		r.out(PITControl, 0xEE) // read-back status of all three
		for ch := uint16(0); ch < 3; ch++ {
			note("pit%d status %#02x", ch, r.in(PITCounter0+ch))
		}
		note("port61 %#02x port92 %#02x post %#02x kbd %#02x", r.in(SysCtlPortB), r.in(SysCtlPortA), r.pc.Sys.POST(), r.in(i8042Status))
		for _, p := range []uint16{PICMasterCmd, PICSlaveCmd} {
			r.out(p, 0x0A)
			irr := r.in(p)
			r.out(p, 0x0B)
			isr := r.in(p)
			note("pic %#02x irr %#02x isr %#02x imr %#02x", p, irr, isr, r.in(p+1))
		}
		note("elcr %#02x %#02x", r.in(PICELCRMaster), r.in(PICELCRSlave))
		note("nmi masked %v, overruns %d", r.pc.RTC.NMIMasked(), r.pc.UART.Overruns())
		note("rtc data at the selected index %#02x", r.in(RTCData))
		for _, i := range []uint8{0, 2, 4, 6, 7, 8, 9, 0x32, 0x0A, 0x0B, 0x0C, 0x0D, 0x10, 0x1F, 0x40} {
			note("cmos %#02x = %#02x", i, cmosRead(r.pc.RTC, i))
		}
		note("uart lcr %#02x mcr %#02x lsr %#02x msr %#02x scr %#02x", r.in(com1LCR), r.in(com1MCR), r.in(com1LSR), r.in(COM1Base+uartMSR), r.in(com1SCR))
	}

	// The serial driver's interrupt handler: IIR until no interrupt,
	// draining the receiver; a THR-empty interrupt sends one byte the
	// first time round.
	sent := false
	serial := func() {
		for range 8 {
			iir := r.in(com1IIR)
			note("uart iir %#02x", iir)
			switch iir &^ iirFIFO {
			case iirNone:
				return
			case iirRDA, iirTimeout:
				for r.in(com1LSR)&lsrDR != 0 {
					note("uart rx %q", r.in(COM1Base+uartRBR))
				}
			case iirTHRE:
				if !sent {
					r.out(com1THR, 'y')
					sent = true
				}
			}
		}
	}

	probe()
	linuxEOI(r.pc.PIC, 0) // end the interrupt in service at the save
	for i := range 40 {
		now := r.clk.Add(time.Duration(1+i%7) * time.Millisecond)
		r.pc.PIT.Advance(now)
		dl, ok := r.pc.PIT.NextDeadline()
		note("t=%v deadline %v %v pending %v out2 %v", now, dl, ok, r.pc.PIC.Pending(), r.pc.PIT.Output(2))
		for r.pc.PIC.Pending() {
			v, ok := r.pc.PIC.Ack()
			note("ack %#02x %v", v, ok)
			irq := vectorIRQ(v)
			if irq == COM1IRQ {
				serial()
			}
			if irq == 9 {
				r.pc.PIC.SetLine(9, false) // the device is serviced
			}
			linuxEOI(r.pc.PIC, irq)
		}
		switch i {
		case 5:
			r.pc.UART.Feed([]byte("more input"))
		case 11:
			r.out(PITControl, 0x30) // counter 0 one-shot
			r.out(PITCounter0, 0x00)
			r.out(PITCounter0, 0x10)
		case 17:
			r.out(SysCtlPortB, r.in(SysCtlPortB)&^portBGate2)
		case 23:
			r.out(i8042Data, 0xFF) // the 0xD1 data byte: no reset
		case 29:
			probe()
		}
	}
	probe()
	// The RTC over the next seconds, stepping to just inside the update
	// window before each second (found from the saved state, which
	// reading does not change) and then past it.
	for range 3 {
		rtc := r.pc.RTC.Save()
		r.clk.Add(time.Second - time.Duration(rtc.Nanos) - 100*time.Microsecond)
		note("rtc A %#02x seconds %d", cmosRead(r.pc.RTC, rtcRegA), cmosRead(r.pc.RTC, rtcSeconds))
		r.clk.Add(200 * time.Microsecond)
		note("rtc A %#02x seconds %d", cmosRead(r.pc.RTC, rtcRegA), cmosRead(r.pc.RTC, rtcSeconds))
		r.pc.PIT.Advance(r.clk.Now())
		note("pit0 %#02x %#02x pending %v", r.in(PITCounter0), r.in(PITCounter0), r.pc.PIC.Pending())
	}
	note("console %q", r.console.String()[before:])
	note("wake-ups %d re-arms %d", r.changes, r.reprograms)
	return log
}

// restoreCopy saves r, passes the state through gob and restores it into
// a PC on host time host whose clock reads at.
func restoreCopy(t *testing.T, r *pcRig, host time.Time, at time.Duration) (*pcRig, PCState, []byte) {
	t.Helper()
	st := r.pc.Save()
	dec, enc := gobRoundTrip(t, st)
	c := newPCRig(host, at)
	if err := c.pc.Restore(dec); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return c, st, enc
}

func TestPCRoundTrip(t *testing.T) {
	a := busyPC(t)
	// The same VM clock, seven hours later on the host.
	b, st1, enc1 := restoreCopy(t, a, hostA.Add(7*time.Hour+time.Second/3), a.clk.Now())
	if b.reprograms != 1 {
		t.Errorf("Restore called OnReprogram %d times, want 1 (the VM re-arms its timer)", b.reprograms)
	}
	st2 := b.pc.Save()
	_, enc2 := gobRoundTrip(t, st2)
	if d := cmp.Diff(st1, st2); d != "" {
		t.Fatalf("state after restore differs (-saved +restored):\n%s", d)
	}
	if !bytes.Equal(enc1, enc2) {
		t.Fatal("encodings differ with equal states")
	}

	// The state is the busy one it was meant to be.
	m, s := st1.PIC.Chips[0], st1.PIC.Chips[1]
	c0, c2 := st1.PIT.Counters[0], st1.PIT.Counters[2]
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"IRQ 0 in service", m.ISR == 1<<0},
		{"IRQ 4 and the cascade requesting", m.IRR&(1<<COM1IRQ) != 0 && s.IRR&(1<<1) != 0},
		{"counter 0 counting with a reload pending", c0.Phase == uint8(pitCounting) && c0.Pending},
		{"counter 1 status latched", st1.PIT.Counters[1].StatusLatched},
		{"counter 2 latch half read", c2.Latched && c2.ReadHi},
		{"receive queue holds hello", string(st1.UART.RX) == "hello"},
		{"THR-empty interrupt pending", st1.UART.THREPending},
		{"CMOS RAM written", st1.RTC.RAM[0x40] == 0xAB && st1.RTC.RAM[0x1F] == 0x1F*7},
		{"keyboard controller waits for data", st1.KBD.Pending == i8042CmdWriteOut},
	} {
		if !c.ok {
			t.Errorf("busy PC: want %s", c.what)
		}
	}

	ea, ok := a.pc.PIT.NextDeadline()
	eb, okb := b.pc.PIT.NextDeadline()
	if ea != eb || ok != okb || !ok {
		t.Errorf("NextDeadline %v %v after restore, want %v %v", eb, okb, ea, ok)
	}

	la, lb := script(a), script(b)
	if d := cmp.Diff(la, lb); d != "" {
		t.Errorf("restored PC behaves differently (-original +restored):\n%s", d)
	}
	if d := cmp.Diff(a.pc.Save(), b.pc.Save()); d != "" {
		t.Errorf("states differ after the same events (-original +restored):\n%s", d)
	}
}

// TestPCRestoreLaterClock restores on a clock that has moved on since the
// save: the restored PC matches the original left alone for as long.
func TestPCRestoreLaterClock(t *testing.T) {
	a := busyPC(t)
	later := a.clk.Now() + 7*time.Millisecond + 777
	b, _, _ := restoreCopy(t, a, hostA.Add(-48*time.Hour), later)
	a.clk.Set(later)
	if d := cmp.Diff(script(a), script(b)); d != "" {
		t.Errorf("restored PC behaves differently (-original +restored):\n%s", d)
	}
}
