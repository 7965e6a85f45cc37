package hv

import (
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hypercall"
)

// PortState is one bound event-channel port.
type PortState struct {
	Port int // 1..MAX_PORTS-1
	// VIRQ is the VIRQ_* the port carries, or -1 for a virtio device's
	// interrupt and an IPI port.
	VIRQ int
	// IPI: the port is an IPI port (evtchn_bind_ipi).
	IPI  bool
	VCPU int // the vCPU that receives its upcall
	// Slot and Kind name the virtio device's interrupt (virtio_bind):
	// its hypercall-transport slot and VIRTIO_BIND_* kind; Slot is -1
	// for a VIRQ port.
	Slot int
	Kind int
}

// EventsState is the VM's event channels. The pending and mask bits live
// in the guest's shared-info page once it is registered (they are saved
// with guest memory then); before, they are the hypervisor's and saved
// here.
type EventsState struct {
	Registered bool
	SharedInfo uint64 // guest-physical address of the shared-info page
	Vector     uint8  // upcall vector
	Ports      []PortState
	// Pending and Mask hold the hypervisor's copies of the bits (one bit
	// per port) until registration; after it they are unused.
	Pending []uint64
	Mask    []uint64
}

// saveEvents returns the VM's event channels.
func (vm *VM) saveEvents() EventsState {
	e := &vm.ev
	st := EventsState{Registered: e.registered, SharedInfo: e.shared, Vector: e.vector,
		Pending: append([]uint64(nil), e.pending[:]...), Mask: append([]uint64(nil), e.mask[:]...)}
	for p := 1; p < hypercall.MaxPorts; p++ {
		pt := e.ports[p]
		if !pt.bound {
			continue
		}
		ps := PortState{Port: p, VIRQ: pt.virq, VCPU: pt.vcpu, Slot: -1, Kind: pt.kind}
		if pt.dev != nil {
			ps.VIRQ, ps.Slot = -1, pt.dev.index
		}
		if pt.ipi {
			ps.VIRQ, ps.IPI = -1, true
		}
		st.Ports = append(st.Ports, ps)
	}
	return st
}

// restoreEvents puts saved event channels back into a VM that has not
// run. slot resolves a virtio interrupt's slot to its restored device
// (nil when there is none). Every field is checked against what
// saveEvents could have produced; on error the VM's events are unchanged.
func (vm *VM) restoreEvents(st EventsState, slot func(int) *pvSlot) error {
	if len(st.Pending) != hypercall.MaxPorts/64 || len(st.Mask) != hypercall.MaxPorts/64 {
		return fmt.Errorf("events: %d pending and %d mask words, want %d", len(st.Pending), len(st.Mask), hypercall.MaxPorts/64)
	}
	var e events
	e.init()
	if st.Registered {
		if st.SharedInfo%hypercall.PageSize != 0 {
			return fmt.Errorf("events: shared-info page %#x is not page-aligned", st.SharedInfo)
		}
		if _, ok := vm.guest(st.SharedInfo, hypercall.PageSize); !ok {
			return fmt.Errorf("events: shared-info page %#x is not in the VM's memory", st.SharedInfo)
		}
		if st.Vector < 32 {
			return fmt.Errorf("events: upcall vector %d: want 32..255", st.Vector)
		}
	} else if st.SharedInfo != 0 || st.Vector != 0 {
		return errors.New("events: a shared-info page or vector without registration")
	}
	e.registered, e.shared, e.vector = st.Registered, st.SharedInfo, st.Vector
	copy(e.pending[:], st.Pending)
	copy(e.mask[:], st.Mask)
	last := 0
	for _, ps := range st.Ports {
		if ps.Port <= last || ps.Port >= hypercall.MaxPorts {
			return fmt.Errorf("events: port %d out of order or out of 1..%d", ps.Port, hypercall.MaxPorts-1)
		}
		last = ps.Port
		if ps.VCPU < 0 || ps.VCPU >= len(vm.vcpus) {
			return fmt.Errorf("events: port %d: vCPU %d, the VM has %d", ps.Port, ps.VCPU, len(vm.vcpus))
		}
		pt := port{bound: true, vcpu: ps.VCPU, virq: ps.VIRQ, kind: ps.Kind}
		switch {
		case ps.IPI:
			if ps.VIRQ != -1 || ps.Slot != -1 || ps.Kind != 0 {
				return fmt.Errorf("events: IPI port %d: VIRQ %d slot %d kind %d", ps.Port, ps.VIRQ, ps.Slot, ps.Kind)
			}
			pt.ipi = true
		case ps.Slot < 0:
			if ps.VIRQ < 0 || ps.VIRQ >= hypercall.NumVirqs || ps.Kind != 0 {
				return fmt.Errorf("events: port %d: VIRQ %d kind %d", ps.Port, ps.VIRQ, ps.Kind)
			}
			if e.virqPort[ps.VCPU][ps.VIRQ] != -1 {
				return fmt.Errorf("events: VIRQ %d of vCPU %d bound twice", ps.VIRQ, ps.VCPU)
			}
			e.virqPort[ps.VCPU][ps.VIRQ] = ps.Port
		default:
			if ps.VIRQ != -1 || ps.Slot >= hypercall.VirtioSlots || ps.Kind < 0 || ps.Kind >= 2 {
				return fmt.Errorf("events: port %d: virtio slot %d kind %d", ps.Port, ps.Slot, ps.Kind)
			}
			d := slot(ps.Slot)
			if d == nil {
				return fmt.Errorf("events: port %d: slot %d holds no device", ps.Port, ps.Slot)
			}
			pt.dev, pt.virq = d, 0
		}
		e.ports[ps.Port] = pt
	}
	vm.ev = e
	return nil
}
