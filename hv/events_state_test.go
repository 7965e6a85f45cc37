package hv

import (
	"bytes"
	"encoding/gob"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
)

func newEventsVM(t *testing.T) *VM {
	t.Helper()
	vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModePV,
		Budget: mm.NewBudget(64 << 20), RNG: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Run() })
	return vm
}

func gobBytes(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEventsRoundTrip: bound VIRQ and virtio ports, pending and mask bits,
// before and after shared-info registration, survive save, gob, restore
// into another VM and save again byte for byte, and the restored VM
// delivers as the original does.
func TestEventsRoundTrip(t *testing.T) {
	for _, registered := range []bool{false, true} {
		a := newEventsVM(t)
		pt := a.allocPort(port{bound: true, virq: hypercall.VirqTimer, vcpu: 0})
		a.ev.virqPort[0][hypercall.VirqTimer] = pt
		pc := a.allocPort(port{bound: true, virq: hypercall.VirqConsole, vcpu: 0})
		a.ev.virqPort[0][hypercall.VirqConsole] = pc
		pd := a.allocPort(port{bound: true, vcpu: 0, dev: a.pv.slots[0].Load(), kind: 1})
		a.setPortBit(pc, true, false) // unmask the console port
		if registered {
			a.ev.registered, a.ev.shared, a.ev.vector = true, 0x10000, 0xf3
		}
		a.setPending(pc)
		a.setPending(pd)

		st := a.saveEvents()
		enc := gobBytes(t, st)
		var dec EventsState
		if err := gob.NewDecoder(bytes.NewReader(enc)).Decode(&dec); err != nil {
			t.Fatal(err)
		}
		b := newEventsVM(t)
		if err := b.restoreEvents(dec, func(i int) *pvSlot { return b.pv.slots[i].Load() }); err != nil {
			t.Fatalf("registered %v: restore: %v", registered, err)
		}
		st2 := b.saveEvents()
		if d := cmp.Diff(st, st2); d != "" {
			t.Fatalf("registered %v: state changed in the round trip (-saved +restored):\n%s", registered, d)
		}
		if !bytes.Equal(enc, gobBytes(t, st2)) {
			t.Fatalf("registered %v: the second save encodes differently", registered)
		}
		if registered {
			// The bits live in guest memory: copy it, as a restore does.
			pa, _ := a.guest(0x10000, hypercall.PageSize)
			pb, _ := b.guest(0x10000, hypercall.PageSize)
			copy(pb, pa)
		}
		for _, p := range []int{pt, pc, pd} {
			if a.portBit(p, false) != b.portBit(p, false) || a.portBit(p, true) != b.portBit(p, true) {
				t.Errorf("registered %v: port %d bits differ after restore", registered, p)
			}
		}
		if got, want := b.raiseVirq(0, hypercall.VirqConsole), a.raiseVirq(0, hypercall.VirqConsole); got != want || !got {
			t.Errorf("registered %v: console VIRQ delivered %v after restore, %v before; want true", registered, got, want)
		}
		if b.ev.ports[pd].dev != b.pv.slots[0].Load() {
			t.Errorf("registered %v: the virtio port does not point at the restored slot", registered)
		}
	}
}

// TestEventsRestoreRefuses: every kind of impossible saved value is
// refused, and the VM's events stay as they were.
func TestEventsRestoreRefuses(t *testing.T) {
	vm := newEventsVM(t)
	good := vm.saveEvents()
	slot := func(i int) *pvSlot { return vm.pv.slots[i].Load() }
	for _, tc := range []struct {
		name string
		edit func(*EventsState)
		want string
	}{
		{"short bitmaps", func(s *EventsState) { s.Pending = s.Pending[:1] }, "pending and"},
		{"misaligned page", func(s *EventsState) { s.Registered, s.SharedInfo, s.Vector = true, 0x10010, 0xf3 }, "page-aligned"},
		{"page outside memory", func(s *EventsState) { s.Registered, s.SharedInfo, s.Vector = true, 1<<40, 0xf3 }, "not in the VM's memory"},
		{"low vector", func(s *EventsState) { s.Registered, s.SharedInfo, s.Vector = true, 0x10000, 14 }, "upcall vector"},
		{"page without registration", func(s *EventsState) { s.SharedInfo = 0x10000 }, "without registration"},
		{"port 0", func(s *EventsState) { s.Ports = []PortState{{Port: 0, VIRQ: 0, Slot: -1}} }, "out of order"},
		{"port too high", func(s *EventsState) { s.Ports = []PortState{{Port: hypercall.MaxPorts, VIRQ: 0, Slot: -1}} }, "out of order"},
		{"ports out of order", func(s *EventsState) {
			s.Ports = []PortState{{Port: 5, VIRQ: 0, Slot: -1}, {Port: 3, VIRQ: 1, Slot: -1}}
		}, "out of order"},
		{"bad vCPU", func(s *EventsState) { s.Ports = []PortState{{Port: 1, VIRQ: 0, VCPU: 1, Slot: -1}} }, "vCPU 1"},
		{"bad VIRQ", func(s *EventsState) { s.Ports = []PortState{{Port: 1, VIRQ: hypercall.NumVirqs, Slot: -1}} }, "VIRQ"},
		{"VIRQ twice", func(s *EventsState) {
			s.Ports = []PortState{{Port: 1, VIRQ: 0, Slot: -1}, {Port: 2, VIRQ: 0, Slot: -1}}
		}, "bound twice"},
		{"empty slot", func(s *EventsState) { s.Ports = []PortState{{Port: 1, VIRQ: -1, Slot: 5}} }, "holds no device"},
		{"slot too high", func(s *EventsState) { s.Ports = []PortState{{Port: 1, VIRQ: -1, Slot: hypercall.VirtioSlots}} }, "virtio slot"},
		{"bad kind", func(s *EventsState) { s.Ports = []PortState{{Port: 1, VIRQ: -1, Slot: 0, Kind: 2}} }, "kind"},
	} {
		st := good
		st.Pending = append([]uint64(nil), good.Pending...)
		st.Mask = append([]uint64(nil), good.Mask...)
		tc.edit(&st)
		before := vm.saveEvents()
		err := vm.restoreEvents(st, slot)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
		if d := cmp.Diff(before, vm.saveEvents()); d != "" {
			t.Errorf("%s: a refused restore changed the events:\n%s", tc.name, d)
		}
	}
}
