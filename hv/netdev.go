package hv

import (
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/virtio"
)

// NIC is a virtio-net device on a segment of the VM's switch
// (Config.Switch), on the same transport as disks: virtio-mmio in trap and
// hwassist mode, a hypercall-transport slot in pv mode.
type NIC struct {
	Segment string
	// MAC is the NIC's address; zero derives it from the VM's name and
	// the NIC's index (netswitch.DeriveMAC).
	MAC netswitch.MAC
	// Limits bound what the VM sends on this NIC (frame bytes/s,
	// frames/s); zero values are unlimited.
	Limits virtio.Limits
}

// NICInfo describes a NIC for listings.
type NICInfo struct {
	Segment string
	MAC     netswitch.MAC
	netswitch.Stats
}

func (n NICInfo) String() string {
	return fmt.Sprintf("segment %s mac %s: tx %d frames %d bytes, rx %d frames %d bytes, %d spoofed, %d queue-full, %d bad, %d throttled",
		n.Segment, n.MAC, n.TxFrames, n.TxBytes, n.RxFrames, n.RxBytes, n.SpoofDrops, n.FullDrops, n.BadDrops, n.Throttled)
}

// checkNICs refuses NIC configurations hv cannot place (checkDisks counts
// them against the device windows).
func checkNICs(cfg *Config) error {
	if len(cfg.NICs) == 0 {
		return nil
	}
	if cfg.Switch == nil {
		return errors.New("hv: NICs need a switch (Config.Switch)")
	}
	for i, n := range cfg.NICs {
		if err := netswitch.CheckSegmentName(n.Segment); err != nil {
			return fmt.Errorf("hv: NIC %d: %v", i, err)
		}
	}
	return nil
}

// openNICs attaches each NIC to its segment and places it after the disks.
// On failure, what was opened is closed.
func (vm *VM) openNICs() error {
	for i, n := range vm.cfg.NICs {
		mac := n.MAC
		if mac.IsZero() {
			mac = netswitch.DeriveMAC(vm.cfg.Name, i)
		}
		p, err := vm.cfg.Switch.Attach(n.Segment, netswitch.PortConfig{
			Owner: fmt.Sprintf("%s/net%d", vm.cfg.Name, i), MAC: mac, Limits: n.Limits})
		if err != nil {
			vm.closeMMIO()
			vm.closeSlots()
			return fmt.Errorf("NIC %d: %w", i, err)
		}
		name := fmt.Sprintf("virtio-net %d", i)
		if vm.cfg.Mode == cpu.ModePV {
			if _, err := vm.attachNet(name, p); err != nil {
				p.Detach()
				vm.closeSlots()
				return fmt.Errorf("NIC %d: %w", i, err)
			}
			continue
		}
		d := vm.addMMIO(name, virtio.NewNet(p), nil)
		d.port = p
	}
	return nil
}

// portCloser detaches a slot NIC's switch port when the slot empties.
type portCloser struct{ p *netswitch.Port }

func (c portCloser) Close() error {
	c.p.Detach()
	return nil
}

// attachNet puts a virtio-net device on port p into the first free slot.
func (vm *VM) attachNet(name string, p *netswitch.Port) (int, error) {
	return vm.attach(name, virtio.NewNet(p), portCloser{p}, p)
}
