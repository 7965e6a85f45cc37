package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
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

// TestVirtioBlock: the unmodified kernel finds two virtio-mmio block
// devices from its command line, reads all of a 64 MiB random image with
// the same SHA-256 as the host's, writes a pattern that the host then
// finds in the image file (conv=fsync), and cannot write to the read-only
// disk, whose image stays as it was. A third disk holds an ext4 file system
// built on the host: the guest mounts it and reads its files, and a file it
// writes, followed by sync and the VM's stop, is in the image for the host's
// debugfs.
func TestVirtioBlock(t *testing.T) {
	vmlinux, initrd := linuxGuest(t)
	pattern := bytes.Repeat([]byte("pvisor\n"), patternLen/7+1)[:patternLen]
	for _, mode := range []cpu.Mode{cpu.ModeHWAssist, cpu.ModeTrap} {
		t.Run(mode.String(), func(t *testing.T) {
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
			cfg := linuxConfig(t, vmlinux, initrd, mode, "ttyS0", cmd, &out)
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
			for _, d := range vm.MMIODevices() {
				t.Logf("%v (%d requests, %d bytes, %d interrupts, %d breaks)", d, d.Requests, d.Bytes, d.Interrupts, d.Broken)
				if d.Broken != 0 {
					t.Errorf("%s broke", d.Name)
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
	vmlinux, initrd := linuxGuest(t)
	bin := pvisorBin(t)
	pattern := bytes.Repeat([]byte("killed\n"), patternLen/7+1)[:patternLen]
	fileData := bytes.Repeat([]byte("fsynced\n"), 8192)
	for _, mode := range []cpu.Mode{cpu.ModeHWAssist, cpu.ModeTrap} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			raw, rawImg := randomImage(t, dir, "raw.img", 4<<20, 4)
			fs := ext4Image(t, dir, "fs.img", 8<<20, map[string][]byte{"old.txt": []byte("old\n")})
			cmd := `yes killed | head -c 1048576 | dd of=/dev/vda bs=4096 seek=256 conv=fsync 2>/dev/null &&
mount -t ext4 /dev/vdb /mnt && yes fsynced | head -c 65536 | dd of=/mnt/f.txt bs=4096 conv=fsync 2>/dev/null &&
echo kill-ready; sleep 600`
			c := exec.Command(bin, "run", "--mode", mode.String(), "--kernel", vmlinux, "--initrd", initrd,
				"--mem", "256M", "--disk", raw, "--disk", fs, "--cmdline", linuxCmdline("ttyS0", cmd))
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
