package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
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
// disk, whose image stays as it was.
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
dd if=/dev/vdb bs=64k 2>/dev/null | sha256sum | sed 's/ .*//; s/^/vdb-sha256: /'`
			var out syncBuffer
			cfg := linuxConfig(t, vmlinux, initrd, mode, "ttyS0", cmd, &out)
			cfg.Disks = []hv.Disk{{Path: vda}, {Path: vdb, ReadOnly: true}}
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
		})
	}
}
