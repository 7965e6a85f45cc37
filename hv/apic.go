package hv

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/pvisor/pvisor/hv/acpi"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
	"github.com/pvisor/pvisor/hv/lapic"
	"github.com/pvisor/pvisor/hv/loader"
)

// Several vCPUs in trap and hwassist mode (docs/smp.md). The unmodified
// kernel gets what a PC with several CPUs has and Linux 6.12 reads:
//
//   - a local APIC per vCPU (hv/lapic) at lapic.Base, its IA32_APIC_BASE
//     and IA32_TSC_DEADLINE MSRs, and CPUID leaf 1's APIC and TSC-deadline
//     bits; IPIs travel on the VM's lapic.Group;
//   - an I/O APIC (lapic.IOAPIC) at lapic.IOAPICBase whose 24 pins see the
//     ISA lines the 8259 pair sees (PIC.OnLine): the PIT, the UART, the
//     virtio-mmio devices. Linux runs in symmetric I/O mode on it, masks
//     the 8259 and routes each IRQ to one vCPU;
//   - ACPI tables (hv/acpi) at acpiBase, in the BIOS area the memory map
//     leaves out, with an RSDP that boot_params also points at. The boot
//     vCPU's LINT0 is in ExtINT mode, as a BIOS leaves it, so the 8259
//     reaches vCPU 0 until Linux takes over (virtual-wire mode, which a
//     kernel booted with noapic keeps);
//   - the ACPI PM1a blocks and PM timer (emul.ACPIPM), for the FADT, with
//     soft-off;
//   - a multiprocessor wake-up mailbox (ACPI 6.4, 5.2.12.19) at
//     mailboxGPA: Linux writes an APIC ID, a wake-up vector and the WAKEUP
//     command, and the AP starts at the vector in 64-bit mode on the
//     identity map at apPML4GPA, with interrupts off. That is why no real
//     mode is needed: the engine runs only long mode. INIT, SIPI and NMI
//     IPIs are dropped (the engine has no NMI, and an AP starts once).
//
// A VM of one vCPU has none of this and runs on the 8259 alone.

// The firmware's pages, in the BIOS area below the ROM (0xE0000-0xEFFFF,
// which the loader's memory map gives to nothing, so Linux never uses it).
const (
	acpiBase  = 0xE0000
	apPML4GPA = acpiBase + 0x1000 // the APs' identity map of the first 4 GiB: PML4, PDPT of 1 GiB pages
	apPDPTGPA = apPML4GPA + 0x1000
	apGDTGPA  = apPDPTGPA + 0x1000 // the loader's GDT, for the APs' first instructions
	// mailboxGPA is the wake-up mailbox's page, an MMIO page below the
	// LAPIC's that no RAM can reach (apicMaxMem).
	mailboxGPA = 0xFEBFF000
	// ioapicID is the I/O APIC's ID, as QEMU and most PCs give it.
	ioapicID = 0
	// apicMaxMem: guest memory must end below the virtio-mmio windows,
	// which lie below the mailbox and the LAPIC page.
	apicMaxMem = MMIOBase
)

// Mailbox layout and commands.
const (
	mbCommand = 0  // u16
	mbAPICID  = 4  // u32
	mbVector  = 8  // u64
	mbLen     = 16 // the rest of the page reads 0 and drops writes
	mbWakeup  = 1
)

// The tables and the PM block must agree on soft-off.
const _ = uint(acpi.SlpTypS5-emul.SlpTypS5) + uint(emul.SlpTypS5-acpi.SlpTypS5)

// apics is the VM's part of the APIC platform; each vCPU holds its LAPIC.
type apics struct {
	group *lapic.Group
	io    *lapic.IOAPIC
	pm    *emul.ACPIPM

	mbMu sync.Mutex // protects mb
	mb   [mbLen]byte
}

// hasAPICs reports whether the VM gets LAPICs and ACPI tables.
func (cfg *Config) hasAPICs() bool { return cfg.VCPUs > 1 && cfg.Mode != cpu.ModePV }

// checkAPICs refuses configurations the APIC platform cannot serve.
func (cfg *Config) checkAPICs() error {
	if !cfg.hasAPICs() {
		return nil
	}
	if cfg.MemBytes > apicMaxMem {
		return fmt.Errorf("hv: %d vCPUs in %v mode: guest memory must end below %#x (the local APICs and the wake-up mailbox lie above it): give --mem %dM or less", cfg.VCPUs, cfg.Mode, uint64(apicMaxMem), apicMaxMem>>20)
	}
	if cfg.DeterministicTSC {
		return fmt.Errorf("hv: %d vCPUs in %v mode need the TSC on the VM clock: the LAPIC timers count VM time", cfg.VCPUs, cfg.Mode)
	}
	return nil
}

// initAPICs gives a VM with several vCPUs in trap or hwassist mode its
// LAPICs, firmware tables and AP start-up. Called once the vCPUs and the
// legacy PC exist, before any vCPU runs.
func (vm *VM) initAPICs(boot bool) error {
	if !vm.cfg.hasAPICs() || vm.dev == nil {
		return nil
	}
	a := &apics{pm: &emul.ACPIPM{Clock: vm.clock, OnPowerOff: func() { vm.stop(0, "guest powered off (ACPI S5)") }}}
	a.group = lapic.NewGroup(nil) // INIT, SIPI and NMI: dropped
	io, err := lapic.NewIOAPIC(ioapicID, a.group)
	if err != nil {
		return err
	}
	a.io = io
	for i, v := range vm.vcpus {
		l, err := lapic.New(lapic.Config{ID: uint32(i), BSP: i == 0, Clock: vm.clock, Bus: a.group,
			TSC: v.cpu.TSC, OnInterrupt: v.notify, OnReprogram: v.notify, OnLevelEOI: io.EOI})
		if err != nil {
			return err
		}
		if err := a.group.Add(l); err != nil {
			return err
		}
		v.lapic = l
	}
	if err := vm.dev.bus.Register("acpi-pm", emul.ACPIPM1aEvt, emul.ACPIPMLast, a.pm); err != nil {
		return err
	}
	// The I/O APIC's pins are the ISA lines the 8259 sees.
	vm.dev.pc.PIC.OnLine = io.SetLine
	vm.apic = a
	if !boot {
		return nil
	}
	// Virtual-wire mode on the boot vCPU, as a BIOS leaves it: the 8259
	// reaches it through LINT0 from the first instruction.
	bsp := vm.vcpus[0].lapic
	bsp.Write(lapic.RegSVR, 4, 0x1FF)
	bsp.Write(lapic.RegLVTLINT0, 4, 0x700) // ExtINT
	bsp.Write(lapic.RegLVTLINT1, 4, 0x400) // NMI
	tables, err := acpi.Build(acpi.Config{Base: acpiBase, CPUs: len(vm.vcpus), LAPIC: lapic.Base, Mailbox: mailboxGPA,
		IOAPIC: lapic.IOAPICBase, IOAPICID: ioapicID,
		PM1aEvt: emul.ACPIPM1aEvt, PM1aCnt: emul.ACPIPM1aCnt, PMTmr: emul.ACPIPMTmr, SCI: emul.ACPISCI})
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	var pml4, pdpt [loader.PageSize]byte
	le.PutUint64(pml4[:], apPDPTGPA|3)
	for i := uint64(0); i < 4; i++ {
		le.PutUint64(pdpt[i*8:], i<<30|0x83) // present, writable, 1 GiB
	}
	gdt, ok := vm.guest(loader.GDTGPA, 0x100)
	if !ok {
		return fmt.Errorf("hv: no loader GDT at %#x", loader.GDTGPA)
	}
	for _, w := range []struct {
		gpa uint64
		b   []byte
	}{{acpiBase, tables}, {apPML4GPA, pml4[:]}, {apPDPTGPA, pdpt[:]}, {apGDTGPA, append([]byte(nil), gdt...)}} {
		if !vm.guestWrite(w.gpa, w.b) {
			return fmt.Errorf("hv: the firmware page %#x is outside guest memory", w.gpa)
		}
	}
	if vm.kind == loader.Vmlinux || vm.kind == loader.BzImage {
		var rsdp [8]byte
		le.PutUint64(rsdp[:], acpiBase)
		vm.guestWrite(loader.ZeroPageGPA+loader.BootParamsACPIRSDP, rsdp[:])
	}
	return nil
}

// apicMMIO answers an MMIO exit in the LAPIC page, the I/O APIC's page or
// the mailbox and reports whether it was one.
func (v *vcpu) apicMMIO(e *cpu.Exit) bool {
	a := v.vm.apic
	if a == nil {
		return false
	}
	addr, size := e.MMIO.Addr, int(e.MMIO.Size)
	switch {
	case addr-lapic.Base < lapic.PageSize:
		off := addr - lapic.Base
		if e.MMIO.Write {
			v.lapic.Write(off, size, uint32(e.MMIO.Data))
			// An EOI or a TPR write may let the next interrupt in.
			v.devDirty.Store(true)
		} else {
			e.MMIO.Data = uint64(v.lapic.Read(off, size))
		}
		return true
	case addr-lapic.IOAPICBase < loader.PageSize:
		off := addr - lapic.IOAPICBase
		if e.MMIO.Write {
			a.io.Write(off, size, uint32(e.MMIO.Data))
		} else {
			e.MMIO.Data = uint64(a.io.Read(off, size))
		}
		return true
	case addr-mailboxGPA < loader.PageSize:
		v.vm.mailbox(addr-mailboxGPA, size, e.MMIO.Write, &e.MMIO.Data)
		return true
	}
	return false
}

// mailbox carries out an access to the wake-up mailbox. A write that
// leaves the WAKEUP command in it starts the AP it names, if that AP has
// not started, and the command then reads 0 (done); any other non-zero
// command (TEST, or one the specification does not define) is taken and
// cleared without effect.
func (vm *VM) mailbox(off uint64, size int, write bool, data *uint64) {
	a := vm.apic
	a.mbMu.Lock()
	defer a.mbMu.Unlock()
	if !write {
		var v uint64
		for i := 0; i < size && i < 8; i++ {
			if off+uint64(i) < mbLen {
				v |= uint64(a.mb[off+uint64(i)]) << (8 * i)
			}
		}
		*data = v
		return
	}
	for i := 0; i < size && i < 8; i++ {
		if off+uint64(i) < mbLen {
			a.mb[off+uint64(i)] = uint8(*data >> (8 * i))
		}
	}
	le := binary.LittleEndian
	switch le.Uint16(a.mb[mbCommand:]) {
	case 0:
		return
	case mbWakeup:
		vm.startAP(le.Uint32(a.mb[mbAPICID:]), le.Uint64(a.mb[mbVector:]))
	}
	le.PutUint16(a.mb[mbCommand:], 0)
}

// startAP starts AP id at rip in 64-bit mode, on the firmware's identity
// map and GDT, interrupts off, as the ACPI wake-up mailbox specifies. The
// boot vCPU, an ID with no vCPU, an AP that runs already and a
// non-canonical vector are ignored.
func (vm *VM) startAP(id uint32, rip uint64) {
	if id == 0 || id >= uint32(len(vm.vcpus)) || !cpu.Canonical(rip) {
		return
	}
	t := vm.vcpus[id]
	if t.up.Load() {
		return
	}
	// t is down: no worker runs it (its RunFor returns at once), so its
	// engine is this goroutine's to set until up is stored.
	regs, sregs := cpu.Regs{RIP: rip, RFLAGS: 2}, vm.bootSRegs
	sregs.CR3 = apPML4GPA
	sregs.GDT = cpu.DTable{Base: apGDTGPA, Limit: sregs.GDT.Limit}
	sregs.IDT = cpu.DTable{}
	// No-execute on: Linux's trampoline switches to page tables with NX
	// bits before it sets EFER itself (a TDX module, the other firmware
	// of this start-up, starts APs with NXE set).
	sregs.EFER |= cpu.EFERNXE
	if err := t.cpu.SetSRegs(sregs); err != nil {
		return
	}
	t.cpu.SetRegs(regs)
	t.cpu.FlushTLB(true)
	t.up.Store(true)
	t.notify()
}

// apicMSR carries out RDMSR or WRMSR of a LAPIC MSR; handled is false for
// any other MSR, gp true when the write is refused (#GP).
func (v *vcpu) apicMSR(idx uint32, write bool, val uint64) (out uint64, handled, gp bool) {
	l := v.lapic
	if l == nil {
		return 0, false, false
	}
	switch idx {
	case lapic.MSRAPICBase:
		if !write {
			return l.ReadBaseMSR(), true, false
		}
		gp = l.WriteBaseMSR(val) != nil
	case lapic.MSRTSCDeadline:
		if !write {
			return l.ReadTSCDeadline(), true, false
		}
		l.WriteTSCDeadline(val)
	default:
		return 0, false, false
	}
	v.devDirty.Store(true)
	return 0, true, gp
}

// apicMSRInst is apicMSR for a trapped RDMSR or WRMSR (trap mode): it
// reports whether the instruction was one of a LAPIC MSR, done or faulted.
func (v *vcpu) apicMSRInst(e *cpu.Exit) bool {
	if v.lapic == nil || e.InstLen != 2 || e.Inst[0] != 0x0f || e.Inst[1] != 0x30 && e.Inst[1] != 0x32 {
		return false
	}
	r := v.cpu.Regs()
	write := e.Inst[1] == 0x30
	val, ok, gp := v.apicMSR(uint32(r.GPR[cpu.RCX]), write, r.GPR[cpu.RDX]<<32|r.GPR[cpu.RAX]&0xffffffff)
	switch {
	case !ok:
		return false
	case gp:
		v.cpu.InjectException(cpu.ExcGP, 0, true)
		return true
	case !write:
		r.GPR[cpu.RAX], r.GPR[cpu.RDX] = val&0xffffffff, val>>32
	}
	r.RIP += 2
	v.cpu.SetRegs(r)
	return true
}

// pollLAPIC runs vCPU v's LAPIC timer, re-arms the host timer for its next
// deadline and asks for an interrupt window when the LAPIC has a vector
// to deliver. On the vCPU goroutine.
func (v *vcpu) pollLAPIC() {
	now := v.vm.clock.Now()
	v.lapic.Poll(now)
	if dl, ok := v.lapic.NextDeadline(); ok {
		if dl != v.apicArmed {
			v.apicArmed = dl
			wait := max(dl-now, 0)
			if v.apicTimer == nil {
				v.apicTimer = time.AfterFunc(wait, v.notify)
			} else {
				v.apicTimer.Reset(wait)
			}
		}
	} else if v.apicArmed != 0 {
		v.apicTimer.Stop()
		v.apicArmed = 0
	}
	if v.lapic.Pending() >= 0 && !v.cpu.IRQPending() {
		v.cpu.RequestIRQWindow(true)
	}
}

// picRouted reports whether the 8259's output reaches vCPU v: vCPU 0's
// INTR pin, through LINT0 in ExtINT mode when it has a LAPIC.
func (v *vcpu) picRouted() bool {
	return v.id == 0 && (v.lapic == nil || v.lapic.LINT0ExtINT())
}

func (vm *VM) stopAPICTimers() {
	for _, v := range vm.vcpus {
		if v.apicTimer != nil {
			v.apicTimer.Stop()
		}
	}
}
