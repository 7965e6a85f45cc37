package hv

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/virtio"
	"github.com/pvisor/pvisor/hypercall"
)

// virtio devices on the hypercall transport (transport B, docs/devices.md)
// in pv mode: VIRTIO_SLOTS slots, each empty or holding one device, reached
// by the virtio_* hypercalls (hypercalls_virtio.go). Interrupts are event
// channels bound with virtio_bind; VIRQ_VIRTIO on vCPU 0 tells the guest
// to rescan the slots after a hot-plug or an ejection request.
//
// Concurrency: the device goroutine only sets the transport's pending bits
// and calls pvKick (an atomic flag and vcpu.notify); vCPU 0 takes the bits
// and raises the ports in pollSlots, so event-channel state is only ever
// touched by the vCPU, as for every other event source. Operator calls
// (AttachDevice, EjectDevice) run on other goroutines: slotMu serialises
// the choice and clearing of slots, and each slot's mu serialises the
// driver's lifecycle calls against its removal.

// pvSlot is one occupied slot.
type pvSlot struct {
	name   string // "virtio-blk 0"
	index  int
	gen    uint32
	t      *virtio.Hcall
	closer io.Closer       // the backend's resources (an image file, a switch port), or nil
	port   *netswitch.Port // a NIC's switch port, for listings; nil for other devices

	eject atomic.Bool // the operator asked for ejection

	// mu serialises the driver's calls that change the device (status,
	// features, config writes, queue setup) with removal. mu protects
	// removed.
	mu      sync.Mutex
	removed bool

	// ports are the event-channel ports bound per VIRTIO_BIND_* kind (0:
	// none). vCPU goroutines only, as all event-channel state.
	ports [2]int
}

// pvDevices is the VM's slot table.
type pvDevices struct {
	slots [hypercall.VirtioSlots]atomic.Pointer[pvSlot]
	gens  [hypercall.VirtioSlots]atomic.Uint32 // bumped on every attach

	slotMu sync.Mutex // serialises attach and removal choosing or clearing slots, and quiescing
	quiet  bool       // the slots are quiesced (Quiesce); slotMu protects it

	irq     atomic.Bool // a device's pending bits gained one: vCPU 0 polls the slots
	changed atomic.Bool // a slot was filled, emptied or asked to eject: raise VIRQ_VIRTIO
}

// Quiesce implements Quiescer for every device in a slot, and for those
// attached until Unquiesce. It runs with the vCPUs stopped (VM.Pause), so
// no virtio_* call is under way; a slot emptied meanwhile keeps its
// device quiesced, reset.
func (pv *pvDevices) Quiesce() {
	pv.slotMu.Lock()
	defer pv.slotMu.Unlock()
	pv.quiet = true
	for i := range pv.slots {
		if s := pv.slots[i].Load(); s != nil {
			s.t.Device().Quiesce()
		}
	}
}

// Unquiesce implements Quiescer.
func (pv *pvDevices) Unquiesce() {
	pv.slotMu.Lock()
	defer pv.slotMu.Unlock()
	pv.quiet = false
	for i := range pv.slots {
		if s := pv.slots[i].Load(); s != nil {
			s.t.Device().Unquiesce()
		}
	}
}

// ErrNoSlot is returned by AttachDevice when every slot is occupied.
var ErrNoSlot = errors.New("hv: every virtio slot is occupied")

// AttachDevice puts backend b into the first free slot of a pv-mode VM,
// named name in listings, and raises VIRQ_VIRTIO so that the guest finds
// it. closer (may be nil) is closed when the device leaves its slot. It
// returns the slot number.
func (vm *VM) AttachDevice(name string, b virtio.Backend, closer io.Closer) (int, error) {
	if vm.cfg.Mode != cpu.ModePV {
		return 0, errors.New("hv: hot-plug needs pv mode (the hypercall transport)")
	}
	i, err := vm.attach(name, b, closer, nil)
	if err != nil {
		return 0, err
	}
	vm.pvChanged()
	return i, nil
}

// attach fills the first free slot; port is a NIC's switch port (nil for
// other devices).
func (vm *VM) attach(name string, b virtio.Backend, closer io.Closer, port *netswitch.Port) (int, error) {
	pv := &vm.pv
	pv.slotMu.Lock()
	defer pv.slotMu.Unlock()
	for i := range pv.slots {
		if pv.slots[i].Load() != nil {
			continue
		}
		s := &pvSlot{name: name, index: i, gen: pv.gens[i].Add(1), closer: closer, port: port}
		s.t = virtio.NewHcall(b, guestMem{vm}, virtio.Options{Charge: vm.chargeDevice}, vm.pvKick)
		if pv.quiet {
			s.t.Device().Quiesce() // attached while the VM is paused
		}
		pv.slots[i].Store(s)
		return i, nil
	}
	return 0, ErrNoSlot
}

// EjectDevice asks the guest to give up the device in slot: the slot's
// flags gain VIRTIO_EJECT_REQUESTED and VIRQ_VIRTIO is raised; the slot
// empties when the guest calls virtio_release. With force the device is
// removed at once (reset, backend closed): the guest's calls on the slot
// answer -ENODEV from then on, and VIRQ_VIRTIO tells it to rescan.
func (vm *VM) EjectDevice(slot int, force bool) error {
	if slot < 0 || slot >= hypercall.VirtioSlots {
		return fmt.Errorf("hv: slot %d: want 0..%d", slot, hypercall.VirtioSlots-1)
	}
	s := vm.pv.slots[slot].Load()
	if s == nil {
		return fmt.Errorf("hv: slot %d is empty", slot)
	}
	s.eject.Store(true)
	if force {
		s.mu.Lock()
		vm.removeSlotLocked(s, false)
		s.mu.Unlock()
	}
	vm.pvChanged()
	return nil
}

// removeSlotLocked resets s's device (waiting for the request in progress,
// after which it touches no guest memory), closes its backend and, unless
// keep (the VM is stopping and listings still read the counters), empties
// its slot. Removing twice does nothing more. Precondition: s.mu held.
func (vm *VM) removeSlotLocked(s *pvSlot, keep bool) {
	if s.removed {
		return
	}
	s.removed = true
	if !keep {
		vm.pv.slotMu.Lock()
		vm.pv.slots[s.index].CompareAndSwap(s, nil)
		vm.pv.slotMu.Unlock()
	}
	s.t.SetStatus(0)
	if s.closer != nil {
		s.closer.Close() // a close error leaves nothing to undo
	}
}

// pvKick is the hypercall transport's notify: a device's pending bits
// gained one. It only flags the slots and wakes vCPU 0, which raises the
// ports.
func (vm *VM) pvKick() {
	vm.pv.irq.Store(true)
	vm.kickDevices()
}

// pvChanged asks vCPU 0 to raise VIRQ_VIRTIO.
func (vm *VM) pvChanged() {
	vm.pv.changed.Store(true)
	vm.kickDevices()
}

// pollSlots raises VIRQ_VIRTIO if the slots changed, and the bound ports
// of every device with pending interrupt bits. Runs on vCPU 0.
func (v *vcpu) pollSlots() {
	vm := v.vm
	if vm.pv.changed.Swap(false) {
		vm.raiseVirq(0, hypercall.VirqVirtio)
	}
	if !vm.pv.irq.Swap(false) {
		return
	}
	for i := range vm.pv.slots {
		s := vm.pv.slots[i].Load()
		if s == nil {
			continue
		}
		bits := s.t.TakeInterrupts()
		if bits&virtio.InterruptUsedBuffer != 0 && s.ports[hypercall.VirtioBindQueues] > 0 {
			vm.setPending(s.ports[hypercall.VirtioBindQueues])
		}
		if bits&virtio.InterruptConfigChange != 0 && s.ports[hypercall.VirtioBindConfig] > 0 {
			vm.setPending(s.ports[hypercall.VirtioBindConfig])
		}
	}
}

// pvCanWake reports whether the hypercall transport may ever wake a
// blocked vCPU: a device is attached, or VIRQ_VIRTIO is bound so that a
// hot-plug can be announced.
func (vm *VM) pvCanWake() bool {
	if vm.ev.virqPort[0][hypercall.VirqVirtio] > 0 {
		return true
	}
	for i := range vm.pv.slots {
		if vm.pv.slots[i].Load() != nil {
			return true
		}
	}
	return false
}

// closeSlots resets every device and closes its backend; the slots keep
// them for listings. Called before guest memory is released; calling it
// again does nothing more.
func (vm *VM) closeSlots() {
	for i := range vm.pv.slots {
		if s := vm.pv.slots[i].Load(); s != nil {
			s.mu.Lock()
			vm.removeSlotLocked(s, true)
			s.mu.Unlock()
		}
	}
}

// SlotDevice describes one device of the hypercall transport for listings.
type SlotDevice struct {
	Name           string
	Slot           int
	EjectRequested bool
	virtio.StatsSnapshot
	Net *NICInfo // a NIC's segment, address and switch counters; nil for other devices
}

func (d SlotDevice) String() string {
	s := fmt.Sprintf("%s slot %d", d.Name, d.Slot)
	if d.EjectRequested {
		s += " (ejection requested)"
	}
	return s
}

// SlotDevices lists the devices in the VM's virtio slots with their
// counters.
func (vm *VM) SlotDevices() []SlotDevice {
	var out []SlotDevice
	for i := range vm.pv.slots {
		if s := vm.pv.slots[i].Load(); s != nil {
			sd := SlotDevice{Name: s.name, Slot: i, EjectRequested: s.eject.Load(), StatsSnapshot: s.t.Device().Stats()}
			if s.port != nil {
				sd.Net = &NICInfo{Segment: s.port.Segment(), MAC: s.port.MAC(), Stats: s.port.Stats()}
			}
			out = append(out, sd)
		}
	}
	return out
}
