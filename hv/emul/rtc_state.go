package emul

import (
	"fmt"
	"time"
)

// RTCState is the saved state of the MC146818 and its CMOS RAM (see
// RTC.Save). The running date and time are saved as what the RTC showed
// at a point of the devices' Clock, the VM's own time: restored on a Clock
// that reads Clock again, the RTC shows the same time, to the nanosecond,
// whatever the host's wall clock says; later on that Clock, it has moved
// on by as much.
type RTCState struct {
	// Clock is the devices' Clock, in nanoseconds, when the state was
	// saved (0 for an RTC without one). Restore refuses a Clock that
	// reads earlier.
	Clock int64
	// Seconds and Nanos are the RTC's running date and time at Clock, in
	// seconds since the Unix epoch and nanoseconds into that second.
	// While register B's SET bit is on, the time registers show Frozen
	// instead, and this time is discarded when SET is cleared.
	Seconds int64
	Nanos   uint32
	// Index is the register the index port selects (0-0x7F); NMIMasked
	// is the index port's bit 7.
	Index     uint8
	NMIMasked bool
	// RAM is the chip's 128 bytes: registers A (bits 0-6), B, C (always
	// 0), D (always VRT, 0x80), the alarm bytes and the CMOS RAM from
	// 0x0E. The bytes of the running clock (0x00, 0x02, 0x04, 0x06-0x09
	// and the century at 0x32) are not kept here and are 0.
	RAM [rtcRegs]uint8
	// Frozen holds the clock's bytes (the indexes above) while SET is on,
	// and what they last held afterwards; every other byte is 0.
	Frozen [rtcRegs]uint8
}

// clockNow is the devices' time, or 0 without a Clock.
func (r *RTC) clockNow() time.Duration {
	if r.clk == nil {
		return 0
	}
	return r.clk.Now()
}

// Save returns the RTC's state.
func (r *RTC) Save() RTCState {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.wall().Add(r.offset)
	return RTCState{
		Clock:   int64(r.clockNow()),
		Seconds: t.Unix(), Nanos: uint32(t.Nanosecond()),
		Index: r.index, NMIMasked: r.nmiOff, RAM: r.ram, Frozen: r.frozen,
	}
}

// Restore puts back a state from Save, or refuses it (changing nothing)
// when a field holds what the RTC cannot reach, when its Clock reads
// earlier than st.Clock, or when the time is too far from the wall clock
// to be kept as an offset from it (about 292 years).
func (r *RTC) Restore(st RTCState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	off, err := st.check(r.clockNow(), r.wall())
	if err != nil {
		return err
	}
	r.apply(st, off)
	return nil
}

// apply installs a checked state with the offset check returned.
// Precondition: mu held.
func (r *RTC) apply(st RTCState, off time.Duration) {
	r.offset = off
	r.index, r.nmiOff, r.ram, r.frozen = st.Index, st.NMIMasked, st.RAM, st.Frozen
}

// check validates st for an RTC whose Clock reads now and wall clock
// wall, and returns the offset from wall that shows the saved time moved
// on by now - st.Clock.
func (st *RTCState) check(now time.Duration, wall time.Time) (time.Duration, error) {
	switch {
	case st.Clock < 0:
		return 0, fmt.Errorf("emul: RTC saved at clock %d ns", st.Clock)
	case int64(now) < st.Clock:
		return 0, fmt.Errorf("emul: RTC saved at clock %v but the clock reads %v: restore the VM clock first",
			time.Duration(st.Clock), now)
	case st.Nanos >= 1e9:
		return 0, fmt.Errorf("emul: RTC time has %d ns in a second", st.Nanos)
	case st.Index > rtcIndexMask:
		return 0, fmt.Errorf("emul: RTC index %#02x out of range", st.Index)
	case st.RAM[rtcRegA]&regAUIP != 0:
		return 0, fmt.Errorf("emul: RTC register A %#02x stores UIP", st.RAM[rtcRegA])
	case st.RAM[rtcRegB]&regBSET != 0 && st.RAM[rtcRegB]&regBUIE != 0:
		return 0, fmt.Errorf("emul: RTC register B %#02x enables update interrupts while SET", st.RAM[rtcRegB])
	case st.RAM[rtcRegC] != 0 || st.RAM[rtcRegD] != regDVRT:
		return 0, fmt.Errorf("emul: RTC registers C %#02x and D %#02x are read-only (0 and %#02x)",
			st.RAM[rtcRegC], st.RAM[rtcRegD], regDVRT)
	}
	for i := range uint8(rtcRegs) {
		if isClockReg(i) && st.RAM[i] != 0 {
			return 0, fmt.Errorf("emul: RTC RAM byte %#02x of the running clock is %#02x", i, st.RAM[i])
		}
		if !isClockReg(i) && st.Frozen[i] != 0 {
			return 0, fmt.Errorf("emul: RTC frozen byte %#02x outside the clock is %#02x", i, st.Frozen[i])
		}
	}
	t := time.Unix(st.Seconds, int64(st.Nanos)).Add(now - time.Duration(st.Clock))
	off := t.Sub(wall)
	if !wall.Add(off).Equal(t) {
		return 0, fmt.Errorf("emul: RTC time %v is too far from the wall clock %v", t.UTC(), wall.UTC())
	}
	return off, nil
}
