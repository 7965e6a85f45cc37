// Package lapic is the local APIC of a vCPU in trap and hwassist mode: an
// xAPIC (SDM vol. 3, ch. 11) whose register page sits at Base
// (0xFEE00000), with its timer; Group, the bus that carries IPIs
// between a VM's LAPICs; and IOAPIC, the I/O APIC whose interrupt
// messages Group carries to them (ioapic.go has its model). It is a device model only: the VM maps the page,
// routes MMIO exits and the APIC MSRs to it, injects what Pending returns
// and handles what Group signals (NMI, INIT, SIPI).
//
// # What is modelled
//
//	register              offset       access
//	ID                    0x020        read-only (ID << 24), fixed at New
//	version               0x030        read-only: 0x00060014 (xAPIC 0x14, max LVT 6)
//	TPR                   0x080        bits 7:0
//	APR, PPR              0x090, 0x0A0 read-only, computed
//	EOI                   0x0B0        write-only: ends the highest vector in service
//	RRD                   0x0C0        read-only, 0 (no remote read)
//	LDR                   0x0D0        bits 31:24
//	DFR                   0x0E0        bits 31:28 (27:0 read as ones)
//	SVR                   0x0F0        vector, software enable (8), focus (9, no effect)
//	ISR, TMR, IRR         0x100-0x270  read-only, 8 x 32 bits each
//	ESR                   0x280        a write latches the errors since the last one
//	LVT CMCI              0x2F0        never raised
//	ICR low, high         0x300, 0x310 a write of the low word sends; delivery status reads 0
//	LVT timer             0x320        one-shot, periodic, TSC-deadline
//	LVT thermal, perf     0x330, 0x340 never raised
//	LVT LINT0, LINT1      0x350, 0x360 queried: LINT0ExtINT, LINT1NMI
//	LVT error             0x370        raised on each error ESR records
//	timer initial count   0x380
//	timer current count   0x390        read-only, computed from the VM clock
//	timer divide          0x3E0        bits 3, 1, 0: divide by 1-128
//
// Registers are 32 bits at 16-byte-aligned offsets. Any other access
// (another size, an unaligned offset, outside the page) reads 0 and is
// ignored. A reserved aligned offset reads 0, ignores writes and sets ESR
// bit 7. Bits a register does not implement read 0 and are dropped on
// write. After power-up and INIT every LVT entry is masked and SVR is
// 0xFF (software disabled); software disabling masks every LVT entry and
// keeps it masked, as on hardware.
//
// Interrupts follow SDM 11.8: IRR, ISR and TMR are 256-bit maps; a vector
// below 16 is refused and sets ESR bit 6 (receive) or, from the ICR, bit
// 5 (send); PPR is the higher of TPR and the highest in-service class;
// Pending is the highest vector in IRR whose class (vector >> 4) is above
// PPR's; Ack moves it to ISR; an EOI clears the highest ISR bit and, if
// its TMR bit is set, calls OnLevelEOI (the I/O APIC's EOI broadcast).
//
// The timer counts at BusFrequency (1 GHz: one tick per VM nanosecond)
// divided by 1-128. Periodic mode runs no faster than MinPeriod (100 µs);
// missed periods are coalesced into one interrupt, so that Poll and
// NextDeadline cost a bounded amount whatever the guest programs.
// TSC-deadline mode converts IA32_TSC_DEADLINE (MSR 0x6E0) to VM time
// when it is written, with a TSC that runs at 1 GHz on the VM clock (the
// interpreter's TSC with Config.TSCClock). CPUID must advertise it (leaf 1
// ECX bit 24) before a guest uses it.
//
// IA32_APIC_BASE (MSR 0x1B) reads Base, the global enable (bit 11) and, on
// the boot vCPU, the BSP bit (8). A write that moves the base or sets the
// x2APIC enable (bit 10) is refused (the caller injects #GP).
//
// IPIs (Group): physical destinations (an APIC ID, 0xFF for all), logical
// destinations in the flat and the cluster model, and the shorthands
// self, all and all-but-self; fixed, lowest priority (delivered as fixed
// to every target, without arbitration), NMI, INIT, SIPI. Group's
// documentation has the table.
//
// # What is not
//
//   - x2APIC (the MSRs 0x800-0x8FF and the base MSR's bit 10): CPUID must
//     not advertise it.
//   - Thermal, performance-counter and CMCI interrupts: their LVT entries
//     hold what the guest writes and nothing raises them.
//   - LINT0 and LINT1 in fixed mode: nothing drives the pins but the
//     8259's output and NMI, which the VM routes with LINT0ExtINT and
//     LINT1NMI.
//   - Lowest-priority arbitration, the focus processor, EOI-broadcast
//     suppression (version bit 24 is 0), remote read, SMI.
//   - A writable xAPIC ID: the ID is the vCPU's, fixed, so that Group's
//     routing never changes.
//
// A VM booted without firmware has no BIOS to put the boot LAPIC in
// virtual-wire mode, and LINT0 starts masked. A VM that wants the 8259 to
// reach the boot vCPU writes SVR and LINT0 (0x700) as a BIOS would, before
// the guest starts. Linux 6.12's setup_local_APIC soft-disables the APIC
// first, which masks LINT0, and then leaves it masked unless it runs in
// PIC mode or was told there is no I/O APIC: with ACPI tables that list
// local APICs, device interrupts need an I/O APIC.
//
// # Concurrency
//
// A LAPIC is safe for concurrent use: one mutex per LAPIC guards its
// registers, and every callback (OnInterrupt, OnReprogram, OnLevelEOI) and
// every Bus.SendIPI runs after it is released, so a LAPIC may send to
// itself. Who calls what:
//
//	method                                             caller
//	Read, Write, Ack, Pending                          the owner vCPU
//	ReadBaseMSR, WriteBaseMSR                          the owner vCPU
//	ReadTSCDeadline, WriteTSCDeadline                  the owner vCPU
//	Deliver                                            any goroutine (other vCPUs' IPIs, devices)
//	Poll, NextDeadline                                 the VM's timer goroutine or the owner
//	InitReset                                          Group, on the goroutine of an INIT's sender
//	Save, Restore, Reset                               the VM, paused
//
// Only the owner, an INIT and a reset remove requests from IRR or raise
// PPR, so a vector Pending returned is still deliverable at Ack
// unless an INIT or reset came between; Ack then fails and the VM injects
// nothing. Lock order: Group's lock, then a LAPIC's. Group holds its read
// lock only while it picks the targets (matching a logical destination
// takes each LAPIC's lock briefly) and calls Deliver, InitReset and Signal
// without it; a LAPIC's lock is never held while it calls out.
//
// # Trust boundary
//
// Everything the guest writes (registers, MSRs, IPIs) is hostile: no value
// panics, allocates, or makes the host do work that grows with it. A saved
// State is operator input: Restore validates every field and changes
// nothing when it refuses.
package lapic
