package lapic

import (
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hv/cpu"
)

// The LAPIC's MSRs.
const (
	// MSRAPICBase is IA32_APIC_BASE (ReadBaseMSR, WriteBaseMSR).
	MSRAPICBase = cpu.MSRAPICBase
	// MSRTSCDeadline is IA32_TSC_DEADLINE (ReadTSCDeadline,
	// WriteTSCDeadline).
	MSRTSCDeadline = 0x6E0
)

// IA32_APIC_BASE bits.
const (
	BaseBSP    = 1 << 8  // the bootstrap processor (read-only here)
	BaseX2APIC = 1 << 10 // x2APIC mode: not modelled, a write setting it is refused
	BaseEnable = 1 << 11 // global enable
)

// ErrBaseMSR is wrapped by every error of WriteBaseMSR: the caller injects
// #GP(0) into the guest for it, as a CPU does for a reserved value.
var ErrBaseMSR = errors.New("lapic: refused IA32_APIC_BASE write")

// ReadBaseMSR is a RDMSR of IA32_APIC_BASE: Base, the enable bit, and the
// BSP bit on the boot vCPU. After power-up the boot vCPU reads 0xFEE00900
// and the others 0xFEE00800.
func (l *LAPIC) ReadBaseMSR() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.baseMSR()
}

// Precondition: mu held.
func (l *LAPIC) baseMSR() uint64 {
	v := uint64(Base)
	if l.bsp {
		v |= BaseBSP
	}
	if l.r.enabled {
		v |= BaseEnable
	}
	return v
}

// WriteBaseMSR is a WRMSR of IA32_APIC_BASE. The BSP bit is read-only (a
// write of either value is taken and changes nothing); the enable bit
// enables or disables the APIC. Clearing it puts every register back to
// its power-up value, as the SDM allows (11.4.3), and the APIC then takes
// no interrupt and decodes no register; setting it again leaves them
// there. A write that moves the base away from Base, sets reserved bits or
// sets the x2APIC enable (bit 10) is refused with an error wrapping
// ErrBaseMSR and changes nothing: the caller injects #GP(0).
//
// Called by the owner vCPU.
func (l *LAPIC) WriteBaseMSR(v uint64) error {
	if v&BaseX2APIC != 0 {
		return fmt.Errorf("%w: %#x sets x2APIC mode (bit 10), which is not modelled", ErrBaseMSR, v)
	}
	if v&^(BaseEnable|BaseBSP) != Base {
		return fmt.Errorf("%w: %#x moves the base from %#x or sets reserved bits", ErrBaseMSR, v, Base)
	}
	l.mu.Lock()
	var e effects
	if en := v&BaseEnable != 0; en != l.r.enabled {
		l.r = powerUp(en)
		e.reprogram = true
	}
	l.unlock(e)
	return nil
}
