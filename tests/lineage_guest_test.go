package tests

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
)

// The PV kernel's lineage driver (linux-patches/0012): the patch level it
// declares, and its reseed on a new VM generation. Its sysfs files are in
// /sys/hypervisor/pvisor/ (docs/guest.md, "Patch level and VM generation").

// raiseRecorder is a host lineage record in memory: it keeps every Raise.
type raiseRecorder struct {
	mu      sync.Mutex
	highest uint64
	calls   []raise
}

type raise struct {
	Level   uint64
	Release string
}

func (r *raiseRecorder) Raise(level uint64, release string) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, raise{level, release})
	r.highest = max(r.highest, level)
	return r.highest, nil
}

// patchLevelScript reads the lineage files after a boot with
// pvisor.patch_level=7, declares 9 as root, then tries values the kernel
// must refuse (each line says the shell's status and its error), then
// declares until the hypervisor's PATCH_DECLARE_MAX (16 per boot) answers.
// The boot's declaration message comes from dmesg (the console is quiet).
const patchLevelScript = `P=/sys/hypervisor/pvisor
dmesg | grep 'pvisor: patch level'
echo "boot level=$(cat $P/patch_level) highest=$(cat $P/lineage_highest) restored=$(cat $P/restored) rolled_back=$(cat $P/rolled_back) changes=$(cat $P/generation_changes)"
echo 9 > $P/patch_level; echo "write 9 status=$?"
echo "after level=$(cat $P/patch_level) highest=$(cat $P/lineage_highest)"
for v in garbage 0 -1 9x ""; do e=$( (echo "$v" > $P/patch_level) 2>&1); echo "refused [$v] status=$? err=$e"; done
echo "still level=$(cat $P/patch_level)"
n=2; while [ $n -lt 20 ]; do e=$( (echo 10 > $P/patch_level) 2>&1) || break; n=$((n+1)); done
echo "declared $n err=$e"
`

// TestGuestPatchLevel: the PV kernel booted with pvisor.patch_level=7
// declares level 7 with its release at boot; the host's lineage record
// (which says the lineage has seen 8) is raised with it and the guest reads
// both back. Root writing 9 to /sys/hypervisor/pvisor/patch_level declares
// 9; a value that is not a positive decimal integer is refused with EINVAL
// and changes nothing; the hypervisor's own refusal (EBUSY after
// PATCH_DECLARE_MAX declarations) reaches the writer.
//
// `pvisor ctl list` does not show the patch level yet, so the host side is
// checked on the VM (hv.VM.Lineage) and on its LineageRecorder.
func TestGuestPatchLevel(t *testing.T) {
	vmlinux, _, initrd := pvGuest(t)
	var out syncBuffer
	cfg := linuxConfig(t, vmlinux, initrd, cpu.ModePV, "hvc0", patchLevelScript, &out)
	cfg.Cmdline = "pvisor.patch_level=7 " + cfg.Cmdline
	rec := &raiseRecorder{highest: 8}
	cfg.Lineage, cfg.LineageHighest = rec, 8
	vm, err := hv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, code, _ := runLinuxVM(t, vm, cpu.ModePV, &out, 3*time.Minute)
	s = strings.ReplaceAll(s, "\r", "")
	if code != 0 {
		t.Fatalf("status %d; console:\n%s", code, tail(s, 3000))
	}
	want := []string{
		"boot level=7 highest=8 restored=0 rolled_back=0 changes=0",
		"write 9 status=0",
		"after level=9 highest=9",
		"refused [garbage] status=1 err=sh: write error: Invalid argument",
		"refused [0] status=1 err=sh: write error: Invalid argument",
		"refused [-1] status=1 err=sh: write error: Invalid argument",
		"refused [9x] status=1 err=sh: write error: Invalid argument",
		"refused [] status=1 err=sh: write error: Invalid argument",
		"still level=9",
		// The boot's and the write's declarations, then 14 more: the 17th
		// is the hypervisor's EBUSY.
		"declared 16 err=sh: write error: Device or resource busy",
	}
	for _, w := range want {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(w) + `$`).MatchString(s) {
			t.Errorf("no line %q; console:\n%s", w, tail(s, 3000))
		}
	}
	rel := regexp.MustCompile(`(?m)^\[ *[0-9.]+\] pvisor: patch level 7 \((6\.12\.\d+)\)$`).FindStringSubmatch(s)
	if rel == nil {
		t.Fatalf("no boot message of the declaration; console:\n%s", tail(s, 3000))
	}
	l := vm.Lineage()
	if l.PatchLevel != 10 || l.Highest != 10 || l.Release != rel[1] || l.Restored || l.RolledBack {
		t.Errorf("the VM's lineage: %+v; want level 10, highest 10, release %q", l, rel[1])
	}
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	wantCalls := []raise{{7, rel[1]}, {9, rel[1]}}
	for range 14 {
		wantCalls = append(wantCalls, raise{10, rel[1]})
	}
	if d := cmp.Diff(wantCalls, calls); d != "" {
		t.Errorf("lineage record raises (-want +got):\n%s", d)
	}
}

// reseedScript makes the guest's RNG ready (virtio-rng feeds it; /dev/random
// blocks until then), prints its lineage state and SNAP-READY, and waits
// for the counter of handled VM generations to move, at most 30 s; then it
// reads 32 bytes of /dev/urandom and prints its state again.
const reseedScript = `P=/sys/hypervisor/pvisor
head -c 1 /dev/random >/dev/null
echo "orig generation=$(cat $P/generation) changes=$(cat $P/generation_changes) restored=$(cat $P/restored) level=$(cat $P/patch_level)"
echo SNAP-READY
i=0; while [ "$(cat $P/generation_changes)" = 0 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
echo "urandom $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "clone generation=$(cat $P/generation) changes=$(cat $P/generation_changes) restored=$(cat $P/restored) rolled_back=$(cat $P/rolled_back)"
dmesg | grep 'crng reseeded due to virtual machine fork' || echo no-reseed-message
`

var (
	origLineRE  = regexp.MustCompile(`(?m)^orig generation=([0-9a-f]{32}) changes=(\d+) restored=(\d) level=(\d+)\r?$`)
	cloneLineRE = regexp.MustCompile(`(?m)^clone generation=([0-9a-f]{32}) changes=(\d+) restored=(\d) rolled_back=(\d)\r?$`)
	urandomRE   = regexp.MustCompile(`(?m)^urandom ([0-9a-f]{64})\r?$`)
	statsGenRE  = regexp.MustCompile(`(?m)^generation: ([0-9a-f]{32})$`)
)

// TestGuestReseed: a PV Linux guest is snapshotted, then restored twice
// (two clones, each in its own pvisor process). In each clone the kernel
// handled exactly one new generation (generation_changes 1), reads the
// VM's new generation ID (the one --stats reports), different between the
// clones and from the original's, says it was restored and not rolled
// back, and logged random.c's reseed; 32 bytes of /dev/urandom read right
// after the restore differ between the clones.
//
// The bytes alone would not prove the handler works: both clones resume
// with the same RNG state, but the RNG also reseeds on its own schedule
// from the input pool, into which each clone has meanwhile mixed its own
// interrupt timings and virtio-rng bytes, so a scheduled reseed falling
// between the restore and the read would make them differ without any
// handler (a kernel with the VIRQ left unbound did just that: its clones
// read different bytes after the script's 30 s wait). What fails when VIRQ_GENERATION is not bound, or its handler
// does not run or does not find the new ID, is the counter (it stays 0:
// the script gives up after 30 s and prints it), the generation file (it
// keeps the original's ID) and the missing "reseeded due to virtual
// machine fork" line, which only add_vmfork_randomness prints.
func TestGuestReseed(t *testing.T) {
	vmlinux, _, initrd := pvGuest(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	orig := startPvisor(t, "run", "--kernel", vmlinux, "--initrd", initrd, "--mode", "pv", "--mem", "256M", "--rng",
		"--control", sock, "--cmdline", linuxCmdline("hvc0", reseedScript))
	orig.waitLine(t, regexp.MustCompile(`(?m)^SNAP-READY\r?$`), 3*time.Minute)
	m := origLineRE.FindStringSubmatch(orig.out.String())
	if m == nil {
		t.Fatalf("no state line before the snapshot; console:\n%s", tail(orig.out.String(), 3000))
	}
	origGen := m[1]
	if m[2] != "0" || m[3] != "0" || m[4] != "0" {
		t.Errorf("booted guest: changes=%s restored=%s level=%s, want 0 0 0 (no restore yet, no pvisor.patch_level)", m[2], m[3], m[4])
	}
	snap := filepath.Join(dir, "vm.snap")
	ctl(t, sock, "--leave-paused", "snapshot", "guest", snap)
	if g := genListRE.FindString(ctl(t, sock, "list")); g != origGen {
		t.Errorf("the guest read generation %s before the snapshot, ctl list says %s", origGen, g)
	}
	orig.cmd.Process.Signal(syscall.SIGKILL)
	orig.wait(t, time.Minute)

	var clones [2]*snapRun
	for i := range clones {
		clones[i] = startPvisor(t, "run", "--restore", snap, "--rng", "--name", fmt.Sprintf("clone%d", i), "--stats")
	}
	var gens, rands [2]string
	for i, r := range clones {
		if code := r.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("clone %d: exit status %d; console:\n%s\nstderr:\n%s", i, code, tail(r.out.String(), 3000), r.errs.String())
		}
		s := r.out.String()
		c := cloneLineRE.FindStringSubmatch(s)
		u := urandomRE.FindStringSubmatch(s)
		st := statsGenRE.FindStringSubmatch(r.errs.String())
		if c == nil || u == nil || st == nil {
			t.Fatalf("clone %d: no state, urandom or --stats generation line; console:\n%s\nstderr:\n%s", i, tail(s, 3000), r.errs.String())
		}
		t.Logf("clone %d: generation %s, changes %s, urandom %s", i, c[1], c[2], u[1])
		if c[2] != "1" {
			t.Errorf("clone %d: generation_changes %s, want 1: VIRQ_GENERATION was not handled once", i, c[2])
		}
		if c[3] != "1" || c[4] != "0" {
			t.Errorf("clone %d: restored=%s rolled_back=%s, want 1 and 0", i, c[3], c[4])
		}
		if c[1] != st[1] {
			t.Errorf("clone %d: the guest's generation is %s, the VM's (--stats) %s", i, c[1], st[1])
		}
		if strings.Contains(s, "no-reseed-message") {
			t.Errorf("clone %d: the kernel did not log a reseed for the VM fork; console:\n%s", i, tail(s, 2000))
		}
		gens[i], rands[i] = c[1], u[1]
	}
	if gens[0] == gens[1] || gens[0] == origGen || gens[1] == origGen {
		t.Errorf("generations: original %s, clones %s and %s: want three different", origGen, gens[0], gens[1])
	}
	if rands[0] == rands[1] {
		t.Errorf("both clones read %s from /dev/urandom after the restore", rands[0])
	}
}

// defineRE matches a constant of either header: `#define PVISOR_NAME value`.
var defineRE = regexp.MustCompile(`^#define (PVISOR_[A-Z0-9_]+)\s+(\S+)`)

// headerValue evaluates a constant as the two headers write them: decimal,
// 0x hexadecimal with an optional ULL suffix, or the kernel's BIT(n).
func headerValue(s string) (uint64, bool) {
	if m := regexp.MustCompile(`^BIT\((\d+)\)$`).FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseUint(m[1], 10, 6)
		return 1 << n, err == nil
	}
	v, err := strconv.ParseUint(strings.TrimSuffix(s, "ULL"), 0, 64)
	return v, err == nil
}

// kernelOnly are the kernel header's constants that pvisor's guest header
// does not have, with why.
var kernelOnly = map[string]string{
	"PVISOR_CPUID_BASE":      "CPUID leaf, in docs/abi.md's prose",
	"PVISOR_CPUID_SIGNATURE": "a string",
	"PVISOR_ABI_VERSION_MIN": "the oldest ABI the kernel comes up on: the kernel's own choice",
}

// TestGuestHeaderABI: every constant the patch series defines in
// arch/x86/include/asm/pvisor.h has the value of pvisor's generated guest
// header (guestkit/include/pvisor/hypercall.h), so that the kernel speaks
// the ABI the hypervisor serves.
func TestGuestHeaderABI(t *testing.T) {
	abi := map[string]string{}
	f, err := os.ReadFile(filepath.Join(root, "guestkit/include/pvisor/hypercall.h"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(f), "\n") {
		if m := defineRE.FindStringSubmatch(l); m != nil {
			abi[m[1]] = m[2]
		}
	}
	// The kernel header as the series leaves it: a later patch's '+' line
	// replaces an earlier one's.
	kernel := map[string]string{}
	series, err := os.ReadFile(filepath.Join(root, "linux-patches/series"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(regexp.MustCompile(`#.*`).ReplaceAllString(string(series), "")) {
		b, err := os.Open(filepath.Join(root, "linux-patches", p))
		if err != nil {
			t.Fatal(err)
		}
		in := false
		sc := bufio.NewScanner(b)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "+++ ") {
				in = l == "+++ b/arch/x86/include/asm/pvisor.h"
				continue
			}
			if m := defineRE.FindStringSubmatch(strings.TrimPrefix(l, "+")); in && strings.HasPrefix(l, "+") && m != nil {
				kernel[m[1]] = m[2]
			}
		}
		b.Close()
	}
	if len(kernel) < 60 {
		t.Fatalf("found %d constants in the series' asm/pvisor.h: the parser is broken", len(kernel))
	}
	for _, want := range []string{"PVISOR_HC_PATCH_LEVEL", "PVISOR_VIRQ_GENERATION", "PVISOR_FEATURE_LINEAGE", "PVISOR_ABI_VERSION"} {
		if _, ok := kernel[want]; !ok {
			t.Errorf("the series' asm/pvisor.h lacks %s", want)
		}
	}
	for name, kv := range kernel {
		av, ok := abi[name]
		if !ok {
			if _, known := kernelOnly[name]; !known {
				t.Errorf("%s = %s is in the kernel header but not in hypercall.h", name, kv)
			}
			continue
		}
		k, ok1 := headerValue(kv)
		a, ok2 := headerValue(av)
		// The kernel may be built against an older ABI than the
		// hypervisor's (docs/abi-policy.md): its version may be lower,
		// never higher; every other constant is equal.
		if !ok1 || !ok2 || k != a && !(name == "PVISOR_ABI_VERSION" && k < a) {
			t.Errorf("%s: kernel header %s, hypercall.h %s", name, kv, av)
		}
	}
	// The control: the evaluator tells the forms apart.
	for s, want := range map[string]uint64{"BIT(9)": 0x200, "0x200ULL": 512, "42": 42, "0x40000000": 1 << 30} {
		if v, ok := headerValue(s); !ok || v != want {
			t.Errorf("headerValue(%q) = %d, %v; want %d", s, v, ok, want)
		}
	}
	if _, ok := headerValue(`"pvisorpvisor"`); ok {
		t.Error(`headerValue accepted a string`)
	}
}
