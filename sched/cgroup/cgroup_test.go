package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGroupBounds makes a group, sets every bound, moves a busy child
// into it and reads its CPU time back, then removes the group.
func TestGroupBounds(t *testing.T) {
	name := fmt.Sprintf("pvisor-test-%d", os.Getpid())
	g, err := New(name)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	for _, err := range []error{g.SetCPUWeight(512), g.SetCPUCap(50), g.SetMemoryLimit(64 << 20), g.SetTasks(16)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"cpu.shares": "2048", "cpu.cfs_quota_us": "50000", "memory.limit_in_bytes": strconv.Itoa(64 << 20), "pids.max": "16"}
	ctl := map[string]string{"cpu.shares": "cpu", "cpu.cfs_quota_us": "cpu", "memory.limit_in_bytes": "memory", "pids.max": "pids"}
	if g.Version() == 2 {
		files = map[string]string{"cpu.weight": "200", "cpu.max": "50000 100000", "memory.max": strconv.Itoa(64 << 20), "pids.max": "16"}
		ctl = map[string]string{"cpu.weight": "cpu", "cpu.max": "cpu", "memory.max": "memory", "pids.max": "pids"}
	}
	for f, want := range files {
		b, err := os.ReadFile(filepath.Join(g.Dir(ctl[f]), f))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q (%v), want %q", f, strings.TrimSpace(string(b)), err, want)
		}
	}
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	used, err := g.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	// Capped at 50 % of a CPU: at most about half a second in one (a
	// loaded host may give it less; the accounting must see some).
	t.Logf("a spinning child capped at 50%% used %v in 1 s", used)
	if used == 0 || used > 650*time.Millisecond {
		t.Errorf("the capped child used %v of CPU in 1 s, want some and at most about 500ms", used)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := g.Remove(); err != nil {
		t.Errorf("remove: %v", err)
	}
	if _, err := os.Stat(g.Dir("cpu")); !os.IsNotExist(err) {
		t.Errorf("the group's directory is still there: %v", err)
	}
}

// TestBadNames: a group name cannot leave the process's own cgroup.
func TestBadNames(t *testing.T) {
	for _, n := range []string{"", "../x", "/abs", "a/../../b"} {
		if _, err := New(n); err == nil {
			t.Errorf("New(%q) succeeded", n)
		}
	}
}
