package tests

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

var fillRoundRE = regexp.MustCompile(`fill: round (\d+) verified, 0 words changed`)

// fillRounds returns the last clean verification round the fill guest
// reported.
func fillRounds(out string) int {
	m := fillRoundRE.FindAllStringSubmatch(out, -1)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestIsolation is issue 6's isolation acceptance. Two VMs share one
// process, one memory budget and one scheduler: the fill guest writes a
// marker over all of its RAM and keeps re-verifying it; meanwhile a scan
// guest (in each mode) searches all of its own RAM for the marker, reads
// and writes guest-physical addresses outside its RAM up to and beyond
// MAXPHYADDR, and passes out-of-range, straddling, wrapping and
// non-canonical pointers to every hypercall that takes one. The scan guest
// must never see the marker and get all-ones, #PF or -EFAULT every time;
// the fill guest must keep running with its memory intact. Then the fill VM
// is destroyed and a new scan VM must again find nothing: no byte of a
// destroyed VM is visible to the next.
func TestIsolation(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	budget := mm.NewBudget(1 << 30)
	s := sched.New(sched.Config{Workers: 2})
	s.Start()
	defer s.Stop()
	newVM := func(name, cmdline string, mode cpu.Mode, out *syncBuffer) *hv.VM {
		vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: cmdline, MemBytes: 64 << 20, Mode: mode,
			Budget: budget, Sched: s, Name: name, Console: out})
		if err != nil {
			t.Fatal(err)
		}
		return vm
	}
	scan := func(mode cpu.Mode) {
		t.Helper()
		var out syncBuffer
		vm := newVM("scan-"+mode.String(), "scan", mode, &out)
		done := make(chan hv.ExitStatus, 1)
		go func() { done <- vm.Run() }()
		var st hv.ExitStatus
		select {
		case st = <-done:
		case <-time.After(2 * time.Minute):
			vm.Stop(124, "test deadline")
			st = <-done
		}
		o := out.String()
		m := summaryRE.FindStringSubmatch(o)
		if st.Code != 0 || m == nil || m[2] != "0" || !strings.Contains(o, "marker seen 0 times") {
			t.Errorf("%v scan guest: status %+v; failures:\n%s\nlast lines:\n%s", mode, st, notOK(o), tail(o, 600))
			return
		}
		t.Logf("%v: %s; %s", mode, m[0], regexp.MustCompile(`scan: .* times`).FindString(o))
	}

	var fillOut syncBuffer
	fill := newVM("fill", "fill", cpu.ModePV, &fillOut)
	fillDone := make(chan hv.ExitStatus, 1)
	go func() { fillDone <- fill.Run() }()
	if !waitFor(time.Minute, func() bool { return fillRounds(fillOut.String()) >= 1 }) {
		fill.Stop(124, "test deadline")
		t.Fatalf("the fill guest did not verify its marker within a minute; console:\n%s", tail(fillOut.String(), 2000))
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		scan(mode)
	}
	// The fill VM is unharmed: still running, and it verifies its whole
	// marker again after the scans.
	after := fillRounds(fillOut.String())
	if fill.Stopped() {
		t.Fatalf("the fill VM stopped during the scans: %+v\n%s", <-fillDone, tail(fillOut.String(), 1000))
	}
	if !waitFor(time.Minute, func() bool { return fillRounds(fillOut.String()) > after }) {
		t.Errorf("the fill VM verified no round after the scans; console:\n%s", tail(fillOut.String(), 1000))
	}
	fill.Stop(0, "end of test")
	if st := <-fillDone; st.Reason != "end of test" {
		t.Errorf("fill VM ended with %+v, want the test's stop", st)
	}
	if regexp.MustCompile(`(?m)^fill: round \d+ verified, [1-9]`).MatchString(fillOut.String()) {
		t.Errorf("fill VM saw its memory change:\n%s", tail(fillOut.String(), 1000))
	}
	t.Logf("fill VM: %d clean rounds", fillRounds(fillOut.String()))
	// Its memory is gone; a new VM must not see any of it.
	scan(cpu.ModePV)
	if r := budget.Reserved(); r != 0 {
		t.Errorf("%d bytes still reserved after every VM stopped", r)
	}
}
