package hv

import (
	"bytes"
	"encoding/gob"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/mm"
)

var (
	testguestOnce sync.Once
	testguestELF  []byte
	testguestErr  error
)

// testGuest builds the freestanding test guest (make testguest) once per
// test process and returns its image.
func testGuest(t *testing.T) []byte {
	t.Helper()
	testguestOnce.Do(func() {
		cmd := exec.Command("make", "-s", "testguest")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			testguestErr = errors.New(err.Error() + "\n" + string(out))
			return
		}
		testguestELF, testguestErr = os.ReadFile(filepath.Join("..", "build", "testguest.elf"))
	})
	if testguestErr != nil {
		t.Fatalf("make testguest: %v", testguestErr)
	}
	return testguestELF
}

// lockedBuffer is a console that tests read while the VM writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until out holds marker or the VM stops.
func waitFor(t *testing.T, vm *VM, out *lockedBuffer, marker string) {
	t.Helper()
	end := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), marker) {
		if vm.Stopped() || time.Now().After(end) {
			t.Fatalf("no %q on the console (stopped %v):\n%s", marker, vm.Stopped(), out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// snapSection is one section of a snapshot as read back.
type snapSection struct {
	tag     snapshot.Tag
	payload []byte
}

// readSnapshot reads a whole snapshot into its header and sections.
func readSnapshot(t *testing.T, b []byte) (snapshot.Header, []snapSection) {
	t.Helper()
	r, err := snapshot.NewReader(bytes.NewReader(b), snapshot.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []snapSection
	for {
		s, err := r.Next()
		if err == io.EOF {
			return r.Header(), out
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := io.ReadAll(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, snapSection{s.Tag, p})
	}
}

// decodeSection decodes the gob section of a snapshot of a VM in mode at
// index i into its state type, for cmp.Diff.
func decodeSection(t *testing.T, mode cpu.Mode, i int, s snapSection) any {
	t.Helper()
	var v any
	switch s.tag {
	case snapshot.TagVM:
		v = new(VMState)
	case snapshot.TagVCPU:
		v = new(VCPUState)
	case snapshot.TagDevice:
		switch {
		case i == 2:
			v = new(EventsState)
		case mode == cpu.ModePV:
			v = new(SlotsState)
		case i == 3:
			v = new(emul.PCState)
		default:
			v = new(MMIODevicesState)
		}
	case snapshot.TagMM:
		v = new(mm.MemState)
	default:
		return nil
	}
	if err := gob.NewDecoder(bytes.NewReader(s.payload)).Decode(v); err != nil {
		t.Fatalf("section %d (%v): %v", i, s.tag, err)
	}
	return reflect.ValueOf(v).Elem().Interface()
}

// TestVMSnapshotRoundTrip: the test guest, snapshotted mid-run in every
// mode (count: computing, sleeping on its timer, blocked), restores into a
// new VM whose snapshot is the same, section for section and byte for
// byte (cmp.Diff names a field that differs), with the same header but
// for the IDs a restore renews; and both VMs, resumed, print the same
// rest of the run, but for the generation ID, which differs.
func TestVMSnapshotRoundTrip(t *testing.T) {
	kernel := testGuest(t)
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		t.Run(mode.String(), func(t *testing.T) {
			budget := mm.NewBudget(1 << 30)
			outA := &lockedBuffer{}
			a, err := New(Config{Kernel: kernel, Cmdline: "count=200", MemBytes: 32 << 20, Mode: mode, Budget: budget, Console: outA, Name: "a"})
			if err != nil {
				t.Fatal(err)
			}
			doneA := make(chan ExitStatus, 1)
			go func() { doneA <- a.Run() }()
			waitFor(t, a, outA, "count: 50 ")
			var snapA bytes.Buffer
			if err := a.Snapshot(&snapA, SnapshotOptions{LeavePaused: true}); err != nil {
				t.Fatal(err)
			}
			before := outA.String()
			if !a.Paused() {
				t.Fatal("LeavePaused: the VM is running")
			}

			outB := &lockedBuffer{}
			b, err := Restore(bytes.NewReader(snapA.Bytes()), RestoreConfig{Budget: budget, Console: outB})
			if err != nil {
				t.Fatal(err)
			}
			if b.Name() != "a" {
				t.Errorf("restored name %q, want the snapshot's", b.Name())
			}
			var snapB bytes.Buffer
			if err := b.Snapshot(&snapB, SnapshotOptions{LeavePaused: true}); err != nil {
				t.Fatal(err)
			}
			hA, secA := readSnapshot(t, snapA.Bytes())
			hB, secB := readSnapshot(t, snapB.Bytes())
			if hA.GenerationID == hB.GenerationID {
				t.Error("the restored VM has the snapshot's generation ID")
			}
			if hA.GenerationID != a.GenerationID() || hB.GenerationID != b.GenerationID() {
				t.Error("the headers' generation IDs are not the VMs'")
			}
			if hA.SnapshotID == hB.SnapshotID {
				t.Error("two snapshots share a snapshot ID")
			}
			if hA.LineageID != hB.LineageID {
				t.Error("the restored VM left its snapshot's lineage")
			}
			ma, mb := hA.Metadata, hB.Metadata
			ma.GenerationID, mb.GenerationID = [16]byte{}, [16]byte{}
			ma.Created, mb.Created = time.Time{}, time.Time{}
			if d := cmp.Diff(ma, mb); d != "" {
				t.Errorf("metadata differs (-first +second):\n%s", d)
			}
			if len(secA) != len(secB) {
				t.Fatalf("%d sections, then %d", len(secA), len(secB))
			}
			want := 7
			if mode == cpu.ModePV {
				want = 6
			}
			if len(secA) != want {
				t.Errorf("%d sections, want %d", len(secA), want)
			}
			for i := range secA {
				if secA[i].tag != secB[i].tag {
					t.Fatalf("section %d: %v, then %v", i, secA[i].tag, secB[i].tag)
				}
				if d := cmp.Diff(decodeSection(t, mode, i, secA[i]), decodeSection(t, mode, i, secB[i])); d != "" {
					t.Errorf("section %d (%v) differs (-first +second):\n%s", i, secA[i].tag, d)
				}
				if !bytes.Equal(secA[i].payload, secB[i].payload) {
					t.Errorf("section %d (%v): %d bytes, then %d bytes that differ", i, secA[i].tag, len(secA[i].payload), len(secB[i].payload))
				}
			}

			// Both go on to the same end.
			if err := a.Resume(); err != nil {
				t.Fatal(err)
			}
			stA := <-doneA
			stB := b.Run()
			if stA.Code != 0 || stB.Code != 0 {
				t.Fatalf("statuses %+v and %+v", stA, stB)
			}
			restA, _ := strings.CutPrefix(outA.String(), before)
			genA, genB := cutGeneration(t, &restA), ""
			restB := outB.String()
			genB = cutGeneration(t, &restB)
			if restA != restB {
				t.Errorf("after the snapshot the original printed\n%s\nthe restored VM\n%s", restA, restB)
			}
			if genA == genB {
				t.Errorf("both print generation %s", genA)
			}
			if !strings.Contains(restB, "count: 199 ") {
				t.Errorf("the restored VM did not finish the count:\n%s", restB)
			}
			if budget.Reserved() != 0 {
				t.Errorf("%d bytes still reserved", budget.Reserved())
			}
		})
	}
}

// cutGeneration removes the "count: generation" line from *s and returns
// its ID.
func cutGeneration(t *testing.T, s *string) string {
	t.Helper()
	i := strings.Index(*s, "count: generation ")
	if i < 0 {
		t.Fatalf("no generation line in\n%s", *s)
	}
	j := strings.IndexByte((*s)[i:], '\n')
	if j < 0 {
		t.Fatalf("unterminated generation line in\n%s", *s)
	}
	id := (*s)[i+len("count: generation ") : i+j]
	*s = (*s)[:i] + (*s)[i+j+1:]
	return id
}

// TestVMSnapshotRoundTripDevices: a VM with a virtio disk and rng (in pv
// mode in hypercall-transport slots, in trap mode behind virtio-mmio)
// restores into a VM given the same devices and snapshots the same again;
// given other devices, or none, the restore is refused, naming the device,
// and nothing stays reserved.
func TestVMSnapshotRoundTripDevices(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap} {
		t.Run(mode.String(), func(t *testing.T) {
			budget := mm.NewBudget(1 << 30)
			disks := []Disk{{Path: img}}
			out := &lockedBuffer{}
			a, err := New(Config{Kernel: testGuest(t), Cmdline: "count=100000", MemBytes: 32 << 20, Mode: mode, Budget: budget, Console: out, Disks: disks, RNG: true})
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
			var snapA bytes.Buffer
			if err := a.Snapshot(&snapA, SnapshotOptions{LeavePaused: true}); err != nil {
				t.Fatal(err)
			}
			for _, bad := range []RestoreConfig{
				{Budget: budget},
				{Budget: budget, Disks: disks},
				{Budget: budget, RNG: true},
			} {
				if _, err := Restore(bytes.NewReader(snapA.Bytes()), bad); err == nil || !strings.Contains(err.Error(), "virtio-") {
					t.Errorf("restored with disks %v rng %v: %v", bad.Disks, bad.RNG, err)
				} else {
					t.Logf("refused: %v", err)
				}
			}
			if n := budget.Reserved(); n != 32<<20 {
				t.Errorf("%d bytes reserved after the refusals, want the running VM's only", n)
			}
			b, err := Restore(bytes.NewReader(snapA.Bytes()), RestoreConfig{Budget: budget, Disks: disks, RNG: true})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				b.Stop(0, "end of test")
				b.Run()
			}()
			var snapB bytes.Buffer
			if err := b.Snapshot(&snapB, SnapshotOptions{LeavePaused: true}); err != nil {
				t.Fatal(err)
			}
			_, secA := readSnapshot(t, snapA.Bytes())
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
			devs := 1
			if mode != cpu.ModePV {
				devs = 2
			}
			if dev := decodeSection(t, mode, 2+devs, secA[2+devs]); mode == cpu.ModePV && len(dev.(SlotsState).Slots) != 2 ||
				mode != cpu.ModePV && len(dev.(MMIODevicesState).Devices) != 2 {
				t.Errorf("the device section holds %+v, want the disk and the rng", dev)
			}
		})
	}
}

// TestVMSnapshotKeyed: an encrypted and an HMAC snapshot restore with
// their key; without it, with another key, or keyed when the file is
// digest-only, the restore is refused and nothing stays reserved.
func TestVMSnapshotKeyed(t *testing.T) {
	key, _ := snapshot.KeyFromBytes(bytes.Repeat([]byte{1}, 32))
	other, _ := snapshot.KeyFromBytes(bytes.Repeat([]byte{2}, 32))
	vm, err := New(Config{Kernel: testGuest(t), Cmdline: "count=10", MemBytes: 16 << 20, Mode: cpu.ModePV, Budget: mm.NewBudget(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		vm.Stop(0, "end of test")
		vm.Run()
	}()
	for _, c := range []struct {
		prot  snapshot.Protection
		key   *snapshot.Key
		err   error // restoring without the key
		wrong *snapshot.Key
	}{
		{snapshot.Encrypted, key, snapshot.ErrKeyRequired, other},
		{snapshot.MAC, key, snapshot.ErrKeyRequired, other},
		{snapshot.Digest, nil, nil, key},
	} {
		var b bytes.Buffer
		if err := vm.Snapshot(&b, SnapshotOptions{File: snapshot.Options{Protection: c.prot, Key: c.key}}); err != nil {
			t.Fatal(err)
		}
		budget := mm.NewBudget(1 << 30)
		r, err := Restore(bytes.NewReader(b.Bytes()), RestoreConfig{Budget: budget, Key: c.key})
		if err != nil {
			t.Fatalf("%v: %v", c.prot, err)
		}
		r.Stop(0, "end of test")
		r.Run()
		if c.err != nil {
			if _, err := Restore(bytes.NewReader(b.Bytes()), RestoreConfig{Budget: budget}); !errors.Is(err, c.err) {
				t.Errorf("%v without a key: %v", c.prot, err)
			}
		}
		want := snapshot.ErrWrongKey
		if c.prot == snapshot.Digest {
			want = snapshot.ErrUnauthenticated
		}
		if _, err := Restore(bytes.NewReader(b.Bytes()), RestoreConfig{Budget: budget, Key: c.wrong}); !errors.Is(err, want) {
			t.Errorf("%v with another key: %v, want %v", c.prot, err, want)
		}
		if budget.Reserved() != 0 {
			t.Errorf("%v: %d bytes reserved", c.prot, budget.Reserved())
		}
	}
}
