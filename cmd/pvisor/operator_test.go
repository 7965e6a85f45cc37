package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/loader"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/virtio"
)

// TestRunRefusesHostileOperatorInput: what a careless or hostile operator
// passes is refused before anything is read without bound, with a
// message saying what was wrong.
func TestRunRefusesHostileOperatorInput(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil || os.Truncate(big, 3<<30) != nil {
		t.Fatalf("making a sparse 3 GiB file: %v", err)
	}
	cfg := func(body string) string {
		p := filepath.Join(dir, strings.ReplaceAll(body[:8], " ", "_")+".toml")
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kernel", "/dev/zero"}, "is a character device, not a regular file"},
		{[]string{"--kernel", fifo}, "is a FIFO, not a regular file"},
		{[]string{"--kernel", dir}, "is a directory"},
		{[]string{"--kernel", big, "--mem", "256M"}, "more than the 256 MiB"},
		{[]string{"--kernel", "main.go", "--initrd", "/dev/zero"}, "initrd /dev/zero is a character device"},
		{[]string{"--kernel", "main.go", "--initrd", fifo}, "initrd " + fifo + " is a FIFO"},
		{[]string{"--kernel", "main.go", "--config", "/dev/zero"}, "config file /dev/zero is a character device"},
		{[]string{"--kernel", "main.go", "--config", fifo}, "is a FIFO"},
		{[]string{"--kernel", "main.go", "--workers", "1000000"}, "--workers: 1000000 workers: want 0 (one per host CPU) to"},
		{[]string{"--kernel", "main.go", "--config", cfg("workers = 1000000\n[[vm]]\n")}, "workers = 1000000 workers"},
		{[]string{"--kernel", "main.go", "--mem", "17179869185G"}, "more than 2^64 bytes"},
		{[]string{"--kernel", "main.go", "--mem", "99999999999999999999"}, "more than 2^64 bytes"},
		{[]string{"--kernel", "main.go", "--mem-budget", "17179869184G"}, "more than 2^64 bytes"},
		{[]string{"--kernel", "main.go", "--config", cfg("[[vm]]\nmem = \"17179869185G\"\n")}, "more than 2^64 bytes"},
		{[]string{"--kernel", "main.go", "--name", "a b"}, `--name "a b": want 1 to 64 letters`},
		{[]string{"--kernel", "main.go", "--name", "x|y"}, `name "x|y"`},
		{[]string{"--kernel", "main.go", "--name", "-rf"}, `name "-rf"`},
		{[]string{"--kernel", "main.go", "--vm", "name=\x1b[2J"}, "name"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", "/dev/zero"}, "disk /dev/zero is a character device, not a regular file"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", fifo}, "is a FIFO"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", dir + ",ro"}, "is a directory"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", "main.go,rw"}, `unknown option "rw"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", ",ro"}, "no path"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", "main.go,overlay=./main.go"}, "the overlay is the image itself"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", "main.go,overlay="}, "overlay=: want the path"},
		{[]string{"--restore", "main.go", "--disk", "main.go,overlay=x,overlay=y"}, "overlay given twice"},
		{[]string{"--kernel", "main.go", "--rng", "--vm", "name=a"}, "not with --vm or --config"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", "main.go", "--vm", "name=a"}, "not with --vm or --config"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a", "--vm", "name=a"}, "--net attaches to the single VM"},
		{[]string{"--kernel", "main.go", "--net", "segment=a", "--disk", "main.go", "--disk", "main.go", "--disk", "main.go", "--disk", "main.go",
			"--disk", "main.go", "--disk", "main.go", "--disk", "main.go", "--disk", "main.go", "--disk", "main.go", "--disk", "main.go",
			"--disk", "main.go", "--disk", "main.go", "--disk", "main.go", "--disk", "main.go", "--disk", "main.go", "--disk", "main.go"},
			"17 virtio devices: at most 16 slots per VM in pv mode"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "a"}, `"a" is not key=value`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "mac=02:00:00:00:00:01"}, "no segment"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment="}, `segment "": want 1 to 64 letters`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a/b"}, `segment "a/b"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,segment=b"}, "segment given twice"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,mac=01:00:5e:00:00:01"}, "multicast"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,mac=00:00:00:00:00:00"}, "all zeros"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,mac=02:00:00:00:01"}, "six hex bytes"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,bw=0"}, `bw: bad size "0"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,bw=10X/s"}, `bw: bad size "10X"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,bw=17179869185G/s"}, "more than 2^64 bytes"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,ops=-1"}, `ops "-1": want a positive number`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,ops=0/s"}, `ops "0/s"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,speed=1"}, `unknown key "speed"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a", "--net", "segment=b", "--net", "segment=c",
			"--net", "segment=d", "--net", "segment=e", "--net", "segment=f"}, "6 virtio devices: at most 5 per VM in trap mode"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--net", "segment=a,mac=02:00:00:00:00:01", "--net", "segment=a,mac=02:00:00:00:00:01"},
			"both have MAC 02:00:00:00:00:01 on segment a"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--vm", "name=x,net=segment=s,mac=02:00:00:00:00:07", "--vm", "name=y,net=segment=s,mac=02:00:00:00:00:07"},
			"x's NIC 0 and y's NIC 0 both have MAC 02:00:00:00:00:07 on segment s"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--vm", "name=x,net=segment=s,ro"}, `"ro" is not key=value`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--vm", "name=x,disk=main.go,mac=02:00:00:00:00:07"}, `unknown key "mac"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--vm", "name=x,disk=" + fifo}, "is a FIFO"},
		{[]string{"--kernel", "main.go", "--uplink", "segment=lan"}, "--uplink segment=lan: want segment=NAME,tap=IFNAME"},
		{[]string{"--kernel", "main.go", "--uplink", "tap=pvtap0"}, "want segment=NAME,tap=IFNAME"},
		{[]string{"--kernel", "main.go", "--uplink", "segment=lan,tap=a/b"}, `tap "a/b": want an interface name`},
		{[]string{"--kernel", "main.go", "--uplink", "segment=lan,tap=" + strings.Repeat("t", 16)}, "1 to 15 letters"},
		{[]string{"--kernel", "main.go", "--uplink", "segment=lan,tap=.."}, `tap ".."`},
		{[]string{"--kernel", "main.go", "--uplink", "segment=lan,tap=t0,tap=t1"}, `unexpected "tap=t1"`},
		{[]string{"--kernel", "main.go", "--uplink", "segment=a b,tap=t0"}, `segment "a b"`},
		{[]string{"--kernel", "main.go", "--uplink", "segment=lan,tap=t0,mac=02:00:00:00:00:01"}, `unexpected "mac=02:00:00:00:00:01"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--config", cfg("# net-1\n[[vm]]\nnet = [\"segment=a\", 3]\n")}, "net: want a list of strings"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--config", cfg("# net-2\n[[vm]]\nmem = [\"1M\"]\n")}, "only disk and net take lists"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--config", cfg("# net-3\n[[vm]]\nnet = \"segment=a,bw=fast\"\n")}, `bw: bad size "fast"`},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--config", cfg("# net-4\n[[vm]]\ndisk = [\"/dev/zero\"]\n")}, "disk /dev/zero is a character device"},
	} {
		var out, errb bytes.Buffer
		code := dispatch(append([]string{"run"}, tc.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("run %q: code %d, stderr %q, want %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "vm0": true, "web-1.prod_2": true, "": false, "a b": false,
		"x|y": false, "-x": false, ".x": false, "é": false, strings.Repeat("a", 64): true, strings.Repeat("a", 65): false} {
		if err := checkName(name); (err == nil) != ok {
			t.Errorf("checkName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

// TestControlPathRefused: --control never deletes what is not a stale
// socket; a stale one is replaced; Close removes only its own socket.
func TestControlPathRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vmlinux")
	os.WriteFile(file, []byte("the kernel"), 0o644)
	if _, err := listenControl(file, nil); err == nil || !strings.Contains(err.Error(), "is a regular file, not a socket") {
		t.Errorf("a regular file: %v", err)
	}
	if _, err := listenControl(dir, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a directory: %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "the kernel" {
		t.Fatalf("the file at the control path was changed: %q, %v", b, err)
	}
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nobody listens
	cs, err := listenControl(stale, nil)
	if err != nil {
		t.Fatalf("a stale socket was not replaced: %v", err)
	}
	if _, err := ctlCall(stale, &ctlRequest{Op: "list"}, 10*time.Second); err != nil {
		t.Errorf("the new socket does not answer: %v", err)
	}
	// Someone else's file now at the path survives Close.
	os.Remove(stale)
	os.WriteFile(stale, []byte("theirs"), 0o644)
	cs.Close()
	if b, err := os.ReadFile(stale); err != nil || string(b) != "theirs" {
		t.Errorf("Close removed a file that was not its socket: %q, %v", b, err)
	}
}

func TestConsoleWarning(t *testing.T) {
	for _, tc := range []struct {
		kind    loader.Kind
		mode    cpu.Mode
		cmdline string
		warn    bool
	}{
		{loader.Vmlinux, cpu.ModePV, "console=ttyS0 panic=-1", true},
		{loader.Vmlinux, cpu.ModePV, "console=hvc0", false},
		{loader.Vmlinux, cpu.ModePV, "console=ttyS0 console=hvc0", false},
		{loader.Vmlinux, cpu.ModePV, "quiet", false},
		{loader.BzImage, cpu.ModeHWAssist, "console=hvc0", true},
		{loader.BzImage, cpu.ModeTrap, "console=ttyS0,115200", false},
		{loader.Freestanding, cpu.ModePV, "console=ttyS0", false},
	} {
		w := consoleWarning(tc.kind, tc.mode, tc.cmdline)
		if (w != "") != tc.warn {
			t.Errorf("%v %v %q: warning %q, want one: %v", tc.kind, tc.mode, tc.cmdline, w, tc.warn)
		}
	}
}

// TestStoppedFromOutsideIsReported: a VM stopped by --duration (or any
// stop from outside) says so on stderr and keeps the status it was given.
func TestStoppedFromOutsideIsReported(t *testing.T) {
	var errb bytes.Buffer
	code := vmExitCode(&errb, "pvisor: ", hv.ExitStatus{Code: 0, Reason: "stopped by --duration 1s", External: true}, nil)
	if code != 0 || !strings.Contains(errb.String(), "VM stopped: stopped by --duration 1s (status 0)") {
		t.Errorf("code %d, stderr %q", code, errb.String())
	}
}

// TestVMSpecDevices: disks and NICs in --vm specs and config files, with
// their options as items after them, parse as --disk and --net do.
func TestVMSpecDevices(t *testing.T) {
	dir := t.TempDir()
	base := vmSpec{name: "base", mode: cpu.ModeTrap}
	mac := func(s string) netswitch.MAC {
		m, err := netswitch.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := vmSpec{name: "a", mode: cpu.ModeTrap,
		disks: []hv.Disk{{Path: "x.img", ReadOnly: true}, {Path: "y.img", Overlay: "y.ovl"}},
		nics: []hv.NIC{
			{Segment: "front", MAC: mac("02:00:00:00:00:01"), Limits: virtio.Limits{BytesPerSec: 10 << 20, OpsPerSec: 5000}},
			{Segment: "back"},
		},
		cmdline: "console=ttyS0,115200 quiet"}
	got, err := parseVMSpec("name=a,disk=x.img,ro,net=segment=front,mac=02:00:00:00:00:01,bw=10M/s,ops=5000/s,disk=y.img,overlay=y.ovl,net=segment=back,cmdline=console=ttyS0,115200 quiet", base)
	if err != nil {
		t.Fatal(err)
	}
	opts := cmp.AllowUnexported(vmSpec{})
	if d := cmp.Diff(want, got, opts); d != "" {
		t.Errorf("--vm spec (-want +got):\n%s", d)
	}
	p := filepath.Join(dir, "vms.toml")
	os.WriteFile(p, []byte(`[[vm]]
name = "a"
disk = ["x.img,ro", "y.img,overlay=y.ovl"]
net = ["segment=front,mac=02:00:00:00:00:01,bw=10M,ops=5000", "segment=back"]
cmdline = "console=ttyS0,115200 quiet"
[[vm]]
name = "b"
net = "segment=back"
`), 0o644)
	_, specs, err := loadConfig(p, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("%d VMs from the config file, want 2", len(specs))
	}
	if d := cmp.Diff(want, specs[0], opts); d != "" {
		t.Errorf("config file VM a (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]hv.NIC{{Segment: "back"}}, specs[1].nics); d != "" || len(specs[1].disks) != 0 {
		t.Errorf("config file VM b: disks %v, NICs (-want +got):\n%s", specs[1].disks, d)
	}
}
