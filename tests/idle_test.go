package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIdlePolicy: a pv Linux VM idle at its prompt, with an idle policy of
// 10 s and snapshot-stop, is snapshotted and stopped by the daemon, and the
// event log says why; a CPU-bound VM with the same policy keeps running.
// Then the stopped VM restores from the snapshot its policy took.
func TestIdlePolicy(t *testing.T) {
	state := t.TempDir()
	d := startDaemon(t, state)
	loop := `echo idle-ready; while read l; do echo "GOT:$l" | tr a-z A-Z; done`
	d.must("create", "idler", "--kernel", filepath.Join(root, "build/guest/bzImage-pv"), "--initrd",
		filepath.Join(root, "build/guest/initramfs.cpio.gz"), "--cmdline", linuxCmdline("hvc0", loop),
		"--idle-after", "10s", "--idle-action", "snapshot-stop")
	d.must("create", "busy", "--kernel", testguest(t), "--mem", "64M", "--cmdline", "count=100000000", "--idle-after", "10s")
	if out, code := d.cli("", "create", "bad", "--kernel", testguest(t), "--idle-after", "1s"); code == 0 || !strings.Contains(out, "idle_after") {
		t.Errorf("an idle policy of 1s was accepted: %s", out)
	}
	d.must("start", "idler")
	d.must("start", "busy")
	t0 := time.Now()
	if !waitFor(4*time.Minute, func() bool { return d.vmState("idler") == "stopped" }) {
		out, _ := d.cli("", "logs", "idler")
		t.Fatalf("the idle VM was not stopped; console:\n%s", tail(out, 2000))
	}
	t.Logf("idle VM stopped %v after its start", time.Since(t0).Round(time.Second))
	if time.Since(t0) < 10*time.Second {
		t.Errorf("stopped after %v, before its 10 s idle time", time.Since(t0))
	}
	if s := d.vmState("busy"); s != "running" {
		t.Errorf("the busy VM is %s, want running: CPU use must count as activity", s)
	}
	var exit string
	for _, v := range d.list() {
		if v.Name == "idler" {
			exit = v.LastExit
			if v.Snapshots != 1 {
				t.Errorf("idler has %d snapshots, want the one its policy took", v.Snapshots)
			}
		}
	}
	if !strings.Contains(exit, "idle policy") {
		t.Errorf("idler's last exit %q does not name its idle policy", exit)
	}
	if ev := d.must("events", "idler"); !strings.Contains(ev, `"idle-stop"`) || !strings.Contains(ev, "snapshot-stop") {
		t.Errorf("idler's events lack the idle stop:\n%s", ev)
	}
	// Restored from the policy's snapshot, it answers at once.
	d.must("restore", "idler")
	out, _ := d.cli("back\n", "console", "--linger", "60s", "--until", "GOT:BACK", "idler")
	if !strings.Contains(out, "GOT:BACK") {
		t.Errorf("the restored VM does not answer:\n%s", tail(out, 2000))
	}
	// The policy holds for the restored VM too.
	if !waitFor(2*time.Minute, func() bool { return d.vmState("idler") == "stopped" }) {
		t.Errorf("the restored idle VM was not stopped again")
	}
	d.must("stop", "busy")
}
