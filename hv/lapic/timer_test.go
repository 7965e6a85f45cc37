package lapic

import (
	"testing"
	"time"
)

// divides are the divide configuration values and the dividers they
// select (SDM vol. 3, figure 11-10).
var divides = []struct {
	dcr uint32
	div time.Duration
}{
	{0xB, 1}, {0x0, 2}, {0x1, 4}, {0x2, 8}, {0x3, 16}, {0x8, 32}, {0x9, 64}, {0xA, 128},
}

const timerVector = 0xEC

// fired polls the timer at t and reports whether it raised its vector
// (which it takes and ends, so that the next one can be seen).
func (r *rig) fired(t *testing.T, at time.Duration) bool {
	t.Helper()
	r.clk.set(at)
	r.l.Poll(at)
	v := r.l.Pending()
	if v < 0 {
		return false
	}
	if v != timerVector {
		t.Fatalf("Pending = %#x, want the timer's %#x", v, timerVector)
	}
	r.take(t)
	r.eoi()
	return true
}

func (r *rig) deadline(t *testing.T) (time.Duration, bool) {
	t.Helper()
	return r.l.NextDeadline()
}

// TestTimerOneShot counts 1000 ticks at every divider: the current count
// falls by one per divider ns, the timer fires at 1000 × divider ns and
// not before, once, and the count then stays 0.
func TestTimerOneShot(t *testing.T) {
	for _, d := range divides {
		r := newRig(t, 0)
		r.enable()
		r.clk.set(time.Millisecond) // start somewhere other than 0
		t0 := r.clk.Now()
		r.write(RegTimerDivide, d.dcr)
		r.write(RegLVTTimer, timerVector) // one-shot, unmasked
		r.write(RegTimerInitial, 1000)
		end := t0 + 1000*d.div
		if dl, ok := r.deadline(t); !ok || dl != end {
			t.Errorf("divide %d: NextDeadline = %v %v, want %v", d.div, dl, ok, end)
		}
		for _, c := range []struct {
			at   time.Duration
			want uint32
		}{
			{0, 1000}, {d.div - 1, 1000}, {d.div, 999}, {250 * d.div, 750}, {1000*d.div - 1, 1},
		} {
			r.clk.set(t0 + c.at)
			if got := r.read(RegTimerCurrent); got != c.want {
				t.Errorf("divide %d: current count at +%v = %d, want %d", d.div, c.at, got, c.want)
			}
		}
		if r.fired(t, end-1) {
			t.Errorf("divide %d: fired before its end", d.div)
		}
		if !r.fired(t, end) {
			t.Errorf("divide %d: did not fire at its end", d.div)
		}
		if got := r.read(RegTimerCurrent); got != 0 {
			t.Errorf("divide %d: current count after the end = %d, want 0", d.div, got)
		}
		if _, ok := r.deadline(t); ok {
			t.Errorf("divide %d: a spent one-shot timer still has a deadline", d.div)
		}
		if r.fired(t, end+time.Second) {
			t.Errorf("divide %d: a one-shot timer fired twice", d.div)
		}
		if got := r.read(RegTimerInitial); got != 1000 {
			t.Errorf("divide %d: initial count reads %d, want 1000", d.div, got)
		}
	}
}

// TestTimerPeriodic: a periodic timer fires at every period, reloads its
// count, and a Poll after several periods raises one interrupt and goes
// on to the next period boundary.
func TestTimerPeriodic(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegTimerDivide, 0x0)                        // divide by 2
	r.write(RegLVTTimer, TimerPeriodic<<17|timerVector) // periodic
	r.write(RegTimerInitial, 100000)                    // 200 µs
	const p = 200 * time.Microsecond
	for k := time.Duration(1); k <= 5; k++ {
		if dl, ok := r.deadline(t); !ok || dl != k*p {
			t.Fatalf("period %d: NextDeadline = %v %v, want %v", k, dl, ok, k*p)
		}
		r.clk.set(k*p - p/2)
		if got := r.read(RegTimerCurrent); got != 50000 {
			t.Errorf("period %d: current count halfway = %d, want 50000", k, got)
		}
		if r.fired(t, k*p-1) {
			t.Fatalf("period %d: fired early", k)
		}
		if !r.fired(t, k*p) {
			t.Fatalf("period %d: did not fire", k)
		}
		if got := r.read(RegTimerCurrent); got != 100000 {
			t.Errorf("period %d: count after the reload = %d, want 100000", k, got)
		}
	}
	// Ten periods and a half later: one interrupt, the next at the
	// boundary after.
	r.clk.set(15*p + p/2)
	if got := r.read(RegTimerCurrent); got != 50000 {
		t.Errorf("current count between polls = %d, want 50000", got)
	}
	if !r.fired(t, 15*p+p/2) {
		t.Fatal("no interrupt after ten missed periods")
	}
	if r.fired(t, 15*p+p/2) {
		t.Error("missed periods raised more than one interrupt")
	}
	if dl, ok := r.deadline(t); !ok || dl != 16*p {
		t.Errorf("NextDeadline after the missed periods = %v %v, want %v", dl, ok, 16*p)
	}
	// Initial count 0 stops it.
	r.write(RegTimerInitial, 0)
	if _, ok := r.deadline(t); ok || r.fired(t, 20*p) {
		t.Error("timer runs after initial count 0")
	}
}

// TestTimerMasked: a masked timer counts and reloads but raises nothing,
// needs no host timer, and an expiry while masked stays lost when the
// entry is unmasked.
func TestTimerMasked(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegTimerDivide, 0xB)
	r.write(RegLVTTimer, LVTMasked|timerVector)
	r.write(RegTimerInitial, 1000)
	if _, ok := r.deadline(t); ok {
		t.Error("masked timer asks for a host timer")
	}
	r.clk.set(400)
	if got := r.read(RegTimerCurrent); got != 600 {
		t.Errorf("masked timer's current count = %d, want 600", got)
	}
	if r.fired(t, 1000) || r.fired(t, 5000) {
		t.Error("masked one-shot timer raised its vector")
	}
	r.write(RegLVTTimer, timerVector)
	if r.fired(t, 6000) {
		t.Error("unmasking raised an expiry that happened while masked")
	}

	// Periodic, masked through several periods, then unmasked: the next
	// period boundary fires, none of the earlier ones.
	r.write(RegLVTTimer, LVTMasked|TimerPeriodic<<17|timerVector)
	base := r.clk.Now()
	r.write(RegTimerInitial, 200000) // 200 µs at divide 1
	p := 200 * time.Microsecond
	if r.fired(t, base+3*p+p/4) {
		t.Error("masked periodic timer raised its vector")
	}
	r.write(RegLVTTimer, TimerPeriodic<<17|timerVector)
	if dl, ok := r.deadline(t); !ok || dl != base+4*p {
		t.Errorf("NextDeadline after unmasking = %v %v, want %v", dl, ok, base+4*p)
	}
	if r.fired(t, base+4*p-1) || !r.fired(t, base+4*p) {
		t.Error("unmasked periodic timer did not fire at its next boundary only")
	}
}

// TestTimerTSCDeadline: in TSC-deadline mode the deadline MSR arms the
// timer, reads back until it fires and 0 after; a past deadline fires at
// once, 0 disarms; initial-count writes are ignored and the current count
// reads 0. Outside the mode the MSR reads 0 and ignores writes.
func TestTimerTSCDeadline(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegLVTTimer, timerVector)
	r.l.WriteTSCDeadline(5000)
	if got := r.l.ReadTSCDeadline(); got != 0 {
		t.Errorf("deadline MSR outside TSC-deadline mode reads %d", got)
	}
	if _, ok := r.deadline(t); ok {
		t.Error("a deadline written outside TSC-deadline mode armed the timer")
	}

	r.write(RegLVTTimer, TimerTSCDeadline<<17|timerVector)
	r.write(RegTimerInitial, 1234)
	if got := r.read(RegTimerInitial); got != 0 {
		t.Errorf("initial count in TSC-deadline mode reads %d, want 0 (writes ignored)", got)
	}
	r.clk.set(1000)
	r.l.WriteTSCDeadline(6000)
	if got := r.l.ReadTSCDeadline(); got != 6000 {
		t.Errorf("deadline MSR reads %d, want 6000", got)
	}
	if got := r.read(RegTimerCurrent); got != 0 {
		t.Errorf("current count in TSC-deadline mode = %d, want 0", got)
	}
	if dl, ok := r.deadline(t); !ok || dl != 6000 {
		t.Errorf("NextDeadline = %v %v, want 6µs", dl, ok)
	}
	if r.fired(t, 5999) || !r.fired(t, 6000) {
		t.Error("TSC deadline did not fire at 6000 only")
	}
	if got := r.l.ReadTSCDeadline(); got != 0 {
		t.Errorf("deadline MSR after firing reads %d, want 0", got)
	}
	if r.fired(t, 9000) {
		t.Error("TSC deadline fired twice")
	}

	r.l.WriteTSCDeadline(100) // in the past
	if !r.fired(t, r.clk.Now()) {
		t.Error("a past TSC deadline did not fire at once")
	}
	r.l.WriteTSCDeadline(20000)
	r.l.WriteTSCDeadline(0)
	if _, ok := r.deadline(t); ok || r.fired(t, 30000) {
		t.Error("deadline 0 did not disarm")
	}
	r.l.WriteTSCDeadline(^uint64(0)) // far beyond the VM clock's range
	if dl, ok := r.deadline(t); !ok || dl <= 30000 {
		t.Errorf("NextDeadline for the largest deadline = %v %v", dl, ok)
	}
	if r.fired(t, 40000) {
		t.Error("the largest deadline fired")
	}
	// Leaving the mode disarms the deadline.
	r.write(RegLVTTimer, timerVector)
	r.write(RegLVTTimer, TimerTSCDeadline<<17|timerVector)
	if got := r.l.ReadTSCDeadline(); got != 0 {
		t.Errorf("deadline survived a mode change: %d", got)
	}
}

// TestTSCDeadlineOffset: the deadline is compared with the vCPU's TSC
// (Config.TSC), not with the VM clock.
func TestTSCDeadlineOffset(t *testing.T) {
	clk := &fakeClock{}
	const offset = 1 << 40 // the guest wrote its TSC
	l, err := New(Config{ID: 0, Clock: clk, TSC: func() uint64 { return uint64(clk.Now()) + offset }})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(RegSVR, 4, SVREnable|0xFF)
	l.Write(RegLVTTimer, 4, TimerTSCDeadline<<17|timerVector)
	clk.set(500)
	l.WriteTSCDeadline(offset + 3500)
	if dl, ok := l.NextDeadline(); !ok || dl != 3500 {
		t.Errorf("NextDeadline = %v %v, want 3.5µs", dl, ok)
	}
}

// TestTimerModeChange: switching between one-shot and periodic keeps the
// count running; switching to or from TSC-deadline mode disarms the timer
// and clears the initial count.
func TestTimerModeChange(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegTimerDivide, 0xB)
	r.write(RegLVTTimer, timerVector)
	r.write(RegTimerInitial, 300000) // 300 µs one-shot
	r.clk.set(100 * time.Microsecond)
	r.write(RegLVTTimer, TimerPeriodic<<17|timerVector)
	if got := r.read(RegTimerCurrent); got != 200000 {
		t.Errorf("count after one-shot to periodic = %d, want 200000", got)
	}
	if !r.fired(t, 300*time.Microsecond) || !r.fired(t, 600*time.Microsecond) {
		t.Error("periodic timer after the mode change did not fire at 300 and 600 µs")
	}
	r.clk.set(700 * time.Microsecond)
	r.write(RegLVTTimer, timerVector) // back to one-shot
	if !r.fired(t, 900*time.Microsecond) || r.fired(t, 1200*time.Microsecond) {
		t.Error("one-shot after the mode change did not fire once at 900 µs")
	}

	r.write(RegTimerInitial, 1000)
	r.write(RegLVTTimer, TimerTSCDeadline<<17|timerVector)
	if got := r.read(RegTimerInitial); got != 0 {
		t.Errorf("initial count after the switch to TSC-deadline mode = %d", got)
	}
	if _, ok := r.deadline(t); ok {
		t.Error("timer armed after the switch to TSC-deadline mode")
	}
	r.write(RegLVTTimer, 3<<17|timerVector) // reserved mode: the timer does not run
	r.write(RegTimerInitial, 1000)
	if _, ok := r.deadline(t); ok || r.read(RegTimerCurrent) != 0 {
		t.Error("timer runs in the reserved mode 3")
	}
}

// TestTimerDivideChange: a divide change mid-count goes on from the count
// reached, at the new rate.
func TestTimerDivideChange(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegTimerDivide, 0xB) // 1
	r.write(RegLVTTimer, timerVector)
	r.write(RegTimerInitial, 1000)
	r.clk.set(400)
	r.write(RegTimerDivide, 0x2) // 8: 600 left take 4800 ns
	if got := r.read(RegTimerCurrent); got != 600 {
		t.Errorf("count at the divide change = %d, want 600", got)
	}
	r.clk.set(400 + 8*100)
	if got := r.read(RegTimerCurrent); got != 500 {
		t.Errorf("count 800 ns after the change = %d, want 500", got)
	}
	if dl, ok := r.deadline(t); !ok || dl != 400+4800 {
		t.Errorf("NextDeadline = %v %v, want 5.2µs", dl, ok)
	}
}

// TestMinPeriod: a periodic timer of count 1 at divide 1 (a period of 1
// ns asked) fires at most once per MinPeriod, whether the host polls at
// NextDeadline or far more often.
func TestMinPeriod(t *testing.T) {
	const span = time.Second
	limit := int(span / MinPeriod)

	r := newRig(t, 0)
	r.enable()
	r.write(RegTimerDivide, 0xB)
	r.write(RegLVTTimer, TimerPeriodic<<17|timerVector)
	r.write(RegTimerInitial, 1)
	wakeups, raised := 0, 0
	for {
		dl, ok := r.deadline(t)
		if !ok {
			t.Fatal("periodic timer lost its deadline")
		}
		if dl > span {
			break
		}
		wakeups++
		if wakeups > limit+1 {
			t.Fatalf("more than %d host wake-ups in %v", limit, span)
		}
		if r.fired(t, dl) {
			raised++
		}
		if next, _ := r.deadline(t); next <= dl {
			t.Fatalf("deadline did not advance past %v: %v", dl, next)
		}
	}
	if raised > limit || wakeups > limit {
		t.Errorf("%d interrupts from %d wake-ups in %v, want at most %d", raised, wakeups, span, limit)
	}
	if raised < limit {
		t.Errorf("%d interrupts in %v, want %d (one per MinPeriod)", raised, span, limit)
	}

	// Polled every microsecond: no more interrupts.
	r2 := newRig(t, 0)
	r2.enable()
	r2.write(RegTimerDivide, 0xB)
	r2.write(RegLVTTimer, TimerPeriodic<<17|timerVector)
	r2.write(RegTimerInitial, 1)
	raised = 0
	for at := time.Duration(0); at <= span; at += time.Microsecond {
		if r2.fired(t, at) {
			raised++
		}
		if at%MinPeriod == MinPeriod/2 {
			if got := r2.read(RegTimerCurrent); got != 1 {
				t.Fatalf("current count %d, want 1", got)
			}
		}
	}
	if raised > limit {
		t.Errorf("%d interrupts polled every µs in %v, want at most %d", raised, span, limit)
	}
}

// TestPollCoalesces: one Poll an hour after a count-1 periodic timer
// started raises one interrupt, and moves the deadline past the Poll.
func TestPollCoalesces(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	r.write(RegTimerDivide, 0xB)
	r.write(RegLVTTimer, TimerPeriodic<<17|timerVector)
	r.write(RegTimerInitial, 1)
	if !r.fired(t, time.Hour) || r.fired(t, time.Hour) {
		t.Error("an hour of periods did not raise exactly one interrupt")
	}
	if dl, ok := r.deadline(t); !ok || dl <= time.Hour || dl > time.Hour+MinPeriod {
		t.Errorf("NextDeadline after an hour = %v %v", dl, ok)
	}
	// Poll does not run ahead of the clock.
	r.l.Poll(2 * time.Hour)
	if got := r.l.Pending(); got != -1 {
		t.Error("Poll with a time beyond the clock fired the timer")
	}
}

// TestOnReprogram: every guest change that can move NextDeadline calls
// OnReprogram (the VM re-arms its host timer then); Poll and reads do not.
func TestOnReprogram(t *testing.T) {
	r := newRig(t, 0)
	r.enable()
	for _, c := range []struct {
		name string
		do   func()
		want bool
	}{
		{"LVT timer", func() { r.write(RegLVTTimer, timerVector) }, true},
		{"initial count", func() { r.write(RegTimerInitial, 5000) }, true},
		{"divide", func() { r.write(RegTimerDivide, 0x1) }, true},
		{"SVR", func() { r.write(RegSVR, SVREnable|0xFF) }, true},
		{"TSC deadline in its mode", func() {
			r.write(RegLVTTimer, TimerTSCDeadline<<17|timerVector)
			r.reprograms = 0
			r.l.WriteTSCDeadline(1 << 30)
		}, true},
		{"base MSR disable", func() { _ = r.l.WriteBaseMSR(Base | BaseBSP) }, true},
		{"Poll, reads, Deliver", func() {
			_ = r.l.WriteBaseMSR(Base | BaseBSP | BaseEnable)
			r.enable()
			r.write(RegLVTTimer, timerVector)
			r.write(RegTimerInitial, 10)
			r.reprograms = 0
			r.l.Poll(r.clk.add(100))
			r.read(RegTimerCurrent)
			r.l.ReadTSCDeadline()
			r.l.NextDeadline()
			r.l.Deliver(0x40, false)
		}, false},
	} {
		r.reprograms = 0
		c.do()
		if got := r.reprograms > 0; got != c.want {
			t.Errorf("%s: OnReprogram called %v, want %v", c.name, got, c.want)
		}
	}
}
