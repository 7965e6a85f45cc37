package cpu

import "time"

// Clock is a VM's time base as an engine sees it: guest nanoseconds since
// the VM started, standing still while the VM is paused (hv/vclock). An
// engine whose TSC follows time counts it from a Clock, never from the
// host's clock, so that a paused VM's TSC stops with the rest of its time.
type Clock interface {
	Now() time.Duration
}

// VCPU is one virtual CPU of an engine.
type VCPU interface {
	// Run executes guest instructions until an exit and returns it. budget is
	// the number of guest instructions Run may retire before ExitBudget; an
	// engine that cannot count instructions converts it to time.
	Run(budget uint64) (*Exit, error)

	Regs() Regs
	SetRegs(Regs)
	SRegs() SRegs
	SetSRegs(SRegs) error
	FPU() FPU
	SetFPU(FPU)
	MSRs() MSRs
	SetMSRs(MSRs)

	// InjectException delivers an exception at the current instruction on
	// the next Run, cancelling any pending exit completion.
	InjectException(vector uint8, errorCode uint32, hasError bool)
	// SetIRQ raises (vector >= 0) or withdraws (vector < 0) the external
	// interrupt line. The engine delivers it through the IDT when RFLAGS.IF
	// and the interrupt shadow allow; IRQPending turns false once it has.
	SetIRQ(vector int)
	// IRQPending reports whether a vector given to SetIRQ is undelivered.
	IRQPending() bool
	// FlushTLB drops cached translations (global ones too if global).
	FlushTLB(global bool)
	// FlushTLBPage drops the cached translation of one virtual page.
	FlushTLBPage(va uint64)
	// CPUID answers a CPUID leaf as this vCPU reports it (its APIC ID,
	// its VM's CPUIDConfig): what an emulator of the instruction returns.
	CPUID(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
	// RequestIRQWindow makes Run return ExitIRQWindow as soon as the guest
	// can take an interrupt.
	RequestIRQWindow(bool)
	// Kick makes a running Run return ExitKick soon. Safe from any goroutine.
	Kick()
	// RemoteFlushTLB is FlushTLB from any goroutine, as an IPI-driven
	// flush: when it returns, the vCPU uses no translation cached before
	// the call (a vCPU inside Run flushes at its next instruction
	// boundary it can, and the caller waits for it).
	RemoteFlushTLB(global bool)

	// Translate walks the guest's page tables for an access to va
	// (setting Accessed, and Dirty when write), as the CPU would: a user
	// access (the permissions CPL 3 has) when user, else a supervisor one.
	// On a fault ok is false and vector/errCode say what the CPU would
	// raise (#PF with its error code, or #GP(0) for a non-canonical
	// address).
	Translate(va uint64, write, user bool) (gpa uint64, vector uint8, errCode uint32, ok bool)

	// TSC returns the vCPU's current time-stamp counter.
	TSC() uint64
	// SetTSC sets the time-stamp counter (WRMSR to IA32_TSC); it goes on
	// counting from v.
	SetTSC(v uint64)

	// Stats returns engine counters.
	Stats() Stats

	// SaveState returns the vCPU's whole state (EngineState). It is
	// called between Run calls only, after the hypervisor has answered
	// the last exit; SaveState does not change the vCPU.
	SaveState() (EngineState, error)
	// RestoreState replaces the vCPU's state with s, saved by SaveState
	// of a vCPU of the same engine, and drops the vCPU's caches. It
	// refuses (with an error, leaving the vCPU unchanged) a state no vCPU
	// could have been in. Between Run calls only.
	RestoreState(s EngineState) error
}

// Stats are counters an engine keeps per vCPU.
type Stats struct {
	Instructions      uint64
	Exits             [NumExitReasons]uint64
	Exceptions        [32]uint64
	Interrupts        uint64
	TLBMisses         uint64
	DecodedBlocks     uint64
	CodeInvalidations uint64

	// A translating engine's counters (0 for the others).
	TranslatedBlocks uint64 // blocks translated to host code
	TranslatedInsts  uint64 // instructions in them
	TranslatedRuns   uint64 // translated blocks run (entered from the dispatch loop or chained)

	// Multiprocessor counters (one memory, several vCPUs).
	LockRetries uint64 // locked instructions run again after another vCPU changed the location
	SplitLocks  uint64 // locked instructions run alone: the operand spans regions, pages or MMIO
	Exclusive   uint64 // times this vCPU parked the others to run alone
	Parks       uint64 // times this vCPU was parked for another
	Shootdowns  uint64 // code-page write-permission shootdowns this vCPU waited for
}
