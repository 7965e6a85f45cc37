package lapic

import (
	"math/bits"
	"time"

	"github.com/pvisor/pvisor/hv/vclock"
)

// The APIC timer (SDM vol. 3, 11.5.4). Counting is computed from the VM
// clock, not ticked. In one-shot and periodic mode the timer is a
// segment: while armed, the count runs down linearly from count at time
// start to 0 at time end, where it fires. A one-shot timer then stops with
// the count at 0; a periodic one starts a new segment of one period from
// the initial count. A change of divide or of mode between one-shot and
// periodic starts a new segment at the count reached, so that
// end - start is always segLen(count) for the timer's present settings.
//
// Every change to the timer first brings it up to the present time
// (fires what is due, under the LVT entry as it was), so that a change
// never fires or loses an expiry of the past.

// clampTime brings a time into 0..vclock.MaxTime, the range of VM time,
// so that no sum of a time and a timer length overflows.
func clampTime(t time.Duration) time.Duration {
	return min(max(t, 0), vclock.MaxTime)
}

// timerMode is the LVT timer entry's mode.
// Precondition: mu held.
func (r *regs) timerMode() uint32 { return (r.lvt[LVTTimer] >> 17) & 3 }

// counting reports whether mode is one-shot or periodic: the modes that
// count from the initial count.
func counting(mode uint32) bool { return mode == TimerOneShot || mode == TimerPeriodic }

// divShift is log2 of the divider the divide configuration register
// selects: bits 3, 1, 0 = 000 divide by 2, 001 by 4, ... 110 by 128, 111
// by 1.
func divShift(dcr uint32) uint {
	n := (dcr>>1)&4 | dcr&3
	return uint(n+1) & 7
}

// period is the periodic timer's period: initial count times divider bus
// ticks, at least MinPeriod.
// Precondition: mu held, r.initial != 0.
func (r *regs) period() time.Duration {
	return max(time.Duration(uint64(r.initial)<<divShift(r.divide)), MinPeriod)
}

// segLen is how long the count takes from count down to 0 in the present
// mode: count times divider ticks, stretched in periodic mode in the
// proportion MinPeriod imposes on the whole period. It is at least 1 ns.
// Precondition: 1 <= count <= r.initial.
func (r *regs) segLen(count uint32) time.Duration {
	sh := divShift(r.divide)
	raw := time.Duration(uint64(count) << sh)
	if r.timerMode() != TimerPeriodic || time.Duration(uint64(r.initial)<<sh) >= MinPeriod {
		return raw
	}
	// initial << sh is below MinPeriod, so initial is below 10^5 and the
	// product below 10^10.
	return time.Duration(uint64(count) * uint64(MinPeriod) / uint64(r.initial))
}

// mulDiv returns a*b/c for a < c, b < 2^32: at most b.
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return b // unreachable for a < c; Div64 would panic
	}
	q, _ := bits.Div64(hi, lo, c)
	return min(q, b)
}

// arm starts a segment at now from count.
// Precondition: mu held, counting mode, 1 <= count <= r.initial.
func (r *regs) arm(now time.Duration, count uint32) {
	r.armed, r.start, r.count = true, now, count
	r.end = now + r.segLen(count)
}

// disarm stops the timer in every mode.
func (r *regs) disarm() {
	r.armed, r.start, r.end, r.count = false, 0, 0, 0
	r.deadline, r.deadlineAt = 0, 0
}

// current is the current-count register at time now.
// Precondition: mu held.
func (r *regs) current(now time.Duration) uint32 {
	if !r.armed || !counting(r.timerMode()) {
		return 0
	}
	now = max(clampTime(now), r.start)
	if now < r.end {
		done := mulDiv(uint64(now-r.start), uint64(r.count), uint64(r.end-r.start))
		return r.count - uint32(done)
	}
	if r.timerMode() == TimerOneShot {
		return 0
	}
	p := r.period()
	e := (now - r.end) % p
	return r.initial - uint32(mulDiv(uint64(e), uint64(r.initial), uint64(p)))
}

// poll fires the timer if it is due at now: once, however many periods
// passed (they are coalesced).
// Precondition: mu held.
func (l *LAPIC) poll(now time.Duration, e *effects) {
	r := &l.r
	now = clampTime(now)
	switch mode := r.timerMode(); {
	case mode == TimerTSCDeadline:
		if r.deadline == 0 || now < r.deadlineAt {
			return
		}
		r.deadline, r.deadlineAt = 0, 0
	case counting(mode):
		if !r.armed || now < r.end {
			return
		}
		if mode == TimerOneShot {
			r.disarm()
		} else {
			p := r.period()
			k := (now - r.end) / p
			r.start = r.end + k*p
			r.end, r.count = r.start+p, r.initial
		}
	default:
		return
	}
	l.local(LVTTimer, e)
}

// Poll fires the timer if it is due at now, raising the LVT timer
// entry's vector unless it is masked. A one-shot timer stops; a periodic
// one goes on to its next period after now (the periods missed since the
// last Poll raise one interrupt, as a real timer's would while IRR still
// held the first); a TSC deadline is cleared. Poll does a bounded amount
// of work whatever the time. A now later than the clock's present time is
// taken as the clock's (the LAPIC does not run ahead of its clock); an
// earlier one fires what was due by then.
//
// The VM calls Poll when the host timer it armed from NextDeadline fires,
// from any goroutine.
func (l *LAPIC) Poll(now time.Duration) {
	now = min(now, l.clk.Now())
	l.mu.Lock()
	var e effects
	l.poll(now, &e)
	l.unlock(e)
}

// NextDeadline returns the VM time at which the timer next fires, and
// false when it will not fire: it is disarmed, masked (a masked timer
// goes on counting, and is brought up to date when the guest next touches
// it, but needs no host timer), or the APIC is disabled. A deadline at or
// before the present is due: Poll fires it.
func (l *LAPIC) NextDeadline() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.r
	if !r.enabled || r.lvt[LVTTimer]&LVTMasked != 0 {
		return 0, false
	}
	switch mode := r.timerMode(); {
	case mode == TimerTSCDeadline && r.deadline != 0:
		return r.deadlineAt, true
	case counting(mode) && r.armed:
		return r.end, true
	}
	return 0, false
}

// writeLVTTimer writes the LVT timer entry. A mode change between one-shot
// and periodic keeps the count running; one to or from TSC-deadline mode
// (or the reserved mode 3, in which the timer does not run) disarms the
// timer and clears the initial count and the deadline (SDM vol. 3,
// 11.5.4.1).
// Precondition: mu held, APIC enabled.
func (l *LAPIC) writeLVTTimer(v uint32, now time.Duration, e *effects) {
	r := &l.r
	l.poll(now, e)
	old := r.timerMode()
	r.lvt[LVTTimer] = v
	e.reprogram = true
	mode := r.timerMode()
	switch {
	case mode == old:
	case counting(old) && counting(mode):
		if r.armed {
			r.arm(now, r.current(now))
		}
	default:
		r.disarm()
		r.initial = 0
	}
}

// writeInitial writes the initial-count register: a count starts (0 stops
// the timer). It is ignored in TSC-deadline and the reserved mode.
// Precondition: mu held, APIC enabled.
func (l *LAPIC) writeInitial(v uint32, now time.Duration, e *effects) {
	r := &l.r
	if !counting(r.timerMode()) {
		return
	}
	l.poll(now, e)
	e.reprogram = true
	r.initial = v
	if v == 0 {
		r.disarm()
		return
	}
	r.arm(now, v)
}

// writeDivide writes the divide configuration register; a running count
// goes on from where it is at the new rate.
// Precondition: mu held, APIC enabled.
func (l *LAPIC) writeDivide(v uint32, now time.Duration, e *effects) {
	r := &l.r
	l.poll(now, e)
	c := r.current(now)
	r.divide = v & divWritable
	e.reprogram = true
	if r.armed && counting(r.timerMode()) {
		r.arm(now, c)
	}
}

// tscNow is the vCPU's TSC when the VM clock reads now.
func (l *LAPIC) tscNow(now time.Duration) uint64 {
	if l.tsc != nil {
		return l.tsc()
	}
	return uint64(max(now, 0))
}

// WriteTSCDeadline is a WRMSR of IA32_TSC_DEADLINE (MSRTSCDeadline). In
// TSC-deadline mode it arms the timer to fire when the TSC reaches tsc (at
// once if it already has; 0 disarms it); in other modes, or with the APIC
// disabled, it is ignored, as the SDM says. A deadline beyond the VM
// clock's range (vclock.MaxTime) is kept, but never comes.
//
// Called by the owner vCPU.
func (l *LAPIC) WriteTSCDeadline(tsc uint64) {
	now := l.clk.Now()
	cur := l.tscNow(now)
	l.mu.Lock()
	var e effects
	r := &l.r
	if r.enabled && r.timerMode() == TimerTSCDeadline {
		l.poll(now, &e)
		e.reprogram = true
		r.deadline, r.deadlineAt = tsc, 0
		if tsc != 0 {
			now = clampTime(now)
			at := now
			if tsc > cur {
				at = now + time.Duration(min(tsc-cur, uint64(vclock.MaxTime-now)))
			}
			r.deadlineAt = at
		}
	}
	l.unlock(e)
}

// ReadTSCDeadline is a RDMSR of IA32_TSC_DEADLINE: the armed deadline, or
// 0 when there is none, it has passed (the timer cleared it on firing),
// or the timer is not in TSC-deadline mode.
//
// Called by the owner vCPU.
func (l *LAPIC) ReadTSCDeadline() uint64 {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.r
	if !r.enabled || r.timerMode() != TimerTSCDeadline || r.deadline == 0 || now >= r.deadlineAt {
		return 0
	}
	return r.deadline
}
