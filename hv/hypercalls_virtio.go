package hv

import (
	"errors"

	"github.com/pvisor/pvisor/hv/virtio"
	"github.com/pvisor/pvisor/hypercall"
)

// The virtio_* hypercalls: the hypercall transport's driver side
// (pvdev.go). Each runs on the calling vCPU's goroutine.

// slot returns the device in slot i, or the call's error for a slot
// number out of range (-EINVAL) or an empty slot (-ENODEV).
func (h *hcalls) slot(i uint64) (*pvSlot, hypercall.Errno) {
	if i >= hypercall.VirtioSlots {
		return nil, hypercall.EINVAL
	}
	s := h.v.vm.pv.slots[i].Load()
	if s == nil {
		return nil, hypercall.ENODEV
	}
	return s, nil0
}

// lockSlot is slot with s.mu held on success, for calls that change the
// device: a device removed meanwhile answers -ENODEV.
func (h *hcalls) lockSlot(i uint64) (*pvSlot, hypercall.Errno) {
	s, err := h.slot(i)
	if err != 0 {
		return nil, err
	}
	s.mu.Lock()
	if s.removed {
		s.mu.Unlock()
		return nil, hypercall.ENODEV
	}
	return s, nil0
}

func (h *hcalls) VirtioInfo(slot, buf uint64) (uint64, hypercall.Errno) {
	if slot >= hypercall.VirtioSlots {
		return 0, hypercall.EINVAL
	}
	vm := h.v.vm
	var info hypercall.VirtioInfo
	info.Generation = vm.pv.gens[slot].Load()
	if s := vm.pv.slots[slot].Load(); s != nil {
		d := s.t.Info()
		info.DeviceID = uint32(d.DeviceID)
		info.VendorID = virtio.MMIOVendor
		info.DeviceFeatures = d.DeviceFeatures
		info.NumQueues = uint32(d.NumQueues)
		info.QueueNumMax = uint32(d.QueueNumMax)
		info.ConfigLen = uint32(d.ConfigLen)
		info.ConfigGeneration = d.ConfigGeneration
		info.Status = uint32(d.Status)
		info.Generation = s.gen
		if s.eject.Load() {
			info.Flags |= hypercall.VirtioEjectRequested
		}
	}
	if !vm.guestWrite(buf, hypercall.Encode(&info)) {
		return 0, hypercall.EFAULT
	}
	return ok0, nil0
}

func (h *hcalls) VirtioSetFeatures(slot, features uint64) (uint64, hypercall.Errno) {
	s, err := h.lockSlot(slot)
	if err != 0 {
		return 0, err
	}
	defer s.mu.Unlock()
	if !s.t.Device().SetDriverFeatures(features) {
		return 0, hypercall.EINVAL
	}
	return ok0, nil0
}

func (h *hcalls) VirtioSetStatus(slot, status uint64) (uint64, hypercall.Errno) {
	if status > 0xff {
		return 0, hypercall.EINVAL
	}
	s, err := h.lockSlot(slot)
	if err != 0 {
		return 0, err
	}
	defer s.mu.Unlock()
	return uint64(s.t.SetStatus(uint8(status))), nil0
}

// configRange checks a config access of n bytes at off against the device
// and guest memory and returns the guest's buffer.
func (h *hcalls) configRange(s *pvSlot, off, buf, n uint64) ([]byte, hypercall.Errno) {
	size := uint64(s.t.Info().ConfigLen)
	if off > size || n > size-off {
		return nil, hypercall.EINVAL
	}
	b, ok := h.v.vm.guest(buf, n)
	if !ok {
		return nil, hypercall.EFAULT
	}
	return b, nil0
}

func (h *hcalls) VirtioConfigRead(slot, offset, buf, n uint64) (uint64, hypercall.Errno) {
	s, err := h.slot(slot)
	if err != 0 {
		return 0, err
	}
	b, err := h.configRange(s, offset, buf, n)
	if err != 0 {
		return 0, err
	}
	var tmp [256]byte // config spaces are small; larger reads go in pieces
	for done := uint64(0); done < n; {
		k := min(n-done, uint64(len(tmp)))
		if !s.t.Device().ReadConfig(offset+done, tmp[:k]) {
			return 0, hypercall.EINVAL
		}
		copy(b[done:], tmp[:k])
		done += k
	}
	h.v.vm.mem.Invalidate(buf, n)
	return n, nil0
}

func (h *hcalls) VirtioConfigWrite(slot, offset, buf, n uint64) (uint64, hypercall.Errno) {
	s, err := h.lockSlot(slot)
	if err != 0 {
		return 0, err
	}
	defer s.mu.Unlock()
	b, err := h.configRange(s, offset, buf, n)
	if err != 0 {
		return 0, err
	}
	// Copied before use: the guest may change its buffer meanwhile.
	var tmp [256]byte
	for done := uint64(0); done < n; {
		k := min(n-done, uint64(len(tmp)))
		copy(tmp[:k], b[done:])
		if !s.t.Device().WriteConfig(offset+done, tmp[:k]) {
			return 0, hypercall.EINVAL
		}
		done += k
	}
	return n, nil0
}

func (h *hcalls) VirtioQueueSetup(slot, queue, size, desc, avail, used uint64) (uint64, hypercall.Errno) {
	s, err := h.lockSlot(slot)
	if err != 0 {
		return 0, err
	}
	defer s.mu.Unlock()
	e := s.t.SetupQueue(int(min(queue, 1<<31)), uint32(size), desc, avail, used)
	var ring *virtio.RingError
	switch {
	case e == nil:
		return ok0, nil0
	case errors.Is(e, virtio.ErrNoQueue), errors.Is(e, virtio.ErrQueuePhase):
		return 0, hypercall.EINVAL
	case errors.Is(e, virtio.ErrQueueReady):
		return 0, hypercall.EBUSY
	case errors.As(e, &ring):
		return 0, hypercall.EIO
	}
	return 0, hypercall.EINVAL
}

// VirtioNotify is the doorbell: no lock, no allocation.
func (h *hcalls) VirtioNotify(slot, queue uint64) (uint64, hypercall.Errno) {
	s, err := h.slot(slot)
	if err != 0 {
		return 0, err
	}
	if queue < 0x10000 {
		s.t.Device().Notify(int(queue))
	}
	return ok0, nil0
}

func (h *hcalls) VirtioBind(slot, kind, vcpu uint64) (uint64, hypercall.Errno) {
	vm := h.v.vm
	if kind > hypercall.VirtioBindConfig || vcpu >= uint64(len(vm.vcpus)) {
		return 0, hypercall.EINVAL
	}
	s, err := h.lockSlot(slot)
	if err != 0 {
		return 0, err
	}
	defer s.mu.Unlock()
	if s.ports[kind] > 0 {
		return 0, hypercall.EBUSY
	}
	p := vm.allocPort(port{bound: true, vcpu: int(vcpu), dev: s, kind: int(kind)})
	if p < 0 {
		return 0, hypercall.ENOSPC
	}
	s.ports[kind] = p
	return uint64(p), nil0
}

func (h *hcalls) VirtioRelease(slot uint64) (uint64, hypercall.Errno) {
	s, err := h.lockSlot(slot)
	if err != 0 {
		return 0, err
	}
	defer s.mu.Unlock()
	if !s.eject.Load() {
		return 0, hypercall.EBUSY
	}
	h.v.vm.removeSlotLocked(s, false)
	return ok0, nil0
}
