package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// pinVM is one test-guest VM of a pinning scenario: its name and
// cpuset (nil: none).
type pinVM struct {
	name      string
	cpus      []int
	exclusive bool
}

// pinnedPool returns a started scheduler with one worker bound to each
// of host CPUs 0 and 1, or skips the test if this process may not use
// both.
func pinnedPool(t *testing.T) *sched.Scheduler {
	t.Helper()
	allowed, err := sched.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(allowed, 0) || !slices.Contains(allowed, 1) {
		t.Skipf("needs host CPUs 0 and 1 to bind workers to; this process may use only CPUs %s", sched.FormatCPUs(allowed))
	}
	sc, err := sched.NewChecked(sched.Config{CPUs: []int{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runPinned runs spinning test guests with the given cpusets on sc until
// each has run at least least (or a minute passes), and returns their
// accounting once they have stopped, after checking that each worker's
// thread is bound to its CPU alone while the pool runs.
func runPinned(t *testing.T, sc *sched.Scheduler, specs []pinVM, least time.Duration) []sched.VMStats {
	t.Helper()
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	budget := mm.NewBudget(1 << 30)
	var vms []*hv.VM
	for _, sp := range specs {
		vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: "spin", MemBytes: 16 << 20, Budget: budget,
			Name: sp.name, Sched: sc, CPUs: sp.cpus, CPUsExclusive: sp.exclusive})
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	if err := sc.Start(); err != nil {
		t.Fatal(err)
	}
	defer sc.Stop()
	checkWorkerAffinity(t, sc)
	done := make(chan []hv.ExitStatus, 1)
	go func() { done <- hv.RunAll(vms) }()
	ran := waitFor(time.Minute, func() bool {
		for _, vm := range vms {
			if vm.CPUStats().CPU < least {
				return false
			}
		}
		return true
	})
	for _, vm := range vms {
		vm.Stop(0, "end of scenario")
	}
	statuses := <-done
	var out []sched.VMStats
	for i, vm := range vms {
		st := vm.CPUStats()
		out = append(out, st)
		if statuses[i].Code != 0 || statuses[i].Reason != "end of scenario" {
			t.Errorf("%s ended with %+v, want the scenario's stop", vm.Name(), statuses[i])
		}
		t.Logf("%s: cpuset %q exclusive %v, run %v: %s", st.Name, sched.FormatCPUs(st.CPUs), st.Exclusive, st.CPU.Round(time.Millisecond), runOn(st))
	}
	if !ran {
		t.Fatalf("not every VM ran %v within a minute", least)
	}
	return out
}

// checkWorkerAffinity checks that each worker of the running pool sc
// runs on a thread whose affinity (sched_getaffinity) is its CPU alone.
func checkWorkerAffinity(t *testing.T, sc *sched.Scheduler) {
	t.Helper()
	for _, w := range sc.PoolWorkers() {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(w.TID, &set); err != nil {
			t.Fatalf("worker %d (CPU %d): sched_getaffinity(%d): %v", w.Index, w.CPU, w.TID, err)
		}
		var got []int
		for c := range len(set) * 64 {
			if set.IsSet(c) {
				got = append(got, c)
			}
		}
		if w.TID <= 0 || !slices.Equal(got, []int{w.CPU}) {
			t.Errorf("worker %d, bound to CPU %d: thread %d has affinity %s, want %d alone", w.Index, w.CPU, w.TID, sched.FormatCPUs(got), w.CPU)
		}
	}
}

// runOn is a VM's run time per host CPU, for messages.
func runOn(st sched.VMStats) string {
	var b strings.Builder
	for _, r := range st.RunOn {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "CPU %d %v", r.CPU, r.Run.Round(time.Millisecond))
	}
	return b.String()
}

// ranOn returns the VM's run time on host CPU cpu, as its accounting
// splits it per worker.
func ranOn(t *testing.T, st sched.VMStats, cpu int) time.Duration {
	t.Helper()
	for _, r := range st.RunOn {
		if r.CPU == cpu {
			return r.Run
		}
	}
	t.Fatalf("%s: no worker on CPU %d in its accounting (%s)", st.Name, cpu, runOn(st))
	return 0
}

// TestCPUPinning: a VM pinned to host CPU 1 (hv.Config.CPUs, pvisor run
// --cpus) runs only on the worker bound to CPU 1, whose thread's
// affinity is {1}, however busy the other VMs keep the pool; an
// exclusive cpuset keeps every other VM off its CPU; and pvisor run
// --stats reports the pinned VM's time on CPU 1 alone.
func TestCPUPinning(t *testing.T) {
	const least = 500 * time.Millisecond
	t.Run("pinned", func(t *testing.T) {
		// Three spinners on two CPUs: the two unpinned ones would take
		// CPU 1 whenever the pinned one left it.
		st := runPinned(t, pinnedPool(t), []pinVM{
			{name: "pinned", cpus: []int{1}},
			{name: "free1"},
			{name: "free2"},
		}, least)
		p := st[0]
		if !slices.Equal(p.CPUs, []int{1}) || p.Exclusive {
			t.Errorf("pinned VM's cpuset is %v (exclusive %v), want 1, shared", p.CPUs, p.Exclusive)
		}
		if on0, on1 := ranOn(t, p, 0), ranOn(t, p, 1); on0 != 0 || on1 != p.CPU {
			t.Errorf("pinned VM ran %v on CPU 0 and %v on CPU 1 of %v: want all of it on CPU 1", on0, on1, p.CPU)
		}
		var free time.Duration
		for _, f := range st[1:] {
			free += ranOn(t, f, 0)
		}
		if free == 0 {
			t.Errorf("the unpinned VMs never ran on CPU 0, which only they may use")
		}
	})
	t.Run("exclusive", func(t *testing.T) {
		st := runPinned(t, pinnedPool(t), []pinVM{
			{name: "reserved", cpus: []int{1}, exclusive: true},
			{name: "free1"},
			{name: "free2"},
		}, least)
		r := st[0]
		if !slices.Equal(r.CPUs, []int{1}) || !r.Exclusive {
			t.Errorf("reserving VM's cpuset is %v (exclusive %v), want 1, exclusive", r.CPUs, r.Exclusive)
		}
		if on0 := ranOn(t, r, 0); on0 != 0 {
			t.Errorf("reserving VM ran %v on CPU 0, outside its cpuset", on0)
		}
		for _, f := range st[1:] {
			if on1 := ranOn(t, f, 1); on1 != 0 {
				t.Errorf("%s ran %v on CPU 1, which %s reserves", f.Name, on1, r.Name)
			}
		}
	})
	t.Run("run-flags", func(t *testing.T) {
		pinnedPool(t) // the skip, if any
		tg := testguest(t)
		out, err := exec.Command(pvisorBin(t), "run", "--kernel", tg, "--mem", "16M", "--stats", "--duration", "1s",
			"--state-dir", filepath.Join(t.TempDir(), "state"),
			"--vm", "name=pinned,cpus=1,cmdline=spin", "--vm", "name=free1,cmdline=spin", "--vm", "name=free2,cmdline=spin").CombinedOutput()
		if err != nil {
			t.Fatalf("pvisor run: %v\n%s", err, out)
		}
		_, pinned, _ := strings.Cut(string(out), "== pinned\n")
		pinned, _, _ = strings.Cut(pinned, "== ")
		if !regexp.MustCompile(`(?m)^cpu: cpuset 1 \(shared\)$`).MatchString(pinned) ||
			!regexp.MustCompile(`(?m)^cpu: host CPU 1: run [0-9.]+ s$`).MatchString(pinned) ||
			strings.Contains(pinned, "host CPU 0:") {
			t.Errorf("pinned VM's --stats: want its cpuset and run time on host CPU 1 alone; got:\n%s", pinned)
		}
	})
}
