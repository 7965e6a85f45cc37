package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Commands:") {
		t.Errorf("--help: code %d, out %q", code, out.String())
	}
	out.Reset()
	if code := dispatch([]string{"bogus"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("bogus: code %d, err %q", code, errb.String())
	}
	out.Reset()
	if code := dispatch([]string{"cpuid"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "0x40000000") {
		t.Errorf("cpuid: code %d, out %q", code, out.String())
	}
	out.Reset()
	if code := dispatch([]string{"exits"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "hwassist") {
		t.Errorf("exits: code %d, out %q", code, out.String())
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "no kernel given"},
		{[]string{"--kernel", "/nonexistent/vmlinux"}, "kernel not found"},
		{[]string{"--kernel", "x", "--mode", "fast"}, "unknown mode"},
		{[]string{"--kernel", "x", "--mem", "12Q"}, "bad size"},
		{[]string{"--kernel", "x", "--accel", "tcg"}, "unknown --accel"},
		{[]string{"--kernel", "x", "--vcpus", "0"}, "--vcpus"},
		{[]string{"--kernel", "main.go", "--vm", "nme=a"}, `unknown key "nme"`},
		{[]string{"--kernel", "main.go", "--vm", "name=a,cpu-weight=0"}, "cpu-weight"},
		{[]string{"--kernel", "main.go", "--vm", "name=a", "--vm", "name=a"}, `two VMs are named "a"`},
		{[]string{"--kernel", "main.go", "--vm", "name=a,cpu-cap=-5"}, "cpu-cap"},
		{[]string{"--kernel", "main.go", "--cpu-weight", "70000"}, "cpu-weight"},
		{[]string{"--kernel", "main.go", "--config", "/nonexistent.toml"}, "--config"},
		{[]string{"--kernel", "main.go", "--vm", "name=a", "--trace", "-"}, "--trace"},
		{[]string{"--kernel", "main.go", "--mem-budget", "lots"}, "--mem-budget"},
	} {
		var out, errb bytes.Buffer
		code := dispatch(append([]string{"run"}, tc.args...), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("run %v: code %d, stderr %q, want %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"256M": 256 << 20, "1G": 1 << 30, "4096": 4096, "64K": 64 << 10} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1M", "M", "1.5G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestExitScanner(t *testing.T) {
	var out bytes.Buffer
	s := &exitScanner{w: &out}
	s.Write([]byte("hello\npvisor-ex"))
	s.Write([]byte("it: 42\r\nbye\n"))
	if code, ok := s.status(); !ok || code != 42 {
		t.Errorf("status %d %v", code, ok)
	}
	if out.String() != "hello\npvisor-exit: 42\r\nbye\n" {
		t.Errorf("passthrough %q", out.String())
	}
}

func TestGuestCommandArgs(t *testing.T) {
	var errb bytes.Buffer
	rc, err := parseRun([]string{"--kernel", "main.go", "--", "sh", "-c", "echo it's"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if got := shellJoin(rc.guestCmd); got != `'sh' '-c' 'echo it'\''s'` {
		t.Errorf("shellJoin = %s", got)
	}
	if _, err := parseRun([]string{"--kernel", "main.go", "stray"}, &errb); err == nil {
		t.Error("a stray argument without -- was accepted")
	}
}

func TestVMSpecs(t *testing.T) {
	var errb bytes.Buffer
	rc, err := parseRun([]string{"--kernel", "main.go", "--mem", "32M", "--cpu-cap", "50",
		"--vm", "name=a,cpu-weight=512,cmdline=spin x=1,y=2", "--vm", "mode=trap"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.vms) != 2 || !rc.multi {
		t.Fatalf("vms %+v", rc.vms)
	}
	a, b := rc.vms[0], rc.vms[1]
	if a.name != "a" || a.weight != 512 || a.cap != 50 || a.cmdline != "spin x=1,y=2" || a.memBytes != 32<<20 {
		t.Errorf("a = %+v", a)
	}
	if b.name != "vm1" || b.mode.String() != "trap" || b.weight != 0 {
		t.Errorf("b = %+v", b)
	}
	cfg := filepath.Join(t.TempDir(), "vms.toml")
	os.WriteFile(cfg, []byte("workers = 1\n[[vm]]\nname = \"x\"\nkernel = \"main.go\"\ncpu_cap = 25\n[[vm]]\ncmdline = \"idle\"\nmem = \"16M\"\n"), 0o644)
	rc, err = parseRun([]string{"--kernel", "main.go", "--config", cfg}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if rc.workers != 1 || len(rc.vms) != 2 || rc.vms[0].cap != 25 || rc.vms[1].name != "vm1" || rc.vms[1].memBytes != 16<<20 {
		t.Errorf("config: workers %d, vms %+v", rc.workers, rc.vms)
	}
	os.WriteFile(cfg, []byte("[[vm]]\nmem = 3.5\n"), 0o644)
	if _, err := parseRun([]string{"--kernel", "main.go", "--config", cfg}, &errb); err == nil || !strings.Contains(err.Error(), "want a string, an integer or a boolean") {
		t.Errorf("a float in the config: %v", err)
	}
}

// TestAuditStateDirOwner: pvisor audit logs a violation only into a
// state directory that exists, is no symbolic link, and belongs to the
// watched process's user: a process's --state-dir is anyone's to choose.
func TestAuditStateDirOwner(t *testing.T) {
	own := t.TempDir()
	if err := stateDirOf(os.Getpid(), own); err != nil {
		t.Errorf("this process's own directory: %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(own, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(own, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(own, "absent"), link, file} {
		if err := stateDirOf(os.Getpid(), d); err == nil {
			t.Errorf("%s accepted", d)
		}
	}
	if os.Geteuid() == 0 {
		other := t.TempDir()
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := stateDirOf(os.Getpid(), other); err == nil {
			t.Error("a directory of another user accepted")
		}
	}
}
