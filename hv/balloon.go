package hv

import (
	"encoding/binary"
	"errors"

	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
)

// The balloon: a guest gives frames back to the host (balloon_out) and takes
// them back within its reservation (balloon_in); the operator sets the size
// it should keep (SetMemTarget, `pvisor ctl mem-set`), and the guest reads
// it with balloon_target after VIRQ_BALLOON. A frame that is out is a hole:
// mm has freed and uncharged it, the engine treats it as outside RAM
// (interp.Memory.SetHoles) and every hypercall pointer into it fails
// (mm.Reservation.Slice).

// balloonFrames reads the guest's array of count frame numbers and turns it
// into frame ranges, merging consecutive frames.
func (h *hcalls) balloonFrames(gfns, count uint64) ([]mm.FrameRange, hypercall.Errno) {
	if count > hypercall.BalloonMax {
		return nil, hypercall.EINVAL
	}
	b, ok := h.v.vm.guest(gfns, count*8)
	if !ok {
		return nil, hypercall.EFAULT
	}
	var out []mm.FrameRange
	for i := uint64(0); i < count; i++ {
		g := binary.LittleEndian.Uint64(b[i*8:])
		if n := len(out); n > 0 && out[n-1].First+out[n-1].Count == g {
			out[n-1].Count++
			continue
		}
		out = append(out, mm.FrameRange{First: g, Count: 1})
	}
	return out, nil0
}

func balloonErrno(err error) hypercall.Errno {
	if errors.Is(err, mm.ErrBeyondReservation) {
		return hypercall.EINVAL
	}
	return hypercall.EFAULT // the reservation is gone: the VM is stopping
}

func (h *hcalls) BalloonOut(gfns, count uint64) (uint64, hypercall.Errno) {
	ranges, errno := h.balloonFrames(gfns, count)
	if errno != 0 {
		return 0, errno
	}
	vm := h.v.vm
	if sh := vm.ev.shared; vm.ev.registered {
		// The hypervisor writes the shared-info page at any time: it
		// must stay backed while registered.
		for _, r := range ranges {
			if g := sh / mm.FrameSize; g >= r.First && g-r.First < r.Count {
				return 0, hypercall.EBUSY
			}
		}
	}
	if err := vm.res.CheckRanges(ranges...); err != nil {
		return 0, balloonErrno(err)
	}
	// The frames become holes, and no vCPU holds a translation to them,
	// before they are released: another vCPU that runs meanwhile writes
	// into a hole, never into a frame handed back to the host.
	for _, r := range ranges {
		vm.mem.SetHoles(r.First, r.Count, true)
	}
	for _, v := range vm.vcpus {
		if v == h.v {
			v.cpu.FlushTLB(true)
		} else {
			v.cpu.RemoteFlushTLB(true)
		}
	}
	n, err := vm.res.BalloonOut(ranges...)
	if err != nil {
		return 0, balloonErrno(err) // the reservation is gone: the VM is stopping
	}
	return n, nil0
}

func (h *hcalls) BalloonIn(gfns, count uint64) (uint64, hypercall.Errno) {
	ranges, errno := h.balloonFrames(gfns, count)
	if errno != 0 {
		return 0, errno
	}
	vm := h.v.vm
	n, err := vm.res.BalloonIn(ranges...)
	if err != nil {
		return 0, balloonErrno(err)
	}
	for _, r := range ranges {
		vm.mem.SetHoles(r.First, r.Count, false)
	}
	return n, nil0
}

func (h *hcalls) BalloonTarget() (uint64, hypercall.Errno) {
	return h.v.vm.res.Target() / mm.FrameSize, nil0
}

// SetMemTarget sets the memory size, in bytes, the operator wants the VM to
// keep populated, and tells the guest (VIRQ_BALLOON on vCPU 0). The
// reservation stays the hard limit: a target above it is refused. Safe
// from any goroutine.
func (vm *VM) SetMemTarget(bytes uint64) error {
	if err := vm.res.SetTarget(bytes); err != nil {
		return err
	}
	vm.balloonChanged.Store(true)
	vm.vcpus[0].notify()
	return nil
}

// MemStats returns the VM's memory accounting: reserved, resident (frames
// in its p2m), ballooned out, and the operator's target.
func (vm *VM) MemStats() mm.VMStats { return vm.res.Stats() }
