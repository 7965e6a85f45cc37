package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/virtio"
)

// Disk images of TestVirtioBlock.
const (
	vdaSize = 64 << 20 // read whole by the guest
	vdbSize = 1 << 20  // read-only

	// The guest writes pattern (1 MiB of "pvisor\n" repeated, cut) at
	// vda offset patternOff.
	patternOff = 1 << 20
	patternLen = 1 << 20
)

var (
	vdaSumRE   = regexp.MustCompile(`(?m)^vda-sha256: ([0-9a-f]{64})`)
	vdaWriteRE = regexp.MustCompile(`(?m)^vda-write: (\d+)`)
	vdbWriteRE = regexp.MustCompile(`(?m)^vdb-write: (\d+)`)
	vdbSumRE   = regexp.MustCompile(`(?m)^vdb-sha256: ([0-9a-f]{64})`)
	ext4SumRE  = regexp.MustCompile(`(?m)^ext4-sum: ([0-9a-f]{64})  /mnt/(\S+)`)
	ext4WrRE   = regexp.MustCompile(`(?m)^ext4-write: (\d+)`)
)

// ext4Files are the files of TestVirtioBlock's ext4 image (vdc), and
// ext4New the file the guest writes into it.
func ext4Files() map[string][]byte {
	r := rand.NewChaCha8([32]byte{3})
	a := make([]byte, 300<<10)
	r.Read(a)
	return map[string][]byte{"a.bin": a, "dir/b.txt": []byte("pvisor ext4 test file\n")}
}

const (
	ext4New     = "dir/new.txt"
	ext4NewText = "written by the guest, then sync\n"
)

// randomImage writes a raw image of size random bytes into dir.
func randomImage(t *testing.T, dir, name string, size int, seed uint64) (string, []byte) {
	t.Helper()
	img := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(img)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, img
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestVirtioBlock: the guest finds three virtio block devices, reads all
// of a 64 MiB random image with the same SHA-256 as the host's, writes a
// pattern that the host then finds in the image file (conv=fsync), and
// cannot write to the read-only disk, whose image stays as it was. The
// third disk holds an ext4 file system built on the host: the guest mounts
// it and reads its files, and a file it writes, followed by sync and the
// VM's stop, is in the image for the host's debugfs. In hwassist and trap
// mode the unmodified kernel finds the disks on virtio-mmio from its
// command line; in pv mode the patched kernel finds them in the hypercall
// transport's slots, and the run makes no MMIO and no port I/O exit.
func TestVirtioBlock(t *testing.T) {
	pattern := bytes.Repeat([]byte("pvisor\n"), patternLen/7+1)[:patternLen]
	for _, mode := range []cpu.Mode{cpu.ModeHWAssist, cpu.ModeTrap, cpu.ModePV} {
		t.Run(mode.String(), func(t *testing.T) {
			var vmlinux, initrd string
			con := "ttyS0"
			if mode == cpu.ModePV {
				vmlinux, _, initrd = pvGuest(t)
				con = "hvc0"
			} else {
				vmlinux, initrd = linuxGuest(t)
			}
			dir := t.TempDir()
			vda, vdaImg := randomImage(t, dir, "vda.img", vdaSize, 1)
			vdb, vdbImg := randomImage(t, dir, "vdb.img", vdbSize, 2)
			cmd := `dd if=/dev/vda bs=1M 2>/dev/null | sha256sum | sed 's/ .*//; s/^/vda-sha256: /'
yes pvisor | head -c 1048576 | dd of=/dev/vda bs=4096 seek=256 conv=fsync 2>/dev/null; echo "vda-write: $?"
dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; echo "vdb-write: $?"
dd if=/dev/vdb bs=64k 2>/dev/null | sha256sum | sed 's/ .*//; s/^/vdb-sha256: /'
mount -t ext4 /dev/vdc /mnt && sha256sum /mnt/a.bin /mnt/dir/b.txt | sed 's/^/ext4-sum: /'
printf '` + ext4NewText + `' > /mnt/` + ext4New + ` && sync; echo "ext4-write: $?"`
			var out syncBuffer
			cfg := linuxConfig(t, vmlinux, initrd, mode, con, cmd, &out)
			files := ext4Files()
			vdc := ext4Image(t, dir, "vdc.img", 8<<20, files)
			cfg.Disks = []hv.Disk{{Path: vda}, {Path: vdb, ReadOnly: true}, {Path: vdc}}
			vm, err := hv.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got, code, vm := runLinuxVM(t, vm, mode, &out, 10*time.Minute)
			t.Logf("%v: %v", mode, time.Since(start).Round(time.Millisecond))
			if code != 0 {
				t.Fatalf("guest command status %d; console:\n%s", code, tail(got, 3000))
			}
			type dev struct {
				name string
				virtio.StatsSnapshot
			}
			var devs []dev
			for _, d := range vm.MMIODevices() {
				devs = append(devs, dev{d.String(), d.StatsSnapshot})
			}
			for _, d := range vm.SlotDevices() {
				devs = append(devs, dev{d.String(), d.StatsSnapshot})
			}
			if len(devs) != 3 {
				t.Errorf("%d devices listed, want 3", len(devs))
			}
			for _, d := range devs {
				t.Logf("%s (%d requests, %d bytes, %d interrupts, %d breaks)", d.name, d.Requests, d.Bytes, d.Interrupts, d.Broken)
				if d.Broken != 0 {
					t.Errorf("%s broke", d.name)
				}
			}
			if mode == cpu.ModePV {
				es := vm.EngineStats(0)
				t.Logf("pv: %d hypercall, %d MMIO and %d port I/O exits", es.Exits[cpu.ExitHypercall], es.Exits[cpu.ExitMMIO], es.Exits[cpu.ExitIO])
				if n := es.Exits[cpu.ExitMMIO]; n != 0 {
					t.Errorf("pv mode: %d MMIO exits, want 0", n)
				}
				if n := es.Exits[cpu.ExitIO]; n != 0 || len(vm.IOPortCounts()) != 0 {
					t.Errorf("pv mode: %d port I/O exits (%v), want 0", n, vm.IOPortCounts())
				}
			}
			check := func(re *regexp.Regexp, want, what string) {
				t.Helper()
				m := re.FindStringSubmatch(got)
				if m == nil {
					t.Errorf("no %s line; console:\n%s", what, tail(got, 3000))
				} else if m[1] != want {
					t.Errorf("%s: guest says %s, want %s", what, m[1], want)
				}
			}
			check(vdaSumRE, sum(vdaImg), "vda sha256")
			check(vdaWriteRE, "0", "vda write status")
			check(vdbSumRE, sum(vdbImg), "vdb sha256")
			if m := vdbWriteRE.FindStringSubmatch(got); m == nil || m[1] == "0" {
				t.Errorf("write to the read-only disk: %q, want a failing dd", m)
			}
			after, err := os.ReadFile(vda)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append(append([]byte(nil), vdaImg[:patternOff]...), pattern...), vdaImg[patternOff+patternLen:]...)
			if !bytes.Equal(after, want) {
				i := 0
				for i < len(after) && i < len(want) && after[i] == want[i] {
					i++
				}
				t.Errorf("vda image after the guest's write differs from the expected at byte %#x", i)
			}
			if after, _ := os.ReadFile(vdb); !bytes.Equal(after, vdbImg) {
				t.Error("the read-only image changed")
			}
			sums := map[string]string{}
			for _, m := range ext4SumRE.FindAllStringSubmatch(got, -1) {
				sums[m[2]] = m[1]
			}
			for name, b := range files {
				if sums[name] != sum(b) {
					t.Errorf("ext4 %s: guest's sha256 %q, want %s", name, sums[name], sum(b))
				}
			}
			check(ext4WrRE, "0", "ext4 write status")
			if b, ok := ext4Read(t, vdc, "/"+ext4New); !ok || string(b) != ext4NewText {
				t.Errorf("ext4 %s on the host: %q (found %v), want %q", ext4New, b, ok, ext4NewText)
			}
		})
	}
}

// TestVirtioBlockKill: what the guest fsynced survives a SIGKILL of the
// pvisor process. The guest writes 1 MiB to a raw disk with conv=fsync and
// a file on an ext4 disk with conv=fsync, says so, and sleeps; the test
// kills pvisor at that line and finds both on the host images (the ext4
// one after the journal replay its next mount would do).
func TestVirtioBlockKill(t *testing.T) {
	bin := pvisorBin(t)
	pattern := bytes.Repeat([]byte("killed\n"), patternLen/7+1)[:patternLen]
	fileData := bytes.Repeat([]byte("fsynced\n"), 8192)
	for _, mode := range []cpu.Mode{cpu.ModeHWAssist, cpu.ModeTrap, cpu.ModePV} {
		t.Run(mode.String(), func(t *testing.T) {
			var vmlinux, initrd string
			con := "ttyS0"
			if mode == cpu.ModePV {
				vmlinux, _, initrd = pvGuest(t)
				con = "hvc0"
			} else {
				vmlinux, initrd = linuxGuest(t)
			}
			dir := t.TempDir()
			raw, rawImg := randomImage(t, dir, "raw.img", 4<<20, 4)
			fs := ext4Image(t, dir, "fs.img", 8<<20, map[string][]byte{"old.txt": []byte("old\n")})
			cmd := `yes killed | head -c 1048576 | dd of=/dev/vda bs=4096 seek=256 conv=fsync 2>/dev/null &&
mount -t ext4 /dev/vdb /mnt && yes fsynced | head -c 65536 | dd of=/mnt/f.txt bs=4096 conv=fsync 2>/dev/null &&
echo kill-ready; sleep 600`
			c := exec.Command(bin, "run", "--mode", mode.String(), "--kernel", vmlinux, "--initrd", initrd,
				"--mem", "256M", "--disk", raw, "--disk", fs, "--cmdline", linuxCmdline(con, cmd))
			var out syncBuffer
			c.Stdout, c.Stderr = &out, &out
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			start := time.Now()
			ready := waitFor(10*time.Minute, func() bool {
				select {
				case err := <-done:
					done <- err
					return true
				default:
				}
				return strings.Contains(out.String(), "kill-ready")
			})
			if !ready || !strings.Contains(out.String(), "kill-ready") {
				c.Process.Kill()
				<-done
				t.Fatalf("%v: the guest did not reach kill-ready; output:\n%s", mode, tail(out.String(), 3000))
			}
			t.Logf("%v: kill-ready after %v", mode, time.Since(start).Round(time.Millisecond))
			if err := c.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err == nil {
				t.Fatal("pvisor exited cleanly after SIGKILL")
			}
			after, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append(append([]byte(nil), rawImg[:patternOff]...), pattern...), rawImg[patternOff+patternLen:]...)
			if !bytes.Equal(after, want) {
				t.Error("the raw image lacks the fsynced write after SIGKILL")
			}
			if b, ok := ext4Read(t, fs, "/f.txt"); !ok || !bytes.Equal(b, fileData) {
				t.Errorf("ext4 f.txt after SIGKILL: %d bytes (found %v), want the %d fsynced", len(b), ok, len(fileData))
			}
		})
	}
}

// closeCounter counts the closes of a hot-plugged device's backend.
type closeCounter struct{ n atomic.Int32 }

func (c *closeCounter) Close() error { c.n.Add(1); return nil }

// waitConsole waits until out holds marker, or the VM stops (false).
func waitConsole(vm *hv.VM, out *syncBuffer, marker string) bool {
	for !strings.Contains(out.String(), marker) {
		select {
		case <-vm.Done():
			return strings.Contains(out.String(), marker)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

var (
	hotplugAttachedRE = regexp.MustCompile(`(?m)^hotplug-attached: (\S+)`)
	hotplugRandomRE   = regexp.MustCompile(`(?m)^hotplug-random: ([0-9a-f]*)`)
	hotplugEjectedRE  = regexp.MustCompile(`(?m)^hotplug-ejected: (\S+)`)
	hotplugForcedRE   = regexp.MustCompile(`(?m)^hotplug-forced: (\S+)`)
)

// TestVirtioHotplug: the patched kernel, booted in pv mode with no device,
// finds an rng the host attaches while it runs (VIRQ_VIRTIO) and reads
// random bytes from it through the stock driver. When the host asks for
// its ejection the driver unregisters it and calls virtio_release, which
// empties the slot and closes the backend once. A second rng, attached
// into the same slot with a new generation, is then ejected by force: the
// guest finds the slot empty and drops its device.
func TestVirtioHotplug(t *testing.T) {
	vmlinux, _, initrd := pvGuest(t)
	cmd := `present() { [ -e /sys/bus/virtio/devices/virtio0 ]; }
waitfor() { i=0; while [ $i -lt 600 ]; do if [ "$1" = in ]; then present && return; else present || return; fi; sleep 0.1; i=$((i+1)); done; }
echo hotplug-wait-attach
waitfor in
echo "hotplug-attached: $(cat /sys/bus/virtio/devices/virtio0/device 2>/dev/null || echo none)"
echo "hotplug-random: $(head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
echo hotplug-wait-eject
waitfor out
if present; then echo "hotplug-ejected: no"; else echo "hotplug-ejected: yes"; fi
echo hotplug-wait-second
waitfor in
echo "hotplug-random: $(head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
echo hotplug-wait-force
waitfor out
if present; then echo "hotplug-forced: no"; else echo "hotplug-forced: yes"; fi`
	var out syncBuffer
	vm, err := hv.New(linuxConfig(t, vmlinux, initrd, cpu.ModePV, "hvc0", cmd, &out))
	if err != nil {
		t.Fatal(err)
	}
	var first, second closeCounter
	host := make(chan error, 1)
	go func() {
		host <- func() error {
			steps := []struct {
				marker string
				do     func() error
			}{
				{"hotplug-wait-attach", func() error { _, err := vm.AttachDevice("virtio-rng 0", virtio.Rng{}, &first); return err }},
				{"hotplug-wait-eject", func() error { return vm.EjectDevice(0, false) }},
				{"hotplug-wait-second", func() error {
					slot, err := vm.AttachDevice("virtio-rng 1", virtio.Rng{}, &second)
					if err == nil && slot != 0 {
						err = fmt.Errorf("second rng in slot %d, want 0", slot)
					}
					return err
				}},
				{"hotplug-wait-force", func() error { return vm.EjectDevice(0, true) }},
			}
			for _, st := range steps {
				if !waitConsole(vm, &out, st.marker) {
					return fmt.Errorf("the VM stopped before %s", st.marker)
				}
				if err := st.do(); err != nil {
					return fmt.Errorf("at %s: %v", st.marker, err)
				}
			}
			return nil
		}()
	}()
	got, code, vm := runLinuxVM(t, vm, cpu.ModePV, &out, 10*time.Minute)
	if err := <-host; err != nil {
		t.Error(err)
	}
	if code != 0 {
		t.Fatalf("guest command status %d; console:\n%s", code, tail(got, 3000))
	}
	if m := hotplugAttachedRE.FindStringSubmatch(got); m == nil || m[1] != "0x0004" {
		t.Errorf("attached device: %q, want virtio device 0x0004; console:\n%s", m, tail(got, 3000))
	}
	randoms := hotplugRandomRE.FindAllStringSubmatch(got, -1)
	if len(randoms) != 2 {
		t.Errorf("%d random reads, want 2; console:\n%s", len(randoms), tail(got, 3000))
	}
	for _, m := range randoms {
		if len(m[1]) != 64 || strings.Trim(m[1], "0") == "" {
			t.Errorf("random bytes from a hot-plugged rng: %q", m[1])
		}
	}
	if m := hotplugEjectedRE.FindStringSubmatch(got); m == nil || m[1] != "yes" {
		t.Errorf("ejection: %q, want the device gone from the guest", m)
	}
	if m := hotplugForcedRE.FindStringSubmatch(got); m == nil || m[1] != "yes" {
		t.Errorf("forced ejection: %q, want the device gone from the guest", m)
	}
	if d := vm.SlotDevices(); len(d) != 0 {
		t.Errorf("slots at the end: %v, want none", d)
	}
	if n, m := first.n.Load(), second.n.Load(); n != 1 || m != 1 {
		t.Errorf("backends closed %d and %d times, want once each", n, m)
	}
}
