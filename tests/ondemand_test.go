package tests

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestOnDemand: an on-demand pv Linux VM with an endpoint (a Unix socket
// forwarded to a TCP port in the guest over its NIC and the daemon's TAP
// uplink) is not running until a client connects; the connection starts
// it and is served by the guest; its idle policy snapshots and stops it;
// the next connection restores it from that snapshot and is served again.
// The daemon runs in a network namespace of its own (so its TAP and
// addresses touch nothing of the host's). The connect-to-accept times, cold
// and from the snapshot, are logged (docs/perf.md).
func TestOnDemand(t *testing.T) {
	if err := exec.Command("unshare", "--net", "true").Run(); err != nil {
		t.Skipf("cannot make a network namespace (unshare --net: %v): needs CAP_SYS_ADMIN", err)
	}
	state := t.TempDir()
	d := &daemonEnv{t: t, state: state, sock: filepath.Join(state, "api.sock")}
	r := startCmd(t, exec.Command("unshare", "--net", pvisorBin(t), "serve", "--state-dir", state, "--uplink", "segment=od,tap=pvod0"))
	d.srv = r
	if !waitFor(time.Minute, func() bool {
		c, err := net.Dial("unix", d.sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("pvisor serve: no API socket; stderr:\n%s", r.errs.String())
	}
	// The host side of the segment, in the daemon's namespace.
	pid := "--target=" + itoa(uint64(r.cmd.Process.Pid))
	for _, args := range [][]string{{"ip", "link", "set", "lo", "up"}, {"ip", "addr", "add", "10.77.0.1/24", "dev", "pvod0"}, {"ip", "link", "set", "pvod0", "up"}} {
		if b, err := exec.Command("nsenter", append([]string{pid, "--net"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("nsenter %v: %v\n%s", args, err, b)
		}
	}
	endpoint := filepath.Join(state, "od.sock")
	serve := netSetup("10.77.0.2") + `echo od-ready; while true; do echo "hello-from-guest $(cat /proc/sys/kernel/random/boot_id)" | nc -l -p 7000; done`
	d.must("create", "od", "--kernel", filepath.Join(root, "build/guest/bzImage-pv"), "--initrd", filepath.Join(root, "build/guest/initramfs.cpio.gz"),
		"--cmdline", linuxCmdline("hvc0", serve), "--net", "segment=od", "--on-demand", "--endpoint", "unix:"+endpoint+"=10.77.0.2:7000",
		"--idle-after", "10s", "--idle-action", "snapshot-stop")
	if s := d.vmState("od"); s != "stopped" {
		t.Fatalf("an on-demand VM is %s before anyone connected", s)
	}
	if fi, err := os.Stat(endpoint); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("endpoint socket %v %v: want mode 0600", fi, err)
	}
	greet := regexp.MustCompile(`^hello-from-guest ([0-9a-f-]{36})\n$`)
	connect := func(what string) (string, time.Duration) {
		t.Helper()
		t0 := time.Now()
		c, err := net.Dial("unix", endpoint)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Minute))
		line, err := bufio.NewReader(c).ReadString('\n')
		took := time.Since(t0)
		m := greet.FindStringSubmatch(line)
		if err != nil || m == nil {
			out, _ := d.cli("", "logs", "od")
			t.Fatalf("%s: read %q, %v; console:\n%s\ndaemon:\n%s", what, line, err, tail(out, 2000), r.errs.String())
		}
		t.Logf("%s: served in %v", what, took.Round(time.Millisecond))
		return m[1], took
	}
	boot1, _ := connect("cold")
	if s := d.vmState("od"); s != "running" {
		t.Errorf("after a connection the VM is %s", s)
	}
	// A second connection to the running VM is served by the same boot.
	if b, _ := connect("warm"); b != boot1 {
		t.Errorf("a connection to the running VM was served by another boot (%s, then %s)", boot1, b)
	}
	if !waitFor(3*time.Minute, func() bool { return d.vmState("od") == "stopped" }) {
		t.Fatalf("the idle on-demand VM was not stopped")
	}
	// Restored from the idle policy's snapshot: the same boot answers.
	if b, _ := connect("from snapshot"); b != boot1 {
		t.Errorf("after the idle stop, the connection was served by boot %s, not the snapshot's %s", b, boot1)
	}
	// Attaching to the console of the stopped on-demand VM starts it too.
	d.must("stop", "od")
	if out, code := d.cli("", "console", "--linger", "1s", "od"); code != 0 || d.vmState("od") != "running" {
		t.Errorf("a console attach did not start the stopped on-demand VM (%s, exit %d):\n%s", d.vmState("od"), code, tail(out, 1000))
	}
	ev := d.must("events", "od")
	for _, want := range []string{"(cold boot)", "(from snapshot)", `"idle-stop"`, `"restore"`} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %s:\n%s", want, ev)
		}
	}
	for _, l := range strings.Split(ev, "\n") {
		if strings.Contains(l, "accepted by") {
			t.Log(l)
		}
	}
	// An endpoint must not listen beyond loopback.
	if out, code := d.cli("", "create", "od2", "--kernel", testguest(t), "--on-demand", "--endpoint", "0.0.0.0:7001=10.77.0.3:7000"); code == 0 || !strings.Contains(out, "loopback") {
		t.Errorf("a non-loopback endpoint was accepted: %s", out)
	}
}
