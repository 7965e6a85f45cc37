package tests

import (
	"io"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// schedVM is one VM of a scheduling scenario.
type schedVM struct {
	name    string
	cmdline string // "spin", "spin=KIND,...", "idle" or "steal"
	mode    cpu.Mode
	weight  int
	cap     int
	console io.Writer
}

// newSchedVMs creates the test-guest VMs on scheduler s.
func newSchedVMs(t *testing.T, s *sched.Scheduler, specs []schedVM) []*hv.VM {
	t.Helper()
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	budget := mm.NewBudget(1 << 30)
	var vms []*hv.VM
	for _, sp := range specs {
		vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: sp.cmdline, MemBytes: 16 << 20, Mode: sp.mode,
			Budget: budget, Name: sp.name, Sched: s, CPUWeight: sp.weight, CPUCap: sp.cap, Console: sp.console})
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	return vms
}

// runScenario runs the test guest VMs on one scheduler with the given
// number of workers, and returns each VM's CPU use in percent of one host
// CPU over [warm, warm+window), as the scheduler accounts it, and each
// VM's accounting at the end.
func runScenario(t *testing.T, workers int, specs []schedVM, warm, window time.Duration) ([]float64, []sched.VMStats) {
	t.Helper()
	s := sched.New(sched.Config{Workers: workers})
	vms := newSchedVMs(t, s, specs)
	s.Start()
	defer s.Stop()
	done := make(chan []hv.ExitStatus, 1)
	go func() { done <- hv.RunAll(vms) }()
	pcts := cpuShares(vms, warm, window)
	for _, vm := range vms {
		vm.Stop(0, "end of scenario")
	}
	statuses := <-done
	final := make([]sched.VMStats, len(vms))
	for i, vm := range vms {
		final[i] = vm.CPUStats()
		if statuses[i].Code != 0 || statuses[i].Reason != "end of scenario" {
			t.Errorf("%s ended with %+v, want the scenario's stop", vm.Name(), statuses[i])
		}
	}
	return pcts, final
}

// cpuShares returns each VM's CPU use in percent of one host CPU over
// [warm, warm+window) from now, as the scheduler accounts it.
func cpuShares(vms []*hv.VM, warm, window time.Duration) []float64 {
	used := func() []time.Duration {
		var d []time.Duration
		for _, vm := range vms {
			d = append(d, vm.CPUStats().CPU)
		}
		return d
	}
	time.Sleep(warm)
	before, t0 := used(), time.Now()
	time.Sleep(window)
	after, wall := used(), time.Since(t0)
	pcts := make([]float64, len(vms))
	for i := range vms {
		pcts[i] = 100 * float64(after[i]-before[i]) / float64(wall)
	}
	return pcts
}

// TestSchedBounds is issue 7's real-time acceptance on a 2-core machine,
// with the test guest's spin and idle modes as the workloads, measured in
// the scheduler's own accounting over 5 s after a 1 s warm-up.
func TestSchedBounds(t *testing.T) {
	const warm, window = time.Second, 5 * time.Second
	t.Run("weights-2:1:1", func(t *testing.T) {
		got, _ := runScenario(t, 1, []schedVM{
			{name: "heavy", cmdline: "spin", weight: 512},
			{name: "light1", cmdline: "spin", weight: 256},
			{name: "light2", cmdline: "spin", weight: 256},
		}, warm, window)
		t.Logf("shares %.1f %% (want 50/25/25 ± 5)", got)
		for i, want := range []float64{50, 25, 25} {
			if got[i] < want-5 || got[i] > want+5 {
				t.Errorf("VM %d used %.1f%% of the worker, want %.0f%% ± 5", i, got[i], want)
			}
		}
	})
	t.Run("cap-25-and-halted", func(t *testing.T) {
		// Two workers: the host is otherwise idle, so only the cap holds
		// the spinning VM back.
		got, _ := runScenario(t, 2, []schedVM{
			{name: "capped", cmdline: "spin", cap: 25},
			{name: "halted", cmdline: "idle"},
		}, warm, window)
		t.Logf("capped %.2f%% (want 25 ± 3), halted %.2f%% (want < 1)", got[0], got[1])
		if got[0] < 22 || got[0] > 28 {
			t.Errorf("capped VM used %.2f%% of a CPU, want 25%% ± 3", got[0])
		}
		if got[1] >= 1 {
			t.Errorf("halted VM used %.2f%% of a CPU, want < 1%%", got[1])
		}
	})
	// Guests that leave the engine constantly (hypercalls, CPUID, port
	// I/O, MMIO and MSR accesses every few instructions) are held to the
	// same bounds as the spinners, in every mode: slices are accounted in
	// time across every exit, not only when an instruction budget runs out.
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		t.Run("exiting-weights-2:1:1/"+mode.String(), func(t *testing.T) {
			got, _ := runScenario(t, 1, []schedVM{
				{name: "heavy", cmdline: "spin=all", mode: mode, weight: 512},
				{name: "light1", cmdline: "spin=hypercall", mode: mode, weight: 256},
				{name: "light2", cmdline: "spin", mode: mode, weight: 256},
			}, warm, window)
			t.Logf("shares %.1f %% (want 50/25/25 ± 5)", got)
			for i, want := range []float64{50, 25, 25} {
				if got[i] < want-5 || got[i] > want+5 {
					t.Errorf("VM %d used %.1f%% of the worker, want %.0f%% ± 5", i, got[i], want)
				}
			}
		})
		t.Run("exiting-cap-25/"+mode.String(), func(t *testing.T) {
			got, _ := runScenario(t, 2, []schedVM{
				{name: "capped", cmdline: "spin=all", mode: mode, cap: 25},
			}, warm, window)
			t.Logf("capped %.2f%% (want 25 ± 3)", got[0])
			if got[0] < 22 || got[0] > 28 {
				t.Errorf("capped exiting VM used %.2f%% of a CPU, want 25%% ± 3", got[0])
			}
		})
	}
	t.Run("timer-under-spin", func(t *testing.T) {
		// One worker, kept busy by a spinning VM: the halted VM's 10 ms
		// timer still wakes it, each wake preempting the spinner. The
		// latency is logged (docs/perf.md), not asserted: it is a figure of
		// a shared machine, not a property.
		got, st := runScenario(t, 1, []schedVM{
			{name: "spinner", cmdline: "spin"},
			{name: "sleeper", cmdline: "idle"},
		}, warm, window)
		v := st[1].VCPUs[0]
		t.Logf("spinner %.2f%%, sleeper %.2f%%: %d wakes, longest wake-up %v", got[0], got[1], v.Wakes, v.MaxWakeLatency)
		if min := int((warm + window) / (20 * time.Millisecond)); v.Wakes < uint64(min) {
			t.Errorf("sleeper woke %d times in %v, want at least %d (a 10 ms timer)", v.Wakes, warm+window, min)
		}
		if got[1] >= 1 || got[0] < 95 {
			t.Errorf("spinner %.2f%%, sleeper %.2f%%: want the spinner to have the worker and the sleeper < 1%%", got[0], got[1])
		}
	})
	t.Run("steal-seen-by-guest", func(t *testing.T) {
		// The test guest's steal mode spins for 2 s of pvclock time and
		// reports the steal_ns its shared-info slot gained meanwhile;
		// sharing one worker with a spinning VM, about half of it.
		var out syncBuffer
		s := sched.New(sched.Config{Workers: 1})
		vms := newSchedVMs(t, s, []schedVM{{name: "stealer", cmdline: "steal", console: &out}, {name: "spinner", cmdline: "spin"}})
		s.Start()
		defer s.Stop()
		done := make(chan []hv.ExitStatus, 1)
		go func() { done <- hv.RunAll(vms) }()
		select {
		case <-vms[0].Done():
		case <-time.After(time.Minute):
			t.Error("the steal guest did not finish within a minute")
		}
		vms[1].Stop(0, "end of scenario")
		vms[0].Stop(124, "test deadline")
		st := <-done
		m := regexp.MustCompile(`steal: (\d+) ns of (\d+) ns`).FindStringSubmatch(out.String())
		if m == nil || st[0].Code != 0 {
			t.Fatalf("steal guest: status %+v, console:\n%s", st[0], out.String())
		}
		stolen, _ := strconv.ParseFloat(m[1], 64)
		total, _ := strconv.ParseFloat(m[2], 64)
		t.Logf("guest saw %.0f%% steal (%s)", 100*stolen/total, m[0])
		if stolen < total/5 || stolen > total {
			t.Errorf("guest saw steal %s: want a real share of the time (about half) while it shares a worker", m[0])
		}
	})
}
