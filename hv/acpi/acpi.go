// Package acpi builds the ACPI tables of a trap- or hwassist-mode VM with
// several vCPUs: what Linux 6.12 reads to find its CPUs and start them.
// pvisor has no firmware, so these tables are all the firmware there is:
//
//	table  what it says
//	RSDP   revision 2, pointing at the XSDT (and an RSDT, for old readers)
//	XSDT   FADT, MADT
//	FADT   revision 6: the PM1a event and control blocks (Config.PM1aEvt,
//	       PM1aCnt: hv/emul.ACPIPM), SCI on IRQ Config.SCI, no SMI command
//	       port (the machine is always in ACPI mode), the 32-bit PM timer
//	       (Config.PMTmr), no reset register, boot flags "legacy devices"
//	       and "8042"; the FACS and the DSDT
//	FACS   version 2, no waking vector
//	DSDT   \_S5 only: the soft-off state, so that Linux can power off
//	MADT   revision 5: the local APIC address, PCAT_COMPAT (there is an
//	       8259 pair), one enabled local APIC per vCPU (processor UID and
//	       APIC ID i), one I/O APIC (Config.IOAPIC, ID Config.IOAPICID,
//	       GSIs from 0), and a multiprocessor wake-up structure (version 0)
//	       with the mailbox address
//
// No interrupt source override is listed: ISA IRQ n is the I/O APIC's pin
// n, edge-triggered and active high, as ACPI defines when there is none
// (Linux then takes the SCI as level-triggered, active low). Without an
// I/O APIC Linux 6.12 would mask the 8259's path to the boot CPU (LINT0)
// in its symmetric I/O mode and lose every device interrupt. The APs start
// through the wake-up mailbox (ACPI 6.4, 5.2.12.19) in 64-bit mode, which
// the engine runs; INIT and SIPI would need real mode.
//
// Build is a pure function of its Config: the same VM gets the same bytes,
// which snapshots and measured boot rely on.
package acpi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Config is what the tables describe.
type Config struct {
	// Base is the guest-physical address the tables are placed at (the
	// RSDP is at Base): 16-byte aligned, below 4 GiB.
	Base uint64
	// CPUs is the number of vCPUs, 1-MaxCPUs; vCPU i has APIC ID i.
	CPUs int
	// LAPIC is the local APICs' register page (0xFEE00000).
	LAPIC uint64
	// Mailbox is the 4 KiB-aligned address of the wake-up mailbox.
	Mailbox uint64
	// IOAPIC is the I/O APIC's register window (0xFEC00000), IOAPICID
	// its ID (0-15).
	IOAPIC   uint64
	IOAPICID uint8
	// PM1aEvt and PM1aCnt are the I/O ports of the PM1a event block (4
	// bytes: status, enable) and control block (2 bytes).
	PM1aEvt, PM1aCnt uint16
	// PMTmr is the I/O port of the 32-bit PM timer (4 bytes).
	PMTmr uint16
	// SCI is the ISA IRQ of the system control interrupt.
	SCI uint8
}

// MaxCPUs is the most CPUs the tables list (xAPIC IDs 0-254).
const MaxCPUs = 255

// Size is the most bytes Build returns: the tables fit in one 4 KiB page.
const Size = 4096

// Offsets of the tables from Base.
const (
	offRSDP = 0x000
	offRSDT = 0x040
	offXSDT = 0x080
	offFACS = 0x0C0 // 64-byte aligned, as the FACS must be
	offDSDT = 0x100
	offFADT = 0x140
	offMADT = 0x280
)

// Table lengths.
const (
	hdrLen        = 36
	rsdpLen       = 36
	facsLen       = 64
	fadtLen       = 276
	madtLAPICLen  = 8
	madtIOAPICLen = 12
	madtWakeLen   = 16
)

// The DSDT's AML: Name (_S5, Package (4) {5, 5, 0, 0}). SLP_TYP 5 is the
// value hv/emul.ACPIPM takes for soft-off.
var dsdtAML = []byte{0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00}

// SlpTypS5 is the sleep type \_S5 names.
const SlpTypS5 = 5

// MADT entry types and flags, FADT boot flags.
const (
	madtPCATCompat   = 1
	madtTypeLAPIC    = 0
	madtTypeIOAPIC   = 1
	madtTypeWakeup   = 0x10
	lapicEnabled     = 1
	bootLegacy       = 1 << 0
	boot8042         = 1 << 1
	fadtTmrValExt    = 1 << 8 // the PM timer is 32 bits wide
	fadtRevision     = 6
	fadtMinorVersion = 5
	madtRevision     = 5
)

var le = binary.LittleEndian

// Build returns the tables, to be copied to Base.
func Build(cfg Config) ([]byte, error) {
	switch {
	case cfg.CPUs < 1 || cfg.CPUs > MaxCPUs:
		return nil, fmt.Errorf("acpi: %d CPUs: want 1-%d", cfg.CPUs, MaxCPUs)
	case cfg.Base%16 != 0 || cfg.Base+Size > 1<<32:
		return nil, fmt.Errorf("acpi: base %#x: want 16-byte alignment below 4 GiB", cfg.Base)
	case cfg.Mailbox%4096 != 0 || cfg.Mailbox == 0:
		return nil, fmt.Errorf("acpi: mailbox %#x: want a 4 KiB-aligned address", cfg.Mailbox)
	case cfg.LAPIC == 0 || cfg.LAPIC >= 1<<32 || cfg.LAPIC%4096 != 0:
		return nil, fmt.Errorf("acpi: local APIC address %#x: want a 4 KiB-aligned address below 4 GiB", cfg.LAPIC)
	case cfg.IOAPIC == 0 || cfg.IOAPIC >= 1<<32 || cfg.IOAPIC%1024 != 0 || cfg.IOAPICID > 15:
		return nil, fmt.Errorf("acpi: I/O APIC at %#x, ID %d: want a 1 KiB-aligned address below 4 GiB and an ID of 0-15", cfg.IOAPIC, cfg.IOAPICID)
	case cfg.PM1aEvt == 0 || cfg.PM1aCnt == 0 || cfg.PMTmr == 0 || cfg.SCI == 0 || cfg.SCI > 15:
		return nil, errors.New("acpi: the PM1a blocks, the PM timer and an ISA SCI are needed")
	}
	madtLen := hdrLen + 8 + cfg.CPUs*madtLAPICLen + madtIOAPICLen + madtWakeLen
	if offMADT+madtLen > Size {
		return nil, fmt.Errorf("acpi: %d CPUs do not fit in the table page", cfg.CPUs)
	}
	b := make([]byte, offMADT+madtLen)
	at := func(off int) uint64 { return cfg.Base + uint64(off) }

	// DSDT.
	dsdt := b[offDSDT : offDSDT+hdrLen+len(dsdtAML)]
	copy(dsdt[hdrLen:], dsdtAML)
	header(dsdt, "DSDT", 2)

	// FACS (no checksum).
	facs := b[offFACS : offFACS+facsLen]
	copy(facs, "FACS")
	le.PutUint32(facs[4:], facsLen)
	facs[32] = 2 // version

	// FADT.
	f := b[offFADT : offFADT+fadtLen]
	le.PutUint32(f[36:], uint32(at(offFACS)))
	le.PutUint32(f[40:], uint32(at(offDSDT)))
	le.PutUint16(f[46:], uint16(cfg.SCI))
	le.PutUint32(f[56:], uint32(cfg.PM1aEvt))
	le.PutUint32(f[64:], uint32(cfg.PM1aCnt))
	le.PutUint32(f[76:], uint32(cfg.PMTmr))
	f[88] = 4 // PM1_EVT_LEN
	f[89] = 2 // PM1_CNT_LEN
	f[91] = 4 // PM_TMR_LEN
	le.PutUint32(f[112:], fadtTmrValExt)
	le.PutUint16(f[109:], bootLegacy|boot8042)
	f[131] = fadtMinorVersion
	le.PutUint64(f[132:], at(offFACS))
	le.PutUint64(f[140:], at(offDSDT))
	// The X_PM1a blocks stay 0: ACPICA derives them from the 32-bit ones.
	header(f, "FACP", fadtRevision)

	// MADT.
	m := b[offMADT : offMADT+madtLen]
	le.PutUint32(m[36:], uint32(cfg.LAPIC))
	le.PutUint32(m[40:], madtPCATCompat)
	o := hdrLen + 8
	for i := 0; i < cfg.CPUs; i++ {
		e := m[o : o+madtLAPICLen]
		e[0], e[1], e[2], e[3] = madtTypeLAPIC, madtLAPICLen, uint8(i), uint8(i)
		le.PutUint32(e[4:], lapicEnabled)
		o += madtLAPICLen
	}
	io := m[o : o+madtIOAPICLen]
	io[0], io[1], io[2] = madtTypeIOAPIC, madtIOAPICLen, cfg.IOAPICID
	le.PutUint32(io[4:], uint32(cfg.IOAPIC)) // GSI base (8-11) 0
	o += madtIOAPICLen
	w := m[o : o+madtWakeLen]
	w[0], w[1] = madtTypeWakeup, madtWakeLen
	le.PutUint64(w[8:], cfg.Mailbox) // mailbox version 0 (bytes 2-3), reserved (4-7)
	header(m, "APIC", madtRevision)

	// RSDT and XSDT: FADT, MADT.
	rsdt := b[offRSDT : offRSDT+hdrLen+8]
	le.PutUint32(rsdt[hdrLen:], uint32(at(offFADT)))
	le.PutUint32(rsdt[hdrLen+4:], uint32(at(offMADT)))
	header(rsdt, "RSDT", 1)
	xsdt := b[offXSDT : offXSDT+hdrLen+16]
	le.PutUint64(xsdt[hdrLen:], at(offFADT))
	le.PutUint64(xsdt[hdrLen+8:], at(offMADT))
	header(xsdt, "XSDT", 1)

	// RSDP: the first 20 bytes have a checksum, all 36 another.
	r := b[offRSDP : offRSDP+rsdpLen]
	copy(r, "RSD PTR ")
	copy(r[9:], oemID)
	r[15] = 2
	le.PutUint32(r[16:], uint32(at(offRSDT)))
	le.PutUint32(r[20:], rsdpLen)
	le.PutUint64(r[24:], at(offXSDT))
	r[8] = checksum(r[:20])
	r[32] = checksum(r)
	return b, nil
}

const oemID = "PVISOR"

// header fills a table's standard header (its length is len(t)) and its
// checksum, after the body is written.
func header(t []byte, sig string, rev uint8) {
	copy(t, sig)
	le.PutUint32(t[4:], uint32(len(t)))
	t[8] = rev
	copy(t[10:], oemID)
	copy(t[16:], "PVISORVM")
	le.PutUint32(t[24:], 1)
	copy(t[28:], "PVSR")
	le.PutUint32(t[32:], 1)
	t[9] = 0
	t[9] = checksum(t)
}

// checksum returns the byte that makes b's bytes (with it in place of the
// byte it replaces, which must be 0) sum to 0.
func checksum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return -s
}
