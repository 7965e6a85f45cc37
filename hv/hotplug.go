package hv

import (
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/virtio"
)

// The operator's device verbs (pvisor ctl device-attach, device-detach,
// device-limits) on a running VM. Hot-plug is the hypercall transport's
// (pv mode); limits change on both transports.

// AttachDisk opens d's image as a virtio-blk device and puts it into the
// first free slot of a running pv-mode VM, whose guest then finds it
// (VIRQ_VIRTIO). It returns the slot.
func (vm *VM) AttachDisk(d Disk) (int, error) {
	if vm.cfg.Mode != cpu.ModePV {
		return 0, errors.New("hv: hot-plug needs pv mode (the hypercall transport)")
	}
	if vm.Stopped() {
		return 0, ErrVMStopped
	}
	b, err := openDisk(d, "pvisor-hotplug")
	if err != nil {
		return 0, fmt.Errorf("disk %s: %w", d.Path, err)
	}
	i, err := vm.attach("virtio-blk (hot-plugged)", b, b, nil)
	if err != nil {
		b.Close()
		return 0, err
	}
	if err := vm.pv.slots[i].Load().t.Device().SetLimits(d.Limits); err != nil {
		return 0, err // not reached: a block device has a limiter
	}
	vm.pvChanged()
	return i, nil
}

// AttachNIC attaches a virtio-net device on n's segment of the VM's switch
// to the first free slot of a running pv-mode VM. It returns the slot.
func (vm *VM) AttachNIC(n NIC) (int, error) {
	if vm.cfg.Mode != cpu.ModePV {
		return 0, errors.New("hv: hot-plug needs pv mode (the hypercall transport)")
	}
	if vm.cfg.Switch == nil {
		return 0, errors.New("hv: the VM has no switch to attach a NIC to")
	}
	if vm.Stopped() {
		return 0, ErrVMStopped
	}
	if err := netswitch.CheckSegmentName(n.Segment); err != nil {
		return 0, err
	}
	mac := n.MAC
	k := int(vm.hotNICs.Add(1))
	if mac.IsZero() {
		// A new derived address per attach, unique among the VM's NICs
		// past and present.
		mac = netswitch.DeriveMAC(vm.cfg.Name, len(vm.cfg.NICs)+k)
	}
	p, err := vm.cfg.Switch.Attach(n.Segment, netswitch.PortConfig{
		Owner: fmt.Sprintf("%s/hot%d", vm.cfg.Name, k), MAC: mac, Limits: n.Limits})
	if err != nil {
		return 0, err
	}
	i, err := vm.attachNet("virtio-net (hot-plugged)", p)
	if err != nil {
		p.Detach()
		return 0, err
	}
	vm.pvChanged()
	return i, nil
}

// SetDeviceLimits changes the rate limits of device dev of a running VM:
// in pv mode dev is a slot, in trap and hwassist mode the index of its
// virtio-mmio window (0 for 0xd0000000). A disk's limits bound its
// requests; a NIC's bound what the VM sends (its switch port's).
func (vm *VM) SetDeviceLimits(dev int, l virtio.Limits) error {
	var d *virtio.Device
	var port *netswitch.Port
	if vm.cfg.Mode == cpu.ModePV {
		if dev < 0 || dev >= len(vm.pv.slots) {
			return fmt.Errorf("hv: slot %d: want 0..%d", dev, len(vm.pv.slots)-1)
		}
		s := vm.pv.slots[dev].Load()
		if s == nil {
			return fmt.Errorf("hv: slot %d is empty", dev)
		}
		d, port = s.t.Device(), s.port
	} else {
		if dev < 0 || dev >= len(vm.mmio) {
			return fmt.Errorf("hv: device %d: the VM has %d virtio-mmio devices", dev, len(vm.mmio))
		}
		d, port = vm.mmio[dev].t.Device(), vm.mmio[dev].port
	}
	if port != nil {
		port.SetLimits(l)
		return nil
	}
	if d.Type() == virtio.TypeRng {
		return errors.New("hv: an rng has no rate limits")
	}
	return d.SetLimits(l)
}
