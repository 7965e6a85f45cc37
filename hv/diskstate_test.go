package hv

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/overlay"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/hv/virtio"
	"github.com/pvisor/pvisor/mm"
)

// overlayContents reads the disk an overlay over base shows.
func overlayContents(t *testing.T, base, ovl string) []byte {
	t.Helper()
	f, err := os.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := virtio.NewFileStore(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := overlay.Open(ovl, bs, overlay.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := make([]byte, s.Size())
	if _, err := s.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVMSnapshotRoundTripOverlay: a VM whose disk is an overlay over a
// base (already holding clusters) snapshots them in its disk section; the
// snapshot restores into a VM given a new overlay over the same base,
// which then holds the same disk and snapshots a byte-identical disk
// section (and every other section). A restore without an overlay, over a
// non-empty overlay, over another base, or of an edited or missing disk
// section is refused, leaves no new overlay behind and nothing reserved.
func TestVMSnapshotRoundTripOverlay(t *testing.T) {
	dir := t.TempDir()
	baseBytes := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(baseBytes)
	base := filepath.Join(dir, "base.img")
	other := filepath.Join(dir, "other.img")
	os.WriteFile(base, baseBytes, 0o600)
	os.WriteFile(other, make([]byte, 1<<20), 0o600)
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap} {
		t.Run(mode.String(), func(t *testing.T) {
			ovlA := filepath.Join(dir, mode.String()+"-a.ovl")
			// The overlay holds what a guest wrote before.
			f, _ := os.Open(base)
			bs, _ := virtio.NewFileStore(f)
			s, err := overlay.Open(ovlA, bs, overlay.Options{ClusterSize: 4096})
			if err != nil {
				t.Fatal(err)
			}
			for _, off := range []int64{0, 5 << 12, 300 << 10, 1<<20 - 512} {
				s.WriteAt(bytes.Repeat([]byte{byte(off>>12) | 1}, 512), off)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			budget := mm.NewBudget(1 << 30)
			out := &lockedBuffer{}
			a, err := New(Config{Kernel: testGuest(t), Cmdline: "count=100000", MemBytes: 32 << 20, Mode: mode, Budget: budget,
				Console: out, Disks: []Disk{{Path: base, Overlay: ovlA}}})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan ExitStatus, 1)
			go func() { done <- a.Run() }()
			stopA := func() {
				if a != nil {
					a.Stop(0, "end of test")
					<-done
					a = nil
				}
			}
			defer stopA()
			waitFor(t, a, out, "count: 20 ")
			var snapA bytes.Buffer
			if err := a.Snapshot(&snapA, SnapshotOptions{LeavePaused: true}); err != nil {
				t.Fatal(err)
			}
			hdr, secA := readSnapshot(t, snapA.Bytes())
			disk := secA[len(secA)-1]
			if disk.tag != snapshot.TagDisk || len(disk.payload) != 8+overlay.DeltaHeaderSize+4*(4+4096) {
				t.Fatalf("last section: %v of %d bytes, want a disk section with 4 clusters of 4 KiB", disk.tag, len(disk.payload))
			}

			newOvl := func(name string) string { return filepath.Join(dir, mode.String()+"-"+name+".ovl") }
			full := filepath.Join(dir, mode.String()+"-full.ovl")
			os.WriteFile(full, []byte("an operator's overlay"), 0o600)
			edited := func(edit func(p []byte) []byte) []byte {
				secs := append([]snapSection(nil), secA...)
				secs[len(secs)-1].payload = edit(bytes.Clone(disk.payload))
				if secs[len(secs)-1].payload == nil {
					secs = secs[:len(secs)-1]
				}
				return resign(t, hdr, secs)
			}
			for _, c := range []struct {
				name, want string
				file       []byte
				disk       Disk
			}{
				{"no overlay", "was over an overlay", snapA.Bytes(), Disk{Path: base}},
				{"non-empty overlay", "is not empty", snapA.Bytes(), Disk{Path: base, Overlay: full}},
				{"other base", "not this one", snapA.Bytes(), Disk{Path: other, Overlay: newOvl("other")}},
				{"no disk section", "ends where a disk section", edited(func([]byte) []byte { return nil }), Disk{Path: base, Overlay: newOvl("none")}},
				{"disk index", "want disk 0", edited(func(p []byte) []byte { p[0] = 1; return p }), Disk{Path: base, Overlay: newOvl("index")}},
				{"cluster index", "ascending", edited(func(p []byte) []byte {
					binary.LittleEndian.PutUint32(p[8+overlay.DeltaHeaderSize:], 200)
					return p
				}), Disk{Path: base, Overlay: newOvl("cluster")}},
				{"cluster count", "bytes long, not", edited(func(p []byte) []byte {
					binary.LittleEndian.PutUint64(p[8+56:], 3) // the section holds 4
					return p
				}), Disk{Path: base, Overlay: newOvl("count")}},
			} {
				_, err := Restore(bytes.NewReader(c.file), RestoreConfig{Budget: budget, Disks: []Disk{c.disk}})
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: restore: %v, want an error with %q", c.name, err, c.want)
					continue
				}
				t.Logf("%s: refused: %v", c.name, err)
				if c.disk.Overlay != "" && c.disk.Overlay != full {
					if _, err := os.Stat(c.disk.Overlay); !os.IsNotExist(err) {
						t.Errorf("%s: the new overlay is left behind (%v)", c.name, err)
					}
				}
			}
			// Told to replace it, a restore that fails leaves it as it was,
			// and no file of its own behind.
			if _, err := Restore(bytes.NewReader(snapA.Bytes()), RestoreConfig{Budget: budget, Disks: []Disk{{Path: other, Overlay: full}},
				OverwriteOverlays: true}); err == nil || !strings.Contains(err.Error(), "not this one") {
				t.Errorf("overwrite over another base: %v", err)
			}
			if b, _ := os.ReadFile(full); string(b) != "an operator's overlay" {
				t.Errorf("a refused restore changed a non-empty overlay: %q", b)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*restore*")); len(left) != 0 {
				t.Errorf("a refused restore left %q", left)
			}
			// An overlay a running VM has is never replaced.
			if _, err := Restore(bytes.NewReader(snapA.Bytes()), RestoreConfig{Budget: budget, Disks: []Disk{{Path: base, Overlay: ovlA}},
				OverwriteOverlays: true}); err == nil || !strings.Contains(err.Error(), "in use") {
				t.Errorf("overwrite of a running VM's overlay: %v", err)
			}
			if n := budget.Reserved(); n != 32<<20 {
				t.Errorf("%d bytes reserved after the refusals, want the running VM's only", n)
			}

			// Over the operator's overlay, when told to replace it.
			b, err := Restore(bytes.NewReader(snapA.Bytes()), RestoreConfig{Budget: budget, Disks: []Disk{{Path: base, Overlay: full}}, OverwriteOverlays: true})
			if err != nil {
				t.Fatal(err)
			}
			if w := b.RestoreWarnings(); len(w) != 0 {
				t.Errorf("warnings for a captured disk: %q", w)
			}
			var snapB bytes.Buffer
			err = b.Snapshot(&snapB, SnapshotOptions{LeavePaused: true})
			b.Stop(0, "end of test")
			b.Run()
			if err != nil {
				t.Fatal(err)
			}
			_, secB := readSnapshot(t, snapB.Bytes())
			if len(secA) != len(secB) {
				t.Fatalf("%d sections, then %d", len(secA), len(secB))
			}
			for i := range secA {
				if d := cmp.Diff(decodeSection(t, mode, i, secA[i]), decodeSection(t, mode, i, secB[i])); d != "" {
					t.Errorf("section %d (%v) differs (-first +second):\n%s", i, secA[i].tag, d)
				}
				if !bytes.Equal(secA[i].payload, secB[i].payload) {
					t.Errorf("section %d (%v) encodes differently", i, secA[i].tag)
				}
			}
			stopA()
			if !bytes.Equal(overlayContents(t, base, full), overlayContents(t, base, ovlA)) {
				t.Error("the restored overlay's disk is not the snapshotted one's")
			}
			if got, _ := os.ReadFile(base); !bytes.Equal(got, baseBytes) {
				t.Error("the base changed")
			}
		})
	}
}

// TestVMSnapshotDiskKinds: a read-only disk and a writable one without an
// overlay are recorded as such; the restore warns of the second only, and
// refuses a read-only disk given writable.
func TestVMSnapshotDiskKinds(t *testing.T) {
	dir := t.TempDir()
	ro, rw := filepath.Join(dir, "ro.img"), filepath.Join(dir, "rw.img")
	os.WriteFile(ro, make([]byte, 1<<20), 0o600)
	os.WriteFile(rw, make([]byte, 1<<20), 0o600)
	disks := []Disk{{Path: ro, ReadOnly: true}, {Path: rw}}
	budget := mm.NewBudget(1 << 30)
	out := &lockedBuffer{}
	a, err := New(Config{Kernel: testGuest(t), Cmdline: "count=100000", MemBytes: 32 << 20, Mode: cpu.ModePV, Budget: budget, Console: out, Disks: disks})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ExitStatus, 1)
	go func() { done <- a.Run() }()
	defer func() {
		a.Stop(0, "end of test")
		<-done
	}()
	waitFor(t, a, out, "count: 20 ")
	var snap bytes.Buffer
	if err := a.Snapshot(&snap, SnapshotOptions{LeavePaused: true}); err != nil {
		t.Fatal(err)
	}
	_, secs := readSnapshot(t, snap.Bytes())
	got := [][]byte{secs[len(secs)-2].payload, secs[len(secs)-1].payload}
	want := [][]byte{{0, 0, 0, 0, byte(diskReadOnly), 0, 0, 0}, {1, 0, 0, 0, byte(diskLive), 0, 0, 0}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("disk sections (-want +got):\n%s", d)
	}
	if _, err := Restore(bytes.NewReader(snap.Bytes()), RestoreConfig{Budget: budget, Disks: []Disk{{Path: ro}, {Path: rw}}}); err == nil || !strings.Contains(err.Error(), "was read-only") {
		t.Errorf("a read-only disk restored writable: %v", err)
	}
	b, err := Restore(bytes.NewReader(snap.Bytes()), RestoreConfig{Budget: budget, Disks: disks})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		b.Stop(0, "end of test")
		b.Run()
	}()
	w := b.RestoreWarnings()
	if len(w) != 1 || !strings.Contains(w[0], "disk 1 ("+rw+") was not in the snapshot") {
		t.Errorf("warnings: %q, want one for disk 1", w)
	}
}
