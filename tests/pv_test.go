package tests

import (
	"context"
	"encoding/base64"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
)

// pvGuest builds (or finds cached) the patched kernel of linux-patches/
// and the initramfs with `make guest-pv` and returns their paths.
func pvGuest(t testing.TB) (vmlinux, bzImage, initrd string) {
	t.Helper()
	makeTarget(t, "guest-pv")
	g := filepath.Join(root, "build/guest")
	return filepath.Join(g, "vmlinux-pv"), filepath.Join(g, "bzImage-pv"), filepath.Join(g, "initramfs.cpio.gz")
}

// runPV boots the patched kernel in pv mode with /init running cmd.
func runPV(t *testing.T, cmd string, deadline time.Duration) (string, int, map[string]uint64, bool) {
	t.Helper()
	vmlinux, _, initrd := pvGuest(t)
	out, code, vm := bootLinux(t, vmlinux, initrd, cpu.ModePV, "hvc0", cmd, deadline)
	_, priv, _, started := vm.StatsSnapshot()
	if ports := vm.IOPortCounts(); len(ports) != 0 {
		t.Errorf("pv mode: port I/O exits %v, want none", ports)
	}
	if devs := vm.DeviceList(); len(devs) != 0 {
		t.Errorf("pv mode: emulated devices %v, want none", devs)
	}
	return out, code, priv, started
}

// TestPVBoot is issue 5's first acceptance: the patched kernel boots in pv
// mode, runs a command and reports its status, and after it declares PV
// start-up not one privileged instruction traps.
func TestPVBoot(t *testing.T) {
	out, code, priv, started := runPV(t, "uname -r; echo GUEST-OK; exit 5", 3*time.Minute)
	if code != 5 || !strings.Contains(out, "\n6.12") || !strings.Contains(out, "GUEST-OK") {
		t.Errorf("status %d; console:\n%s", code, tail(out, 2000))
	}
	if !started {
		t.Error("the kernel never declared PV start-up")
	}
	if len(priv) != 0 {
		t.Errorf("privileged exits after PV start: %v, want none", priv)
	}
}

// TestPVStress runs the stress workload of the unmodified guest on the PV
// guest, compared with the host's busybox the same way.
func TestPVStress(t *testing.T) {
	out, code, priv, _ := runPV(t, "T=/tmp\n"+stressScript, 10*time.Minute)
	checkStress(t, out, code)
	if len(priv) != 0 {
		t.Errorf("privileged exits after PV start: %v, want none", priv)
	}
}

// devScript prints the guest's /proc/ioports and /proc/interrupts.
const devScript = "echo IOPORTS; cat /proc/ioports; echo INTERRUPTS; cat /proc/interrupts; echo END"

// procFiles cuts devScript's output into the two files.
func procFiles(t *testing.T, out string) (io, irq string) {
	t.Helper()
	io, irq, ok := strings.Cut(out, "\nINTERRUPTS")
	if !ok || !strings.Contains(io, "IOPORTS") || !strings.Contains(irq, "\nEND") {
		t.Fatalf("console:\n%s", tail(out, 2000))
	}
	io = io[strings.Index(io, "IOPORTS")+len("IOPORTS"):]
	irq, _, _ = strings.Cut(irq, "\nEND")
	return io, irq
}

// legacyDevices lists what of the legacy PC the two files show.
func legacyDevices(io, irq string) []string {
	var found []string
	for _, dev := range []string{"pic", "timer", "rtc", "keyboard", "serial", "dma", "fpu", "vga", "PCI conf"} {
		if strings.Contains(io, dev) {
			found = append(found, "ioports:"+dev)
		}
	}
	for _, dev := range []string{"XT-PIC", "IO-APIC", "i8042", "serial", "ttyS", "rtc"} {
		if strings.Contains(irq, dev) {
			found = append(found, "interrupts:"+dev)
		}
	}
	return found
}

// TestPVNoDevices: in pv mode the guest finds no emulated device. Its
// /proc/ioports claims no legacy range and /proc/interrupts has no PIC,
// PIT, RTC, keyboard controller or UART line, only event channels. The
// same check on the unmodified kernel in hwassist mode must find them
// (the control: the names looked for are the ones Linux uses).
func TestPVNoDevices(t *testing.T) {
	out, code, _, _ := runPV(t, devScript, 3*time.Minute)
	if code != 0 {
		t.Fatalf("status %d; console:\n%s", code, tail(out, 2000))
	}
	io, irq := procFiles(t, out)
	t.Logf("pv: /proc/ioports:%s\n/proc/interrupts:%s", io, irq)
	if found := legacyDevices(io, irq); len(found) != 0 {
		t.Errorf("pv mode: the guest sees legacy devices %v", found)
	}
	for _, l := range strings.Split(strings.TrimSpace(irq), "\n") {
		l = strings.TrimSpace(l)
		if regexp.MustCompile(`^\d+:`).MatchString(l) && !strings.Contains(l, "pvisor-evtchn") {
			t.Errorf("/proc/interrupts line not on an event channel: %q", l)
		}
	}
	if !strings.Contains(irq, "pvisor-evtchn") || !strings.Contains(irq, "timer") {
		t.Errorf("/proc/interrupts lacks the event-channel timer:%s", irq)
	}

	out, code = runLinux(t, cpu.ModeHWAssist, devScript, 3*time.Minute)
	if code != 0 {
		t.Fatalf("hwassist: status %d; console:\n%s", code, tail(out, 2000))
	}
	found := strings.Join(legacyDevices(procFiles(t, out)), " ")
	for _, want := range []string{"ioports:pic", "ioports:timer", "ioports:serial", "interrupts:XT-PIC", "interrupts:ttyS"} {
		if !strings.Contains(found, want) {
			t.Errorf("control: the unmodified kernel in hwassist mode should show %s; found %s", want, found)
		}
	}
}

// TestPVNativeFallback: the patched kernel still boots on a machine without
// pvisor (QEMU TCG, native legacy PC) and runs a command.
func TestPVNativeFallback(t *testing.T) {
	_, bzImage, initrd := pvGuest(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: run `make deps` (scripts/install-deps.sh installs it as the test oracle)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := base64.StdEncoding.EncodeToString([]byte("uname -r; cat /proc/interrupts; echo GUEST-OK"))
	q := exec.CommandContext(ctx, qemu, "-M", "pc", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
		"-kernel", bzImage, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet pvisor.cmd="+cmd)
	q.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	out, err := q.CombinedOutput()
	t.Logf("QEMU ran %v (%v)", time.Since(start).Round(time.Millisecond), err)
	s := string(out)
	if ctx.Err() != nil || !strings.Contains(s, "GUEST-OK") || !exitRE.MatchString(s) || exitRE.FindStringSubmatch(s)[1] != "0" {
		t.Fatalf("the patched kernel did not run its command under QEMU TCG (%v); console:\n%s", err, tail(s, 3000))
	}
	if !regexp.MustCompile(`6\.12\.\d+`).MatchString(s) {
		t.Errorf("no 6.12 kernel release in the output:\n%s", tail(s, 1000))
	}
	// It ran as a plain kernel: legacy interrupts, no event channels.
	if strings.Contains(s, "pvisor-evtchn") || !strings.Contains(s, "ttyS") {
		t.Errorf("under QEMU the kernel should use the legacy PC (ttyS, no pvisor-evtchn):\n%s", tail(s, 2000))
	}
}

// pvBalloonScript waits for the operator to shrink the guest by at least
// 32 MiB and then to give the memory back, printing MemTotal (kB) at each
// step; it fails if either takes more than 60 s.
const pvBalloonScript = `
mt() { awk '/MemTotal/ { print $2 }' /proc/meminfo; }
t0=$(mt); echo "memtotal-start $t0"; echo BALLOON-READY
i=0; while [ $(mt) -gt $((t0 - 32768)) ]; do i=$((i+1)); [ $i -gt 600 ] && exit 3; sleep 0.1; done
echo "memtotal-low $(mt)"
i=0; while [ $(mt) -lt $((t0 - 1024)) ]; do i=$((i+1)); [ $i -gt 600 ] && exit 4; sleep 0.1; done
echo "memtotal-back $(mt)"
`

// TestPVBalloon: the PV kernel's balloon driver (linux-patches/0010)
// follows the operator's target. With 256 MiB and a target of 192 MiB the
// host's accounting shows the VM at 192 MiB resident and the guest's
// MemTotal 64 MiB lower; with the target back at 256 MiB the guest takes
// the memory back.
func TestPVBalloon(t *testing.T) {
	vmlinux, _, initrd := pvGuest(t)
	var out syncBuffer
	vm := newLinuxVM(t, vmlinux, initrd, cpu.ModePV, "hvc0", pvBalloonScript, &out)
	done := make(chan hv.ExitStatus, 1)
	go func() { done <- vm.Run() }()
	defer func() {
		vm.Stop(124, "test deadline")
		<-done
	}()
	step := func(what string, target uint64, line string) {
		t.Helper()
		if err := vm.SetMemTarget(target); err != nil {
			t.Fatal(err)
		}
		if !waitFor(time.Minute, func() bool { return vm.MemStats().Resident == target && strings.Contains(out.String(), line) }) {
			t.Fatalf("%s: accounting %+v; console:\n%s", what, vm.MemStats(), tail(out.String(), 3000))
		}
		t.Logf("%s: %+v", what, vm.MemStats())
	}
	if !waitFor(2*time.Minute, func() bool { return strings.Contains(out.String(), "BALLOON-READY") }) {
		t.Fatalf("the guest did not start its script; console:\n%s", tail(out.String(), 3000))
	}
	step("target 192 MiB", 192<<20, "memtotal-low")
	step("target 256 MiB", 256<<20, "memtotal-back")
	var st hv.ExitStatus
	select {
	case st = <-done:
		done <- st
	case <-time.After(time.Minute):
		t.Fatalf("the guest did not finish; console:\n%s", tail(out.String(), 3000))
	}
	m := regexp.MustCompile(`memtotal-start (\d+)[\s\S]*memtotal-low (\d+)[\s\S]*memtotal-back (\d+)`).FindStringSubmatch(out.String())
	if m == nil || !exitRE.MatchString(out.String()) || exitRE.FindStringSubmatch(out.String())[1] != "0" {
		t.Fatalf("status %+v; console:\n%s", st, tail(out.String(), 3000))
	}
	start, _ := strconv.Atoi(m[1])
	low, _ := strconv.Atoi(m[2])
	back, _ := strconv.Atoi(m[3])
	t.Logf("guest MemTotal: %d kB, %d kB at 192 MiB, %d kB back", start, low, back)
	if start-low != 65536 || back != start {
		t.Errorf("guest MemTotal %d -> %d -> %d kB: want 64 MiB (65536 kB) less, then the start again", start, low, back)
	}
}
