package audit

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// TestMonitorCounts: a watched child's getppid calls (a call no Go
// runtime makes on its own) are counted exactly, an unwatched process's
// are not, and getppid is outside the VMM's profile. Only a kernel that
// refuses BPF skips, saying so.
func TestMonitorCounts(t *testing.T) {
	m, err := Open()
	if errors.Is(err, ErrRefused) {
		t.Skipf("this kernel refuses the BPF monitor: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A child (TestMonitorChild) that waits for its stdin, makes 1000
	// getppid calls, and exits.
	cmd := exec.Command(os.Args[0], "-test.run=^TestMonitorChild$")
	cmd.Env = append(os.Environ(), "AUDIT_CHILD=1")
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Watch(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	// The counts must be read before the process is gone: poll.
	nr := arch.X86_64.SyscallNames["getppid"]
	var c Counts
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err = m.Counts(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if c[nr] >= 1000 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Wait()
	if c[nr] != 1000 {
		t.Errorf("getppid counted %d times, want 1000", c[nr])
	}
	if InProfile(nr) {
		t.Error("getppid is in the VMM's profile")
	}
	v := Violations(&Counts{}, &c)
	found := false
	for _, e := range v {
		found = found || (e.Name == "getppid" && e.Count == 1000)
	}
	if !found {
		t.Errorf("violations %v lack getppid x1000", v)
	}
	// This process is not watched.
	for range 10 {
		syscall.Getppid()
	}
	if _, err := m.Counts(os.Getpid()); err == nil {
		t.Error("an unwatched process has counts")
	}
	m.Unwatch(cmd.Process.Pid)
	if _, err := m.Counts(cmd.Process.Pid); err == nil {
		t.Error("counts after Unwatch")
	}
}

// TestMonitorChild is the watched child of TestMonitorCounts.
func TestMonitorChild(t *testing.T) {
	if os.Getenv("AUDIT_CHILD") == "" {
		return
	}
	b := make([]byte, 3)
	os.Stdin.Read(b)
	for range 1000 {
		syscall.Getppid()
	}
	// Stay a moment, so the parent reads the counts of a live process.
	time.Sleep(200 * time.Millisecond)
}

// TestNames: numbers and the overflow counter have names.
func TestNames(t *testing.T) {
	for nr, want := range map[int]string{0: "read", 59: "execve", 41: "socket", Overflow: "nr>=512"} {
		if got := Name(nr); got != want {
			t.Errorf("Name(%d) = %q, want %q", nr, got, want)
		}
	}
	if !InProfile(0) || InProfile(59) || InProfile(41) {
		t.Error("InProfile disagrees with hv/sandbox.Profile on read, execve or socket")
	}
}
