package tests

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
)

// linuxGuest builds (or finds cached) the unmodified kernel and the
// initramfs with `make guest` and returns their paths.
func linuxGuest(t *testing.T) (vmlinux, initrd string) {
	t.Helper()
	makeTarget(t, "guest")
	return filepath.Join(root, "build/guest/vmlinux-native"), filepath.Join(root, "build/guest/initramfs.cpio.gz")
}

var exitRE = regexp.MustCompile(`(?m)^pvisor-exit: (\d+)\r?$`)

// runLinux boots the unmodified kernel with /init running cmd and returns
// the console output and the command's status; it fails the test if the
// guest has not reported by the deadline.
func runLinux(t *testing.T, mode cpu.Mode, cmd string, deadline time.Duration) (string, int) {
	t.Helper()
	vmlinux, initrd := linuxGuest(t)
	out, code, _ := bootLinux(t, vmlinux, initrd, mode, "ttyS0", cmd, deadline)
	return out, code
}

// newLinuxVM creates a 256 MiB VM booting a kernel with /init running cmd,
// on console con, writing its console to out.
func newLinuxVM(t *testing.T, vmlinux, initrd string, mode cpu.Mode, con, cmd string, out *syncBuffer) *hv.VM {
	t.Helper()
	vm, err := hv.New(linuxConfig(t, vmlinux, initrd, mode, con, cmd, out))
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// linuxConfig is the configuration of newLinuxVM's VM, with its own 1 GiB
// budget and scheduler, for a caller to adjust.
func linuxConfig(t testing.TB, vmlinux, initrd string, mode cpu.Mode, con, cmd string, out *syncBuffer) hv.Config {
	t.Helper()
	k, err := os.ReadFile(vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := os.ReadFile(initrd)
	if err != nil {
		t.Fatal(err)
	}
	return hv.Config{Kernel: k, Initrd: rd, Cmdline: linuxCmdline(con, cmd), MemBytes: 256 << 20, Mode: mode,
		Budget: mm.NewBudget(1 << 30), Console: out}
}

// linuxCmdline is the kernel command line of a Linux guest on console con
// whose /init runs cmd.
func linuxCmdline(con, cmd string) string {
	return "console=" + con + " panic=-1 quiet pvisor.cmd=" + base64.StdEncoding.EncodeToString([]byte(cmd))
}

// bootLinux boots a kernel with /init running cmd, on console con, and
// returns the console output, the command's status and the stopped VM (for
// its counters).
func bootLinux(t *testing.T, vmlinux, initrd string, mode cpu.Mode, con, cmd string, deadline time.Duration) (string, int, *hv.VM) {
	t.Helper()
	var out syncBuffer
	return runLinuxVM(t, newLinuxVM(t, vmlinux, initrd, mode, con, cmd, &out), mode, &out, deadline)
}

// runLinuxVM runs vm, whose console goes to out, until it stops, and
// returns as bootLinux does; it fails the test if the guest has not
// reported by the deadline.
func runLinuxVM(t *testing.T, vm *hv.VM, mode cpu.Mode, out *syncBuffer, deadline time.Duration) (string, int, *hv.VM) {
	t.Helper()
	done := make(chan hv.ExitStatus, 1)
	start := time.Now()
	go func() { done <- vm.Run() }()
	var st hv.ExitStatus
	select {
	case st = <-done:
	case <-time.After(deadline):
		vm.Stop(124, "test deadline")
		<-done
		t.Fatalf("%v: no exit within %v; console:\n%s", mode, deadline, tail(out.String(), 3000))
	}
	t.Logf("%v: guest ran %v, VM status %+v", mode, time.Since(start).Round(time.Millisecond), st)
	m := exitRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("%v: no pvisor-exit line (status %+v); console:\n%s", mode, st, tail(out.String(), 3000))
	}
	code, _ := strconv.Atoi(m[1])
	return out.String(), code, vm
}

// syncBuffer is a bytes.Buffer safe for the VM's writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestLinuxBoot is issue 4's acceptance: the unmodified kernel boots in
// hwassist mode, runs a command, and reports its status.
// The same kernel also boots in trap mode, every privileged instruction
// decoded and emulated by hv/emul.
func TestLinuxBoot(t *testing.T) {
	for _, mode := range []cpu.Mode{cpu.ModeHWAssist, cpu.ModeTrap} {
		out, code := runLinux(t, mode, "uname -r; echo GUEST-OK; exit 7", 3*time.Minute)
		if code != 7 || !strings.Contains(out, "\n6.12") || !strings.Contains(out, "GUEST-OK") {
			t.Errorf("%v: status %d; console:\n%s", mode, code, tail(out, 2000))
		}
	}
}

// stressScript exercises fork/exec, pipes, file I/O in $T, hashing,
// sorting and awk arithmetic. The test runs it in the guest and on the host
// with the host's busybox (the same binary the initramfs holds) and
// compares the outputs line by line.
const stressScript = `
i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done; echo "forks=$i"
seq 1 600000 > $T/f
echo "size=$(wc -c < $T/f)"
echo "md5=$(md5sum $T/f | cut -d' ' -f1)"
echo "sha256=$(sha256sum $T/f | cut -d' ' -f1)"
awk 'BEGIN { x = 1; for (i = 0; i < 10000; i++) { x = (x * 75 + 74) % 65537; print x } }' > $T/s
echo "sorted=$(sort $T/s | md5sum | cut -d' ' -f1)"
echo "nsorted=$(sort -n $T/s | md5sum | cut -d' ' -f1)"
echo "uniq=$(sort $T/s | uniq -c | sort -rn | head -3 | md5sum | cut -d' ' -f1)"
awk 'BEGIN { s = 0; for (i = 1; i <= 100000; i++) s += i * i; printf "awksum=%d\n", s; print "awkbig=" s }'
awk 'BEGIN { printf "awkfloat=%.6f\n", 2 / 3 * 1000.5 - 17.25 }'
awk '{ n++; t += $1 } END { printf "awkfile=%d %.3f\n", n, t / n }' $T/s
`

var stressLineRE = regexp.MustCompile(`(?m)^([a-z0-9]+)=(.*?)\r?$`)

func stressLines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range stressLineRE.FindAllStringSubmatch(out, -1) {
		m[l[1]] = l[2]
	}
	return m
}

func TestLinuxStress(t *testing.T) {
	out, code := runLinux(t, cpu.ModeHWAssist, "T=/tmp\n"+stressScript, 10*time.Minute)
	checkStress(t, out, code)
}

// checkStress compares the guest's stress output with the host busybox's.
func checkStress(t *testing.T, out string, code int) {
	t.Helper()
	if code != 0 {
		t.Fatalf("stress script exited %d:\n%s", code, tail(out, 3000))
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("the host's busybox is needed as the reference: run scripts/install-deps.sh guest")
	}
	host := exec.Command(bb, "sh", "-c", "T="+t.TempDir()+"\n"+stressScript)
	host.Env = append(os.Environ(), "PATH=/bin:/usr/bin")
	hout, err := host.CombinedOutput()
	if err != nil {
		t.Fatalf("host run: %v\n%s", err, hout)
	}
	g, h := stressLines(out), stressLines(string(hout))
	if len(h) < 11 {
		t.Fatalf("host produced %d results:\n%s", len(h), hout)
	}
	for k, hv := range h {
		if g[k] != hv {
			t.Errorf("%s: guest %q, host %q", k, g[k], hv)
		}
	}
	if h["forks"] != "200" {
		t.Errorf("forks = %s", h["forks"])
	}
}
