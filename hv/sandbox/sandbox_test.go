package sandbox

import (
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// childEnv names the case a re-executed test binary runs confined.
const childEnv = "PVISOR_SANDBOX_CHILD"

// TestMain runs a child's case: confine, then try what the case says,
// and report on stdout. A killed child reports nothing after "confined".
func TestMain(m *testing.M) {
	if c := os.Getenv(childEnv); c != "" {
		os.Exit(child(c, os.Getenv("PVISOR_SANDBOX_DIR")))
	}
	os.Exit(m.Run())
}

func child(c, dir string) int {
	mode := ModeKill
	if c == "log-exec" {
		mode = ModeLog
	}
	// Threads made before Apply must be confined too: start some.
	done := make(chan struct{})
	for range 4 {
		go func() {
			runtime.LockOSThread()
			<-done
		}()
	}
	ppid := os.Getppid() // getppid is outside the profile
	st, err := Apply(Config{ReadWrite: []string{dir}, Seccomp: mode})
	if err != nil {
		fmt.Println("apply:", err)
		return 1
	}
	fmt.Println("confined:", st)
	switch c {
	case "files":
		if err := os.WriteFile(filepath.Join(dir, "inside"), []byte("ok"), 0o600); err != nil {
			fmt.Println("inside write:", err)
		} else {
			fmt.Println("inside write: ok")
		}
		if err := os.Rename(filepath.Join(dir, "inside"), filepath.Join(dir, "renamed")); err != nil {
			fmt.Println("inside rename:", err)
		} else {
			fmt.Println("inside rename: ok")
		}
		_, err := os.ReadFile("/etc/passwd")
		fmt.Println("outside read:", errName(err))
		err = os.WriteFile(filepath.Join(os.TempDir(), fmt.Sprintf("pvisor-sandbox-%d", os.Getpid())), nil, 0o600)
		fmt.Println("outside write:", errName(err))
		_, err = os.ReadFile("/proc/self/status")
		fmt.Println("proc read:", errName(err))
		// The parent reads every thread's status from outside.
		fmt.Println("ready")
		os.Stdin.Read(make([]byte, 1))
	case "exec", "log-exec":
		err := syscall.Exec("/bin/true", []string{"true"}, nil)
		fmt.Println("exec:", errName(err))
	case "socket":
		_, err := net.Dial("tcp", "127.0.0.1:1")
		fmt.Println("socket:", errName(err))
	case "fork":
		pid, _, e := syscall.RawSyscall(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0)
		if e == 0 && pid == 0 {
			os.Exit(0)
		}
		fmt.Println("fork:", pid, errName(e))
	case "clone3":
		_, _, e := syscall.RawSyscall(435, 0, 0, 0) // clone3
		fmt.Println("clone3:", errName(e))
	case "affinity-self", "affinity-other":
		// The calling thread's own affinity is allowed; another task's
		// (here the parent, a process outside the sandbox) is not.
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			fmt.Println("getaffinity:", errName(err))
			break
		}
		pid := 0
		if c == "affinity-other" {
			pid = ppid
		}
		fmt.Println(c+":", errName(unix.SchedSetaffinity(pid, &set)))
	}
	close(done)
	return 0
}

func errName(err error) string {
	switch {
	case err == nil:
		return "served"
	case errors.Is(err, syscall.EACCES):
		return "EACCES"
	case errors.Is(err, syscall.EPERM):
		return "EPERM"
	case errors.Is(err, syscall.ENOSYS):
		return "ENOSYS"
	}
	return err.Error()
}

// threadStatus summarises, over every thread of process pid, the
// confinement fields of /proc/PID/task/*/status: one line per distinct
// value.
func threadStatus(pid int) (string, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return "", fmt.Errorf("no tasks: %v", err)
	}
	seen := map[string]int{}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			return "", err
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			switch k {
			case "NoNewPrivs", "Seccomp", "CapInh", "CapPrm", "CapEff", "CapAmb":
				seen[k+"="+strings.TrimSpace(v)]++
			}
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "threads=%d\n", len(tasks))
	for k, n := range seen {
		fmt.Fprintf(&out, "%s x%d\n", k, n)
	}
	return out.String(), nil
}

// run re-executes the test binary to run case c confined.
func run(t *testing.T, c string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+c, "PVISOR_SANDBOX_DIR="+dir)
	out, err := cmd.Output()
	return string(out), err
}

// runFiles runs the "files" case and reads its threads' status while it
// waits.
func runFiles(t *testing.T) (out, status string, err error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=files", "PVISOR_SANDBOX_DIR="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(b.String(), "ready\n") {
		n, err := stdout.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if strings.Contains(b.String(), "ready\n") {
		status, err = threadStatus(cmd.Process.Pid)
		if err != nil {
			t.Errorf("status: %v", err)
		}
	}
	stdin.Close()
	rest, _ := io.ReadAll(stdout)
	b.Write(rest)
	return b.String(), status, cmd.Wait()
}

func cgoBuild(t *testing.T) bool {
	t.Helper()
	out, _ := run(t, "exec")
	return strings.Contains(out, "built with cgo")
}

// TestConfinedThreads: after Apply, every thread (those made before it
// too) has no_new_privs, the seccomp filter and no capabilities; the
// allowed directory can be written and renamed in, and files outside it
// can be neither read nor written.
func TestConfinedThreads(t *testing.T) {
	out, status, err := runFiles(t)
	if strings.Contains(out, "built with cgo") {
		// A cgo build must refuse rather than confine some threads:
		// that is the promise such a build keeps (make builds without).
		if err == nil {
			t.Fatalf("a cgo build's Apply did not fail:\n%s", out)
		}
		t.Logf("cgo build: Apply refused, as it must:\n%s", out)
		return
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s\nthreads:\n%s", out, status)
	for _, want := range []string{"inside write: ok", "inside rename: ok", "outside read: EACCES", "outside write: EACCES", "proc read: EACCES"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("child output lacks %q", want)
		}
	}
	var threads int
	fmt.Sscanf(status, "threads=%d", &threads)
	if threads < 5 {
		t.Errorf("only %d threads: the test meant to confine several", threads)
	}
	for _, f := range []string{"NoNewPrivs=1", "Seccomp=2", "CapInh=0000000000000000", "CapPrm=0000000000000000", "CapEff=0000000000000000", "CapAmb=0000000000000000"} {
		if !strings.Contains(status, fmt.Sprintf("%s x%d\n", f, threads)) {
			t.Errorf("not every one of the %d threads has %s", threads, f)
		}
	}
}

// TestOutsideProfileKills: execve, a TCP socket, a fork and setting
// another task's CPU affinity are outside the profile: the process dies of
// SIGSYS before the call is served (its own thread's affinity is served).
// clone3 answers ENOSYS. ModeLog lets the same execve through.
func TestOutsideProfileKills(t *testing.T) {
	if cgoBuild(t) {
		t.Log("cgo build: Apply refuses (TestConfinedThreads checks it)")
		return
	}
	for _, c := range []string{"exec", "socket", "fork", "affinity-other"} {
		out, err := run(t, c)
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Errorf("%s: the child was not killed (err %v):\n%s", c, err, out)
			continue
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
			t.Errorf("%s: child ended %v, want killed by SIGSYS:\n%s", c, ws, out)
		}
		if !strings.HasPrefix(out, "confined:") || strings.Contains(out, c+":") {
			t.Errorf("%s: the call returned to the child:\n%s", c, out)
		}
	}
	out, err := run(t, "clone3")
	if err != nil || !strings.Contains(out, "clone3: ENOSYS") {
		t.Errorf("clone3: %v\n%s", err, out)
	}
	out, err = run(t, "affinity-self")
	if err != nil || !strings.Contains(out, "affinity-self: served") {
		t.Errorf("sched_setaffinity of the calling thread: %v\n%s", err, out)
	}
	out, err = run(t, "log-exec")
	if err != nil {
		t.Errorf("log mode: exec of /bin/true: %v\n%s", err, out)
	}
}

// TestProfileDocumented: docs/security.md lists exactly the profile's
// calls, each with its reason.
func TestProfileDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "<!-- seccomp profile -->")
	end := strings.Index(doc, "<!-- end seccomp profile -->")
	if start < 0 || end < start {
		t.Fatal("docs/security.md has no seccomp profile table between its markers")
	}
	var got []string
	for _, l := range strings.Split(doc[start:end], "\n") {
		if f := strings.Split(l, "|"); len(f) > 3 && strings.HasPrefix(strings.TrimSpace(f[1]), "`") {
			got = append(got, strings.Trim(strings.TrimSpace(f[1]), "`"))
		}
	}
	if d := cmp.Diff(Names(), got); d != "" {
		t.Errorf("docs/security.md's profile table differs from Profile (-Profile +docs):\n%s", d)
	}
}

// TestPolicyAssembles: every name is a real x86-64 call, none twice.
func TestPolicyAssembles(t *testing.T) {
	for _, m := range []Mode{ModeKill, ModeLog} {
		if _, n, err := policy(m); err != nil || n != len(Profile) {
			t.Errorf("%v: %d calls, %v", m, n, err)
		}
	}
	seen := map[string]bool{}
	for _, c := range Profile {
		if seen[c.Name] || c.Why == "" {
			t.Errorf("%s: twice, or without a reason", c.Name)
		}
		seen[c.Name] = true
	}
}
