package hv

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/hv/virtio"
	"github.com/pvisor/pvisor/hypercall"
)

// virtio-mmio devices (transport A, docs/devices.md) in trap and hwassist
// mode: device i's 4 KiB register window is at MMIOBase + i·4 KiB, above
// RAM, and it drives ISA line MMIOIRQs[i] of the emulated 8259 PIC. The
// kernel learns of them from `virtio_mmio.device=4K@ADDR:IRQ` on its
// command line.
//
// Concurrency: register accesses are MMIO exits, handled on the vCPU
// goroutine. The device goroutine only sets the transport's interrupt
// status and notifies the vCPU (vcpu.notify); the vCPU then drives the
// PIC line in pollDevices. So the PIC line is only ever set from the vCPU.

// MMIOBase is the guest-physical address of the first device window (as
// Firecracker's); guest memory must end at or below it.
const MMIOBase = 0xd0000000

// MMIOIRQs are the PIC lines of the devices, in order: lines no emulated
// PC device uses, avoiding the cascade (2, 9) and the spurious-interrupt
// lines (7, 15). Their number is the most devices a VM can have.
var MMIOIRQs = [...]int{5, 6, 10, 11, 14}

// Disk is a virtio-blk device over a raw image file, or over an overlay
// on one.
type Disk struct {
	Path     string
	ReadOnly bool
	// Limits bound the guest's requests (bytes/s and requests/s, each
	// with a burst of one second's worth unless given); zero values are
	// unlimited. SetDeviceLimits changes them at run time.
	Limits virtio.Limits
	// Key, when set, says the image is an encrypted pvisor disk image
	// under this key; nil: a raw image.
	Key *snapshot.Key
	// Overlay, when set, is a copy-on-write overlay file (hv/overlay) the
	// VM writes instead of the image, which it then only reads: created if
	// it does not exist or is empty, continued if it is an overlay of this
	// image. A snapshot captures an overlay disk (its disk section holds
	// the overlay's clusters); a restore fills a new overlay with them.
	Overlay string
}

// mmioDev is one device with its window and line.
type mmioDev struct {
	name  string // "virtio-blk 0"
	base  uint64
	irq   int
	t     *virtio.MMIO
	block *virtio.Block
	port  *netswitch.Port // a NIC's switch port (netdev.go)
	high  bool            // the PIC line's level as last set (vCPU goroutine only)
}

// checkDisks refuses device configurations hv cannot place (disks, the
// rng and NICs): in trap and hwassist mode at most one window and line per
// device, below which memory must end; in pv mode at most VIRTIO_SLOTS
// devices.
func checkDisks(cfg *Config) error {
	if err := checkNICs(cfg); err != nil {
		return err
	}
	n := len(cfg.Disks) + len(cfg.NICs)
	if cfg.RNG {
		n++
	}
	if n == 0 {
		return nil
	}
	if cfg.Mode == cpu.ModePV {
		if n > hypercall.VirtioSlots {
			return fmt.Errorf("hv: %d virtio devices: at most %d slots in pv mode", n, hypercall.VirtioSlots)
		}
		return nil
	}
	if n > len(MMIOIRQs) {
		return fmt.Errorf("hv: %d virtio devices: at most %d in %v mode", n, len(MMIOIRQs), cfg.Mode)
	}
	if cfg.MemBytes > MMIOBase {
		return fmt.Errorf("hv: with virtio devices, guest memory must end below the device windows at %#x: give --mem %dM or less", MMIOBase, MMIOBase>>20)
	}
	return nil
}

// openDisks opens the configured images as block devices, then the rng
// if configured: behind the MMIO transport in trap and hwassist mode, in
// slots in pv mode. Called once memory exists (the devices reach it
// through guestMem) and before the kernel is loaded (MMIO windows go on
// the command line).
func (vm *VM) openDisks() error {
	if vm.cfg.Mode == cpu.ModePV {
		vm.AddQuiescer(&vm.pv)
	}
	add := func(name string, b virtio.Backend, block *virtio.Block, lim virtio.Limits) error {
		if vm.cfg.Mode != cpu.ModePV {
			return vm.addMMIO(name, b, block).t.Device().SetLimits(lim)
		}
		var closer io.Closer
		if block != nil {
			closer = block
		}
		i, err := vm.attach(name, b, closer, nil)
		if err != nil {
			return err
		}
		return vm.pv.slots[i].Load().t.Device().SetLimits(lim)
	}
	for i, d := range vm.cfg.Disks {
		b, err := openDisk(d, fmt.Sprintf("pvisor-disk%d", i))
		if err == nil {
			vm.disks = append(vm.disks, b)
			err = add(fmt.Sprintf("virtio-blk %d", i), b, b, d.Limits)
		}
		if err != nil {
			vm.closeMMIO()
			vm.closeSlots()
			return fmt.Errorf("--disk %s: %w", d.Path, err)
		}
	}
	if vm.cfg.RNG {
		if err := add("virtio-rng 0", virtio.Rng{}, nil, virtio.Limits{}); err != nil {
			vm.closeMMIO()
			vm.closeSlots()
			return fmt.Errorf("--rng: %w", err)
		}
	}
	return vm.openNICs()
}

// addMMIO places backend b in the next window.
func (vm *VM) addMMIO(name string, b virtio.Backend, block *virtio.Block) *mmioDev {
	i := len(vm.mmio)
	d := &mmioDev{name: name, base: MMIOBase + uint64(i)*virtio.MMIOSize, irq: MMIOIRQs[i], block: block}
	d.t = virtio.NewMMIO(b, guestMem{vm}, virtio.Options{Charge: vm.chargeDevice}, vm.kickDevices)
	vm.mmio = append(vm.mmio, d)
	vm.AddQuiescer(d.t.Device())
	return d
}

// chargeDevice counts host CPU time a device goroutine used for the VM
// against its cap and weight (device goroutines run outside the
// scheduler's workers).
func (vm *VM) chargeDevice(d time.Duration) {
	if vm.svm != nil {
		vm.svm.Charge(d)
	}
}

// kickDevices is the transports' notify: a device's interrupt status
// gained a bit. It only wakes vCPU 0, which polls the lines.
func (vm *VM) kickDevices() {
	if len(vm.vcpus) > 0 {
		vm.vcpus[0].notify()
	}
}

// mmioCmdline is what the devices add to the kernel command line.
func (vm *VM) mmioCmdline() string {
	var sb strings.Builder
	for _, d := range vm.mmio {
		fmt.Fprintf(&sb, " virtio_mmio.device=4K@%#x:%d", d.base, d.irq)
	}
	return sb.String()
}

// mmioExit answers an MMIO exit inside a device window and reports whether
// it was one. Runs on the vCPU goroutine.
func (v *vcpu) mmioExit(e *cpu.Exit) bool {
	a := e.MMIO.Addr
	if a < MMIOBase || v.vm.dev == nil {
		return false
	}
	// Any vCPU may reach a window; one at a time.
	v.vm.mmioMu.Lock()
	defer v.vm.mmioMu.Unlock()
	i := (a - MMIOBase) / virtio.MMIOSize
	if i >= uint64(len(v.vm.mmio)) {
		return false
	}
	d := v.vm.mmio[i]
	off := a - d.base
	if !e.MMIO.Write {
		e.MMIO.Data = d.t.Read(off, int(e.MMIO.Size))
		return true
	}
	if d.t.Write(off, int(e.MMIO.Size), e.MMIO.Data) {
		// Bits left after an acknowledgement need a new edge: the PIC's
		// inputs are edge-triggered as Linux programs them.
		v.vm.dev.pc.PIC.SetLine(d.irq, false)
		d.high = false
		v.syncMMIOLinesLocked()
	}
	return true
}

// syncMMIOLines raises the line of each device whose interrupt status has
// a bit and whose line is low. Runs on a vCPU goroutine (pollDevices and
// the acknowledgement above); lines are lowered only on acknowledgement.
func (v *vcpu) syncMMIOLines() {
	if len(v.vm.mmio) == 0 {
		return
	}
	v.vm.mmioMu.Lock()
	v.syncMMIOLinesLocked()
	v.vm.mmioMu.Unlock()
}

// syncMMIOLinesLocked is syncMMIOLines with VM.mmioMu held.
func (v *vcpu) syncMMIOLinesLocked() {
	for _, d := range v.vm.mmio {
		if !d.high && d.t.InterruptStatus() != 0 {
			d.high = true
			v.vm.dev.pc.PIC.SetLine(d.irq, true)
		}
	}
}

// closeMMIO resets every device (after which its goroutine touches no
// guest memory), closes the images and detaches the NICs from their
// segments. Called before guest memory is
// released; calling it again does nothing more. vm.mmio stays as it is, so
// listings still read the counters.
func (vm *VM) closeMMIO() {
	for _, d := range vm.mmio {
		d.t.Device().SetStatus(0)
		if d.block != nil {
			d.block.Close() // a second close only returns an error
		}
		if d.port != nil {
			d.port.Detach()
		}
	}
}

// MMIODevice describes one virtio-mmio device for listings.
type MMIODevice struct {
	Name string
	Base uint64
	IRQ  int
	virtio.StatsSnapshot
	Net *NICInfo // a NIC's segment, address and switch counters; nil for other devices
	// Err is why the device needs reset (the ring rule the driver broke),
	// or nil.
	Err error
}

func (d MMIODevice) String() string {
	return fmt.Sprintf("%s mmio %#x-%#x irq %d", d.Name, d.Base, d.Base+virtio.MMIOSize-1, d.IRQ)
}

// MMIODevices lists the VM's virtio-mmio devices with their counters.
func (vm *VM) MMIODevices() []MMIODevice {
	var out []MMIODevice
	for _, d := range vm.mmio {
		md := MMIODevice{Name: d.name, Base: d.base, IRQ: d.irq, StatsSnapshot: d.t.Device().Stats(), Err: d.t.Device().Err()}
		if d.port != nil {
			md.Net = &NICInfo{Segment: d.port.Segment(), MAC: d.port.MAC(), Stats: d.port.Stats()}
		}
		out = append(out, md)
	}
	return out
}
