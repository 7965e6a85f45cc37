package hv

import (
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hv/virtio"
	"github.com/pvisor/pvisor/hypercall"
)

// SlotsState is the hypercall transport's slot table (VM.SaveSlots): which
// slot holds which device, their generations, the event-channel ports
// bound to them and each device's state. The backends themselves (images,
// switch ports) are the caller's: the VM restored into holds the same
// devices in the same slots (its configuration, and the hot-plugged
// devices attached again in order), and RestoreSlots checks that it does.
// The ports' own state (bound to which slot and vCPU, pending and masked)
// is the event channels' (events_state.go): they are restored first, and
// RestoreSlots checks that the two agree.
type SlotsState struct {
	// Generations are the slots' generation counters, bumped on every
	// attach (virtio_info's generation); an occupied slot's is at least 1.
	Generations [hypercall.VirtioSlots]uint32
	// Changed says VIRQ_VIRTIO is yet to be raised (a slot was filled,
	// emptied or asked to eject since vCPU 0 last looked).
	Changed bool
	// Slots are the occupied slots, in increasing slot order.
	Slots []SlotState
}

// SlotState is one occupied slot.
type SlotState struct {
	// Index is the slot number, below VIRTIO_SLOTS.
	Index uint32
	// Name is the device's name in listings ("virtio-blk 0"); the
	// restored VM's device in the slot must have the same.
	Name string
	// EjectRequested says the operator asked for the device's ejection.
	EjectRequested bool
	// Ports are the event-channel ports bound with virtio_bind, by
	// VIRTIO_BIND_* kind (queues, config): 1..MaxPorts-1, or 0 for
	// none.
	Ports [2]uint32
	// Device is the device's and its transport's state.
	Device virtio.HcallState
}

// SaveSlots returns the slot table's state. Precondition: the VM is
// paused (its devices quiesced: the devices' Save refuses otherwise).
func (vm *VM) SaveSlots() (SlotsState, error) {
	pv := &vm.pv
	var st SlotsState
	var occupied []*pvSlot
	// The table is read under slotMu, the slots then each under its mu
	// (the order removal takes them in is mu, then slotMu).
	pv.slotMu.Lock()
	for i := range pv.gens {
		st.Generations[i] = pv.gens[i].Load()
		if s := pv.slots[i].Load(); s != nil {
			occupied = append(occupied, s)
		}
	}
	st.Changed = pv.changed.Load()
	pv.slotMu.Unlock()
	for _, s := range occupied {
		ss, err := vm.saveSlot(s)
		if err != nil {
			return SlotsState{}, fmt.Errorf("hv: slot %d (%s): %w", s.index, s.name, err)
		}
		st.Slots = append(st.Slots, ss)
	}
	return st, nil
}

func (vm *VM) saveSlot(s *pvSlot) (SlotState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return SlotState{}, errors.New("the device was removed (the VM has stopped)")
	}
	hs, err := s.t.Save()
	if err != nil {
		return SlotState{}, err
	}
	ss := SlotState{Index: uint32(s.index), Name: s.name, EjectRequested: s.eject.Load(), Device: hs}
	for k, p := range s.ports {
		ss.Ports[k] = uint32(max(p, 0))
	}
	return ss, nil
}

// RestoreSlots puts back a state from SaveSlots into a paused VM that
// holds the same devices in the same slots, with its event channels
// restored, or refuses it, changing nothing: slots out of range or out of
// order, a device missing or of another name, a device the snapshot
// lacks, generations an occupied slot cannot have, ports out of range or
// that the event channels do not bind to the slot's interrupt of that
// kind (and event-channel ports bound to a slot's interrupt that the slot
// does not name), and every device's state as virtio.Device.Restore
// checks it.
func (vm *VM) RestoreSlots(st SlotsState) error {
	if vm.Stopped() {
		return ErrVMStopped // its devices are closed
	}
	pv := &vm.pv
	pv.slotMu.Lock()
	defer pv.slotMu.Unlock()
	if err := vm.checkSlots(&st); err != nil {
		return fmt.Errorf("hv: restore slots: %w", err)
	}
	// Device states are checked as they are restored: on a refusal the
	// devices already restored get their former state back.
	type undo struct {
		s  *pvSlot
		hs virtio.HcallState
	}
	var done []undo
	for _, ss := range st.Slots {
		s := pv.slots[ss.Index].Load()
		before, err := s.t.Save()
		if err == nil {
			err = s.t.Restore(ss.Device)
		}
		if err != nil {
			for _, u := range done {
				u.s.t.Restore(u.hs) // a state Save made: taken back
			}
			return fmt.Errorf("hv: restore slot %d (%s): %w", ss.Index, ss.Name, err)
		}
		done = append(done, undo{s, before})
	}
	for i := range pv.gens {
		pv.gens[i].Store(st.Generations[i])
	}
	irq := false
	for _, ss := range st.Slots {
		s := pv.slots[ss.Index].Load()
		s.gen = st.Generations[ss.Index]
		s.eject.Store(ss.EjectRequested)
		for k, p := range ss.Ports {
			s.ports[k] = int(p)
		}
		irq = irq || ss.Device.Pending != 0
	}
	pv.changed.Store(st.Changed)
	pv.irq.Store(irq)
	if irq || st.Changed {
		vm.kickDevices()
	}
	return nil
}

// checkSlots refuses a slot table this VM could not have produced, apart
// from the devices' own states. Precondition: slotMu held.
func (vm *VM) checkSlots(st *SlotsState) error {
	pv := &vm.pv
	next := 0
	for _, ss := range st.Slots {
		i := int(ss.Index)
		if ss.Index >= hypercall.VirtioSlots || i < next {
			return fmt.Errorf("slot %d: out of range or order (want %d..%d, increasing)", ss.Index, next, hypercall.VirtioSlots-1)
		}
		for j := next; j < i; j++ {
			if s := pv.slots[j].Load(); s != nil {
				return fmt.Errorf("slot %d holds %s, which the snapshot has not", j, s.name)
			}
		}
		next = i + 1
		s := pv.slots[i].Load()
		switch {
		case s == nil:
			return fmt.Errorf("slot %d: the snapshot has %s there, the VM nothing: attach it first", i, ss.Name)
		case s.name != ss.Name:
			return fmt.Errorf("slot %d: the snapshot has %s there, the VM %s", i, ss.Name, s.name)
		case st.Generations[i] == 0:
			return fmt.Errorf("slot %d: occupied with generation 0 (every attach bumps it)", i)
		}
		for k, p := range ss.Ports {
			if p == 0 {
				continue
			}
			if p >= hypercall.MaxPorts {
				return fmt.Errorf("slot %d: port %d beyond %d", i, p, hypercall.MaxPorts-1)
			}
			if pt := vm.ev.ports[p]; !pt.bound || pt.dev != s || pt.kind != k {
				return fmt.Errorf("slot %d: the event channels do not bind port %d to its interrupt of kind %d (restore them first)", i, p, k)
			}
		}
	}
	for j := next; j < hypercall.VirtioSlots; j++ {
		if s := pv.slots[j].Load(); s != nil {
			return fmt.Errorf("slot %d holds %s, which the snapshot has not", j, s.name)
		}
	}
	// The other way round: each port the event channels bind to a
	// slot's interrupt is the one the slot names.
	for p := 1; p < hypercall.MaxPorts; p++ {
		pt := vm.ev.ports[p]
		if !pt.bound || pt.dev == nil {
			continue
		}
		if pt.kind < 0 || pt.kind >= len(SlotState{}.Ports) {
			return fmt.Errorf("event-channel port %d: interrupt kind %d", p, pt.kind)
		}
		named := false
		for _, ss := range st.Slots {
			if pv.slots[ss.Index].Load() == pt.dev {
				named = ss.Ports[pt.kind] == uint32(p)
			}
		}
		if !named {
			return fmt.Errorf("event-channel port %d is bound to slot %d's interrupt of kind %d, which the slot does not name", p, pt.dev.index, pt.kind)
		}
	}
	return nil
}
