package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hotplugScript waits for the devices the test hot-plugs into a running
// pv guest: a disk that must appear as /dev/vdb (vda is there from boot),
// which it writes and then sees disappear, and a NIC that must appear as
// eth1 (eth0 is there from boot), which sends ARP requests and then
// disappears. Each wait gives up after 120 s.
const hotplugScript = `
wait_for() { i=0; while ! eval "$1"; do i=$((i+1)); [ $i -gt 1200 ] && { echo "hotplug-timeout: $1"; exit 3; }; sleep 0.1; done; }
echo hotplug-ready
wait_for '[ -b /dev/vdb ]'
echo "hotplug-vdb-up $(cat /sys/block/vdb/size)"
yes hotplugged | head -c 65536 | dd of=/dev/vdb bs=4096 conv=fsync 2>/dev/null && echo hotplug-vdb-written
wait_for '[ ! -e /sys/block/vdb ]'
echo hotplug-vdb-gone
wait_for '[ -e /sys/class/net/eth1 ]'
echo "hotplug-eth1-up $(cat /sys/class/net/eth1/address)"
ip link set eth1 up && ip addr add 10.9.0.2/24 dev eth1 && arping -c 3 -w 2 -I eth1 10.9.0.1 >/dev/null 2>&1
echo hotplug-eth1-sent
wait_for '[ ! -e /sys/class/net/eth1 ]'
echo hotplug-eth1-gone
`

// TestDeviceHotplug: `pvisor ctl device-attach` puts a disk into a running
// pv guest, which finds it as /dev/vdb and writes it (the host sees the
// bytes in the image); `device-detach` asks for it back and the guest's
// device disappears. A NIC the same: it appears as eth1, sends frames the
// switch counts, is detached and disappears.
func TestDeviceHotplug(t *testing.T) {
	vmlinux, _, initrd := pvGuest(t)
	bin := pvisorBin(t)
	dir := t.TempDir()
	vda := filepath.Join(dir, "vda.img")
	hot := filepath.Join(dir, "hot.img")
	for _, p := range []string{vda, hot} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "ctl.sock")
	c := exec.Command(bin, "run", "--kernel", vmlinux, "--initrd", initrd, "--mem", "256M", "--control", sock,
		"--disk", vda, "--net", "segment=lab", "--cmdline", linuxCmdline("hvc0", hotplugScript))
	var out syncBuffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	defer func() {
		c.Process.Signal(syscall.SIGKILL)
		<-done
	}()
	wait := func(line string) string {
		t.Helper()
		re := regexp.MustCompile(`(?m)^` + line + `.*$`)
		if !waitFor(4*time.Minute, func() bool { return re.MatchString(out.String()) || strings.Contains(out.String(), "hotplug-timeout") }) ||
			!re.MatchString(out.String()) {
			t.Fatalf("no %q line; output:\n%s", line, tail(out.String(), 3000))
		}
		return re.FindString(out.String())
	}
	ctl := func(args ...string) string {
		t.Helper()
		b, err := exec.Command(bin, append([]string{"ctl", "--control", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("pvisor ctl %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	slotRE := regexp.MustCompile(`slot (\d+)`)

	wait("hotplug-ready")
	rep := ctl("device-attach", "guest", "disk="+hot)
	slot := slotRE.FindStringSubmatch(rep)
	if slot == nil {
		t.Fatalf("device-attach answered %q", rep)
	}
	t.Logf("disk in slot %s: %s", slot[1], wait("hotplug-vdb-up"))
	wait("hotplug-vdb-written")
	img, err := os.ReadFile(hot)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Repeat([]byte("hotplugged\n"), 65536/11+1)[:65536]; !bytes.Equal(img[:65536], want) {
		t.Error("the hot-plugged image lacks the guest's write")
	}
	if list := ctl("list"); !strings.Contains(list, "slot "+slot[1]) {
		t.Errorf("ctl list does not show slot %s:\n%s", slot[1], list)
	}
	ctl("device-detach", "guest", slot[1])
	wait("hotplug-vdb-gone")
	if !waitFor(time.Minute, func() bool { return !strings.Contains(ctl("list"), "virtio-blk (hot-plugged)") }) {
		t.Errorf("the ejected disk is still listed:\n%s", ctl("list"))
	}

	rep = ctl("device-attach", "guest", "net=segment=lab")
	if slotRE.FindStringSubmatch(rep) == nil {
		t.Fatalf("device-attach answered %q", rep)
	}
	nicSlot := slotRE.FindStringSubmatch(rep)[1]
	t.Logf("NIC in slot %s: %s", nicSlot, wait("hotplug-eth1-up"))
	wait("hotplug-eth1-sent")
	txRE := regexp.MustCompile(`virtio-net \(hot-plugged\) slot ` + nicSlot + `[^\n]*tx (\d+) frames`)
	list := ctl("list")
	if m := txRE.FindStringSubmatch(list); m == nil || m[1] == "0" {
		t.Errorf("the hot-plugged NIC's switch counters show no frame sent:\n%s", list)
	}
	ctl("device-detach", "guest", nicSlot)
	wait("hotplug-eth1-gone")
	if code := wait("pvisor-exit:"); !strings.HasSuffix(strings.TrimSpace(code), " 0") {
		t.Errorf("guest script: %s\n%s", code, tail(out.String(), 2000))
	}
}
