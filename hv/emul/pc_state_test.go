package emul

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"strings"
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
				for n := 0; n < 32 && r.in(com1LSR)&lsrDR != 0; n++ {
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
		for n := 0; n < 16 && r.pc.PIC.Pending(); n++ { // bounded: a stuck level is an interrupt storm
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

// TestPCRestoreRefuses corrupts one field at a time of a busy PC's state:
// the PC, and the device the field belongs to, refuse it and stay as they
// were.
func TestPCRestoreRefuses(t *testing.T) {
	good := busyPC(t).pc.Save()
	at := time.Duration(good.PIT.Clock)
	pic := func(pc *PC, st *PCState) error { return pc.PIC.Restore(st.PIC) }
	pit := func(pc *PC, st *PCState) error { return pc.PIT.Restore(st.PIT) }
	uart := func(pc *PC, st *PCState) error { return pc.UART.Restore(st.UART) }
	rtc := func(pc *PC, st *PCState) error { return pc.RTC.Restore(st.RTC) }
	sys := func(pc *PC, st *PCState) error { return pc.Sys.Restore(st.Sys) }
	kbd := func(pc *PC, st *PCState) error { return pc.KBD.Restore(st.KBD) }
	c0 := func(st *PCState) *PITCounterState { return &st.PIT.Counters[0] }
	c1 := func(st *PCState) *PITCounterState { return &st.PIT.Counters[1] }
	c2 := func(st *PCState) *PITCounterState { return &st.PIT.Counters[2] }
	for _, c := range []struct {
		name    string
		corrupt func(*PCState)
		want    string
		device  func(*PC, *PCState) error // nil: only the PC sees it
	}{
		{"ELCR bit of an edge-only IRQ", func(s *PCState) { s.PIC.Chips[0].ELCR = 0x01 }, "ELCR", pic},
		{"slave ELCR bit of IRQ 8", func(s *PCState) { s.PIC.Chips[1].ELCR |= 0x01 }, "ELCR", pic},
		{"vector base not a multiple of 8", func(s *PCState) { s.PIC.Chips[0].Base = 0x31 }, "multiple of 8", pic},
		{"lowest priority input 8", func(s *PCState) { s.PIC.Chips[1].Lowest = 8 }, "lowest-priority", pic},
		{"init step 1", func(s *PCState) { s.PIC.Chips[0].InitStep = 1 }, "initialization step", pic},
		{"ICW3 in single mode", func(s *PCState) {
			s.PIC.Chips[0].InitStep, s.PIC.Chips[0].Single, s.PIC.Chips[0].ISR = 3, true, 0
		}, "single mode", pic},
		{"ICW4 not asked for", func(s *PCState) {
			s.PIC.Chips[1].InitStep, s.PIC.Chips[1].NeedICW4 = 4, false
		}, "did not ask", pic},
		{"AEOI without ICW4", func(s *PCState) {
			s.PIC.Chips[1].NeedICW4, s.PIC.Chips[1].AEOI = false, true
		}, "without ICW4", pic},
		{"ISR while initializing", func(s *PCState) { s.PIC.Chips[0].InitStep = 2 }, "while initializing", pic},
		{"ISR in automatic EOI", func(s *PCState) { s.PIC.Chips[0].AEOI = true }, "automatic-EOI", pic},

		{"negative clock", func(s *PCState) { s.PIT.Clock = -1 }, "saved at clock", pit},
		{"clock behind the save", func(s *PCState) { s.PIT.Clock = int64(at) + 1 }, "restore the VM clock first", pit},
		{"delivered past the save", func(s *PCState) {
			s.PIT.Last = pitTicks(at) + 1
		}, "delivered through", pit},
		{"delivered before tick 0", func(s *PCState) { s.PIT.Last = -1 }, "delivered through", pit},
		{"mode 6", func(s *PCState) { c1(s).Mode = 6 }, "mode 6", pit},
		{"access 0", func(s *PCState) { c1(s).Access = 0 }, "access format", pit},
		{"phase 5", func(s *PCState) { c1(s).Phase = 5 }, "phase 5", pit},
		{"paused in mode 2", func(s *PCState) { c0(s).Phase, c0(s).Pending = uint8(pitPaused), false }, "paused in mode 2", pit},
		{"stopped in mode 0", func(s *PCState) { c2(s).Phase = uint8(pitStopped) }, "stopped in mode 0", pit},
		{"armed in mode 3", func(s *PCState) { c1(s).Phase = uint8(pitArmed) }, "armed in mode 3", pit},
		{"count register above 65536", func(s *PCState) { c2(s).CR = 0x10001 }, "count out of range", pit},
		{"resume above 65536", func(s *PCState) { c2(s).Resume = 1 << 31 }, "count out of range", pit},
		{"held count at the BCD modulus", func(s *PCState) { c1(s).Held = 10000 }, "modulus", pit},
		{"start after the save", func(s *PCState) { c2(s).Start = pitTicks(at) + 1 }, "started at tick", pit},
		{"start before tick 0", func(s *PCState) { c2(s).Start = -5 }, "started at tick", pit},
		{"mode 2 counting with period 0", func(s *PCState) { c0(s).N, c0(s).Pending = 0, false }, "period 0", pit},
		{"mode 3 counting with period 1", func(s *PCState) { c1(s).N = 1 }, "period 1", pit},
		{"write toggle with LSB access", func(s *PCState) { c1(s).WriteHi = true }, "byte toggle", pit},
		{"read toggle with LSB access", func(s *PCState) { c1(s).ReadHi = true }, "byte toggle", pit},
		{"reload pending in mode 0", func(s *PCState) {
			c2(s).Pending, c2(s).PendingN, c2(s).PendingAt = true, 10, c2(s).Start+10
		}, "reload pending", pit},
		{"reload pending while idle", func(s *PCState) { c0(s).Phase = uint8(pitIdle) }, "reload pending", pit},
		{"pending period 1", func(s *PCState) { c0(s).PendingN = 1 }, "pending period", pit},
		{"reload off the period", func(s *PCState) { c0(s).PendingAt++ }, "does not end a period", pit},
		{"reload at the start", func(s *PCState) { c0(s).PendingAt = c0(s).Start }, "does not end a period", pit},
		{"reload two periods ahead", func(s *PCState) { c0(s).PendingAt += int64(c0(s).N) }, "does not end a period", pit},
		{"latched BCD count not BCD", func(s *PCState) { c1(s).Latched, c1(s).Latch = true, 0x00A0 }, "not BCD", pit},
		{"latched status of another mode", func(s *PCState) { c1(s).Status ^= 1 << pitModeShift }, "latched status", pit},

		{"receive queue over capacity", func(s *PCState) { s.UART.RX = make([]byte, UARTRxCapacity+1) }, "exceeds", uart},
		{"IER bit 4", func(s *PCState) { s.UART.IER |= 0x10 }, "IER", uart},
		{"MCR bit 5", func(s *PCState) { s.UART.MCR |= 0x20 }, "MCR", uart},
		{"LSR data-ready error bit", func(s *PCState) { s.UART.LSRErrors = lsrDR }, "LSR errors", uart},
		{"MSR state bit", func(s *PCState) { s.UART.MSRDeltas = msrCTS }, "MSR deltas", uart},
		{"trigger level 3", func(s *PCState) { s.UART.Trigger = 3 }, "trigger level", uart},
		{"trigger level 0", func(s *PCState) { s.UART.Trigger = 0 }, "trigger level", uart},
		{"trigger 14 without FIFOs", func(s *PCState) { s.UART.FIFO = false }, "trigger level", uart},

		{"RTC negative clock", func(s *PCState) { s.RTC.Clock = -1 }, "saved at clock", rtc},
		{"RTC clock behind the save", func(s *PCState) { s.RTC.Clock = int64(at) + 1 }, "restore the VM clock first", rtc},
		{"RTC a second of nanoseconds", func(s *PCState) { s.RTC.Nanos = 1e9 }, "ns in a second", rtc},
		{"RTC index 0x80", func(s *PCState) { s.RTC.Index = 0x80 }, "index", rtc},
		{"RTC register A UIP", func(s *PCState) { s.RTC.RAM[rtcRegA] |= regAUIP }, "UIP", rtc},
		{"RTC update interrupt while SET", func(s *PCState) { s.RTC.RAM[rtcRegB] |= regBSET | regBUIE }, "while SET", rtc},
		{"RTC register C set", func(s *PCState) { s.RTC.RAM[rtcRegC] = 0x80 }, "read-only", rtc},
		{"RTC register D clear", func(s *PCState) { s.RTC.RAM[rtcRegD] = 0 }, "read-only", rtc},
		{"RTC seconds in RAM", func(s *PCState) { s.RTC.RAM[rtcSeconds] = 1 }, "running clock", rtc},
		{"RTC century in RAM", func(s *PCState) { s.RTC.RAM[rtcCentury] = 0x20 }, "running clock", rtc},
		{"RTC frozen CMOS byte", func(s *PCState) { s.RTC.Frozen[0x40] = 1 }, "frozen byte", rtc},
		{"RTC time beyond time.Time", func(s *PCState) { s.RTC.Seconds = 1<<63 - 1 }, "too far", rtc},
		{"RTC time 400 years on", func(s *PCState) { s.RTC.Seconds += 400 * 366 * 86400 }, "too far", rtc},

		{"port 0x61 refresh bit stored", func(s *PCState) { s.Sys.PortB |= portBRefresh }, "writable bits", sys},
		{"keyboard command 0xAA pending", func(s *PCState) { s.KBD.Pending = 0xAA }, "command 0xaa", kbd},

		{"counter 0 gate low", func(s *PCState) { c0(s).Gate = false }, "tied high", nil},
		{"counter 2 gate against port 0x61", func(s *PCState) { c2(s).Gate = false }, "counter 2 gate", nil},
		{"IRQ 0 level against the PIC", func(s *PCState) { s.PIT.IRQLevel = !s.PIT.IRQLevel }, "IRQ 0", nil},
		{"COM1 level against the PIC", func(s *PCState) { s.PIC.Chips[0].Line &^= 1 << COM1IRQ }, "COM1 drives IRQ 4", nil},
		{"COM1 interrupt gone, line still high", func(s *PCState) { s.UART.MCR &^= mcrOUT2 }, "COM1 drives IRQ 4", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, _ := gobRoundTrip(t, good)
			c.corrupt(&st)
			r := newPCRig(hostA, at)
			before := r.pc.Save()
			err := r.pc.Restore(st)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("PC.Restore = %v, want an error about %q", err, c.want)
			}
			if c.device != nil {
				if err := c.device(r.pc, &st); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("device Restore = %v, want an error about %q", err, c.want)
				}
			}
			if d := cmp.Diff(before, r.pc.Save()); d != "" {
				t.Errorf("refused restore changed the PC:\n%s", d)
			}
			if r.changes != 0 || r.reprograms != 0 {
				t.Errorf("refused restore called OnChange %d and OnReprogram %d times", r.changes, r.reprograms)
			}
		})
	}
	// The uncorrupted state is accepted by the PC and by every device.
	r := newPCRig(hostA, at)
	for _, f := range []func(*PC, *PCState) error{pic, pit, uart, rtc, sys, kbd} {
		if err := f(r.pc, &good); err != nil {
			t.Errorf("device refuses a good state: %v", err)
		}
	}
	if err := r.pc.Restore(good); err != nil {
		t.Errorf("PC refuses a good state: %v", err)
	}
}
