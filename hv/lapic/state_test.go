package lapic

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// gobRoundTrip encodes and decodes a State, as a snapshot file holds it.
func gobRoundTrip(t testing.TB, st State) State {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	var out State
	if err := gob.NewDecoder(&buf).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// busyStates are LAPICs in states worth saving.
var busyStates = []struct {
	name  string
	setup func(t testing.TB, r *rig)
}{
	{"power-up", func(t testing.TB, r *rig) {}},
	{"nested interrupts, level, TPR, errors", func(t testing.TB, r *rig) {
		r.enable()
		r.write(RegTPR, 0x21)
		r.write(RegLDR, 0x04000000)
		r.write(RegDFR, 0x0FFFFFFF)
		r.write(RegLVTLINT0, 0x700)
		r.write(RegLVTError, 0xFE)
		r.l.Deliver(0x41, true)
		r.take(t)
		r.l.Deliver(0x92, false)
		r.take(t)
		r.l.Deliver(0x33, false)
		r.l.Deliver(0x35, true)
		r.l.Deliver(2, false)
		r.write(RegESR, 0)
		r.l.Deliver(3, false)
		r.write(RegICRHigh, 0x05000000)
		r.write(RegICRLow, 0x4080)
	}},
	{"one-shot mid-count", func(t testing.TB, r *rig) {
		r.enable()
		r.write(RegTimerDivide, 0x3)
		r.write(RegLVTTimer, timerVector)
		r.clk.add(777)
		r.write(RegTimerInitial, 123456)
		r.clk.add(333333)
	}},
	{"periodic after a divide change and missed periods", func(t testing.TB, r *rig) {
		r.enable()
		r.write(RegLVTTimer, TimerPeriodic<<17|timerVector)
		r.write(RegTimerInitial, 30000)
		r.clk.add(12345)
		r.write(RegTimerDivide, 0x9)
		r.clk.add(5 * time.Millisecond)
		r.l.Poll(r.clk.Now())
		r.clk.add(999)
	}},
	{"clamped periodic, masked", func(t testing.TB, r *rig) {
		r.enable()
		r.write(RegTimerDivide, 0xB)
		r.write(RegLVTTimer, LVTMasked|TimerPeriodic<<17|timerVector)
		r.write(RegTimerInitial, 7)
		r.clk.add(time.Second + 3)
	}},
	{"TSC deadline armed", func(t testing.TB, r *rig) {
		r.enable()
		r.write(RegLVTTimer, TimerTSCDeadline<<17|timerVector)
		r.clk.add(1000)
		r.l.WriteTSCDeadline(90000)
	}},
	{"software disabled with held requests", func(t testing.TB, r *rig) {
		r.enable()
		r.l.Deliver(0x77, false)
		r.write(RegLVTLINT1, 0x400)
		r.write(RegSVR, 0x1F0)
	}},
	{"globally disabled", func(t testing.TB, r *rig) {
		r.enable()
		r.l.Deliver(0x77, false)
		_ = r.l.WriteBaseMSR(Base | BaseBSP)
	}},
}

// probe continues a rig and records what its guest would see.
func (r *rig) probe(t *testing.T) []string {
	var log []string
	for k := 0; k < 40; k++ {
		r.clk.add(time.Duration(1+k*k) * 7919)
		dl, ok := r.l.NextDeadline()
		if ok && dl <= r.clk.Now() {
			r.l.Poll(r.clk.Now())
		}
		v := r.l.Pending()
		if v >= 0 {
			r.l.Ack(uint8(v))
		}
		log = append(log, fmt.Sprintf("k=%d deadline %v %v pending %#x count %d ppr %#x isr7 %#x tsc %d",
			k, dl, ok, v, r.read(RegTimerCurrent), r.read(RegPPR), r.read(RegISR+0x70), r.l.ReadTSCDeadline()))
		if k%3 == 2 {
			r.eoi()
		}
	}
	return log
}

// TestStateRoundTrip saves each busy LAPIC, restores it through gob into a
// fresh one on a clock reading the same, and checks that both save the
// same and go on the same.
func TestStateRoundTrip(t *testing.T) {
	for _, c := range busyStates {
		t.Run(c.name, func(t *testing.T) {
			a := newRig(t, 0)
			c.setup(t, a)
			st := gobRoundTrip(t, a.l.Save())
			b := newRig(t, 0)
			b.clk.set(a.clk.Now())
			if err := b.l.Restore(st); err != nil {
				t.Fatal(err)
			}
			if b.reprograms == 0 {
				t.Error("Restore did not call OnReprogram")
			}
			if diff := cmp.Diff(a.l.Save(), b.l.Save()); diff != "" {
				t.Fatalf("restored state differs (-saved +restored):\n%s", diff)
			}
			if diff := cmp.Diff(a.dump(), b.dump()); diff != "" {
				t.Fatalf("restored registers differ (-saved +restored):\n%s", diff)
			}
			if diff := cmp.Diff(a.probe(t), b.probe(t)); diff != "" {
				t.Errorf("restored LAPIC goes on differently (-saved +restored):\n%s", diff)
			}
		})
	}
}

// TestRestoreRefuses: each hostile change to a valid state is refused with
// ErrBadState and changes nothing.
func TestRestoreRefuses(t *testing.T) {
	good := func() State {
		r := newRig(t, 0)
		busyStates[3].setup(t, r) // periodic, armed
		return r.l.Save()
	}
	for _, c := range []struct {
		name   string
		mutate func(st *State)
	}{
		{"clock ahead of the restoring clock", func(st *State) { st.Clock += int64(time.Hour) }},
		{"negative clock", func(st *State) { st.Clock = -1 }},
		{"another APIC ID", func(st *State) { st.ID = 1 }},
		{"moved base", func(st *State) { st.APICBase = 0xFED00900 }},
		{"x2APIC", func(st *State) { st.APICBase |= BaseX2APIC }},
		{"BSP bit on another vCPU's state", func(st *State) { st.APICBase &^= BaseBSP }},
		{"TPR above 0xff", func(st *State) { st.TPR = 0x100 }},
		{"LDR low bits", func(st *State) { st.LDR = 0x01000001 }},
		{"DFR low bits clear", func(st *State) { st.DFR = 0xF0000000 }},
		{"SVR high bits", func(st *State) { st.SVR |= 1 << 12 }},
		{"ICR delivery status", func(st *State) { st.ICRLow |= 1 << 12 }},
		{"ICR high low bits", func(st *State) { st.ICRHigh = 0xFF }},
		{"ESR bit 0", func(st *State) { st.ESR = 1 }},
		{"pending ESR bit 4", func(st *State) { st.ESRPending = 1 << 4 }},
		{"LVT reserved bit", func(st *State) { st.LVT[LVTError] |= 1 << 20 }},
		{"LVT remote IRR", func(st *State) { st.LVT[LVTLINT0] |= 1 << 14 }},
		{"LVT unmasked while software disabled", func(st *State) {
			st.SVR &^= SVREnable
			for i := range st.LVT {
				st.LVT[i] |= LVTMasked
			}
			st.LVT[LVTPerf] &^= LVTMasked
		}},
		{"illegal vector in IRR", func(st *State) { st.IRR[0] = 1 << 9 }},
		{"illegal vector in ISR", func(st *State) { st.ISR[0] = 1 }},
		{"illegal vector in TMR", func(st *State) { st.TMR[0] = 1 << 15 }},
		{"two ISR vectors of one class", func(st *State) { st.ISR[2] = 1<<1 | 1<<3 }},
		{"two ISR vectors of class 15", func(st *State) { st.ISR[7] = 1<<31 | 1<<16 }},
		{"divide reserved bit", func(st *State) { st.TimerDivide = 4 }},
		{"count above initial", func(st *State) { st.TimerCount = st.TimerInitial + 1 }},
		{"count 0 while armed", func(st *State) { st.TimerCount = 0 }},
		{"start after the clock", func(st *State) { st.TimerStart = st.Clock + 1; st.TimerEnd++ }},
		{"start negative", func(st *State) { st.TimerEnd -= st.TimerStart + 1; st.TimerStart = -1 }},
		{"end not the span of the count", func(st *State) { st.TimerEnd++ }},
		{"end far away", func(st *State) { st.TimerEnd = 1 << 62 }},
		{"armed in TSC-deadline mode", func(st *State) {
			st.LVT[LVTTimer] = TimerTSCDeadline<<17 | timerVector
			st.TimerInitial = 0
		}},
		{"initial count in TSC-deadline mode", func(st *State) {
			st.LVT[LVTTimer] = TimerTSCDeadline<<17 | timerVector
			st.TimerArmed, st.TimerStart, st.TimerEnd, st.TimerCount = false, 0, 0, 0
		}},
		{"times while disarmed", func(st *State) { st.TimerArmed = false }},
		{"TSC deadline outside its mode", func(st *State) { st.TSCDeadline = 5; st.DeadlineAt = 5 }},
		{"deadline time while disarmed", func(st *State) { st.DeadlineAt = 5 }},
		{"disabled with registers set", func(st *State) { st.APICBase &^= BaseEnable }},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := good()
			c.mutate(&st)
			r := newRig(t, 0)
			r.clk.set(time.Duration(good().Clock))
			r.enable()
			r.write(RegTPR, 0x10)
			before := r.l.Save()
			err := r.l.Restore(st)
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("Restore = %v, want ErrBadState", err)
			}
			if diff := cmp.Diff(before, r.l.Save()); diff != "" {
				t.Errorf("refused Restore changed the LAPIC (-before +after):\n%s", diff)
			}
		})
	}
	// The unmutated state is accepted: the refusals above are the
	// mutations'.
	r := newRig(t, 0)
	r.clk.set(time.Duration(good().Clock))
	if err := r.l.Restore(good()); err != nil {
		t.Fatalf("good state refused: %v", err)
	}
	// A TSC-deadline state with a deadline at the clock's limit is good.
	tsc := newRig(t, 0)
	busyStates[5].setup(t, tsc)
	st := tsc.l.Save()
	st.DeadlineAt = int64(1 << 62)
	if err := tsc.l.Restore(st); err != nil {
		t.Errorf("deadline at vclock.MaxTime refused: %v", err)
	}
	st.DeadlineAt++
	if err := tsc.l.Restore(st); !errors.Is(err, ErrBadState) {
		t.Errorf("deadline beyond vclock.MaxTime: %v, want ErrBadState", err)
	}
}

// stateLeaves lists the settable scalar fields of st, array elements
// included.
func stateLeaves(st *State) []reflect.Value {
	var out []reflect.Value
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		default:
			out = append(out, v)
		}
	}
	walk(reflect.ValueOf(st).Elem())
	return out
}

// FuzzRestore sets fields of a busy LAPIC's state to arbitrary values, a
// few at a time: Restore either refuses the state, changing nothing, or
// accepts one the LAPIC then runs on with FuzzLAPIC's invariants.
func FuzzRestore(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(3), []byte{20, 0, 5, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(5), []byte{30, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		src := newRig(t, 0)
		busyStates[int(which)%len(busyStates)].setup(t, src)
		st := src.l.Save()
		fields := stateLeaves(&st)
		for len(data) >= 10 {
			fv := fields[int(binary.LittleEndian.Uint16(data))%len(fields)]
			x := binary.LittleEndian.Uint64(data[2:])
			data = data[10:]
			switch fv.Kind() {
			case reflect.Bool:
				fv.SetBool(x&1 != 0)
			case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				fv.SetUint(x)
			case reflect.Int64:
				fv.SetInt(int64(x))
			default:
				t.Fatalf("field kind %v", fv.Kind())
			}
		}
		r := newRig(t, 0)
		r.clk.set(src.clk.Now())
		before := r.l.Save()
		if err := r.l.Restore(st); err != nil {
			if diff := cmp.Diff(before, r.l.Save()); diff != "" {
				t.Fatalf("refused Restore changed the LAPIC:\n%s", diff)
			}
			return
		}
		for k := 0; k < 50; k++ {
			now := r.clk.add(time.Duration(k) * 33 * time.Microsecond)
			r.l.Poll(now)
			if v := r.l.Pending(); v >= 0 && k%2 == 0 {
				r.l.Ack(uint8(v))
			}
			if k%5 == 4 {
				r.eoi()
			}
			r.read(RegTimerCurrent)
			checkInvariants(t, r.l, now, true)
		}
	})
}
