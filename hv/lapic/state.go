package lapic

import (
	"errors"
	"fmt"
	"time"

	"github.com/pvisor/pvisor/hv/vclock"
)

// State is a LAPIC's saved state (see Save). Times are VM-clock
// nanoseconds: a LAPIC restored on a clock that reads Clock again goes on
// exactly where the saved one stood. Registers hold what the guest reads
// from them. Any change to this struct requires a snapshot format version
// bump (docs/snapshot.md).
type State struct {
	// Clock is the VM clock when the state was saved. Restore refuses a
	// clock that reads earlier (restore the VM clock first).
	Clock int64
	// ID is the APIC ID; it must be the restoring LAPIC's.
	ID uint32
	// APICBase is IA32_APIC_BASE: Base, the enable bit and the BSP bit,
	// which must be the restoring LAPIC's. With the enable bit clear,
	// every register holds its power-up value.
	APICBase uint64
	// TPR, LDR, DFR and SVR are those registers.
	TPR, LDR, DFR, SVR uint32
	// ICRLow and ICRHigh are the interrupt command register.
	ICRLow, ICRHigh uint32
	// ESR is the error status the guest reads; ESRPending the errors
	// logged since its last write to the ESR.
	ESR, ESRPending uint32
	// LVT is the local vector table: CMCI, timer, thermal, performance,
	// LINT0, LINT1, error (the LVT* indexes).
	LVT [NumLVT]uint32
	// IRR, ISR and TMR are the interrupt request, in-service and trigger
	// mode registers, vectors 32n..32n+31 in word n. No vector below 16
	// is set, and ISR holds at most one vector of each priority class
	// (an interrupt is taken only above the classes in service).
	IRR, ISR, TMR [8]uint32
	// TimerDivide is the divide configuration register, TimerInitial
	// the initial-count register.
	TimerDivide  uint32
	TimerInitial uint32
	// TimerArmed: in one-shot or periodic mode, the count runs from
	// TimerCount (1..TimerInitial) at TimerStart (not after Clock) down
	// to 0 at TimerEnd, exactly the span the mode, divide and initial
	// count give that count (see timer.go). Not armed, all three are 0.
	TimerArmed bool
	TimerStart int64
	TimerEnd   int64
	TimerCount uint32
	// TSCDeadline is IA32_TSC_DEADLINE in TSC-deadline mode (0:
	// disarmed), due at DeadlineAt (0..vclock.MaxTime; 0 when disarmed).
	TSCDeadline uint64
	DeadlineAt  int64
}

// ErrBadState is wrapped by every error of Restore.
var ErrBadState = errors.New("lapic: bad LAPIC state")

// Save returns the LAPIC's state.
func (l *LAPIC) Save() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.r
	return State{
		Clock: int64(l.clk.Now()), ID: l.id, APICBase: l.baseMSR(),
		TPR: r.tpr, LDR: r.ldr, DFR: r.dfr, SVR: r.svr,
		ICRLow: r.icrLow, ICRHigh: r.icrHigh, ESR: r.esr, ESRPending: r.esrPending,
		LVT: r.lvt, IRR: r.irr, ISR: r.isr, TMR: r.tmr,
		TimerDivide: r.divide, TimerInitial: r.initial,
		TimerArmed: r.armed, TimerStart: int64(r.start), TimerEnd: int64(r.end), TimerCount: r.count,
		TSCDeadline: r.deadline, DeadlineAt: int64(r.deadlineAt),
	}
}

// Restore puts back a state from Save, or refuses it with an error
// wrapping ErrBadState and changes nothing, when a field holds what this
// LAPIC cannot reach or the clock reads earlier than st.Clock.
// OnReprogram is called after a restore, so that the VM re-arms its timer
// from NextDeadline.
func (l *LAPIC) Restore(st State) error {
	now := l.clk.Now()
	r, err := l.check(&st, now)
	if err != nil {
		return fmt.Errorf("%w: APIC ID %d: %w", ErrBadState, l.id, err)
	}
	l.mu.Lock()
	l.r = r
	l.unlock(effects{reprogram: true})
	return nil
}

// check validates st for this LAPIC on a clock reading now and returns
// the registers it holds.
func (l *LAPIC) check(st *State, now time.Duration) (regs, error) {
	switch {
	case st.Clock < 0 || st.Clock > int64(vclock.MaxTime):
		return regs{}, fmt.Errorf("saved at clock %d ns, outside 0-%d", st.Clock, int64(vclock.MaxTime))
	case int64(now) < st.Clock:
		return regs{}, fmt.Errorf("saved at clock %v but the clock reads %v: restore the VM clock first", time.Duration(st.Clock), now)
	case st.ID != l.id:
		return regs{}, fmt.Errorf("state of APIC ID %d", st.ID)
	}
	base := uint64(Base)
	if l.bsp {
		base |= BaseBSP
	}
	if st.APICBase&^BaseEnable != base {
		return regs{}, fmt.Errorf("APIC base %#x, want %#x with or without the enable bit %#x", st.APICBase, base, BaseEnable)
	}
	r := regs{
		enabled: st.APICBase&BaseEnable != 0,
		tpr:     st.TPR, ldr: st.LDR, dfr: st.DFR, svr: st.SVR,
		icrLow: st.ICRLow, icrHigh: st.ICRHigh, esr: st.ESR, esrPending: st.ESRPending,
		lvt: st.LVT, irr: st.IRR, isr: st.ISR, tmr: st.TMR,
		divide: st.TimerDivide, initial: st.TimerInitial,
		armed: st.TimerArmed, start: time.Duration(st.TimerStart), end: time.Duration(st.TimerEnd), count: st.TimerCount,
		deadline: st.TSCDeadline, deadlineAt: time.Duration(st.DeadlineAt),
	}
	if !r.enabled {
		if r != powerUp(false) {
			return regs{}, errors.New("globally disabled with registers other than their power-up values")
		}
		return r, nil
	}
	if err := r.checkRegisters(); err != nil {
		return regs{}, err
	}
	if err := r.checkTimer(time.Duration(st.Clock)); err != nil {
		return regs{}, err
	}
	return r, nil
}

// checkRegisters validates everything but the timer's running state.
func (r *regs) checkRegisters() error {
	switch {
	case r.tpr > 0xFF:
		return fmt.Errorf("TPR %#x above 0xff", r.tpr)
	case r.ldr&^ldrWritable != 0:
		return fmt.Errorf("LDR %#x sets bits below 24", r.ldr)
	case r.dfr&dfrOnes != dfrOnes:
		return fmt.Errorf("DFR %#x: bits 27:0 read as ones", r.dfr)
	case r.svr&^svrWritable != 0:
		return fmt.Errorf("SVR %#x sets bits above 9", r.svr)
	case r.icrLow&^icrLowMask != 0 || r.icrHigh&^icrHighMask != 0:
		return fmt.Errorf("ICR %#x:%#x sets reserved or read-only bits", r.icrHigh, r.icrLow)
	case r.esr&^esrMask != 0 || r.esrPending&^esrMask != 0:
		return fmt.Errorf("ESR %#x (pending %#x) sets bits this LAPIC never sets", r.esr, r.esrPending)
	case r.divide&^divWritable != 0:
		return fmt.Errorf("divide configuration %#x sets reserved bits", r.divide)
	}
	for i, v := range r.lvt {
		if v&^lvtWritable[i] != 0 {
			return fmt.Errorf("LVT entry %d (offset %#x) is %#x: it sets reserved or read-only bits", i, lvtOffset(i), v)
		}
		if r.svr&SVREnable == 0 && v&LVTMasked == 0 {
			return fmt.Errorf("LVT entry %d (offset %#x) unmasked while the APIC is software disabled", i, lvtOffset(i))
		}
	}
	if r.irr[0]&0xFFFF != 0 || r.isr[0]&0xFFFF != 0 || r.tmr[0]&0xFFFF != 0 {
		return errors.New("a vector below 16 in IRR, ISR or TMR")
	}
	for c := 1; c < 16; c++ {
		// Class c is bits 16(c%2)..16(c%2)+15 of word c/2.
		if w := r.isr[c/2] >> (16 * (c % 2)) & 0xFFFF; w&(w-1) != 0 {
			return fmt.Errorf("ISR holds more than one vector of priority class %d", c)
		}
	}
	return nil
}

// checkTimer validates the timer's running state saved at time at.
func (r *regs) checkTimer(at time.Duration) error {
	mode := r.timerMode()
	if !counting(mode) && r.initial != 0 {
		return fmt.Errorf("initial count %d in timer mode %d", r.initial, mode)
	}
	if r.armed {
		switch {
		case !counting(mode):
			return fmt.Errorf("counting in timer mode %d", mode)
		case r.count == 0 || r.count > r.initial:
			return fmt.Errorf("count %d outside 1-%d (the initial count)", r.count, r.initial)
		case r.start < 0 || r.start > at:
			return fmt.Errorf("count started at %d ns, outside 0-%d", r.start, at)
		case r.end-r.start != r.segLen(r.count):
			return fmt.Errorf("count of %d runs from %d to %d ns, not the %v its settings give", r.count, r.start, r.end, r.segLen(r.count))
		}
	} else if r.start != 0 || r.end != 0 || r.count != 0 {
		return errors.New("timer times or count set while not armed")
	}
	if r.deadline != 0 {
		if mode != TimerTSCDeadline {
			return fmt.Errorf("TSC deadline %#x in timer mode %d", r.deadline, mode)
		}
		if r.deadlineAt < 0 || r.deadlineAt > vclock.MaxTime {
			return fmt.Errorf("TSC deadline due at %d ns, outside 0-%d", r.deadlineAt, vclock.MaxTime)
		}
	} else if r.deadlineAt != 0 {
		return errors.New("TSC deadline time set while disarmed")
	}
	return nil
}
