package hv

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"

	"github.com/pvisor/pvisor/hypercall"
)

// Event channels. Until the guest registers its shared-info page the
// pending and mask bits live here; on registration they are copied into the
// page, which is from then on their only home (the guest changes them too).

type port struct {
	bound bool
	virq  int  // the VIRQ_* it carries, when dev is nil and not ipi
	ipi   bool // an IPI port (evtchn_bind_ipi): raised only by evtchn_send
	vcpu  int
	dev   *pvSlot // a virtio device's interrupt (virtio_bind), or nil
	kind  int     // VIRTIO_BIND_* of dev's interrupt
}

type events struct {
	shared     uint64 // guest-physical address of the shared-info page, if registered
	registered bool   // a shared-info page is registered (any page, page 0 included)
	vector     uint8
	ports      [hypercall.MaxPorts]port
	virqPort   [hypercall.MaxVCPUs][hypercall.NumVirqs]int
	pending    [hypercall.MaxPorts / 64]uint64 // before registration only
	mask       [hypercall.MaxPorts / 64]uint64
}

func (e *events) init() {
	for i := range e.virqPort {
		for j := range e.virqPort[i] {
			e.virqPort[i][j] = -1
		}
	}
	for i := range e.mask {
		e.mask[i] = ^uint64(0)
	}
	e.ports[0].bound = false // port 0 is never handed out: guests may use 0 as "none"
}

// Offsets into struct pvisor_shared_info.
var (
	offPending    = uint64(unsafe.Offsetof(hypercall.SharedInfo{}.EvtchnPending))
	offMask       = uint64(unsafe.Offsetof(hypercall.SharedInfo{}.EvtchnMask))
	offWallclock  = uint64(unsafe.Offsetof(hypercall.SharedInfo{}.WallclockSec))
	sizeVCPUInfo  = uint64(unsafe.Sizeof(hypercall.VCPUInfo{}))
	offUpcallPend = uint64(unsafe.Offsetof(hypercall.VCPUInfo{}.UpcallPending))
	offUpcallMask = uint64(unsafe.Offsetof(hypercall.VCPUInfo{}.UpcallMask))
	offPendingSel = uint64(unsafe.Offsetof(hypercall.VCPUInfo{}.PendingSel))
	offTime       = uint64(unsafe.Offsetof(hypercall.VCPUInfo{}.Time))
	offSteal      = uint64(unsafe.Offsetof(hypercall.VCPUInfo{}.StealNs))
)

// portWord returns the word holding port p's pending (or mask) bit: in the
// shared-info page once it is registered, else the hypervisor's copy; and
// the word's guest-physical address (0 for the copy).
func (vm *VM) portWord(p int, mask bool) (w []byte, gpa uint64, local *uint64) {
	i := p / 64
	off, loc := offPending, &vm.ev.pending[i]
	if mask {
		off, loc = offMask, &vm.ev.mask[i]
	}
	if !vm.ev.registered {
		return nil, 0, loc
	}
	gpa = vm.ev.shared + off + uint64(i)*8
	w, _ = vm.guest(gpa, 8)
	return w, gpa, nil
}

// portBit reports port p's pending (or mask) bit.
func (vm *VM) portBit(p int, mask bool) bool {
	w, _, local := vm.portWord(p, mask)
	v := uint64(0)
	if local != nil {
		v = *local
	} else {
		v = binary.LittleEndian.Uint64(w)
	}
	return v&(1<<(p%64)) != 0
}

// setPortBit sets or clears port p's pending (or mask) bit.
func (vm *VM) setPortBit(p int, mask, on bool) {
	w, gpa, local := vm.portWord(p, mask)
	bit := uint64(1) << (p % 64)
	if local != nil {
		if on {
			*local |= bit
		} else {
			*local &^= bit
		}
		return
	}
	// A host atomic: other vCPUs change the word meanwhile with locked
	// instructions (Linux's sync_set_bit and sync_test_and_clear_bit),
	// which the engine commits as compare-and-swap over the same
	// aligned word (hv/interp's doc.go, "Multiprocessor rules").
	if on {
		atomic.OrUint64(guestWord(w), bit)
	} else {
		atomic.AndUint64(guestWord(w), ^bit)
	}
	vm.mem.Invalidate(gpa, 8)
}

// guestWord is the aligned 8 bytes of guest memory w as a word for host
// atomics.
func guestWord(w []byte) *uint64 { return (*uint64)(unsafe.Pointer(&w[0])) }

// setPending marks port p pending and, if it is unmasked, flags the upcall
// for its vCPU, which is woken if it is another.
func (vm *VM) setPending(p int) {
	vm.setPortBit(p, false, true)
	if !vm.portBit(p, true) {
		vm.flagUpcall(vm.ev.ports[p].vcpu, p/64)
		if len(vm.vcpus) > 1 {
			vm.vcpus[vm.ev.ports[p].vcpu].notify()
		}
	}
}

// flagUpcall sets pending_sel bit w and upcall_pending for vCPU i.
func (vm *VM) flagUpcall(i int, w int) {
	if !vm.ev.registered {
		return
	}
	base := vm.ev.shared + uint64(i)*sizeVCPUInfo
	sel, _ := vm.guest(base+offPendingSel, 8)
	atomic.OrUint64(guestWord(sel), 1<<uint(w)) // the guest takes it with XCHG
	up, _ := vm.guest(base+offUpcallPend, 1)
	up[0] = 1 // after the bits, in x86-TSO order as on the host
	vm.mem.Invalidate(base, sizeVCPUInfo)
}

// upcallWanted reports whether vCPU i has an upcall pending and unmasked.
func (vm *VM) upcallWanted(i int) bool {
	if !vm.ev.registered {
		return false
	}
	b, _ := vm.guest(vm.ev.shared+uint64(i)*sizeVCPUInfo, 2)
	return b[offUpcallPend] != 0 && b[offUpcallMask] == 0
}

// upcallPending reports whether vCPU i has an unmasked port pending,
// whatever its upcall_mask.
func (vm *VM) upcallPending(i int) bool {
	if !vm.ev.registered {
		return false
	}
	b, _ := vm.guest(vm.ev.shared+uint64(i)*sizeVCPUInfo+offUpcallPend, 1)
	return b[0] != 0
}

// allocPort binds the lowest free port to pt, masked and not pending, and
// returns it, or -1 if all are in use.
func (vm *VM) allocPort(pt port) int {
	for p := 1; p < hypercall.MaxPorts; p++ {
		if !vm.ev.ports[p].bound {
			vm.ev.ports[p] = pt
			vm.setPortBit(p, true, true)
			vm.setPortBit(p, false, false)
			return p
		}
	}
	return -1
}

// raiseVirq marks vCPU i's port for virq pending; it reports whether the
// port is bound and unmasked, so that the event will reach the guest.
func (vm *VM) raiseVirq(i, virq int) bool {
	p := vm.ev.virqPort[i][virq]
	if p <= 0 {
		return false
	}
	vm.setPending(p)
	return !vm.portBit(p, true)
}

// registerShared adopts the guest's shared-info page.
func (vm *VM) registerShared(gpa uint64, vector uint8, v *vcpu) {
	vm.ev.shared, vm.ev.registered = gpa, true
	vm.ev.vector = vector
	page, _ := vm.guest(gpa, hypercall.PageSize)
	for w := range vm.ev.pending {
		binary.LittleEndian.PutUint64(page[offPending+uint64(w)*8:], vm.ev.pending[w])
		binary.LittleEndian.PutUint64(page[offMask+uint64(w)*8:], vm.ev.mask[w])
	}
	vm.mem.Invalidate(gpa, hypercall.PageSize)
	vm.writeWallclock()
	for _, c := range vm.vcpus {
		vm.updatePvclock(c)
	}
	// Pending unmasked ports from before registration raise the upcall now.
	for p := 1; p < hypercall.MaxPorts; p++ {
		if vm.ev.ports[p].bound {
			if vm.portBit(p, false) {
				if !vm.portBit(p, true) {
					vm.flagUpcall(vm.ev.ports[p].vcpu, p/64)
				}
			}
		}
	}
}

// writeWallclock publishes the wall-clock time at pvclock time zero (the
// clock's WallBase) in the shared-info page under its version counter:
// odd while it changes, as pvclock's. The base changes at every resume, so
// that wallclock + system time is the host's date again after one.
func (vm *VM) writeWallclock() {
	if !vm.ev.registered {
		return
	}
	gpa := vm.ev.shared + offWallclock
	b, ok := vm.guest(gpa, 16)
	if !ok {
		return
	}
	wall := vm.clock.WallBase()
	ver := binary.LittleEndian.Uint32(b[12:])
	ver += 1 + ver&1 // odd: update in progress (a hostile guest may have left it odd)
	binary.LittleEndian.PutUint32(b[12:], ver)
	binary.LittleEndian.PutUint64(b, uint64(wall.Unix()))
	binary.LittleEndian.PutUint32(b[8:], uint32(wall.Nanosecond()))
	binary.LittleEndian.PutUint32(b[12:], ver+1)
	vm.mem.Invalidate(gpa, 16)
}

// systemTime is pvclock system time: the VM's clock (guest nanoseconds
// since the VM started; it stops while the VM is paused).
func (vm *VM) systemTime() uint64 { return uint64(vm.clock.Now()) }

// updatePvclock writes vCPU v's pvclock record: time = system_time +
// (tsc - tsc_timestamp) scaled by mul/shift. The interpreter's host-clock
// TSC runs at 1 GHz, so the scale is 1.0: tsc_to_system_mul 2^31 (0.5 in
// 32-bit fixed point) with tsc_shift 1.
func (vm *VM) updatePvclock(v *vcpu) {
	if !vm.ev.registered {
		return
	}
	off := vm.ev.shared + uint64(v.id)*sizeVCPUInfo + offTime
	b, _ := vm.guest(off, 32)
	ver := binary.LittleEndian.Uint32(b)
	binary.LittleEndian.PutUint32(b, ver+1) // odd: update in progress
	tsc := v.cpu.TSC()
	binary.LittleEndian.PutUint64(b[8:], tsc)
	binary.LittleEndian.PutUint64(b[16:], vm.systemTime())
	binary.LittleEndian.PutUint32(b[24:], 1<<31) // mul: 2^32 * 0.5 ...
	b[28] = 1                                    // ... shift 1: scale 1.0
	b[29] = hypercall.PvclockTSCStable
	binary.LittleEndian.PutUint32(b, ver+2)
	vm.mem.Invalidate(off, 32)
}

// writeSteal publishes vCPU v's steal time (runnable but not running, as
// the scheduler accounts it) in its shared-info slot, for the guest's
// paravirt steal clock. Called by the vCPU at the start of each slice. A
// restored vCPU's count goes on from its snapshot's (stealBase): the
// guest's steal clock never goes back.
func (vm *VM) writeSteal(v *vcpu) {
	h := v.h.Load()
	if !vm.ev.registered || h == nil {
		return
	}
	off := vm.ev.shared + uint64(v.id)*sizeVCPUInfo + offSteal
	b, ok := vm.guest(off, 8)
	if !ok {
		return
	}
	binary.LittleEndian.PutUint64(b, v.stealBase+uint64(h.Steal()))
	vm.mem.Invalidate(off, 8)
}
