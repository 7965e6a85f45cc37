package hv

import (
	"fmt"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
	"github.com/pvisor/pvisor/hv/lapic"
	"github.com/pvisor/pvisor/hv/loader"
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
// trap and hwassist mode only), the LAPICs, wake-up mailbox and ACPI
// tables of a trap- or hwassist-mode VM with several vCPUs, then the virtio devices on virtio-mmio and
// in the hypercall transport's slots. A pv-mode VM started without
// --disk or --rng has none: nothing is emulated that was not asked for.
func (vm *VM) Inventory() []string {
	var out []string
	for _, d := range vm.DeviceList() {
		out = append(out, "legacy-pc "+d+" (port I/O)")
	}
	if vm.apic != nil {
		out = append(out, fmt.Sprintf("lapic  %#x-%#x, one per vCPU, %d (MMIO)", uint64(lapic.Base), uint64(lapic.Base+lapic.PageSize-1), len(vm.vcpus)),
			fmt.Sprintf("ioapic %#x-%#x, %d pins, ISA IRQ n on pin n (MMIO)", uint64(lapic.IOAPICBase), uint64(lapic.IOAPICBase+loader.PageSize-1), lapic.IOAPICPins),
			fmt.Sprintf("acpi-wakeup-mailbox %#x-%#x (MMIO)", uint64(mailboxGPA), uint64(mailboxGPA+loader.PageSize-1)),
			fmt.Sprintf("acpi-tables %#x (RSDP, XSDT, FADT, FACS, DSDT, MADT; memory)", uint64(acpiBase)))
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
	v := p.v.vm.dev.bus.In(port, size)
	p.routePIC()
	return v
}

func (p portIO) Out(port uint16, size int, val uint32) {
	p.v.vm.dev.bus.Out(port, size, val)
	p.v.devDirty.Store(true)
	p.routePIC()
}

// routePIC wakes vCPU 0 when another vCPU's access left the 8259 with a
// request (a UART's transmit interrupt enabled from an AP, say): the 8259's
// output reaches only vCPU 0 (picRouted), which may be halted.
func (p portIO) routePIC() {
	if p.v.id != 0 && p.v.vm.dev.pc.PIC.Pending() {
		p.v.vm.vcpus[0].notify()
	}
}

// pollDevices advances the PIT, re-arms the host timer for its next
// deadline and asks for an interrupt window when the PIC has a request.
// Runs on the vCPU goroutine.
func (v *vcpu) pollDevices() {
	d := v.vm.dev
	if d == nil {
		return
	}
	if v.lapic != nil {
		v.pollLAPIC()
	}
	if v.id != 0 {
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
	if v.picRouted() && d.pc.PIC.Pending() && !v.cpu.IRQPending() {
		v.cpu.RequestIRQWindow(true)
	}
}

// irqWindow performs the INTA cycle when the guest can take an interrupt:
// the LAPIC's highest deliverable vector first, then the 8259's if its
// output reaches this vCPU.
func (v *vcpu) irqWindow() {
	v.cpu.RequestIRQWindow(false)
	d := v.vm.dev
	if d == nil || v.cpu.IRQPending() {
		return
	}
	if l := v.lapic; l != nil {
		if vec := l.Pending(); vec >= 0 && l.Ack(uint8(vec)) {
			v.cpu.SetIRQ(vec)
			return
		}
	}
	if v.picRouted() {
		if vec, ok := d.pc.PIC.Ack(); ok {
			v.cpu.SetIRQ(int(vec))
		}
	}
}

// devicePending reports whether a device interrupt waits (wakes HLT).
func (v *vcpu) devicePending() bool {
	d := v.vm.dev
	if d == nil {
		return false
	}
	return v.lapic != nil && v.lapic.Pending() >= 0 || v.picRouted() && d.pc.PIC.Pending()
}

func (vm *VM) stopDevices() {
	if vm.dev != nil && vm.dev.timer != nil {
		vm.dev.timer.Stop()
	}
	vm.stopAPICTimers()
	vm.closeMMIO()
	vm.closeSlots()
}
