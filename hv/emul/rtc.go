package emul

import (
	"sync"
	"time"
)

// The MC146818 real-time clock and CMOS RAM of a PC, reached through an
// index port and a data port.
const (
	RTCIndex = 0x70
	RTCData  = 0x71
)

// MC146818 registers and bits.
const (
	rtcSeconds      = 0x00
	rtcSecondsAlarm = 0x01
	rtcMinutes      = 0x02
	rtcMinutesAlarm = 0x03
	rtcHours        = 0x04
	rtcHoursAlarm   = 0x05
	rtcDayOfWeek    = 0x06
	rtcDayOfMonth   = 0x07
	rtcMonth        = 0x08
	rtcYear         = 0x09
	rtcRegA         = 0x0A
	rtcRegB         = 0x0B
	rtcRegC         = 0x0C
	rtcRegD         = 0x0D
	rtcCentury      = 0x32 // the PC/AT convention (ACPI FADT's default)

	rtcIndexMask = 0x7F
	rtcNMIMask   = 0x80 // index port bit 7 disables NMI

	regAUIP  = 0x80 // update in progress
	regASet  = 0x7F // divider and rate select bits
	regBSET  = 0x80 // updates inhibited while the guest sets the clock
	regBUIE  = 0x10
	regBDM   = 0x04 // data mode: 1 binary, 0 BCD
	regB24   = 0x02 // 1: 24-hour, 0: 12-hour with bit 7 of hours = PM
	regDVRT  = 0x80 // valid RAM and time
	hourPM   = 0x80
	rtcRegs  = 128
	rtcFirst = 0x0E // the first byte of plain CMOS RAM

	// rtcUIPWindow is how long before each second's update UIP is set on
	// an MC146818 running from a 32.768 kHz time base (tBUC).
	rtcUIPWindow = 244 * time.Microsecond
)

// RTC is the MC146818 CMOS clock. The time and date registers are computed
// from a wall-clock function when read, in UTC (what Linux assumes unless
// told the RTC keeps local time), in BCD or binary and 12- or 24-hour form
// as register B says. Register A's UIP bit is set during the last 244 µs
// of each wall-clock second, as the chip sets it that long before an update,
// so a guest polling for it sees it rise and fall. Setting the clock works
// as on the chip: with register B's SET bit the registers hold still and
// take writes; clearing SET restarts the clock from what was written (kept
// as an offset from the wall clock, to the second; a restored RTC's offset
// has the saved clock's phase, see Restore).
//
// Register C reads 0 and register D reads VRT: no periodic, alarm or
// update-ended interrupts are generated and their enable bits in B are
// stored only; the alarm registers are plain storage; register A's divider
// and rate bits are stored but do not stop or slow the clock; daylight
// saving (B bit 0) is ignored. The other 114 bytes (0x0E-0x7F, less the
// century byte at 0x32) are plain CMOS RAM.
//
// mu protects everything below it but clk, which is set before the RTC is
// shared.
type RTC struct {
	mu     sync.Mutex
	wall   func() time.Time
	clk    Clock         // the devices' time, for Save and Restore; nil: none
	offset time.Duration // guest RTC time minus wall time, whole seconds
	index  uint8
	nmiOff bool
	ram    [rtcRegs]uint8 // registers A-D and plain RAM; time bytes unused
	frozen [rtcRegs]uint8 // time registers while SET is on
}

// NewRTC returns an RTC showing wall (time.Now when nil), in 24-hour BCD
// mode with the usual 32.768 kHz divider and 1024 Hz rate in register A.
func NewRTC(wall func() time.Time) *RTC {
	if wall == nil {
		wall = time.Now
	}
	r := &RTC{wall: wall}
	r.ram[rtcRegA] = 0x26
	r.ram[rtcRegB] = regB24
	r.ram[rtcRegD] = regDVRT
	return r
}

// NMIMasked reports whether the guest disabled NMI with bit 7 of the index
// port.
func (r *RTC) NMIMasked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nmiOff
}

// SetCMOS stores v in a byte of plain CMOS RAM (0x0E-0x7F, not the century
// byte), as a firmware would before boot. Other indexes are ignored.
func (r *RTC) SetCMOS(index uint8, v uint8) {
	if index < rtcFirst || index >= rtcRegs || index == rtcCentury {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ram[index] = v
}

// In implements PortDevice for 0x70-0x71.
func (r *RTC) In(port uint16, size int) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return inBytes(port, size, r.readByte)
}

// Out implements PortDevice for 0x70-0x71.
func (r *RTC) Out(port uint16, size int, v uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	outBytes(port, size, v, r.writeByte)
}

// Precondition: mu held.
func (r *RTC) readByte(port uint16) uint8 {
	if port != RTCData {
		return 0xFF // the index port is write-only
	}
	i := r.index
	switch {
	case isClockReg(i):
		if r.ram[rtcRegB]&regBSET != 0 {
			return r.frozen[i]
		}
		now := r.wall().Add(r.offset)
		return r.clockRegs(now.UTC())[i]
	case i == rtcRegA:
		v := r.ram[rtcRegA] &^ regAUIP
		if r.ram[rtcRegB]&regBSET == 0 && r.updateSoon() {
			v |= regAUIP
		}
		return v
	case i == rtcRegC:
		return 0
	}
	return r.ram[i]
}

// Precondition: mu held.
func (r *RTC) writeByte(port uint16, v uint8) {
	if port == RTCIndex {
		r.index = v & rtcIndexMask
		r.nmiOff = v&rtcNMIMask != 0
		return
	}
	if port != RTCData {
		return
	}
	i := r.index
	switch {
	case isClockReg(i):
		if r.ram[rtcRegB]&regBSET != 0 {
			r.frozen[i] = v
		}
		// While the clock runs, writes to it are lost at the next update
		// on the chip; here they are lost at once.
	case i == rtcRegA:
		r.ram[rtcRegA] = v & regASet
	case i == rtcRegB:
		r.writeB(v)
	case i == rtcRegC, i == rtcRegD:
		// Read-only.
	default:
		r.ram[i] = v
	}
}

// writeB handles the SET bit's transitions: setting it freezes the clock
// registers where they are; clearing it restarts the clock from them.
// Precondition: mu held.
func (r *RTC) writeB(v uint8) {
	old := r.ram[rtcRegB]
	if v&regBSET != 0 {
		v &^= regBUIE // the chip clears UIE when SET is written
	}
	if old&regBSET == 0 && v&regBSET != 0 {
		now := r.wall().Add(r.offset).UTC()
		r.frozen = r.clockRegs(now)
	}
	r.ram[rtcRegB] = v
	if old&regBSET != 0 && v&regBSET == 0 {
		set := r.parseClock()
		r.offset = set.Sub(r.wall().Truncate(time.Second))
	}
}

// updateSoon reports whether the chip would show UIP now: within the
// window before the next second begins.
// Precondition: mu held.
func (r *RTC) updateSoon() bool {
	frac := time.Duration(r.wall().Add(r.offset).Nanosecond())
	return frac >= time.Second-rtcUIPWindow
}

// isClockReg reports whether register i belongs to the running clock (the
// alarm bytes 1, 3 and 5 do not: they are storage).
func isClockReg(i uint8) bool {
	switch i {
	case rtcSeconds, rtcMinutes, rtcHours, rtcDayOfWeek, rtcDayOfMonth, rtcMonth, rtcYear, rtcCentury:
		return true
	}
	return false
}

// clockRegs encodes t into the clock registers in register B's format.
// Precondition: mu held.
func (r *RTC) clockRegs(t time.Time) [rtcRegs]uint8 {
	b := r.ram[rtcRegB]
	enc := func(v int) uint8 {
		if b&regBDM != 0 {
			return uint8(v)
		}
		return uint8(v/10<<4 | v%10)
	}
	var regs [rtcRegs]uint8
	regs[rtcSeconds] = enc(t.Second())
	regs[rtcMinutes] = enc(t.Minute())
	h := t.Hour()
	if b&regB24 != 0 {
		regs[rtcHours] = enc(h)
	} else {
		h12 := h % 12
		if h12 == 0 {
			h12 = 12
		}
		regs[rtcHours] = enc(h12)
		if h >= 12 {
			regs[rtcHours] |= hourPM
		}
	}
	regs[rtcDayOfWeek] = enc(int(t.Weekday()) + 1) // Sunday is 1
	regs[rtcDayOfMonth] = enc(t.Day())
	regs[rtcMonth] = enc(int(t.Month()))
	regs[rtcYear] = enc(t.Year() % 100)
	regs[rtcCentury] = enc(t.Year() / 100 % 100)
	return regs
}

// parseClock decodes the frozen clock registers in register B's format.
// Out-of-range fields are normalised the way time.Date does, so a guest's
// nonsense becomes some definite time rather than an error.
// Precondition: mu held.
func (r *RTC) parseClock() time.Time {
	b := r.ram[rtcRegB]
	dec := func(v uint8) int {
		if b&regBDM != 0 {
			return int(v)
		}
		return int(v>>4)*10 + int(v&0xF)
	}
	f := &r.frozen
	h := dec(f[rtcHours] &^ hourPM)
	if b&regB24 == 0 {
		h %= 12
		if f[rtcHours]&hourPM != 0 {
			h += 12
		}
	} else {
		h = dec(f[rtcHours])
	}
	year := dec(f[rtcCentury])*100 + dec(f[rtcYear])
	return time.Date(year, time.Month(dec(f[rtcMonth])), dec(f[rtcDayOfMonth]),
		h, dec(f[rtcMinutes]), dec(f[rtcSeconds]), 0, time.UTC)
}
