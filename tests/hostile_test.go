package tests

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// hostileAttacks are the hostile guest's attacks (guestkit/testguest/hostile.c,
// docs/security.md), one VM each, so that one broken promise does not hide
// the others: a VM the hypervisor stops or that hangs names the attack it
// was in.
var hostileAttacks = []struct {
	name, args string
}{
	{"calls", "calls=1000000"},
	{"alias", "rounds=48 keys=256"},
	{"int", ""},
	{"ud", "samples=3000"},
	{"timer", "rounds=48"},
	{"unaligned", ""},
}

const (
	hostileMem   = 32 << 20
	neighbourMem = 64 << 20
	// hostileStall is how long a hostile VM may print nothing before it
	// counts as hung (every attack reports progress well within it), and
	// hostileDeadline the most a mode's run may take.
	hostileStall    = 20 * time.Second
	hostileDeadline = 2 * time.Minute
	// rssOverhead is what the process may hold beyond the VMs' memory:
	// the Go runtime, the engines' decoded-code caches and soft TLBs, the
	// consoles. Measured peaks are logged.
	rssOverhead = 96 << 20
	minCalls    = 1000000 // random hypercalls per mode
)

var (
	attackLineRE  = regexp.MustCompile(`(?m)^hostile: (\w+) .*breaches=(\d+)$`)
	doneLineRE    = regexp.MustCompile(`(?m)^hostile: done attacks=(\d+) breaches=(\d+)$`)
	callLineRE    = regexp.MustCompile(`(?m)^hostile: call nr=(\d+) n=(\d+) errnos=0x([0-9a-f]+),0x([0-9a-f]+)$`)
	callsTotalRE  = regexp.MustCompile(`(?m)^hostile: calls n=(\d+) `)
	lastHostileRE = regexp.MustCompile(`(?m)^hostile: (begin|timer variant=|unaligned phase=)\S*.*$`)
)

// allowedErrnos returns the errnos call nr may return by the table: its
// listed errors, -EINVAL for a 32-bit or port argument out of range (the
// generated dispatch checks those), and -ENOSYS for a number outside the
// table or a reserved row.
func allowedErrnos(nr int) map[hypercall.Errno]bool {
	if nr >= len(hypercall.Table) || hypercall.Table[nr].Status == hypercall.Reserved {
		return map[hypercall.Errno]bool{hypercall.ENOSYS: true}
	}
	c := hypercall.Table[nr]
	ok := map[hypercall.Errno]bool{}
	for _, e := range c.Errors {
		ok[e.Errno] = true
	}
	for _, a := range c.Args {
		if a.Dir == hypercall.In && (a.Type == hypercall.U32 || a.Type == hypercall.Port) {
			ok[hypercall.EINVAL] = true
		}
	}
	return ok
}

func callName(nr int) string {
	if nr < len(hypercall.Table) {
		return hypercall.Table[nr].Name
	}
	return "numbers outside the table"
}

// callReport reads the calls attack's per-call lines: the number of calls
// made, and what breaks the table (an errno a call's row does not list, a
// call never made, a missing line).
func callReport(out string) (total uint64, problems []string) {
	buckets := 0
	for _, m := range callLineRE.FindAllStringSubmatch(out, -1) {
		nr, _ := strconv.Atoi(m[1])
		n, _ := strconv.ParseUint(m[2], 10, 64)
		lo, _ := strconv.ParseUint(m[3], 16, 64)
		hi, _ := strconv.ParseUint(m[4], 16, 64)
		total += n
		buckets++
		if n == 0 {
			problems = append(problems, fmt.Sprintf("calls: %s (nr %d) was never made", callName(nr), nr))
		}
		ok := allowedErrnos(nr)
		var got, extra []hypercall.Errno
		for e := hypercall.Errno(1); e < 128; e++ {
			w := lo
			if e >= 64 {
				w = hi
			}
			if w>>(e%64)&1 == 0 {
				continue
			}
			got = append(got, e)
			if !ok[e] {
				extra = append(extra, e)
			}
		}
		if len(extra) > 0 {
			problems = append(problems, fmt.Sprintf("calls: %s (nr %d) returned %v, which its table row does not list (returned %v over %d calls)",
				callName(nr), nr, extra, got, n))
		}
	}
	if buckets != len(hypercall.Table)+1 {
		problems = append(problems, fmt.Sprintf("calls: %d per-call lines, want %d (every call and one for numbers outside the table)",
			buckets, len(hypercall.Table)+1))
	}
	return total, problems
}

// procStatus reads a "VmRSS"-style field of /proc/self/status in bytes.
func procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/self/status", field)
	}
	kb, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return kb << 10
}

// TestHostile runs the hostile guest's attacks in each mode, one VM per
// attack, beside a neighbour VM running the ordinary test guest, on one
// scheduler and one memory budget in this process. Every promise an attack
// tests must hold: the hostile VMs end only by their own power-off and
// report no breach, the random-hypercall attack makes at least a million
// calls and sees only the errors the table lists, the neighbour passes
// every check, and the process's memory stays within the VMs' reservations
// and a fixed overhead.
func TestHostile(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		t.Run(mode.String(), func(t *testing.T) { runHostile(t, kernel, mode, i+1) })
	}
}

func runHostile(t *testing.T, kernel []byte, mode cpu.Mode, seed int) {
	// The peak RSS of this run alone: clear_refs 5 resets VmHWM.
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	if !hwmReset {
		t.Log("cannot reset the peak RSS: the VmRSS samples alone bound it")
	}
	rss0 := procStatus(t, "VmRSS")
	budget := mm.NewBudget(1 << 30)
	s := sched.New(sched.Config{Workers: 2})
	s.Start()
	defer s.Stop()

	type guest struct {
		name string
		vm   *hv.VM
		out  *syncBuffer
	}
	var guests []guest
	add := func(name, cmdline string, mem uint64) {
		out := &syncBuffer{}
		vm, err := hv.New(hv.Config{Kernel: kernel, Cmdline: cmdline, MemBytes: mem, Mode: mode,
			Budget: budget, Sched: s, Name: name, Console: out})
		if err != nil {
			t.Fatal(err)
		}
		guests = append(guests, guest{name, vm, out})
	}
	add("neighbour", "", neighbourMem)
	for _, a := range hostileAttacks {
		add("hostile-"+a.name, fmt.Sprintf("hostile=%s seed=%d %s", a.name, seed, a.args), hostileMem)
	}
	reserved := budget.Stats().Reserved
	var vms []*hv.VM
	for _, g := range guests {
		vms = append(vms, g.vm)
	}

	start := time.Now()
	done := make(chan []hv.ExitStatus, 1)
	go func() { done <- hv.RunAll(vms) }()
	var statuses []hv.ExitStatus
	var rssPeak, residentPeak uint64
	hung := map[string]string{}
	lastLen := make([]int, len(guests))
	lastChange := make([]time.Time, len(guests))
	for i := range lastChange {
		lastChange[i] = start
	}
	for statuses == nil {
		select {
		case statuses = <-done:
			continue
		case <-time.After(100 * time.Millisecond):
		}
		rssPeak = max(rssPeak, procStatus(t, "VmRSS"))
		st := budget.Stats()
		residentPeak = max(residentPeak, st.Resident)
		if st.Resident > st.Reserved {
			t.Errorf("budget: %d bytes resident, more than the %d reserved", st.Resident, st.Reserved)
		}
		for i, g := range guests {
			if g.vm.Stopped() {
				continue
			}
			if n := len(g.out.String()); n != lastLen[i] {
				lastLen[i], lastChange[i] = n, time.Now()
			}
			stalled := time.Since(lastChange[i]) > hostileStall
			if stalled || time.Since(start) > hostileDeadline {
				hung[g.name] = fmt.Sprintf("silent for %v (%v into the run)",
					time.Since(lastChange[i]).Round(time.Second), time.Since(start).Round(time.Second))
				g.vm.Stop(124, "test deadline")
			}
		}
	}
	wall := time.Since(start)
	if hwmReset {
		rssPeak = max(rssPeak, procStatus(t, "VmHWM"))
	}

	var calls uint64
	for i, g := range guests {
		out, st := g.out.String(), statuses[i]
		cpuUsed := g.vm.CPUStats().CPU
		if g.name == "neighbour" {
			m := summaryRE.FindStringSubmatch(out)
			if m == nil || m[2] != "0" || st.Code != 0 || st.External {
				t.Errorf("neighbour: status %+v, summary %q; failures:\n%s\nlast lines:\n%s", st, m, notOK(out), tail(out, 600))
			} else {
				t.Logf("neighbour: %s in %v CPU", m[0], cpuUsed.Round(time.Millisecond))
			}
			continue
		}
		attack := strings.TrimPrefix(g.name, "hostile-")
		if why, ok := hung[g.name]; ok {
			t.Errorf("%s: hung, %s: stopped by the test; last step: %q\nlast lines:\n%s", attack, why,
				lastStep(out), tail(out, 800))
			continue
		}
		if st.External || st.Reason != "guest powered off" {
			t.Errorf("%s: the VM ended with %+v, not by its own power-off; last step: %q\nlast lines:\n%s",
				attack, st, lastStep(out), tail(out, 800))
			continue
		}
		done := doneLineRE.FindStringSubmatch(out)
		var lines []string
		for _, m := range attackLineRE.FindAllStringSubmatch(out, -1) {
			if m[1] == "done" {
				continue
			}
			lines = append(lines, m[1])
			if m[2] != "0" {
				t.Errorf("%s: %d breaches: %s\ndetails:\n%s", attack, atoi(m[2]), m[0], details(out, attack))
			}
		}
		if d := cmp.Diff([]string{attack}, lines); d != "" || done == nil || done[1] != "1" {
			t.Errorf("%s: want one report line and a done line (-want +got):\n%s\nlast lines:\n%s", attack, d, tail(out, 800))
		}
		if st.Code != 0 && (done == nil || done[2] == "0") {
			t.Errorf("%s: exit status %d with no breach reported", attack, st.Code)
		}
		if attack == "calls" {
			var problems []string
			calls, problems = callReport(out)
			for _, p := range problems {
				t.Error(p)
			}
			if m := callsTotalRE.FindStringSubmatch(out); m == nil || uint64(atoi(m[1])) != calls {
				t.Errorf("calls: per-call counts add up to %d, the summary says %v", calls, m)
			}
			t.Logf("calls: %d random hypercalls in %v of CPU: %.0f calls/s", calls, cpuUsed.Round(time.Millisecond),
				float64(calls)/cpuUsed.Seconds())
		}
		for _, m := range attackLineRE.FindAllStringSubmatch(out, -1) {
			if m[1] == attack {
				t.Logf("%s (%v CPU): %s", attack, cpuUsed.Round(time.Millisecond), strings.TrimPrefix(m[0], "hostile: "))
			}
		}
	}
	if calls < minCalls {
		t.Errorf("the calls attack made %d random hypercalls, want at least %d", calls, minCalls)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%v: %v wall; peak RSS %d MiB (%d MiB at the start, %d MiB reserved by %d VMs, %d MiB resident at most; Go runtime: %d MiB from the OS, %d MiB of heap in use)",
		mode, wall.Round(time.Millisecond), rssPeak>>20, rss0>>20, reserved>>20, len(guests), residentPeak>>20, ms.Sys>>20, ms.HeapInuse>>20)
	if rssPeak > rss0+reserved+rssOverhead {
		t.Errorf("peak RSS %d MiB: more than the %d MiB at the start + %d MiB reserved + %d MiB overhead",
			rssPeak>>20, rss0>>20, reserved>>20, rssOverhead>>20)
	}
	if st := budget.Stats(); st.Reserved != 0 || st.Resident != 0 || st.VMs != 0 {
		t.Errorf("budget after every VM stopped: %+v", st)
	}
}

// lastStep is the hostile guest's last progress line: where a VM that
// died or hung was.
func lastStep(out string) string {
	m := lastHostileRE.FindAllString(out, -1)
	if m == nil {
		return ""
	}
	return m[len(m)-1]
}

// details returns an attack's lines other than its per-call and per-form
// reports.
func details(out, attack string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "hostile: "+attack+" ") && !strings.HasPrefix(l, "hostile: ud ring=") {
			b.WriteString(l + "\n")
		}
	}
	return tail(b.String(), 2000)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestAllowedErrnos pins the errno sets TestHostile derives from the table,
// and that a report line with an errno outside its call's set fails.
func TestAllowedErrnos(t *testing.T) {
	tests := []struct {
		nr   int
		want []hypercall.Errno
	}{
		{hypercall.NrVersion, nil},
		{hypercall.NrFeatures, []hypercall.Errno{hypercall.EINVAL}},
		{hypercall.NrConsoleWrite, []hypercall.Errno{hypercall.EFAULT, hypercall.EINVAL}},
		{hypercall.NrTimerSet, nil},
		{hypercall.NrEvtchnSend, []hypercall.Errno{hypercall.ENOENT, hypercall.EINVAL}},
		{hypercall.NrMSRRead, []hypercall.Errno{hypercall.EPERM, hypercall.EINVAL}},
		{len(hypercall.Table), []hypercall.Errno{hypercall.ENOSYS}},
	}
	for _, tc := range tests {
		var got []hypercall.Errno
		for _, e := range hypercall.Errnos {
			if allowedErrnos(tc.nr)[e] {
				got = append(got, e)
			}
		}
		want := append([]hypercall.Errno(nil), tc.want...)
		slices.Sort(want)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("call %d (%s): allowed errnos (-want +got):\n%s", tc.nr, callName(tc.nr), d)
		}
	}
	// timer_set lists no error: a report of -EFAULT from it is a failure.
	var lines strings.Builder
	for nr := 0; nr <= len(hypercall.Table); nr++ {
		mask := uint64(0)
		if nr == hypercall.NrTimerSet {
			mask = 1 << hypercall.EFAULT
		}
		fmt.Fprintf(&lines, "hostile: call nr=%d n=1 errnos=0x%x,0x0\n", nr, mask)
	}
	n, problems := callReport(lines.String())
	if n != uint64(len(hypercall.Table)+1) || len(problems) != 1 || !strings.Contains(problems[0], "timer_set") {
		t.Errorf("a -EFAULT from timer_set: %d calls, problems %q; want one problem naming timer_set", n, problems)
	}
}
