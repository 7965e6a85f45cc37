package hv

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/mm"
)

// takeSnapshot runs the test guest's count in mode until step 20 and
// returns its snapshot, the VM stopped.
func takeSnapshot(t *testing.T, mode cpu.Mode) []byte {
	t.Helper()
	out := &lockedBuffer{}
	vm, err := New(Config{Kernel: testGuest(t), Cmdline: "count=100000", MemBytes: 16 << 20, Mode: mode, Budget: mm.NewBudget(1 << 30), Console: out})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ExitStatus, 1)
	go func() { done <- vm.Run() }()
	defer func() {
		vm.Stop(0, "end of test")
		<-done
	}()
	waitFor(t, vm, out, "count: 20 ")
	var b bytes.Buffer
	if err := vm.Snapshot(&b, SnapshotOptions{LeavePaused: true}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// resign writes header and sections as a new digest-form snapshot: a
// well-formed, authentic file, so that only Restore's checks can refuse
// what was edited in it.
func resign(t *testing.T, h snapshot.Header, secs []snapSection) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := snapshot.NewWriter(&b, h.Metadata, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if err := w.WriteSection(s.tag, s.payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gobOf(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// editGob decodes section i into a T, lets edit change it and encodes it
// back.
func editGob[T any](t *testing.T, secs []snapSection, i int, edit func(*T)) {
	t.Helper()
	var v T
	if err := gob.NewDecoder(bytes.NewReader(secs[i].payload)).Decode(&v); err != nil {
		t.Fatal(err)
	}
	edit(&v)
	secs[i].payload = gobOf(t, v)
}

// TestRestoreRefusesEditedSnapshot: a snapshot whose vCPU, events, legacy
// PC, mm, memory or VM section was edited, or whose sections were
// reordered, dropped or added, and which was then signed again (so that
// the container finds nothing wrong), is refused by Restore with an error
// that says what is wrong; it never panics, and leaves no memory
// reserved.
func TestRestoreRefusesEditedSnapshot(t *testing.T) {
	type edit struct {
		name string
		want string // in the error
		mode cpu.Mode
		do   func(t *testing.T, h *snapshot.Header, secs *[]snapSection)
	}
	const (
		iVM, iVCPU, iEvents = 0, 1, 2
	)
	pv, trap := cpu.ModePV, cpu.ModeTrap
	// Section indices after the events: pv has the slots at 3, mm at 4,
	// memory at 5; trap has the PC at 3, the virtio-mmio devices at 4, mm
	// at 5, memory at 6.
	edits := []edit{
		{"unedited", "", pv, func(*testing.T, *snapshot.Header, *[]snapSection) {}},
		{"unedited trap", "", trap, func(*testing.T, *snapshot.Header, *[]snapSection) {}},
		{"vcpu: non-canonical RIP", "vcpu 0", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVCPU, func(v *VCPUState) { v.Engine.Regs.RIP = 0x0000800000000000 })
		}},
		{"vcpu: long mode without paging", "vcpu 0", trap, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVCPU, func(v *VCPUState) { v.Engine.SRegs.CR0 &^= 1 << 31 })
		}},
		{"vcpu: pending IRQ vector out of range", "vcpu 0", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVCPU, func(v *VCPUState) { v.Engine.Events.IRQ = 300 })
		}},
		{"vcpu: blocked kind", "blocked kind", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVCPU, func(v *VCPUState) { v.Blocked = 9 })
		}},
		{"vcpu: steal beyond guest time", "steal time", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVCPU, func(v *VCPUState) { v.Steal = 1 << 62 })
		}},
		{"vcpu: timer fired and armed", "fired and armed", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVCPU, func(v *VCPUState) { v.Fired, v.Deadline = true, 5 })
		}},
		{"vcpu: timer deadline beyond the clock", "deadline", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVCPU, func(v *VCPUState) { v.Deadline = ^uint64(0) })
		}},
		{"vcpu: another engine's state", "vcpu 0", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVCPU, func(v *VCPUState) { v.Engine.Engine = "kvm" })
		}},
		{"events: port on a vCPU the VM lacks", "vCPU 3", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iEvents, func(e *EventsState) { e.Ports = append(e.Ports, PortState{Port: 500, VIRQ: 1, VCPU: 3, Slot: -1}) })
		}},
		{"events: shared info outside memory", "shared-info", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iEvents, func(e *EventsState) { e.SharedInfo = 1 << 40 })
		}},
		{"events: virtio port without a device", "holds no device", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iEvents, func(e *EventsState) { e.Ports = append(e.Ports, PortState{Port: 501, VIRQ: -1, Slot: 2}) })
		}},
		{"slots: a device the VM lacks", "the VM nothing", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, 3, func(st *SlotsState) {
				st.Generations[4] = 1
				st.Slots = append(st.Slots, SlotState{Index: 4, Name: "virtio-blk 0"})
			})
		}},
		{"mmio: a device the VM lacks", "virtio-mmio", trap, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, 4, func(st *MMIODevicesState) { st.Devices = append(st.Devices, MMIODeviceState{Name: "virtio-rng 0"}) })
		}},
		{"events: short bitmaps", "pending", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iEvents, func(e *EventsState) { e.Pending = e.Pending[:1] })
		}},
		{"legacy PC: PIT clock ahead of the VM's", "legacy PC", trap, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, 3, func(p *emul.PCState) { p.PIT.Clock += 1e12 })
		}},
		{"mm: a hole over resident memory", "ballooned out", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, 4, func(m *mm.MemState) { m.Holes = append([]mm.FrameRange{{First: 0x100, Count: 0x10}}, m.Holes...) })
		}},
		{"mm: memory size", "memory bookkeeping", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, 4, func(m *mm.MemState) { m.Size *= 2 })
		}},
		{"mm: target beyond the memory", "balloon target", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, 4, func(m *mm.MemState) { m.Target = m.Size + 4096 })
		}},
		{"memory: frame count", "frames", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			p := (*s)[5].payload
			binary.LittleEndian.PutUint64(p[8:], binary.LittleEndian.Uint64(p[8:])+1)
		}},
		{"memory: a run beyond the memory", "out of range", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			p := (*s)[5].payload
			binary.LittleEndian.PutUint64(p[16:], 1<<40)
		}},
		{"vm: two vCPUs", "vCPUs", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVM, func(v *VMState) { v.VCPUs = 2 })
		}},
		{"vm: mode against the header", "mode", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVM, func(v *VMState) { v.Mode = uint8(cpu.ModeTrap) })
		}},
		{"vm: memory size against the header", "memory size", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVM, func(v *VMState) { v.MemBytes += 4096 })
		}},
		{"vm: kernel digest against the header", "kernel digest", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVM, func(v *VMState) { v.Measured.Kernel[0] ^= 1 })
		}},
		{"vm: running clock", "clock", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVM, func(v *VMState) { v.Clock.Paused = false })
		}},
		{"vm: kernel kind", "kernel kind", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVM, func(v *VMState) { v.Kind = 77 })
		}},
		{"vm: empty memory map", "memory map", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			editGob(t, *s, iVM, func(v *VMState) { v.Memmap = nil })
		}},
		{"header: mode", "mode", pv, func(t *testing.T, h *snapshot.Header, _ *[]snapSection) { h.Mode = "trap" }},
		{"header: unknown mode", "mode", pv, func(t *testing.T, h *snapshot.Header, _ *[]snapSection) { h.Mode = "xen" }},
		{"header: memory size beyond the budget", "cannot reserve", pv, func(t *testing.T, h *snapshot.Header, s *[]snapSection) {
			h.MemorySize = 1 << 40
			editGob(t, *s, iVM, func(v *VMState) { v.MemBytes = 1 << 40 })
		}},
		{"order: events before the vCPU", "section", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			(*s)[iVCPU], (*s)[iEvents] = (*s)[iEvents], (*s)[iVCPU]
		}},
		{"order: no legacy PC in trap mode", "section", trap, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			*s = append((*s)[:3], (*s)[4:]...)
		}},
		{"order: a section after the memory", "after the memory", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			*s = append(*s, (*s)[iVM])
		}},
		{"order: no memory", "ends where", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			*s = (*s)[:5]
		}},
		{"garbage gob", "vm", pv, func(t *testing.T, _ *snapshot.Header, s *[]snapSection) {
			(*s)[iVM].payload = []byte{3, 1, 2, 3}
		}},
	}
	snaps := map[cpu.Mode][]byte{pv: takeSnapshot(t, pv), trap: takeSnapshot(t, trap)}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			h, secs := readSnapshot(t, snaps[e.mode])
			e.do(t, &h, &secs)
			file := resign(t, h, secs)
			budget := mm.NewBudget(1 << 30)
			vm, err := Restore(bytes.NewReader(file), RestoreConfig{Budget: budget})
			if e.want == "" {
				if err != nil {
					t.Fatalf("the unedited, re-signed snapshot is refused: %v", err)
				}
				vm.Stop(0, "end of test")
				vm.Run()
				return
			}
			if err == nil {
				vm.Stop(0, "end of test")
				vm.Run()
				t.Fatal("restored")
			}
			if !strings.Contains(err.Error(), e.want) {
				t.Errorf("error %q does not say %q", err, e.want)
			}
			t.Logf("refused: %v", err)
			if n := budget.Reserved(); n != 0 {
				t.Errorf("%d bytes still reserved after the refusal", n)
			}
		})
	}
}
