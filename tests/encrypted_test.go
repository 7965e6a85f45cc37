package tests

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv/snapshot"
)

// startPvisorStdin is startPvisor with the process's standard input (the
// guest's console input) from stdin.
func startPvisorStdin(t *testing.T, stdin *os.File, args ...string) *snapRun {
	t.Helper()
	cmd := exec.Command(pvisorBin(t), args...)
	cmd.Stdin = stdin
	return startCmd(t, cmd)
}

// markerForms are the byte strings a file holding marker in the clear
// would contain: the marker itself, and the middle of its base64 at each
// of the three alignments (the guest's command line carries its script
// in base64).
func markerForms(marker string) [][]byte {
	forms := [][]byte{[]byte(marker)}
	for shift := 0; shift < 3; shift++ {
		e := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", shift) + marker))
		forms = append(forms, []byte(e[4:len(e)-4]))
	}
	return forms
}

// findMarker names the forms of marker that the file at path holds.
func findMarker(t *testing.T, path, marker string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range markerForms(marker) {
		if bytes.Contains(b, f) {
			found = append(found, string(f))
		}
	}
	return found
}

// TestEncryptedAtRest: a Linux guest with an encrypted disk (pvisor disk
// create, --disk IMG,key=K) writes a random marker to it with dd
// conv=fsync, keeps it in a shell variable and a tmpfs file, and waits on
// its console; the operator takes an encrypted snapshot (ctl snapshot
// --key-file K --encrypt). No byte of the disk image nor of the snapshot
// holds the marker, in the clear or in base64, although the image does
// hold it encrypted (pvisor disk decrypt finds it where the guest wrote
// it). The snapshot restored with the encrypted disk reads the marker back
// from the disk, its page cache dropped. Negative control, in the same
// run: the same guest with a raw disk and a digest-only snapshot leaves
// the marker in both files. A wrong disk key fails the start, naming the
// disk. In pv mode (hypercall transport) and hwassist mode (virtio-mmio).
func TestEncryptedAtRest(t *testing.T) {
	vmlinuxPV, _, initrd := pvGuest(t)
	vmlinux, _ := linuxGuest(t)
	for _, g := range []struct{ mode, kernel, con string }{{"pv", vmlinuxPV, "hvc0"}, {"hwassist", vmlinux, "ttyS0"}} {
		t.Run(g.mode, func(t *testing.T) {
			var id [16]byte
			rand.Read(id[:])
			marker := "pvmark-" + hex.EncodeToString(id[:])
			boot := []string{"--kernel", g.kernel, "--initrd", initrd, "--mode", g.mode, "--mem", "256M"}
			script := `m=` + marker + `; printf '%s\n' "$m" | dd of=/dev/vda bs=512 seek=8 conv=sync,notrunc,fsync 2>/dev/null || exit 3; ` +
				`echo "$m" > /tmp/marker; echo marker-written; read go; ` +
				`echo 3 > /proc/sys/vm/drop_caches; got=$(dd if=/dev/vda bs=512 skip=8 count=1 2>/dev/null | head -n 1); ` +
				`if [ "$got" = "$m" ] && [ "$(cat /tmp/marker)" = "$m" ]; then echo marker-read-ok; else echo marker-mismatch; exit 4; fi`
			cmdline := linuxCmdline(g.con, script)
			dir := t.TempDir()
			key := filepath.Join(dir, "key")
			if err := snapshot.WriteKeyFile(key, nil); err != nil {
				t.Fatal(err)
			}
			pv := func(args ...string) string {
				t.Helper()
				b, err := exec.Command(pvisorBin(t), args...).CombinedOutput()
				if err != nil {
					t.Fatalf("pvisor %v: %v\n%s", args, err, b)
				}
				return string(b)
			}
			encImg, rawImg := filepath.Join(dir, "enc.img"), filepath.Join(dir, "raw.img")
			pv("disk", "create", encImg, "--size", "1M", "--key-file", key)
			if err := os.WriteFile(rawImg, make([]byte, 1<<20), 0o600); err != nil {
				t.Fatal(err)
			}

			// The guest up to the snapshot: started with a console input
			// that never comes, so it waits after writing the marker.
			snapshotAt := func(name, disk, snap string, snapArgs ...string) {
				t.Helper()
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				defer w.Close()
				sock := filepath.Join(dir, name+".sock")
				run := startPvisorStdin(t, r, append(append([]string{"run", "--control", sock}, boot...),
					"--disk", disk, "--cmdline", cmdline)...)
				run.waitLine(t, regexp.MustCompile(`(?m)^marker-written\r?$`), 5*time.Minute)
				ctl(t, sock, append(append([]string{"--leave-paused"}, snapArgs...), "snapshot", "guest", snap)...)
				run.cmd.Process.Signal(syscall.SIGKILL)
				run.wait(t, time.Minute)
			}
			encSnap, rawSnap := filepath.Join(dir, "enc.snap"), filepath.Join(dir, "raw.snap")
			snapshotAt("enc", encImg+",key="+key, encSnap, "--key-file", key, "--encrypt")
			snapshotAt("raw", rawImg, rawSnap)

			for _, f := range []string{encImg, encSnap} {
				if found := findMarker(t, f, marker); len(found) != 0 {
					t.Errorf("%s holds the marker in the clear: %q", filepath.Base(f), found)
				}
			}
			// Negative control: without encryption both files hold it.
			for _, f := range []string{rawImg, rawSnap} {
				found := findMarker(t, f, marker)
				if len(found) == 0 {
					t.Errorf("negative control: %s does not hold the marker, so the search cannot see it", filepath.Base(f))
				}
				t.Logf("negative control: %s (%d KiB) holds %d of the marker's %d forms", filepath.Base(f), fileSize(f)>>10, len(found), len(markerForms(marker)))
			}
			// The encrypted image does hold the marker, where the guest
			// wrote it.
			plain := filepath.Join(dir, "enc.raw")
			pv("disk", "decrypt", encImg, plain, "--key-file", key)
			b, err := os.ReadFile(plain)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b[8*512:], []byte(marker+"\n")) {
				t.Fatalf("the decrypted image lacks the marker at sector 8: %q", b[8*512:8*512+64])
			}

			// Restored with the encrypted disk, the guest reads the marker
			// back from it.
			in, err := os.CreateTemp(dir, "stdin")
			if err != nil {
				t.Fatal(err)
			}
			in.WriteString("go\n")
			in.Seek(0, 0)
			defer in.Close()
			rest := startPvisorStdin(t, in, "run", "--restore", encSnap, "--key-file", key, "--disk", encImg+",key="+key)
			code := rest.wait(t, 5*time.Minute)
			if code != 0 || !strings.Contains(rest.out.String(), "marker-read-ok") {
				t.Fatalf("restored guest: exit %d; console:\n%s\nstderr:\n%s", code, tail(rest.out.String(), 2000), rest.errs.String())
			}
			if found := findMarker(t, encImg, marker); len(found) != 0 {
				t.Errorf("after the restore, the image holds the marker in the clear: %q", found)
			}

			// A wrong disk key fails the start, naming the disk.
			other := filepath.Join(dir, "other")
			if err := snapshot.WriteKeyFile(other, nil); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(pvisorBin(t), append(append([]string{"run"}, boot...), "--disk", encImg+",key="+other, "--cmdline", cmdline)...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), encImg) || !strings.Contains(string(out), "wrong key") {
				t.Errorf("a wrong disk key: %v\n%s", err, out)
			}
		})
	}
}
