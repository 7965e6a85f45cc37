package lapic

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
)

// The xAPIC's place and identity.
const (
	// Base is the guest-physical address of the register page: the
	// architectural default, which this model does not let the guest move.
	Base = 0xFEE00000
	// PageSize is the size of the register page.
	PageSize = 0x1000
	// Version is the version register's low byte: 0x14, an integrated
	// xAPIC as in the Pentium 4 and every later Intel CPU.
	Version = 0x14
	// MaxLVT is the version register's bits 23:16: the index of the last
	// LVT entry, 6 for seven entries (CMCI, timer, thermal, performance,
	// LINT0, LINT1, error).
	MaxLVT = 6
	// MaxID is the highest APIC ID a LAPIC may have: an xAPIC ID is 8
	// bits and 0xFF is the broadcast destination.
	MaxID = 0xFE
)

// Register offsets in the page (SDM vol. 3, table 11-1). Each register is
// 32 bits at a 16-byte-aligned offset.
const (
	RegID           = 0x020
	RegVersion      = 0x030
	RegTPR          = 0x080
	RegAPR          = 0x090
	RegPPR          = 0x0A0
	RegEOI          = 0x0B0
	RegRRD          = 0x0C0
	RegLDR          = 0x0D0
	RegDFR          = 0x0E0
	RegSVR          = 0x0F0
	RegISR          = 0x100 // eight registers, 0x100-0x170, vectors 32n..32n+31
	RegTMR          = 0x180 // eight registers, 0x180-0x1F0
	RegIRR          = 0x200 // eight registers, 0x200-0x270
	RegESR          = 0x280
	RegLVTCMCI      = 0x2F0
	RegICRLow       = 0x300
	RegICRHigh      = 0x310
	RegLVTTimer     = 0x320
	RegLVTThermal   = 0x330
	RegLVTPerf      = 0x340
	RegLVTLINT0     = 0x350
	RegLVTLINT1     = 0x360
	RegLVTError     = 0x370
	RegTimerInitial = 0x380
	RegTimerCurrent = 0x390
	RegTimerDivide  = 0x3E0
)

// Register bits.
const (
	// SVREnable is the spurious-interrupt vector register's APIC
	// software enable.
	SVREnable = 1 << 8
	// LVTMasked is an LVT entry's mask bit.
	LVTMasked = 1 << 16

	// ESR bits this model sets (SDM vol. 3, figure 11-9).
	ESRSendIllegalVector    = 1 << 5
	ESRReceiveIllegalVector = 1 << 6
	ESRIllegalRegister      = 1 << 7

	svrWritable = 0x3FF // vector, software enable, focus checking (no effect)
	dfrWritable = 0xF0000000
	dfrOnes     = 0x0FFFFFFF // DFR bits 27:0 read as ones
	ldrWritable = 0xFF000000
	icrLowMask  = 0x000CCFFF // vector, mode, destination mode, level, trigger, shorthand
	icrHighMask = 0xFF000000
	divWritable = 0xB
	esrMask     = ESRSendIllegalVector | ESRReceiveIllegalVector | ESRIllegalRegister
	powerUpSVR  = 0xFF
	powerUpDFR  = 0xFFFFFFFF
)

// The LVT entries, in the order of State.LVT.
const (
	LVTCMCI = iota
	LVTTimer
	LVTThermal
	LVTPerf
	LVTLINT0
	LVTLINT1
	LVTError
	NumLVT
)

// lvtWritable are the bits of each LVT entry software can set. The
// delivery-status bit (12) and LINT's remote-IRR bit (14) are read-only
// and always read 0 here: every interrupt is accepted at once.
var lvtWritable = [NumLVT]uint32{
	LVTCMCI:    0x000107FF, // vector, delivery mode, mask
	LVTTimer:   0x000700FF, // vector, mask, timer mode (bits 18:17)
	LVTThermal: 0x000107FF,
	LVTPerf:    0x000107FF,
	LVTLINT0:   0x0001A7FF, // vector, delivery mode, polarity, trigger, mask
	LVTLINT1:   0x0001A7FF,
	LVTError:   0x000100FF, // vector, mask
}

// lvtOffset is the register offset of LVT entry i.
func lvtOffset(i int) uint32 {
	if i == LVTCMCI {
		return RegLVTCMCI
	}
	return RegLVTTimer + uint32(i-LVTTimer)*0x10
}

// LVT delivery modes (bits 10:8) that the LINT queries look for.
const (
	lvtModeNMI    = 4
	lvtModeExtINT = 7
)

// Timer modes (LVT timer bits 18:17).
const (
	TimerOneShot     = 0
	TimerPeriodic    = 1
	TimerTSCDeadline = 2
	timerReserved    = 3
)

// BusFrequency is the timer's input clock in Hz before the divider. pvisor's
// CPUID has no leaf 0x15 or 0x16 (its highest basic leaf is 1), so Linux
// calibrates the timer against the PIT and any figure works; 1 GHz makes one
// tick a nanosecond of the VM clock, the rate of the interpreter's TSC, and
// is KVM's default APIC bus rate too.
const BusFrequency = 1_000_000_000

// MinPeriod is the shortest period of the timer in periodic mode: a shorter
// one (a count of 1 with divide 1 asks for 1 ns) runs at MinPeriod, with
// the current count read back stretched to match. It bounds a hostile
// guest to 10,000 timer interrupts a second from one LAPIC. KVM does the
// same with its min_timer_period_us parameter (default 200 µs); 100 µs
// keeps a 10 kHz periodic tick exact. One-shot and TSC-deadline timers
// have no minimum: each one costs the guest an exit to arm.
const MinPeriod = 100 * time.Microsecond

// Config describes one vCPU's LAPIC.
type Config struct {
	// ID is the APIC ID, 0-MaxID (pvisor gives vCPU i the ID i, as CPUID
	// leaf 1 reports it).
	ID uint32
	// BSP sets the APIC base MSR's bootstrap-processor bit: true for the
	// boot vCPU only.
	BSP bool
	// Clock is the VM's clock (hv/vclock): the timer counts against it.
	Clock cpu.Clock
	// Bus carries the IPIs the guest sends through the ICR. Nil drops
	// them (a VM of one vCPU that needs no self-IPI).
	Bus Bus
	// TSC, when not nil, returns this vCPU's TSC now; WriteTSCDeadline
	// converts a deadline to VM time with it. The TSC must run at 1 GHz
	// on Clock, as the interpreter's does with Config.TSCClock (its value
	// is Clock's nanoseconds plus an offset the guest may change). Nil:
	// the TSC is Clock's nanoseconds (that offset is 0).
	TSC func() uint64
	// OnInterrupt, when not nil, is called after an interrupt was
	// accepted into IRR (from Deliver, the timer in Poll, an IPI to self,
	// an error interrupt), on the goroutine that caused it, without the
	// LAPIC's lock. The VM uses it to wake the vCPU from HLT. It must only
	// signal (wake a goroutine, send on a buffered channel).
	OnInterrupt func()
	// OnReprogram, when not nil, is called after NextDeadline may have
	// changed other than by Poll (the guest programmed the timer, the
	// APIC was reset or restored), without the LAPIC's lock: the VM should
	// read NextDeadline again and re-arm its host timer. It may run on
	// another vCPU's goroutine (an INIT IPI resets the target).
	OnReprogram func()
	// OnLevelEOI, when not nil, is called with the vector after an EOI
	// ends a level-triggered interrupt (its TMR bit set), without the
	// LAPIC's lock: the EOI broadcast an I/O APIC waits for.
	OnLevelEOI func(vector uint8)
}

// LAPIC is one vCPU's local APIC (see the package documentation).
//
// mu protects r. The fields above it are set by New and never change.
type LAPIC struct {
	id          uint32
	bsp         bool
	clk         cpu.Clock
	bus         Bus
	tsc         func() uint64
	onInterrupt func()
	onReprogram func()
	onLevelEOI  func(uint8)

	mu sync.Mutex
	r  regs
}

// regs is the LAPIC's mutable state.
type regs struct {
	// enabled is the APIC base MSR's global enable (bit 11). While it is
	// clear every other field holds its power-up value.
	enabled bool

	tpr             uint32
	ldr, dfr, svr   uint32
	icrLow, icrHigh uint32
	// esr is the error status software reads; esrPending collects the
	// errors since the last write to the ESR, which moves it into esr.
	esr, esrPending uint32
	lvt             [NumLVT]uint32
	irr, isr, tmr   bitmap

	// The timer in one-shot and periodic mode. divide is the divide
	// configuration register (bits 3, 1, 0), initial the initial count.
	// While armed the count runs down from count at start to 0 at end
	// (see timer.go).
	divide     uint32
	initial    uint32
	armed      bool
	start, end time.Duration
	count      uint32

	// The timer in TSC-deadline mode: deadline is IA32_TSC_DEADLINE (0:
	// disarmed), due at deadlineAt on the VM clock.
	deadline   uint64
	deadlineAt time.Duration
}

// powerUp returns the registers after power-up and after INIT (SDM vol.
// 3, 11.4.7.1): everything zero but DFR all ones, SVR 0xFF (software
// disabled) and every LVT entry masked.
func powerUp(enabled bool) regs {
	r := regs{enabled: enabled, dfr: powerUpDFR, svr: powerUpSVR}
	for i := range r.lvt {
		r.lvt[i] = LVTMasked
	}
	return r
}

// ErrConfig is wrapped by New's errors.
var ErrConfig = errors.New("lapic: bad configuration")

// New returns the LAPIC of one vCPU in its power-up state: globally
// enabled (APIC base MSR bit 11), software disabled, every LVT masked.
func New(cfg Config) (*LAPIC, error) {
	switch {
	case cfg.ID > MaxID:
		return nil, fmt.Errorf("%w: APIC ID %d is above %d (an xAPIC ID is 8 bits and 0xFF is broadcast)", ErrConfig, cfg.ID, MaxID)
	case cfg.Clock == nil:
		return nil, fmt.Errorf("%w: no clock: pass the VM's clock", ErrConfig)
	}
	return &LAPIC{
		id: cfg.ID, bsp: cfg.BSP, clk: cfg.Clock, bus: cfg.Bus, tsc: cfg.TSC,
		onInterrupt: cfg.OnInterrupt, onReprogram: cfg.OnReprogram, onLevelEOI: cfg.OnLevelEOI,
		r: powerUp(true),
	}, nil
}

// ID returns the APIC ID.
func (l *LAPIC) ID() uint32 { return l.id }

// Enabled reports whether the APIC is globally enabled (APIC base MSR bit
// 11). A disabled APIC takes no interrupt and its page reads 0.
func (l *LAPIC) Enabled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.enabled
}

// Reset puts the LAPIC in its power-up state, as New returns it (a VM
// reset).
func (l *LAPIC) Reset() {
	l.mu.Lock()
	l.r = powerUp(true)
	l.unlock(effects{reprogram: true})
}

// InitReset is the LAPIC's part of an INIT (SDM vol. 3, 11.4.7.3): every
// register returns to its power-up value but the APIC ID and the APIC base
// MSR. Group calls it on the target of an INIT IPI.
func (l *LAPIC) InitReset() {
	l.mu.Lock()
	l.r = powerUp(l.r.enabled)
	l.unlock(effects{reprogram: true})
}

// LINT0ExtINT reports whether the 8259's output reaches this vCPU: LINT0 is
// unmasked in ExtINT mode (virtual-wire mode), or the APIC is globally
// disabled and LINT0 is the CPU's INTR pin. An ExtINT interrupt bypasses
// IRR, ISR and the priorities: the VM takes its vector from the PIC's
// acknowledge cycle, as it does without a LAPIC.
func (l *LAPIC) LINT0ExtINT() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.r.enabled || l.lintIs(LVTLINT0, lvtModeExtINT)
}

// LINT1NMI reports whether an NMI on the LINT1 pin reaches this vCPU:
// LINT1 is unmasked in NMI mode, or the APIC is globally disabled and
// LINT1 is the CPU's NMI pin.
func (l *LAPIC) LINT1NMI() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.r.enabled || l.lintIs(LVTLINT1, lvtModeNMI)
}

// lintIs reports whether LVT entry i is unmasked with delivery mode mode.
// Precondition: mu held.
func (l *LAPIC) lintIs(i int, mode uint32) bool {
	v := l.r.lvt[i]
	return v&LVTMasked == 0 && (v>>8)&7 == mode
}

// effects are what a locked operation leaves to do once mu is released.
type effects struct {
	interrupt bool // an interrupt entered IRR: OnInterrupt
	reprogram bool // NextDeadline may have changed: OnReprogram
	levelEOI  bool // an EOI ended level-triggered eoiVector: OnLevelEOI
	eoiVector uint8
	send      bool // the guest wrote the ICR: ipi goes on the Bus
	ipi       IPI
}

// unlock releases mu and carries out e.
// Precondition: mu held.
func (l *LAPIC) unlock(e effects) {
	l.mu.Unlock()
	if e.reprogram && l.onReprogram != nil {
		l.onReprogram()
	}
	if e.levelEOI && l.onLevelEOI != nil {
		l.onLevelEOI(e.eoiVector)
	}
	if e.send && l.bus != nil {
		l.bus.SendIPI(l.id, e.ipi)
	}
	if e.interrupt && l.onInterrupt != nil {
		l.onInterrupt()
	}
}
