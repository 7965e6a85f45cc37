package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/loader"
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
		{[]string{"--kernel", "main.go", "--rng", "--vm", "name=a"}, "not with --vm or --config"},
		{[]string{"--kernel", "main.go", "--mode", "trap", "--disk", "main.go", "--vm", "name=a"}, "not with --vm or --config"},
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
	if _, err := ctlCall(stale, &ctlRequest{Op: "list"}); err != nil {
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
