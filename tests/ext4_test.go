package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
)

// e2tool finds one of e2fsprogs' programs (scripts/install-deps.sh guest
// installs them; root's PATH has /sbin, other users' may not).
func e2tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/sbin", "/usr/sbin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s not found: install e2fsprogs (scripts/install-deps.sh guest)", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ext4Image builds an ext4 image of size bytes holding files (path ->
// contents) with mke2fs -d, as make disk does.
func ext4Image(t *testing.T, dir, name string, size int, files map[string][]byte) string {
	t.Helper()
	tree := filepath.Join(dir, name+".d")
	for p, b := range files {
		full := filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, name)
	out, err := exec.Command(e2tool(t, "mke2fs"), "-q", "-F", "-t", "ext4", "-E", "root_owner=0:0",
		"-d", tree, img, strconv.Itoa(size>>10)+"k").CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	return img
}

// ext4Read returns the file at path inside the ext4 image img, as the host
// sees it after a crash: e2fsck replays the journal on a copy (what the
// guest's next mount would do), the copy must then be clean, and debugfs
// reads the file from it.
func ext4Read(t *testing.T, img, path string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "fsck.img")
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	fsck := e2tool(t, "e2fsck")
	// 0: clean; 1: errors corrected (the journal replay counts as one).
	if out, err := exec.Command(fsck, "-fy", cp).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("e2fsck -fy: %v\n%s", err, out)
		}
		t.Logf("e2fsck -fy repaired the image:\n%s", out)
	}
	if out, err := exec.Command(fsck, "-fn", cp).CombinedOutput(); err != nil {
		t.Errorf("the image is not clean after e2fsck -fy: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(e2tool(t, "debugfs"), "-R", "cat "+path, cp)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, stderr.Bytes())
	}
	// debugfs reports a missing file on stderr and exits 0.
	if strings.Contains(stderr.String(), "File not found") {
		return nil, false
	}
	return stdout.Bytes(), true
}

// TestRootDisk: both kernels boot with their root file system on the ext4
// image of `make disk` (no initramfs), run /init from it, and what the
// guest writes there is in the image afterwards.
func TestRootDisk(t *testing.T) {
	makeTarget(t, "disk")
	img, err := os.ReadFile(filepath.Join(root, "build/guest/rootfs.ext4"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeHWAssist} {
		t.Run(mode.String(), func(t *testing.T) {
			var vmlinux string
			con := "ttyS0"
			if mode == cpu.ModePV {
				vmlinux, _, _ = pvGuest(t)
				con = "hvc0"
			} else {
				vmlinux, _ = linuxGuest(t)
			}
			disk := filepath.Join(t.TempDir(), "rootfs.ext4")
			if err := os.WriteFile(disk, img, 0o600); err != nil {
				t.Fatal(err)
			}
			var out syncBuffer
			cfg := linuxConfig(t, vmlinux, filepath.Join(root, "build/guest/initramfs.cpio.gz"), mode, con,
				`grep ' / ' /proc/mounts | sed 's/^/root-mount: /'; echo "root disk $RANDOM" > /root/proof; cat /root/proof`, &out)
			cfg.Initrd = nil
			cfg.Cmdline += " root=/dev/vda rw rootfstype=ext4 init=/init"
			cfg.Disks = []hv.Disk{{Path: disk}}
			vm, err := hv.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, code, _ := runLinuxVM(t, vm, mode, &out, 5*time.Minute)
			if code != 0 {
				t.Fatalf("status %d; console:\n%s", code, tail(got, 2000))
			}
			if !strings.Contains(got, "root-mount: /dev/root / ext4 rw") {
				t.Errorf("root is not the ext4 disk; console:\n%s", tail(got, 2000))
			}
			m := regexp.MustCompile(`(?m)^(root disk \d+)\r?$`).FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("no proof line; console:\n%s", tail(got, 2000))
			}
			if b, ok := ext4Read(t, disk, "/root/proof"); !ok || strings.TrimSpace(string(b)) != m[1] {
				t.Errorf("/root/proof on the host: %q (found %v), want %q", b, ok, m[1])
			}
		})
	}
}
