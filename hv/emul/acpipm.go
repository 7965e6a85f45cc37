package emul

import (
	"sync"
	"time"
)

// The ACPI PM1a register blocks of a VM with ACPI tables (hv/acpi): the
// fixed-hardware registers an ACPI FADT must point at when the platform is
// not hardware-reduced.
const (
	ACPIPM1aEvt = 0x600 // PM1_STS (0x600-0x601), PM1_EN (0x602-0x603)
	ACPIPM1aCnt = 0x604 // PM1_CNT (0x604-0x605)
	ACPIPMTmr   = 0x608 // PM_TMR (0x608-0x60B): 32 bits at ACPIPMTimerHz
	ACPIPMLast  = ACPIPMTmr + 3
	// ACPISCI is the ISA IRQ of the SCI the FADT names. Nothing raises it:
	// no fixed event is ever enabled to (the timer's carry sets no status
	// bit, and there is no power or sleep button).
	ACPISCI = 9
	// ACPIPMTimerHz is the PM timer's rate (ACPI 6.5, 4.8.3.3).
	ACPIPMTimerHz = 3579545
)

// PM1 bits (ACPI 6.5, 4.8.3.1-4.8.3.2).
const (
	pm1EnWritable = 1<<0 | 1<<5 | 1<<8 | 1<<9 | 1<<10 | 1<<14 // TMR, GBL, PWRBTN, SLPBTN, RTC, PCIEXP_WAKE_DIS
	pm1CntSCIEn   = 1 << 0                                    // SCI_EN: the machine is always in ACPI mode
	pm1CntBMRld   = 1 << 1
	pm1CntSlpTyp  = 7 << 10
	pm1CntSlpEn   = 1 << 13 // write-only: enter the sleep state SLP_TYP
	pm1CntKept    = pm1CntBMRld | pm1CntSlpTyp
)

// ACPIPM is the PM1a event and control blocks. PM1_STS reads 0 (no fixed
// event ever happens) and ignores its write-one-to-clear writes; PM1_EN
// keeps its defined enable bits; PM1_CNT reads SCI_EN as 1 and keeps
// BM_RLD and SLP_TYP. PM_TMR counts Clock at ACPIPMTimerHz, 32 bits wide
// (the FADT's TMR_VAL_EXT), from 0 at Clock's zero; it ignores writes.
// Without a Clock it reads 0. It is what Linux calibrates the TSC and
// the LAPIC timer against when there is no HPET, and its clocksource
// (acpi_pm) when the TSC is not trusted. Setting SLP_EN with SLP_TYP = SlpTypS5 (the \_S5 of
// hv/acpi's DSDT) is soft-off: it calls OnPowerOff. SLP_EN with any other
// type does nothing: the tables name no other sleep state. Registers take
// accesses of any size at any of their ports, byte by byte, low byte
// first.
//
// mu protects en and cnt.
type ACPIPM struct {
	mu  sync.Mutex
	en  uint16
	cnt uint16

	// Clock is the VM's clock, for PM_TMR. Set it before the device is
	// shared.
	Clock Clock

	// OnPowerOff, when not nil, is called (with the device's lock held)
	// on a soft-off request. It must not do port I/O. Set it before the
	// device is shared.
	OnPowerOff func()
}

// SlpTypS5 is the SLP_TYP value of soft-off (hv/acpi.SlpTypS5).
const SlpTypS5 = 5

func (p *ACPIPM) in8(port uint16) uint8 {
	switch port {
	case ACPIPM1aEvt + 2:
		return uint8(p.en)
	case ACPIPM1aEvt + 3:
		return uint8(p.en >> 8)
	case ACPIPM1aCnt:
		return uint8(p.cnt | pm1CntSCIEn)
	case ACPIPM1aCnt + 1:
		return uint8((p.cnt | pm1CntSCIEn) >> 8)
	}
	return 0 // PM1_STS
}

func (p *ACPIPM) out8(port uint16, v uint8) {
	switch port {
	case ACPIPM1aEvt + 2:
		p.en = (p.en&0xff00 | uint16(v)) & pm1EnWritable
	case ACPIPM1aEvt + 3:
		p.en = (p.en&0xff | uint16(v)<<8) & pm1EnWritable
	case ACPIPM1aCnt:
		p.cnt = (p.cnt&0xff00 | uint16(v)) & pm1CntKept
	case ACPIPM1aCnt + 1:
		w := p.cnt&0xff | uint16(v)<<8
		p.cnt = w & pm1CntKept
		if w&pm1CntSlpEn != 0 && (w&pm1CntSlpTyp)>>10 == SlpTypS5 && p.OnPowerOff != nil {
			p.OnPowerOff()
		}
	}
}

// pmTimer is PM_TMR at time now: now × ACPIPMTimerHz / 1 s, in two parts
// so that the product does not overflow for any Duration.
func pmTimer(now time.Duration) uint32 {
	if now < 0 {
		return 0
	}
	sec, ns := uint64(now/time.Second), uint64(now%time.Second)
	return uint32(sec*ACPIPMTimerHz + ns*ACPIPMTimerHz/uint64(time.Second))
}

// In implements PortDevice.
func (p *ACPIPM) In(port uint16, size int) uint32 {
	if port >= ACPIPMTmr && port <= ACPIPMLast {
		var t uint32
		if p.Clock != nil {
			t = pmTimer(p.Clock.Now())
		}
		// One reading of the clock for the whole access: a 4-byte read
		// is never torn across a carry.
		return inBytes(port-ACPIPMTmr, size, func(i uint16) uint8 {
			if i > 3 {
				return 0
			}
			return uint8(t >> (8 * i))
		})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return inBytes(port, size, p.in8)
}

// Out implements PortDevice.
func (p *ACPIPM) Out(port uint16, size int, v uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	outBytes(port, size, v, p.out8)
}
