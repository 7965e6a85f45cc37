package emul

import (
	"errors"
	"fmt"
	"time"
)

// PITState is the saved state of the 8254 (see PIT.Save). Times are ticks
// of the PIT's input clock (PITFrequency) counted on the devices' Clock,
// the VM's own time: a PIT restored on a Clock that reads Clock again
// continues exactly where the saved one stood, whatever the host's time.
type PITState struct {
	// Clock is the devices' Clock, in nanoseconds, when the state was
	// saved. Restore refuses a Clock that reads earlier (the VM clock
	// must be restored first).
	Clock int64
	// Last is the tick through which counter 0's rising edges have been
	// delivered to IRQ 0; it is not after Clock.
	Last int64
	// IRQLevel is the level last driven on PIC line 0. It can differ from
	// counter 0's output until the next delivery (a mode 0 count stopped
	// by its first byte).
	IRQLevel bool
	// Counters are counters 0, 1 and 2.
	Counters [3]PITCounterState
}

// PITCounterState is one counter of the 8254.
type PITCounterState struct {
	// Mode is the counter mode, 0-5 (6 and 7 are stored as 2 and 3).
	Mode uint8
	// Access is the read/write format: 1 LSB, 2 MSB, 3 LSB then MSB.
	Access uint8
	// BCD is counting in four decimal digits rather than binary.
	BCD bool
	// Gate is the gate input's level.
	Gate bool
	// Phase is 0 idle (no count since the control word), 1 counting,
	// 2 paused (modes 0 and 4, gate low), 3 stopped (modes 2 and 3, gate
	// low), 4 armed (modes 1 and 5 waiting for a gate edge).
	Phase uint8
	// CR is the count register as loaded, 1-65536 (0 before any count).
	CR uint32
	// Start is the tick at which the present count began, StartCount the
	// count then, N the period of modes 2 and 3.
	Start      int64
	StartCount uint32
	N          uint32
	// Fired: the terminal count already happened before Start.
	// EdgeAtStart: Start is itself a rising edge (a reload taken from a
	// count written during the previous period).
	Fired, EdgeAtStart bool
	// Held is the count shown while not counting, below the modulus;
	// Resume the count a paused mode 0 or 4 continues from.
	Held, Resume uint32
	// Pending: a count written while mode 2 or 3 counts becomes the
	// period PendingN at the reload at tick PendingAt.
	Pending   bool
	PendingAt int64
	PendingN  uint32
	// WriteHi: the next count byte written is the MSB; LowByte holds the
	// LSB already written.
	WriteHi bool
	LowByte uint8
	// ReadHi: the next count byte read is the MSB.
	ReadHi bool
	// Latched: Latch holds a count latched by the counter-latch or
	// read-back command, as the counter presents it (binary or BCD).
	Latched bool
	Latch   uint16
	// StatusLatched: Status holds a status byte latched by read-back.
	StatusLatched bool
	Status        uint8
	// NullCount is the status's null-count bit: a count was written and
	// not yet loaded into the counting element.
	NullCount bool
}

// Save returns the PIT's state as of its Clock now.
func (p *PIT) Save() PITState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PITState{Clock: int64(p.clk.Now()), Last: p.last, IRQLevel: p.irqLevel}
	for i := range p.ch {
		c := &p.ch[i]
		st.Counters[i] = PITCounterState{
			Mode: c.mode, Access: c.access, BCD: c.bcd, Gate: c.gate, Phase: uint8(c.state),
			CR: c.cr, Start: c.start, StartCount: c.startCount, N: c.n,
			Fired: c.fired, EdgeAtStart: c.edgeAtStart, Held: c.held, Resume: c.resume,
			Pending: c.pending, PendingAt: c.pendingAt, PendingN: c.pendingN,
			WriteHi: c.writeHi, LowByte: c.lowByte, ReadHi: c.readHi,
			Latched: c.latched, Latch: c.latch, StatusLatched: c.stLatched, Status: c.status,
			NullCount: c.nullCount,
		}
	}
	return st
}

// Restore puts back a state from Save, or refuses it (changing nothing)
// when a field holds what the PIT cannot reach or when the PIT's Clock
// reads earlier than st.Clock. It does not drive the PIC: IRQ 0's level
// is part of the PIC's own state. OnReprogram is called afterwards, so
// that the VM re-arms its timer from NextDeadline.
func (p *PIT) Restore(st PITState) error {
	p.mu.Lock()
	err := st.check(p.clk.Now())
	if err == nil {
		p.apply(st)
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if p.OnReprogram != nil {
		p.OnReprogram()
	}
	return nil
}

// check validates st for a PIT whose Clock reads now.
func (st *PITState) check(now time.Duration) error {
	switch {
	case st.Clock < 0:
		return fmt.Errorf("emul: PIT saved at clock %d ns", st.Clock)
	case int64(now) < st.Clock:
		return fmt.Errorf("emul: PIT saved at clock %v but the clock reads %v: restore the VM clock first",
			time.Duration(st.Clock), now)
	}
	t := pitTicks(time.Duration(st.Clock))
	if st.Last < 0 || st.Last > t {
		return fmt.Errorf("emul: PIT delivered through tick %d, outside 0-%d", st.Last, t)
	}
	for i := range st.Counters {
		if err := st.Counters[i].check(t); err != nil {
			return fmt.Errorf("emul: PIT counter %d: %w", i, err)
		}
	}
	return nil
}

// check validates one counter saved at tick t.
func (c *PITCounterState) check(t int64) error {
	const maxCount = 0x10000
	modulus := uint32(0x10000)
	if c.BCD {
		modulus = 10000
	}
	if c.Mode > 5 {
		return fmt.Errorf("mode %d out of range", c.Mode)
	}
	if c.Access < pitAccessLSB || c.Access > pitAccessWord {
		return fmt.Errorf("access format %d out of range", c.Access)
	}
	switch pitState(c.Phase) {
	case pitIdle, pitCounting:
	case pitPaused:
		if c.Mode != 0 && c.Mode != 4 {
			return fmt.Errorf("paused in mode %d", c.Mode)
		}
	case pitStopped:
		if c.Mode != 2 && c.Mode != 3 {
			return fmt.Errorf("stopped in mode %d", c.Mode)
		}
	case pitArmed:
		if c.Mode != 1 && c.Mode != 5 {
			return fmt.Errorf("armed in mode %d", c.Mode)
		}
	default:
		return fmt.Errorf("phase %d out of range", c.Phase)
	}
	switch {
	case c.CR > maxCount, c.StartCount > maxCount, c.N > maxCount, c.Resume > maxCount:
		return fmt.Errorf("count out of range (CR %d, start %d, period %d, resume %d)",
			c.CR, c.StartCount, c.N, c.Resume)
	case c.Held >= modulus:
		return fmt.Errorf("held count %d not below the modulus %d", c.Held, modulus)
	case c.Start < 0 || c.Start > t:
		return fmt.Errorf("count started at tick %d, outside 0-%d", c.Start, t)
	case pitState(c.Phase) == pitCounting && (c.Mode == 2 || c.Mode == 3) && c.N < 2:
		return fmt.Errorf("mode %d counts with period %d", c.Mode, c.N)
	case (c.WriteHi || c.ReadHi) && c.Access != pitAccessWord:
		return errors.New("byte toggle set outside LSB-then-MSB access")
	}
	if c.Pending {
		if pitState(c.Phase) != pitCounting || (c.Mode != 2 && c.Mode != 3) {
			return fmt.Errorf("reload pending in mode %d phase %d", c.Mode, c.Phase)
		}
		if c.PendingN < 2 || c.PendingN > maxCount {
			return fmt.Errorf("pending period %d out of range", c.PendingN)
		}
		// The reload is at the end of the period the count was written
		// in: a whole number of periods after Start, at most one period
		// after the save.
		d := c.PendingAt - c.Start
		if d <= 0 || d%int64(c.N) != 0 || c.PendingAt > t+int64(c.N) {
			return fmt.Errorf("reload at tick %d does not end a period of %d from tick %d", c.PendingAt, c.N, c.Start)
		}
	}
	if c.Latched && c.BCD && !validBCD(c.Latch) {
		return fmt.Errorf("latched count %#04x is not BCD", c.Latch)
	}
	if c.StatusLatched {
		want := c.Access<<pitRWShift | c.Mode<<pitModeShift
		if c.BCD {
			want |= pitBCD
		}
		if c.Status&^(pitStatusOut|pitStatusNull) != want {
			return fmt.Errorf("latched status %#02x does not match the control word %#02x", c.Status, want)
		}
	}
	return nil
}

func validBCD(w uint16) bool {
	for i := 0; i < 4; i++ {
		if w>>(4*i)&0xF > 9 {
			return false
		}
	}
	return true
}

// apply installs a checked state.
// Precondition: mu held.
func (p *PIT) apply(st PITState) {
	p.last, p.irqLevel = st.Last, st.IRQLevel
	for i := range p.ch {
		c, s := &p.ch[i], &st.Counters[i]
		*c = pitChannel{
			mode: s.Mode, access: s.Access, bcd: s.BCD, gate: s.Gate, state: pitState(s.Phase),
			cr: s.CR, start: s.Start, startCount: s.StartCount, n: s.N,
			fired: s.Fired, edgeAtStart: s.EdgeAtStart, held: s.Held, resume: s.Resume,
			pending: s.Pending, pendingAt: s.PendingAt, pendingN: s.PendingN,
			writeHi: s.WriteHi, lowByte: s.LowByte, readHi: s.ReadHi,
			latched: s.Latched, latch: s.Latch, stLatched: s.StatusLatched, status: s.Status,
			nullCount: s.NullCount,
		}
	}
}
