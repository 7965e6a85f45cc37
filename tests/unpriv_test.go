package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// unprivAttacks are the attack programs of guestkit/tests that
// TestUnprivileged runs, in this order, in one boot per mode. Each drops to
// uid 65534 itself and prints "attack NAME: ok|BREACH|FAIL ...".
var unprivAttacks = []string{"tlbalias", "int8", "privinsn", "logl", "randcode"}

// unprivGuest is a mode and the kernel it boots: the PV kernel in pv
// mode, the unmodified kernel in trap and hwassist mode.
type unprivGuest struct {
	mode cpu.Mode
	con  string
}

var unprivGuests = []unprivGuest{{cpu.ModePV, "hvc0"}, {cpu.ModeTrap, "ttyS0"}, {cpu.ModeHWAssist, "ttyS0"}}

// kernel builds (or finds cached) the guest's kernel and the initramfs
// that carries the attack programs.
func (g unprivGuest) kernel(t *testing.T) (vmlinux, initrd string) {
	t.Helper()
	if g.mode == cpu.ModePV {
		vmlinux, _, _ = pvGuest(t)
	} else {
		vmlinux, _ = linuxGuest(t)
	}
	makeTarget(t, "attack-initramfs")
	return vmlinux, filepath.Join(root, "build/guest/initramfs-attack.cpio.gz")
}

// unprivScript runs each attack and reports its status on a line of its
// own; the command's status is 0 only if every attack's was.
func unprivScript(attacks []string) string {
	return "rc=0; for p in " + strings.Join(attacks, " ") + "; do /bin/$p; s=$?; " +
		`echo "unpriv-status $p $s"; [ $s -eq 0 ] || rc=1; done; exit $rc`
}

// kernelTrouble matches what the kernel prints when it, not the user
// program, took the fault.
var kernelTrouble = regexp.MustCompile(`Oops|BUG:|Kernel panic|general protection fault, |double fault|kernel stack overflow`)

// TestUnprivileged runs the unprivileged attack programs in every mode:
// each must report ok (no breach), exit 0, and leave the kernel and the VM
// running; the VM ends by the guest's reboot, not by an engine stop.
func TestUnprivileged(t *testing.T) {
	for _, g := range unprivGuests {
		t.Run(g.mode.String(), func(t *testing.T) {
			vmlinux, initrd := g.kernel(t)
			var out syncBuffer
			vm := newLinuxVM(t, vmlinux, initrd, g.mode, g.con, unprivScript(unprivAttacks), &out)
			start := time.Now()
			done := make(chan hv.ExitStatus, 1)
			go func() { done <- vm.Run() }()
			var st hv.ExitStatus
			select {
			case st = <-done:
			case <-time.After(15 * time.Minute):
				vm.Stop(124, "test deadline")
				st = <-done
				t.Errorf("no exit within the deadline")
			}
			con := out.String()
			t.Logf("guest ran %v, VM status %+v", time.Since(start).Round(time.Millisecond), st)
			for _, p := range unprivAttacks {
				lines := programLines(con, p)
				result := regexp.MustCompile(`(?m)^attack ` + p + `: ok .*$`).FindString(con)
				ok := result != ""
				if ok {
					t.Logf("%s", strings.TrimRight(result, "\r"))
				}
				status := regexp.MustCompile(`(?m)^unpriv-status ` + p + ` (\d+)\r?$`).FindStringSubmatch(con)
				switch {
				case !ok:
					t.Errorf("%s: no ok line; its output:\n%s", p, strings.Join(lines, "\n"))
				case status == nil || status[1] != "0":
					t.Errorf("%s: exit status %v, want 0", p, status)
				}
			}
			if m := exitRE.FindStringSubmatch(con); m == nil || m[1] != "0" {
				t.Errorf("guest command status %v, want pvisor-exit: 0; console:\n%s", m, tail(con, 3000))
			}
			if st.Code != 0 || st.External || strings.Contains(st.Reason, "internal error") {
				t.Errorf("VM ended with %+v, want the guest's own reboot with status 0", st)
			}
			if k := kernelTrouble.FindString(con); k != "" {
				t.Errorf("the kernel reported %q; console:\n%s", k, tail(con, 3000))
			}
		})
	}
}

// programLines returns the console lines program p printed.
func programLines(con, p string) []string {
	var out []string
	for _, l := range strings.Split(con, "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.HasPrefix(l, p+":") || strings.HasPrefix(l, "attack "+p+":") || strings.HasPrefix(l, "unpriv-status "+p+" ") {
			out = append(out, l)
		}
	}
	return out
}

// TestUnprivilegedCPUBounds: a VM whose unprivileged program spends its
// time in exits (cpuidloop: CPUID exits in trap and hwassist mode) or in
// hypercalls (mprotectloop: TLB flushes in pv mode) is held to its cap or
// weight like a VM that only computes. It shares one scheduler worker with
// a spinning test-guest VM. Both boot at the default weight; once the
// attacker loops, it gets a 10 % cap (or weight 64 against the
// neighbour's 256), and the shares are measured over 5 s after a 1 s
// warm-up, with the tolerances of TestSchedBounds: the capped VM 10 ± 3 %
// and its neighbour 90 ± 5 %; weights 1:4 give 20/80 ± 5 %. The
// neighbour's share also catches time the attacker takes without being
// charged for it. A shell loop under the same cap is the control: it shows
// the scenario holds for a guest that makes no exits.
func TestUnprivilegedCPUBounds(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	bounds := []cpuBound{
		{name: "cap-10", cap: 10, want: [2]float64{10, 90}, tol: [2]float64{3, 5}},
		{name: "weight-1:4", weight: 64, want: [2]float64{20, 80}, tol: [2]float64{5, 5}},
	}
	for _, g := range unprivGuests {
		prog := "cpuidloop"
		if g.mode == cpu.ModePV {
			prog = "mprotectloop"
		}
		for _, b := range bounds {
			t.Run(g.mode.String()+"/"+prog+"/"+b.name, func(t *testing.T) {
				runBound(t, g, prog, "/bin/"+prog+" 0", b, kernel)
			})
		}
		// The control: a shell loop that makes no exits, under the cap.
		t.Run(g.mode.String()+"/shloop/"+bounds[0].name, func(t *testing.T) {
			runBound(t, g, "shloop", "echo shloop: looping; while :; do :; done", bounds[0], kernel)
		})
	}
}

// cpuBound is a scenario of TestUnprivilegedCPUBounds: the attacker's cap
// or weight (the neighbour's weight is 256), and the shares wanted for the
// attacker and the neighbour, with their tolerances.
type cpuBound struct {
	name        string
	cap, weight int
	want, tol   [2]float64
}

// runBound boots the attacker VM running cmd (which prints "prog: looping"
// when it starts) beside the spinning test-guest neighbour on one worker,
// applies b once the loop runs, and checks both shares.
func runBound(t *testing.T, g unprivGuest, prog, cmd string, b cpuBound, neighbourKernel []byte) {
	const warm, window = time.Second, 5 * time.Second
	var out syncBuffer
	s := sched.New(sched.Config{Workers: 1})
	budget := mm.NewBudget(1 << 30)
	attacker := newLinuxVMOn(t, g, cmd, &out, s, budget)
	neighbour, err := hv.New(hv.Config{Kernel: neighbourKernel, Cmdline: "spin", MemBytes: 16 << 20, Mode: cpu.ModePV,
		Budget: budget, Name: "neighbour", Sched: s, CPUWeight: 256})
	if err != nil {
		t.Fatal(err)
	}
	vms := []*hv.VM{attacker, neighbour}
	s.Start()
	defer s.Stop()
	done := make(chan []hv.ExitStatus, 1)
	go func() { done <- hv.RunAll(vms) }()
	stopAll := func() []hv.ExitStatus {
		for _, vm := range vms {
			vm.Stop(0, "end of scenario")
		}
		return <-done
	}
	if !waitFor(5*time.Minute, func() bool {
		return strings.Contains(out.String(), prog+": looping") || attacker.Stopped()
	}) || attacker.Stopped() {
		stopAll()
		t.Fatalf("%s did not start; console:\n%s", prog, tail(out.String(), 3000))
	}
	if b.cap != 0 {
		if err := attacker.SetCPUCap(b.cap); err != nil {
			t.Fatal(err)
		}
	}
	if b.weight != 0 {
		if err := attacker.SetCPUWeight(b.weight); err != nil {
			t.Fatal(err)
		}
	}
	got := cpuShares(vms, warm, window)
	for i, st := range stopAll() {
		if st.Code != 0 || st.Reason != "end of scenario" {
			t.Errorf("%s ended with %+v, want the scenario's stop; console:\n%s", vms[i].Name(), st, tail(out.String(), 2000))
		}
	}
	t.Logf("%s in %v: attacker %.1f%%, neighbour %.1f%% (want %.0f ± %.0f, %.0f ± %.0f)",
		prog, g.mode, got[0], got[1], b.want[0], b.tol[0], b.want[1], b.tol[1])
	for i, who := range []string{"attacker", "neighbour"} {
		if got[i] < b.want[i]-b.tol[i] || got[i] > b.want[i]+b.tol[i] {
			t.Errorf("%s used %.1f%% of the worker, want %.0f%% ± %.0f", who, got[i], b.want[i], b.tol[i])
		}
	}
}

// newLinuxVMOn creates a VM named "attacker" booting g's kernel with /init
// running cmd, on scheduler s and budget.
func newLinuxVMOn(t *testing.T, g unprivGuest, cmd string, out *syncBuffer, s *sched.Scheduler, budget *mm.Budget) *hv.VM {
	t.Helper()
	vmlinux, initrd := g.kernel(t)
	cfg := linuxConfig(t, vmlinux, initrd, g.mode, g.con, cmd, out)
	cfg.Name, cfg.Sched, cfg.Budget = "attacker", s, budget
	vm, err := hv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}
