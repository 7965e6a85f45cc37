package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/guestkit/gosmp/smpdata"
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

// TestSMPModes: more than one vCPU is refused beyond the ABI's MAX_VCPUS,
// and in trap and hwassist mode where the local APICs and the wake-up
// mailbox would lie in guest RAM, or the LAPIC timers could not count VM
// time.
func TestSMPModes(t *testing.T) {
	kernel, err := os.ReadFile(testguest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode   cpu.Mode
		vcpus  int
		mem    uint64
		detTSC bool
	}{
		{cpu.ModePV, 33, 64 << 20, false},
		{cpu.ModeTrap, 33, 64 << 20, false},
		{cpu.ModeTrap, 2, 4 << 30, false},
		{cpu.ModeHWAssist, 2, 4 << 30, false},
		{cpu.ModeTrap, 2, 64 << 20, true},
	} {
		_, err := hv.New(hv.Config{Kernel: kernel, Mode: tc.mode, VCPUs: tc.vcpus, MemBytes: tc.mem, DeterministicTSC: tc.detTSC, Budget: mm.NewBudget(8 << 30)})
		if err == nil {
			t.Errorf("%v with %d vCPUs, %d MiB, deterministic TSC %v: accepted", tc.mode, tc.vcpus, tc.mem>>20, tc.detTSC)
		} else {
			t.Logf("%v with %d vCPUs: %v", tc.mode, tc.vcpus, err)
		}
	}
}

// smpScript is TestSMP's workload: the CPUs Linux sees, the counting
// threads, the Go program, then the stress workload (whose status is the
// script's).
const smpScript = `echo "cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "online=$(cat /sys/devices/system/cpu/online)"
smpcount 4 10000000
gosmp
grep -E '^ *(RES|CAL|TLB):' /proc/interrupts | while read name counts; do echo "ipis: $name $counts"; done
T=/tmp
` + stressScript

var (
	smpCPUsRE   = regexp.MustCompile(`(?m)^cpus=(\d+)\r?$`)
	smpOnlineRE = regexp.MustCompile(`(?m)^online=(\S+)\r?$`)
	goProcsRE   = regexp.MustCompile(`(?m)^gosmp: GOMAXPROCS (\d+) NumCPU (\d+)\r?$`)
	goSumRE     = regexp.MustCompile(`(?m)^gosmp: sha256 ([0-9a-f]{64})\r?$`)
)

// TestSMP boots Linux on 2 and 4 vCPUs (on this 2-core machine's two
// scheduler workers) in every mode: the patched kernel in pv mode, the
// unmodified one on LAPICs, ACPI tables and the wake-up mailbox in trap and
// hwassist mode. /proc/cpuinfo lists every vCPU and all are online; 4
// threads add 1 to shared counters 10 million times each, through an
// atomic and under a mutex, with exact totals; a static Go program sees
// GOMAXPROCS equal to the vCPUs and its parallel SHA-256 over 16 MiB equals
// the host's; the stress workload's outputs equal the host busybox's. Every
// vCPU used CPU time; in pv mode no privileged instruction trapped after PV
// start.
func TestSMP(t *testing.T) {
	var sums [][sha256.Size]byte
	data := smpdata.Data()
	for i := 0; i < smpdata.Blocks; i++ {
		sums = append(sums, sha256.Sum256(data[i*smpdata.BlockSize:(i+1)*smpdata.BlockSize]))
	}
	d := smpdata.Combine(sums)
	want := hex.EncodeToString(d[:])
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		for _, n := range []int{2, 4} {
			t.Run(fmt.Sprintf("%v/%d", mode, n), func(t *testing.T) {
				vmlinux, initrd, con := modeGuest(t, mode)
				var out syncBuffer
				cfg := linuxConfig(t, vmlinux, initrd, mode, con, smpScript, &out)
				cfg.VCPUs = n
				vm, err := hv.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				o, code, _ := runLinuxVM(t, vm, mode, &out, 20*time.Minute)
				if m := smpCPUsRE.FindStringSubmatch(o); m == nil || m[1] != strconv.Itoa(n) {
					t.Errorf("/proc/cpuinfo: %v processors, want %d", m, n)
				}
				if m := smpOnlineRE.FindStringSubmatch(o); m == nil || m[1] != "0-"+strconv.Itoa(n-1) {
					t.Errorf("online CPUs %v, want 0-%d", m, n-1)
				}
				if !strings.Contains(o, "smpcount: exact") {
					t.Errorf("smpcount lost updates:\n%s", grepLines(o, "smpcount:"))
				}
				if m := goProcsRE.FindStringSubmatch(o); m == nil || m[1] != strconv.Itoa(n) || m[2] != strconv.Itoa(n) {
					t.Errorf("gosmp: %v, want GOMAXPROCS and NumCPU %d", m, n)
				}
				if m := goSumRE.FindStringSubmatch(o); m == nil || m[1] != want {
					t.Errorf("gosmp's parallel sha256 %v, want %s", m, want)
				}
				checkStress(t, o, code)
				hc, priv, _, _ := vm.StatsSnapshot()
				if mode == cpu.ModePV && len(priv) != 0 {
					t.Errorf("privileged exits after PV start: %v, want none", priv)
				}
				cs := vm.CPUStats()
				for i, v := range cs.VCPUs {
					if v.Run <= 0 {
						t.Errorf("vCPU %d never ran", i)
					}
				}
				t.Logf("%v, %d vCPUs: %s; %s; CPU %v; %s", mode, n,
					grepLines(o, "smpcount:"), grepLines(o, "gosmp:"), cs.CPU, grepLines(o, "ipis:"))
				if mode == cpu.ModePV {
					t.Logf("%d IPI sends (evtchn_send), %d mmu_flush_tlb_mask", hc[hypercall.NrEvtchnSend], hc[hypercall.NrMMUFlushTLBMask])
				}
			})
		}
	}
}

// grepLines returns the lines of s that contain substr, joined by "; ".
func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "; ")
}

// modeGuest returns the Linux guest of mode: the patched kernel on hvc0 in
// pv mode, the unmodified one on ttyS0 in trap and hwassist mode, and the
// initramfs.
func modeGuest(t *testing.T, mode cpu.Mode) (vmlinux, initrd, con string) {
	t.Helper()
	if mode == cpu.ModePV {
		vmlinux, _, initrd = pvGuest(t)
		return vmlinux, initrd, "hvc0"
	}
	vmlinux, initrd = linuxGuest(t)
	return vmlinux, initrd, "ttyS0"
}
