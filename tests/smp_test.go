package tests

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
)

var ipiRE = regexp.MustCompile(`(?m)^smp: IPI round trip (\d+) ns`)

// TestTestguestSMP runs the test guest's smp mode in pv mode on 2 and 4
// vCPUs: vCPU 0 starts the others with vcpu_up; locked counters and a spin
// lock shared by all end exact; IPIs wake vCPUs blocked in vcpu_block; a
// remapped page is seen by every vCPU after mmu_flush_tlb_mask; each
// vCPU's own timer wakes it. Every vCPU used CPU time of its own, and the
// VM ran on one scheduler of two workers (this machine's cores).
func TestTestguestSMP(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{2, 4} {
		start := time.Now()
		out, st, vm := runGuestVM(t, hv.Config{Kernel: kernel, Cmdline: "smp", Mode: cpu.ModePV, VCPUs: n}, 5*time.Minute)
		m := summaryRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%d vCPUs: no summary line; status %+v; console:\n%s", n, st, out)
		}
		ok, _ := strconv.Atoi(m[1])
		if m[2] != "0" || ok < 20 || st.Code != 0 {
			t.Errorf("%d vCPUs: %s (status %+v); failures:\n%s\nconsole:\n%s", n, m[0], st, notOK(out), out)
		}
		cs := vm.CPUStats()
		if len(cs.VCPUs) != n {
			t.Fatalf("%d vCPUs: the scheduler has %d", n, len(cs.VCPUs))
		}
		for i, v := range cs.VCPUs {
			if v.Run <= 0 {
				t.Errorf("%d vCPUs: vCPU %d never ran", n, i)
			}
		}
		ipi := ""
		if m := ipiRE.FindStringSubmatch(out); m != nil {
			ipi = m[1] + " ns"
		}
		hc, _, _, _ := vm.StatsSnapshot()
		t.Logf("%d vCPUs: %s in %v, IPI round trip %s, %d mmu_flush_tlb_mask calls; CPU %v", n, m[0],
			time.Since(start).Round(time.Millisecond), ipi, hc[hypercall.NrMMUFlushTLBMask], cs.CPU)
	}
}

// TestSMPModes: more than one vCPU is refused where the guest would have
// no way to start it (trap and hwassist have no local APIC yet), and
// beyond the ABI's MAX_VCPUS.
func TestSMPModes(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode  cpu.Mode
		vcpus int
	}{{cpu.ModeTrap, 2}, {cpu.ModeHWAssist, 2}, {cpu.ModePV, 33}} {
		_, err := hv.New(hv.Config{Kernel: kernel, Mode: tc.mode, VCPUs: tc.vcpus, MemBytes: 64 << 20, Budget: mm.NewBudget(1 << 30)})
		if err == nil {
			t.Errorf("%v with %d vCPUs: accepted", tc.mode, tc.vcpus)
		} else {
			t.Logf("%v with %d vCPUs: %v", tc.mode, tc.vcpus, err)
		}
	}
}
