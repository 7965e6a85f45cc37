package sched

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// probe spins and records, independently of the scheduler's accounting,
// the workers that run it: in a Sim, RunFor is called right after the
// Pick that put its handle on worker h.on.
type probe struct {
	h    *Handle
	on   map[int]int // worker -> slices
	work *burst      // nil: spins; else does its work, then blocks
}

func newProbe(vm *VM) *probe {
	p := &probe{on: map[int]int{}}
	p.h = vm.AddVCPU(p)
	return p
}

func (p *probe) RunFor(d time.Duration) (time.Duration, State) {
	p.on[p.h.on]++
	if p.work != nil {
		return p.work.RunFor(d)
	}
	return d, Ready
}
func (*probe) Kick() {}

func (p *probe) workers() []int {
	var out []int
	for w := range p.on {
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}

// runOn is the VM's run time on each worker.
func runOn(vm *VM) []time.Duration {
	var out []time.Duration
	for _, c := range vm.Stats().RunOn {
		out = append(out, c.Run)
	}
	return out
}

func mustSetCPUs(t *testing.T, vm *VM, cpus []int, exclusive bool) {
	t.Helper()
	if err := vm.SetCPUs(cpus, exclusive); err != nil {
		t.Fatal(err)
	}
}

// TestPinnedRunsOnlyInItsSet: a pinned VM's vCPUs are only ever picked by
// the workers of its cpuset, however many vCPUs compete, and per-worker
// run time adds up to Run, mid-slice too.
func TestPinnedRunsOnlyInItsSet(t *testing.T) {
	m := NewSim(Config{CPUs: []int{4, 5, 6}}) // workers 0, 1, 2
	pair, solo, free, timer := m.S.NewVM("pair"), m.S.NewVM("solo"), m.S.NewVM("free"), m.S.NewVM("timer")
	mustSetCPUs(t, pair, []int{5, 6}, false)
	mustSetCPUs(t, solo, []int{4}, false)
	mustSetCPUs(t, timer, []int{6}, false)
	probes := map[*VM][]*probe{}
	for vm, n := range map[*VM]int{pair: 3, solo: 2, free: 2} {
		for range n {
			probes[vm] = append(probes[vm], newProbe(vm))
		}
	}
	tp := newProbe(timer)
	tp.work = &burst{}
	probes[timer] = []*probe{tp}
	var arm func(at time.Duration)
	arm = func(at time.Duration) {
		m.At(at, func() {
			tp.work.left += 300 * time.Microsecond
			tp.h.Wake()
			arm(at + 7*time.Millisecond)
		})
	}
	arm(7 * time.Millisecond)
	m.RunUntil(20*time.Second + 3*time.Millisecond) // ends mid-slice
	want := map[*VM][]int{pair: {1, 2}, solo: {0}, free: {0, 1, 2}, timer: {2}}
	for vm, ps := range probes {
		var got []int
		for _, p := range ps {
			got = append(got, p.workers()...)
		}
		slices.Sort(got)
		got = slices.Compact(got)
		if d := cmp.Diff(want[vm], got); d != "" {
			t.Errorf("VM %s ran on workers (-want +got):\n%s", vm.Name(), d)
		}
		st := vm.Stats()
		for w, r := range st.RunOn {
			if r.Worker != w || r.CPU != 4+w {
				t.Errorf("VM %s: RunOn[%d] is worker %d CPU %d", vm.Name(), w, r.Worker, r.CPU)
			}
			if allowed := slices.Contains(want[vm], w); allowed != (r.Run > 0) {
				t.Errorf("VM %s: ran %v on worker %d (CPU %d); allowed there: %v", vm.Name(), r.Run, w, r.CPU, allowed)
			}
		}
		for _, v := range st.VCPUs {
			var sum time.Duration
			for _, r := range v.RunOn {
				sum += r.Run
			}
			if sum != v.Run {
				t.Errorf("VM %s vCPU %d: RunOn adds up to %v, Run is %v", vm.Name(), v.ID, sum, v.Run)
			}
		}
		t.Logf("%s: cpuset %v, run per worker %v", vm.Name(), st.CPUs, runOn(vm))
	}
}

// TestExclusiveCPU: a CPU reserved by a VM runs nothing else, even when
// the reservation comes while another VM's vCPU runs there; the VM gets
// that CPU wholly and is credited for it, so that it is not in debt (a
// debt would cost it its BOOST on wake-up); the other VMs share the rest.
func TestExclusiveCPU(t *testing.T) {
	m := NewSim(Config{CPUs: []int{0, 1}})
	own := m.S.NewVM("own")
	own.AddVCPU(spinner{})
	b, c, d := m.S.NewVM("b"), m.S.NewVM("c"), m.S.NewVM("d")
	b.SetWeight(MaxWeight) // weight does not buy into a reserved CPU
	b.AddVCPU(spinner{})
	c.AddVCPU(spinner{})
	d.AddVCPU(spinner{})
	mustSetCPUs(t, d, []int{0}, false)
	m.RunUntil(time.Second + 3*time.Millisecond) // b and c run on CPU 1 too
	if r := runOn(b)[1] + runOn(c)[1]; r == 0 {
		t.Fatal("before the reservation, the VMs without a cpuset never ran on CPU 1")
	}
	mustSetCPUs(t, own, []int{1}, true)
	before := map[string][]time.Duration{}
	for _, vm := range []*VM{own, b, c, d} {
		before[vm.Name()] = runOn(vm)
	}
	const window = time.Minute
	m.RunUntil(m.Now() + window)
	for _, vm := range []*VM{b, c, d} {
		if got := runOn(vm)[1] - before[vm.Name()][1]; got != 0 {
			t.Errorf("VM %s ran %v on CPU 1, reserved by VM own", vm.Name(), got)
		}
	}
	if got := pct(runOn(own)[1]-before["own"][1], window); math.Abs(got-100) > 0.1 {
		t.Errorf("VM own got %.2f%% of its reserved CPU, want 100%%", got)
	}
	for _, vm := range []*VM{b, c, d} {
		got := pct(runOn(vm)[0]-before[vm.Name()][0], window)
		t.Logf("%s: %.2f%% of CPU 0", vm.Name(), got)
	}
	if got := pct(runOn(b)[0]-before["b"][0], window); got < 90 {
		t.Errorf("VM b (weight %d) got %.2f%% of CPU 0, want nearly all", MaxWeight, got)
	}
	if cpus, excl := own.CPUs(); !excl || !slices.Equal(cpus, []int{1}) {
		t.Errorf("own.CPUs() = %v, %v", cpus, excl)
	}

	// Reserved from the start, the CPU is credited to its VM: at every
	// period boundary, just after the accounting, the VM that used all of
	// it is given back what it used, and is not in debt. (Credit spent in
	// a period comes back at its end; a debt from before a reservation
	// stays, as the VM uses exactly what it is given.)
	m = NewSim(Config{CPUs: []int{0, 1}})
	own = m.S.NewVM("own")
	mustSetCPUs(t, own, []int{1}, true)
	h := own.AddVCPU(spinner{})
	for i := range 3 {
		vm := m.S.NewVM(fmt.Sprint("free", i))
		vm.SetWeight(MaxWeight)
		vm.AddVCPU(spinner{})
	}
	low := time.Duration(0)
	for at := DefaultPeriod; at < time.Minute; at += DefaultPeriod {
		m.RunUntil(at)
		low = min(low, h.Stats().Credit)
	}
	if got := credited(m)["own"]; got != DefaultPeriod {
		t.Errorf("VM own is credited %v a period for its reserved CPU, want all of it, %v", got, DefaultPeriod)
	}
	t.Logf("reserved from the start: lowest credit at a period boundary %v", low)
	if low <= -DefaultTimeSlice {
		t.Errorf("VM own, alone on its reserved CPU, was %v in debt at a period boundary: the CPU is not credited to it", -low)
	}
}

// TestWeightsWithinCPUSet: VMs sharing one pinned CPU split it by weight
// (2:1, 1:1), however much of the pool they cannot use and however the
// VMs elsewhere are weighted.
func TestWeightsWithinCPUSet(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights [2]int
		free    int // VMs without a cpuset, beside the two pinned ones
		want    [2]float64
	}{
		{"2:1 alone", [2]int{512, 256}, 0, [2]float64{66.7, 33.3}},
		{"2:1 beside a free VM", [2]int{512, 256}, 1, [2]float64{66.7, 33.3}},
		{"1:1", [2]int{256, 256}, 0, [2]float64{50, 50}},
		// The free VMs (weight 1024 each) may use CPU 1 too: by weight
		// they are due 2 x 1024/2448 of the 2 CPUs, 167.3 %, so CPU 1
		// has 32.7 % left for the pinned VMs, split 1:3.
		{"1:3 beside two heavy free VMs", [2]int{100, 300}, 2, [2]float64{8.17, 24.51}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewSim(Config{CPUs: []int{0, 1}})
			var vms []*VM
			for i, w := range tc.weights {
				vm := m.S.NewVM(fmt.Sprint("pinned", i))
				vm.SetWeight(w)
				mustSetCPUs(t, vm, []int{1}, false)
				vm.AddVCPU(spinner{})
				vms = append(vms, vm)
			}
			for i := range tc.free {
				vm := m.S.NewVM(fmt.Sprint("free", i))
				vm.SetWeight(1024)
				vm.AddVCPU(spinner{})
			}
			m.RunUntil(time.Second)
			before := []time.Duration{runOn(vms[0])[1], runOn(vms[1])[1]}
			m.RunUntil(m.Now() + time.Minute)
			got := []float64{pct(runOn(vms[0])[1]-before[0], time.Minute), pct(runOn(vms[1])[1]-before[1], time.Minute)}
			t.Logf("weights %v on CPU 1: %s%%", tc.weights, fmtPct(got))
			if !near(got, tc.want[:], 2) {
				t.Fatalf("weights %v on CPU 1: %s%%, want %s", tc.weights, fmtPct(got), fmtPct(tc.want[:]))
			}
		})
	}
}

// credited returns, per VM name, the credit the last accounting handed
// out to it.
func credited(m *Sim) map[string]time.Duration {
	m.S.mu.Lock()
	defer m.S.mu.Unlock()
	out := map[string]time.Duration{}
	for _, a := range m.S.acts {
		out[a.vm.name] = a.share
	}
	return out
}

// TestOverlappingCPUSets: cpusets that overlap partially, {0,1} and
// {1,2}, can use CPUs 0-2 between them and no more: their union is a
// capacity group of its own. The period's credit follows what each VM
// can run, 1.5 CPUs each and the free VM, which alone may use CPU 3, one;
// without the union group the pinned VMs would be credited 1.9 CPUs each
// and the free VM a fifth of the CPU it runs on.
func TestOverlappingCPUSets(t *testing.T) {
	m := NewSim(Config{CPUs: []int{0, 1, 2, 3}})
	a, b, f := m.S.NewVM("a"), m.S.NewVM("b"), m.S.NewVM("free")
	mustSetCPUs(t, a, []int{0, 1}, false)
	mustSetCPUs(t, b, []int{1, 2}, false)
	for _, vm := range []*VM{a, b} {
		vm.SetWeight(2560)
		vm.AddVCPU(spinner{})
		vm.AddVCPU(spinner{})
	}
	f.SetWeight(256)
	f.AddVCPU(spinner{})
	f.AddVCPU(spinner{})
	got := window(m, time.Minute)
	t.Logf("a on 0-1, b on 1-2, free anywhere: %s%%", fmtPct(got))
	if !near(got, []float64{150, 150, 100}, 2) {
		t.Errorf("shares %s, want 150/150/100", fmtPct(got))
	}
	want := map[string]time.Duration{"a": DefaultPeriod * 3 / 2, "b": DefaultPeriod * 3 / 2, "free": DefaultPeriod}
	if d := cmp.Diff(want, credited(m)); d != "" {
		t.Errorf("credit per period (-want +got):\n%s", d)
	}
}

// TestCapAboveOneCPUPinned: a cap above 100 % holds across the vCPUs of a
// VM on a cpuset of several CPUs, and a cpuset of one CPU bounds it to
// that CPU.
func TestCapAboveOneCPUPinned(t *testing.T) {
	for _, tc := range []struct {
		cpus  []int
		vcpus int
		cap   int
		want  float64
	}{
		{[]int{0, 1}, 2, 150, 150},
		{[]int{0, 1}, 3, 150, 150},
		{[]int{1, 2}, 2, 175, 175},
		{[]int{0}, 2, 150, 100},
		{[]int{0, 1}, 2, 250, 200},
	} {
		t.Run(fmt.Sprintf("cpus%v/v%d/cap%d", tc.cpus, tc.vcpus, tc.cap), func(t *testing.T) {
			m := NewSim(Config{CPUs: []int{0, 1, 2}})
			vm := m.S.NewVM("capped")
			if err := vm.SetCap(tc.cap); err != nil {
				t.Fatal(err)
			}
			mustSetCPUs(t, vm, tc.cpus, false)
			for range tc.vcpus {
				vm.AddVCPU(spinner{})
			}
			other := m.S.NewVM("other") // keeps the CPU outside the cpuset busy
			other.AddVCPU(spinner{})
			before := runOn(vm)
			got := window(m, time.Minute)[0]
			t.Logf("cap %d%% on CPUs %v: uses %.3f%%", tc.cap, tc.cpus, got)
			if math.Abs(got-tc.want) > 1 {
				t.Fatalf("uses %.3f%%, want %.0f%% ±1", got, tc.want)
			}
			for w, r := range runOn(vm) {
				if !slices.Contains(tc.cpus, w) && r != before[w] {
					t.Fatalf("ran %v on CPU %d, outside its cpuset", r-before[w], w)
				}
			}
		})
	}
}

// TestWakePinnedGetsItsCPU: a pinned vCPU woken while its CPU is idle, or
// while its CPU runs a lower-priority vCPU and another CPU it may not use
// is idle, is on its CPU at once (the second case needs the tickle to
// preempt its own CPU rather than count the idle one).
func TestWakePinnedGetsItsCPU(t *testing.T) {
	for _, tc := range []struct {
		name           string
		spinCPUs       []int // cpuset of the two heavy spinning VMs
		idleOther      bool  // CPU 0 has nothing to run
		wantLatencyMax time.Duration
	}{
		{"own CPU idle", []int{0}, false, 0},
		{"own CPU busy, other idle", []int{1}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewSim(Config{CPUs: []int{0, 1}})
			for i := range 2 {
				vm := m.S.NewVM(fmt.Sprint("spin", i))
				vm.SetWeight(1024) // heavier than the timer VM
				mustSetCPUs(t, vm, tc.spinCPUs, false)
				vm.AddVCPU(spinner{})
			}
			tv := m.S.NewVM("timer")
			mustSetCPUs(t, tv, []int{1}, false)
			tp := newProbe(tv)
			tp.work = &burst{}
			const tick, work = 7 * time.Millisecond, 300 * time.Microsecond
			given := time.Duration(0)
			var arm func(at time.Duration)
			arm = func(at time.Duration) {
				m.At(at, func() {
					tp.work.left += work
					given += work
					tp.h.Wake()
					arm(at + tick)
				})
			}
			arm(tick)
			m.RunUntil(10 * time.Second)
			st := tp.h.Stats()
			t.Logf("%d wakes, max latency %v, ran %v on workers %v", st.Wakes, st.MaxWakeLatency, st.Run, tp.workers())
			if st.MaxWakeLatency > tc.wantLatencyMax {
				t.Fatalf("max wake latency %v, want %v", st.MaxWakeLatency, tc.wantLatencyMax)
			}
			if st.Run < given-work {
				t.Fatalf("timer vCPU ran %v of %v given", st.Run, given)
			}
			if d := cmp.Diff([]int{1}, tp.workers()); d != "" {
				t.Fatalf("timer vCPU ran on workers (-want +got):\n%s", d)
			}
			if tc.idleOther && runOn(m.S.vms[0])[0]+runOn(m.S.vms[1])[0] != 0 {
				t.Fatal("spinners ran outside their cpuset")
			}
		})
	}
}

// TestSetCPUsWhileRunning: a cpuset changed while its vCPU runs on a
// worker it may no longer use takes effect at once (the vCPU is kicked;
// without a kick it finishes its slice), and ClearCPUs lets it run on
// every CPU again.
func TestSetCPUsWhileRunning(t *testing.T) {
	for _, kick := range []bool{true, false} {
		t.Run(fmt.Sprintf("kick=%v", kick), func(t *testing.T) {
			m := NewSim(Config{CPUs: []int{0, 1}})
			if !kick {
				m.S.kick = func(int) {}
			}
			a, b := m.S.NewVM("a"), m.S.NewVM("b")
			mustSetCPUs(t, a, []int{0}, false)
			mustSetCPUs(t, b, []int{1}, false)
			a.AddVCPU(spinner{})
			b.AddVCPU(spinner{})
			var at []time.Duration
			m.At(time.Second+3*time.Millisecond, func() { // mid-slice
				if a.Stats().VCPUs[0].State != "running" {
					t.Error("a is not running when its cpuset changes")
				}
				mustSetCPUs(t, a, []int{1}, false)
				at = runOn(a)
			})
			m.RunUntil(time.Second + time.Minute)
			late := runOn(a)[0] - at[0]
			t.Logf("a ran %v on CPU 0 after leaving it", late)
			if kick && late != 0 {
				t.Fatalf("a ran %v more on CPU 0 after it was taken out of its cpuset", late)
			}
			if !kick && late > DefaultTimeSlice {
				t.Fatalf("a ran %v more on CPU 0 after it was taken out of its cpuset: more than its slice", late)
			}
			got := []float64{pct(runOn(a)[1]-at[1], time.Minute), pct(runOn(b)[1], time.Minute)}
			if !near(got[:1], []float64{50}, 1) {
				t.Fatalf("a got %.2f%% of CPU 1 shared with b, want 50", got[0])
			}
			a.ClearCPUs()
			before := runOn(a)
			m.RunUntil(m.Now() + time.Minute)
			if got := pct(runOn(a)[0]-before[0], time.Minute); got < 90 {
				t.Fatalf("after ClearCPUs a got %.2f%% of the idle CPU 0", got)
			}
		})
	}
}

// TestSetCPUsRefused: the cpusets SetCPUs refuses, each with an error
// naming the cause, and a refusal changes nothing.
func TestSetCPUsRefused(t *testing.T) {
	if err := NewSim(Config{Workers: 2}).S.NewVM("x").SetCPUs([]int{0}, false); err == nil || !strings.Contains(err.Error(), "Config.CPUs") {
		t.Errorf("unbound pool: %v", err)
	}
	for _, tc := range []struct {
		name      string
		setup     func(t *testing.T, s *Scheduler)
		cpus      []int
		exclusive bool
		want      string // in the error
	}{
		{name: "empty", cpus: []int{}, want: "empty"},
		{name: "nil exclusive", cpus: nil, exclusive: true, want: "empty"},
		{name: "no such worker", cpus: []int{0, 7}, want: "no worker is bound to CPU 7"},
		{name: "reserved by another", cpus: []int{0, 1}, want: `CPU 1 is reserved by VM "excl"`,
			setup: func(t *testing.T, s *Scheduler) { mustSetCPUs(t, s.NewVM("excl"), []int{1}, true) }},
		{name: "reserving a reserved CPU", cpus: []int{1}, exclusive: true, want: `CPU 1 is reserved by VM "excl"`,
			setup: func(t *testing.T, s *Scheduler) { mustSetCPUs(t, s.NewVM("excl"), []int{1}, true) }},
		{name: "reserving a CPU another names", cpus: []int{0, 2}, exclusive: true, want: `CPU 2 is in VM "shared"'s cpuset`,
			setup: func(t *testing.T, s *Scheduler) { mustSetCPUs(t, s.NewVM("shared"), []int{2}, false) }},
		{name: "stranding a VM without a cpuset", cpus: []int{0, 1}, exclusive: true, want: `leave VM "free"`,
			setup: func(t *testing.T, s *Scheduler) {
				mustSetCPUs(t, s.NewVM("excl"), []int{2}, true)
				s.NewVM("free").AddVCPU(spinner{})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewSim(Config{CPUs: []int{0, 1, 2}})
			if tc.setup != nil {
				tc.setup(t, m.S)
			}
			vm := m.S.NewVM("vm")
			mustSetCPUs(t, vm, []int{0}, false)
			err := vm.SetCPUs(tc.cpus, tc.exclusive)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetCPUs(%v, %v) = %v, want an error with %q", tc.cpus, tc.exclusive, err, tc.want)
			}
			t.Log(err)
			if cpus, excl := vm.CPUs(); !slices.Equal(cpus, []int{0}) || excl {
				t.Fatalf("after a refused SetCPUs the cpuset is %v, %v; want [0], false", cpus, excl)
			}
		})
	}
	// A VM without a cpuset whose vCPUs all stopped is not stranded.
	m := NewSim(Config{CPUs: []int{0, 1}})
	m.S.NewVM("done").AddVCPU(&stopAfter{n: 1})
	m.RunUntil(time.Second)
	mustSetCPUs(t, m.S.NewVM("a"), []int{0}, true)
	mustSetCPUs(t, m.S.NewVM("b"), []int{1}, true)
}

// TestConfigValidate: the Configs New refuses, and the defaults of a
// bound pool.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Workers: 3, CPUs: []int{0, 1}}, "Workers is 3 but Config.CPUs lists 2"},
		{Config{CPUs: []int{0, 1, 0}}, "CPU 0 twice"},
		{Config{CPUs: []int{-1}}, "numbered 0 to 1023"},
		{Config{CPUs: []int{0, 1024}}, "numbered 0 to 1023"},
		{Config{CPUs: []int{}}, "empty"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate() = %v, want %q", tc.cfg, err, tc.want)
		}
		if _, err2 := NewChecked(tc.cfg); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("%+v: NewChecked error %v, want Validate's", tc.cfg, err2)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: New did not refuse it", tc.cfg)
				}
			}()
			New(tc.cfg)
		}()
	}
	s := New(Config{Workers: 2, CPUs: []int{3, 1}, Clock: NewFakeClock()})
	want := []WorkerInfo{{Index: 0, CPU: 3}, {Index: 1, CPU: 1}}
	if d := cmp.Diff(want, s.PoolWorkers()); d != "" {
		t.Errorf("PoolWorkers (-want +got):\n%s", d)
	}
	if s.Workers() != 2 || !slices.Equal(s.CPUs(), []int{3, 1}) {
		t.Errorf("Workers %d, CPUs %v", s.Workers(), s.CPUs())
	}
	if u := New(Config{Workers: 2, Clock: NewFakeClock()}); u.CPUs() != nil || u.PoolWorkers()[1].CPU != -1 {
		t.Errorf("unbound pool: CPUs %v, workers %+v", u.CPUs(), u.PoolWorkers())
	}
}

func TestFormatCPUs(t *testing.T) {
	for in, want := range map[string]string{"": "", "0": "0", "0 1": "0-1", "3 0 1 2 6 8 9": "0-3,6,8-9", "1 1": "1"} {
		var cpus []int
		for _, f := range strings.Fields(in) {
			var c int
			fmt.Sscan(f, &c)
			cpus = append(cpus, c)
		}
		if got := FormatCPUs(cpus); got != want {
			t.Errorf("FormatCPUs(%v) = %q, want %q", cpus, got, want)
		}
	}
}

// TestParseCPUs: Linux's cpulist syntax as ParseCPUs reads it, and the
// operator's mistakes and hostile strings it refuses.
func TestParseCPUs(t *testing.T) {
	for in, want := range map[string][]int{
		"0":            {0},
		"3":            {3},
		"0-3,6":        {0, 1, 2, 3, 6},
		"6,0-3":        {0, 1, 2, 3, 6},
		"2-2":          {2},
		"1,0":          {0, 1},
		"007":          {7},
		"1023":         {1023},
		"1020-1023":    {1020, 1021, 1022, 1023},
		"0,2,4-5,9-10": {0, 2, 4, 5, 9, 10},
	} {
		got, err := ParseCPUs(in)
		if err != nil {
			t.Errorf("ParseCPUs(%q): %v", in, err)
			continue
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ParseCPUs(%q) (-want +got):\n%s", in, d)
		}
	}
	for in, want := range map[string]string{
		"":                         "empty",
		",":                        "item 1 is empty",
		"0,":                       "item 2 is empty",
		",0":                       "item 1 is empty",
		"0,,1":                     "item 2 is empty",
		"-1":                       "want a CPU number or a range",
		"1-":                       "want a CPU number or a range",
		"-":                        "want a CPU number or a range",
		"3-1":                      "ends below its start: write it 1-3",
		"1-2-3":                    `"2-3" is not a CPU number`,
		"1024":                     "numbered 0 to 1023",
		"0-1024":                   "numbered 0 to 1023",
		"99999999999999999999999":  "numbered 0 to 1023",
		"0-18446744073709551617":   "numbered 0 to 1023",
		"0,0":                      "CPU 0 is listed twice",
		"0-3,2":                    "CPU 2 is listed twice",
		"1-2,0-1":                  "CPU 1 is listed twice",
		" 1":                       "not a CPU number",
		"1 ":                       "not a CPU number",
		"+1":                       "not a CPU number",
		"0x1":                      "not a CPU number",
		"1.5":                      "not a CPU number",
		"0-15:2/4":                 "not a CPU number",
		"0;1":                      "not a CPU number",
		"1\x00":                    "not a CPU number",
		"\u0661":                   "not a CPU number", // ARABIC-INDIC DIGIT ONE
		"all":                      "not a CPU number",
		strings.Repeat("0,", 2000): "listed twice",
	} {
		got, err := ParseCPUs(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCPUs(%q) = %v, %v; want an error saying %q", in, got, err, want)
		}
	}
}

// FuzzParseCPUs: whatever the input, ParseCPUs returns an error or sorted,
// distinct CPUs in range, whose FormatCPUs is a fixed point: it parses
// back to the same CPUs and formats to itself.
func FuzzParseCPUs(f *testing.F) {
	for _, s := range []string{"0", "0-3,6", "6,0-3", "1023", "0-1023", "3-1", "0,,1", "-1", "1-2-3", "0,0", "0-15:2/4", " 1", "1024", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := ParseCPUs(s)
		if err != nil {
			if cpus != nil {
				t.Fatalf("ParseCPUs(%q) returned %v with error %v", s, cpus, err)
			}
			return
		}
		if len(cpus) == 0 {
			t.Fatalf("ParseCPUs(%q) accepted no CPU", s)
		}
		for i, c := range cpus {
			if c < 0 || c >= cpuSetSize || i > 0 && c <= cpus[i-1] {
				t.Fatalf("ParseCPUs(%q) = %v: not sorted distinct CPUs 0..%d", s, cpus, cpuSetSize-1)
			}
		}
		canon := FormatCPUs(cpus)
		back, err := ParseCPUs(canon)
		if err != nil {
			t.Fatalf("ParseCPUs(FormatCPUs(ParseCPUs(%q)) = %q): %v", s, canon, err)
		}
		if d := cmp.Diff(cpus, back); d != "" {
			t.Fatalf("%q formats as %q, which parses otherwise (-first +second):\n%s", s, canon, d)
		}
		if g := FormatCPUs(back); g != canon {
			t.Fatalf("%q formats as %q, then as %q", s, canon, g)
		}
	})
}
