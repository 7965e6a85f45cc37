package sched

import (
	"sync/atomic"
	"testing"
	"time"
)

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestPausedUsesNoCPU pauses one of two spinning VMs sharing a worker: over
// the paused window it uses no CPU and gains neither steal nor credit, the
// time counts as Paused, and the other VM gets the whole worker. Resume
// gives the shares back.
func TestPausedUsesNoCPU(t *testing.T) {
	seen := map[string]bool{}
	// The two spinners alternate 10 ms slices: one of these instants finds
	// vCPU 0 of VM a on the worker, the other in the run queue.
	for _, at := range []time.Duration{time.Second + 5*time.Millisecond, time.Second + 15*time.Millisecond} {
		seen[pausedUsesNoCPU(t, at)] = true
	}
	if !seen["running"] || !seen["queued"] {
		t.Fatalf("the vCPU was paused only while %v", seen)
	}
}

// pausedUsesNoCPU pauses VM a at time at and returns the state its
// spinning vCPU was in.
func pausedUsesNoCPU(t *testing.T, at time.Duration) string {
	m := NewSim(Config{Workers: 1})
	a, b := m.S.NewVM("a"), m.S.NewVM("b")
	ha := a.AddVCPU(spinner{})
	b.AddVCPU(spinner{})
	idle := a.AddVCPU(halted{}) // a blocked vCPU of the same VM
	m.RunUntil(at)
	state := ha.Stats().State
	running := state == "running"
	quiet := a.Pause()
	if closed(quiet) == running {
		t.Fatalf("Pause with vCPU 0 %s: quiet channel closed %v", state, closed(quiet))
	}
	m.RunUntil(m.Now()) // ends the kicked slice
	if !closed(quiet) {
		t.Fatalf("quiet channel still open once no vCPU runs: %+v", ha.Stats())
	}
	if again := a.Pause(); again != quiet {
		t.Fatal("a second Pause returned another channel")
	}
	before, hb := ha.Stats(), idle.Stats()
	got := window(m, 10*time.Second)
	if !near(got, []float64{0, 100}, 0) {
		t.Fatalf("paused vs running VM: %s, want 0/100", fmtPct(got))
	}
	after, ia := ha.Stats(), idle.Stats()
	if after.Run != before.Run || after.Steal != before.Steal || after.Slices != before.Slices {
		t.Errorf("paused vCPU ran or stole: before %+v after %+v", before, after)
	}
	if after.Credit > min(before.Credit, 0) {
		t.Errorf("paused vCPU gained credit: %v -> %v", before.Credit, after.Credit)
	}
	if after.State != "paused" || ia.State != "paused" {
		t.Errorf("states while paused: %q, %q", after.State, ia.State)
	}
	if d := after.Paused - before.Paused; d != 10*time.Second {
		t.Errorf("paused time grew by %v over a 10 s window", d)
	}
	if ia.Blocked != hb.Blocked || ia.Steal != hb.Steal {
		t.Errorf("paused blocked vCPU accounted blocked/steal time: %+v -> %+v", hb, ia)
	}
	if st := a.Stats(); !st.Paused || st.CPU != before.Run+hb.Run {
		t.Errorf("VM stats while paused: %+v", st)
	}
	a.Resume()
	if a.Paused() {
		t.Fatal("Paused after Resume")
	}
	m.RunUntil(m.Now() + time.Second) // credit settles
	if got := window(m, 10*time.Second); !near(got, []float64{50, 50}, 1) {
		t.Fatalf("after Resume: %s, want 50/50", fmtPct(got))
	}
	if st := idle.Stats(); st.State != "blocked" {
		t.Errorf("a vCPU blocked when paused and never woken is %q after Resume", st.State)
	}
	for _, vm := range m.S.Stats() {
		for _, v := range vm.VCPUs {
			if v.Run+v.Steal+v.Blocked+v.Paused != v.Elapsed {
				t.Errorf("%s/%d: run %v + steal %v + blocked %v + paused %v != elapsed %v",
					vm.Name, v.ID, v.Run, v.Steal, v.Blocked, v.Paused, v.Elapsed)
			}
		}
	}
	return state
}

// TestWakeWhilePaused: a Wake of a paused blocked vCPU does not run it; it
// is remembered, and Resume runs it (once) with BOOST, the wake latency
// counting from the Resume.
func TestWakeWhilePaused(t *testing.T) {
	m := NewSim(Config{Workers: 1})
	vm := m.S.NewVM("t")
	bw := &burst{left: time.Millisecond}
	h := vm.AddVCPU(bw)
	spin := m.S.NewVM("spin")
	spin.AddVCPU(spinner{})
	m.RunUntil(100 * time.Millisecond)
	if st := h.Stats(); st.State != "blocked" || st.Run != time.Millisecond {
		t.Fatalf("burst vCPU before the pause: %+v", st)
	}
	vm.Pause()
	bw.left = 2 * time.Millisecond
	m.At(m.Now()+time.Second, h.Wake)
	m.At(m.Now()+2*time.Second, h.Wake) // a second Wake while paused adds nothing
	m.RunUntil(m.Now() + 5*time.Second)
	st := h.Stats()
	if st.Run != time.Millisecond || st.State != "paused" || st.Wakes != 1 {
		t.Fatalf("woken while paused: %+v", st)
	}
	vm.Resume()
	m.RunUntil(m.Now() + time.Second)
	st = h.Stats()
	if st.Run != 3*time.Millisecond || st.State != "blocked" || st.Wakes != 1 {
		t.Fatalf("after Resume: %+v, want 3 ms run, blocked, 1 wake", st)
	}
	if st.MaxWakeLatency > DefaultTimeSlice {
		t.Fatalf("wake latency %v counts the pause (or waited behind the spinner)", st.MaxWakeLatency)
	}
}

// kickCounter counts Kicks: a vCPU driven by hand with Pick and Finish.
type kickCounter struct{ kicks int }

func (*kickCounter) RunFor(d time.Duration) (time.Duration, State) { return d, Ready }
func (k *kickCounter) Kick()                                       { k.kicks++ }

// TestPauseRunning drives Pick and Finish by hand: a vCPU on a worker when
// its VM pauses is kicked, and the Pause channel closes at its Finish. If
// the run ends Ready the vCPU is runnable at Resume; if it ends Blocked it
// is not, unless a Wake came during the run or the pause; one that ends
// Stopped stops. A vCPU added while paused waits for Resume.
func TestPauseRunning(t *testing.T) {
	for _, tc := range []struct {
		name      string
		st        State
		wake      bool
		wantState string // after Resume
	}{
		{"ready", Ready, false, "queued"},
		{"blocked", Blocked, false, "blocked"},
		{"blocked+wake", Blocked, true, "queued"},
		{"stopped", Stopped, false, "stopped"},
	} {
		clk := NewFakeClock()
		s := New(Config{Workers: 1, Clock: clk})
		vm := s.NewVM(tc.name)
		k := &kickCounter{}
		h := vm.AddVCPU(k)
		if got, _ := s.Pick(0); got != h {
			t.Fatalf("%s: Pick returned %v", tc.name, got)
		}
		clk.Advance(3 * time.Millisecond)
		quiet := vm.Pause()
		if k.kicks != 1 || closed(quiet) {
			t.Fatalf("%s: Pause of a running vCPU: %d kicks, quiet closed %v", tc.name, k.kicks, closed(quiet))
		}
		if tc.wake {
			h.Wake()
		}
		s.Finish(0, 3*time.Millisecond, tc.st)
		if !closed(quiet) {
			t.Fatalf("%s: quiet channel open after the vCPU's Finish", tc.name)
		}
		wantPaused := "paused"
		if tc.st == Stopped {
			wantPaused = "stopped"
		}
		if st := h.Stats(); st.State != wantPaused || st.Run != 3*time.Millisecond {
			t.Fatalf("%s: paused: %+v", tc.name, st)
		}
		if got, _ := s.Pick(0); got != nil {
			t.Fatalf("%s: Pick returned a vCPU of a paused VM", tc.name)
		}
		late := vm.AddVCPU(spinner{})
		clk.Advance(time.Second)
		if got, _ := s.Pick(0); got != nil {
			t.Fatalf("%s: Pick returned the vCPU added while paused", tc.name)
		}
		if st := late.Stats(); st.State != "paused" || st.Steal != 0 || st.Paused != time.Second {
			t.Fatalf("%s: vCPU added while paused: %+v", tc.name, st)
		}
		if st := h.Stats(); tc.st != Stopped && st.Paused != time.Second {
			t.Fatalf("%s: paused time %v, want 1s", tc.name, st.Paused)
		}
		vm.Resume()
		if st := h.Stats(); st.State != tc.wantState {
			t.Errorf("%s: state after Resume %q, want %q", tc.name, st.State, tc.wantState)
		}
		if st := late.Stats(); st.State != "queued" {
			t.Errorf("%s: vCPU added while paused is %q after Resume", tc.name, st.State)
		}
	}
}

// TestPausePool pauses a VM on the real pool: Pause's channel closes once
// no RunFor of the VM is in progress, and none starts until Resume.
func TestPausePool(t *testing.T) {
	var inFlight atomic.Int32
	s := New(Config{Workers: 2, Slice: 2 * time.Millisecond, Period: 6 * time.Millisecond})
	vm := s.NewVM("p")
	var sl []*sleeper
	for range 3 {
		x := newSleeper(&inFlight)
		sl = append(sl, x)
		vm.AddVCPU(x)
	}
	other := newSleeper(new(atomic.Int32))
	s.NewVM("other").AddVCPU(other)
	s.Start()
	defer s.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for sl[0].runs.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("pool made no progress")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-vm.Pause():
	case <-time.After(10 * time.Second):
		t.Fatal("Pause's channel not closed after 10 s")
	}
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("%d RunFor of the paused VM in progress after its Pause channel closed", n)
	}
	runs := sl[0].runs.Load() + sl[1].runs.Load() + sl[2].runs.Load()
	cpu := vm.Stats().CPU
	o := other.runs.Load()
	for other.runs.Load() < o+20 { // the pool goes on for the other VM
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("the other VM does not run while one is paused")
		}
		time.Sleep(time.Millisecond)
	}
	if got := sl[0].runs.Load() + sl[1].runs.Load() + sl[2].runs.Load(); got != runs || vm.Stats().CPU != cpu {
		t.Fatalf("paused VM ran: %d runs before, %d after; cpu %v -> %v", runs, got, cpu, vm.Stats().CPU)
	}
	vm.Resume()
	for sl[0].runs.Load()+sl[1].runs.Load()+sl[2].runs.Load() < runs+6 {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatal("resumed VM does not run")
		}
		time.Sleep(time.Millisecond)
	}
}
