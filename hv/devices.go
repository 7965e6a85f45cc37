package hv

import (
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
)

// The emulated legacy PC of trap and hwassist modes (pv mode has none):
// 8259 PIC pair, 8254 PIT, 16550 UART on COM1 as the console, CMOS RTC,
// port 0x61 and port 0x80. Device state is touched by the vCPU goroutine
// and, for UART input, the console reader; PIT deadlines become host timers
// that only kick the vCPU.

type devices struct {
	bus   emul.Bus
	pc    *emul.PC
	clk   emul.Clock // the VM's clock: the PIT stops while the VM is paused
	timer *time.Timer
	armed time.Duration // deadline the host timer is set for, 0 = none
}

// initDevices builds the legacy PC unless the VM is in pv mode.
func (vm *VM) initDevices() {
	if vm.cfg.Mode == cpu.ModePV {
		return
	}
	// The PIT counts guest time and the RTC shows the guest's wall clock
	// (vclock.Clock.Wall: the host's date, taken again at every resume).
	d := &devices{clk: vm.clock}
	d.pc = emul.NewPC(&d.bus, d.clk, vm.cfg.Console, vm.clock.Wall)
	kick := func() {
		if len(vm.vcpus) > 0 {
			vm.vcpus[0].notify()
		}
	}
	d.pc.PIC.OnChange = kick
	d.pc.PIT.OnReprogram = kick
	// A machine reset (keyboard controller or port 0x92) ends the run, as
	// a reboot request does; /init uses it to stop after a command.
	reset := func() { vm.stop(0, "guest reset the machine") }
	d.pc.KBD.OnReset = reset
	d.pc.Sys.OnReset = reset
	vm.dev = d
}

// Inventory lists every device the VM has, one line each, with its
// transport: the legacy PC's port ranges ("legacy-pc com1 0x03f8-0x03ff",
// trap and hwassist mode only), then the virtio devices on virtio-mmio and
// in the hypercall transport's slots. A pv-mode VM started without
// --disk or --rng has none: nothing is emulated that was not asked for.
func (vm *VM) Inventory() []string {
	var out []string
	for _, d := range vm.DeviceList() {
		out = append(out, "legacy-pc "+d+" (port I/O)")
	}
	for _, d := range vm.MMIODevices() {
		out = append(out, d.String()+" (virtio-mmio)"+nicSuffix(d.Net))
	}
	for _, d := range vm.SlotDevices() {
		out = append(out, d.String()+" (hypercall transport)"+nicSuffix(d.Net))
	}
	return out
}

// nicSuffix is a NIC's segment, address and counters for Inventory.
func nicSuffix(n *NICInfo) string {
	if n == nil {
		return ""
	}
	return ": " + n.String()
}

// DeviceList names the emulated devices and their ports ("opt-in and
// listed"); empty in pv mode.
func (vm *VM) DeviceList() []string {
	if vm.dev == nil {
		return nil
	}
	return vm.dev.bus.Devices()
}

// io returns the port-I/O bus vCPU v's I/O reaches. Every access through
// it marks the legacy PC for a poll before the vCPU runs on (pollEvents):
// the only place port I/O reaches the devices, for typed exits and
// emulated instructions alike.
func (v *vcpu) io() emul.IO {
	if v.vm.dev == nil {
		return noDevices{}
	}
	return portIO{v}
}

// portIO is the legacy PC's bus as one vCPU reaches it.
type portIO struct{ v *vcpu }

func (p portIO) In(port uint16, size int) uint32 {
	p.v.devDirty.Store(true)
	return p.v.vm.dev.bus.In(port, size)
}

func (p portIO) Out(port uint16, size int, val uint32) {
	p.v.vm.dev.bus.Out(port, size, val)
	p.v.devDirty.Store(true)
}

// pollDevices advances the PIT, re-arms the host timer for its next
// deadline and asks for an interrupt window when the PIC has a request.
// Runs on the vCPU goroutine.
func (v *vcpu) pollDevices() {
	d := v.vm.dev
	if d == nil || v.id != 0 {
		return
	}
	now := d.clk.Now()
	d.pc.PIT.Advance(now)
	if dl, ok := d.pc.PIT.NextDeadline(); ok {
		if dl != d.armed {
			if d.timer != nil {
				d.timer.Stop()
			}
			d.armed = dl
			wait := dl - now
			if wait < 0 {
				wait = 0
			}
			if d.timer == nil {
				d.timer = time.AfterFunc(wait, v.notify)
			} else {
				d.timer.Reset(wait)
			}
		}
	} else if d.armed != 0 {
		if d.timer != nil {
			d.timer.Stop()
		}
		d.armed = 0
	}
	v.syncMMIOLines()
	if d.pc.PIC.Pending() && !v.cpu.IRQPending() {
		v.cpu.RequestIRQWindow(true)
	}
}

// irqWindow performs the INTA cycle when the guest can take an interrupt.
func (v *vcpu) irqWindow() {
	v.cpu.RequestIRQWindow(false)
	if d := v.vm.dev; d != nil && !v.cpu.IRQPending() {
		if vec, ok := d.pc.PIC.Ack(); ok {
			v.cpu.SetIRQ(int(vec))
		}
	}
}

// devicePending reports whether a device interrupt waits (wakes HLT).
func (v *vcpu) devicePending() bool {
	d := v.vm.dev
	return d != nil && v.id == 0 && d.pc.PIC.Pending()
}

func (vm *VM) stopDevices() {
	if vm.dev != nil && vm.dev.timer != nil {
		vm.dev.timer.Stop()
	}
	vm.closeMMIO()
	vm.closeSlots()
}
