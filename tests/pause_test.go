package tests

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/vclock"
	"github.com/pvisor/pvisor/mm"
)

var (
	clockFiredRE = regexp.MustCompile(`(?m)^clock: fired now=(\d+) deadline=(\d+)$`)
	clockStepRE  = regexp.MustCompile(`(?m)^clock: maxstep pvclock=(\d+) tsc=(\d+) backwards=(\d+) wall=(\d+)$`)
)

// pauseSpan is how long the tests keep a VM paused. It is long next to
// what a loaded host's scheduling can take from a vCPU between two of its
// clock reads (1.3 s seen under a parallel `make test`), so that a jump
// over the pause cannot be mistaken for starvation, or hidden by it.
const pauseSpan = 4 * time.Second

// starvedMax bounds how long a loaded host may keep a runnable vCPU off
// the CPU, for the checks that tell a pause's jump from scheduling.
const starvedMax = pauseSpan * 3 / 4

// TestPauseClock pauses the test guest (clockpause) twice for pauseSpan, in
// every mode and under both clock policies:
//   - while it sleeps on a one-shot timer 3 s ahead: the timer fires after
//     the resume, never before its deadline, and within starvedMax of it;
//   - while it spins reading pvclock and the TSC: by default (paused) the
//     largest step between two reads stays below starvedMax, short of the
//     pause: no jump; with --clock host it is at least the pause.
//
// Either way time never goes backwards, the wall clock reads the host's
// date after the resume, and the paused VM uses no CPU over the pause.
func TestPauseClock(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		for _, policy := range []vclock.Policy{vclock.Frozen, vclock.Live} {
			t.Run(fmt.Sprintf("%v/%v", mode, policy), func(t *testing.T) { pauseClock(t, kernel, mode, policy) })
		}
	}
}

func pauseClock(t *testing.T, kernel []byte, mode cpu.Mode, policy vclock.Policy) {
	out := &syncBuffer{}
	vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: "clockpause", Mode: mode, Clock: policy,
		MemBytes: 64 << 20, Budget: mm.NewBudget(1 << 30), Console: out})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan hv.ExitStatus, 1)
	go func() { done <- vm.Run() }()
	defer func() {
		vm.Stop(124, "end of test")
		<-done
	}()
	wait := func(marker string) {
		t.Helper()
		if !waitConsoleFor(vm, out, marker, 2*time.Minute) {
			t.Fatalf("no %q on the console; stopped %v; console:\n%s", marker, vm.Stopped(), out.String())
		}
	}
	// pause pauses the VM for pauseSpan and returns the guest time it
	// stood still at and the console's length at the resume.
	pause := func() (stoodAt time.Duration, consoleAt int) {
		t.Helper()
		if err := vm.Pause(); err != nil {
			t.Fatal(err)
		}
		cpu0 := vm.CPUStats().CPU
		stoodAt = vm.Clock().Now()
		time.Sleep(pauseSpan)
		if got := vm.Clock().Now(); got != stoodAt {
			t.Errorf("the paused VM's clock moved from %v to %v", stoodAt, got)
		}
		if st := vm.CPUStats(); st.CPU != cpu0 || !st.Paused {
			t.Errorf("the paused VM used %v of CPU over %v (paused %v)", st.CPU-cpu0, pauseSpan, st.Paused)
		}
		consoleAt = len(out.String())
		if err := vm.Resume(); err != nil {
			t.Fatal(err)
		}
		return stoodAt, consoleAt
	}

	wait("clock: armed")
	stoodAt, resumedAt := pause()
	wait("clock: fired")
	s := out.String()
	m := clockFiredRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no fired line:\n%s", s)
	}
	fired, _ := strconv.ParseUint(m[1], 10, 64)
	deadline, _ := strconv.ParseUint(m[2], 10, 64)
	if uint64(stoodAt) >= deadline {
		t.Fatalf("the pause came %v after the timer's deadline (host too slow to pause within 3 s)", time.Duration(uint64(stoodAt)-deadline))
	}
	if i := strings.Index(s, m[0]); i < resumedAt {
		t.Errorf("the timer fired while the VM was paused (console offset %d < %d at resume)", i, resumedAt)
	}
	if fired < deadline {
		t.Errorf("the timer fired at %d, before its deadline %d", fired, deadline)
	} else if late := time.Duration(fired - deadline); late > starvedMax {
		t.Errorf("the timer fired %v after its deadline", late)
	}

	wait("clock: spinning")
	pause()
	select {
	case st := <-done:
		done <- st
		if st.Code != 0 {
			t.Fatalf("status %+v; console:\n%s", st, out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the guest did not finish; console:\n%s", out.String())
	}
	m = clockStepRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no maxstep line:\n%s", out.String())
	}
	step, _ := strconv.ParseUint(m[1], 10, 64)
	tstep, _ := strconv.ParseUint(m[2], 10, 64)
	wall, _ := strconv.ParseInt(m[4], 10, 64)
	t.Logf("timer fired %v after its deadline; largest step: pvclock %v, TSC %v ticks", time.Duration(fired-deadline), time.Duration(step), tstep)
	if m[3] != "0" {
		t.Errorf("guest time went backwards %s times", m[3])
	}
	switch policy {
	case vclock.Frozen:
		if step >= uint64(starvedMax) || tstep >= uint64(starvedMax) {
			t.Errorf("the guest clock jumped over the pause: largest step pvclock %v, TSC %d ticks", time.Duration(step), tstep)
		}
	case vclock.Live:
		if step < uint64(pauseSpan) || tstep < uint64(pauseSpan) {
			t.Errorf("with --clock host the guest clock did not catch up: largest step pvclock %v, TSC %d ticks", time.Duration(step), tstep)
		}
	}
	if d := time.Now().Unix() - wall; d < -2 || d > 60 {
		t.Errorf("the guest's wall clock after the resume is %d s off the host's", -d)
	}
}

// waitConsoleFor waits until out holds marker, the VM stops or d passes.
func waitConsoleFor(vm *hv.VM, out *syncBuffer, marker string, d time.Duration) bool {
	end := time.After(d)
	for !strings.Contains(out.String(), marker) {
		select {
		case <-vm.Done():
			return strings.Contains(out.String(), marker)
		case <-end:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// TestStopWhilePaused: a paused VM can be stopped, and Run returns.
func TestStopWhilePaused(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap} {
		out := &syncBuffer{}
		vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: "spin", Mode: mode,
			MemBytes: 16 << 20, Budget: mm.NewBudget(1 << 30), Console: out})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan hv.ExitStatus, 1)
		go func() { done <- vm.Run() }()
		if !waitConsoleFor(vm, out, "spin: running", 2*time.Minute) {
			t.Fatalf("%v: guest did not start: %s", mode, out.String())
		}
		if err := vm.Pause(); err != nil {
			t.Fatal(err)
		}
		vm.Stop(3, "stopped while paused")
		select {
		case st := <-done:
			if st.Code != 3 {
				t.Errorf("%v: status %+v", mode, st)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%v: Run did not return after Stop of a paused VM", mode)
		}
		if err := vm.Resume(); err != hv.ErrVMStopped {
			t.Errorf("%v: Resume of a stopped VM: %v", mode, err)
		}
	}
}
