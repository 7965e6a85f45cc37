package cpu

import "fmt"

// ExitReason says why Run returned.
type ExitReason uint8

// Exit reasons. The numbering is internal (not ABI) but stable within a build.
const (
	ExitNone        ExitReason = iota
	ExitHypercall              // VMCALL (or the engine's hypercall instruction)
	ExitIO                     // IN, OUT, INS, OUTS
	ExitMMIO                   // access to a guest-physical address outside RAM
	ExitHLT                    // HLT with interrupts enabled or disabled
	ExitCPUID                  // CPUID
	ExitMSR                    // RDMSR or WRMSR
	ExitCR                     // MOV to/from a control register, CLTS
	ExitDescTable              // LGDT, LIDT, LLDT, LTR
	ExitINVLPG                 // INVLPG
	ExitShadowFault            // a write to a guest page-table page the shadow MMU write-protects (ShadowPageTables); Run again completes it
	ExitTripleFault            // a fault while delivering #DF: the vCPU is dead
	ExitBudget                 // the instruction budget given to Run ran out
	ExitKick                   // Kick was called
	ExitPrivileged             // a privileged instruction the mode hands to hv/emul
	ExitIRQWindow              // the guest can take an interrupt now (requested)
	ExitInternal               // the engine could not continue (bug or unsupported)
	numExitReasons
)

var exitNames = [...]string{
	ExitNone:        "none",
	ExitHypercall:   "hypercall",
	ExitIO:          "io",
	ExitMMIO:        "mmio",
	ExitHLT:         "hlt",
	ExitCPUID:       "cpuid",
	ExitMSR:         "msr",
	ExitCR:          "cr",
	ExitDescTable:   "desc-table",
	ExitINVLPG:      "invlpg",
	ExitShadowFault: "shadow-fault",
	ExitTripleFault: "triple-fault",
	ExitBudget:      "budget",
	ExitKick:        "kick",
	ExitPrivileged:  "privileged",
	ExitIRQWindow:   "irq-window",
	ExitInternal:    "internal",
}

// NumExitReasons is the number of exit reasons, for counters indexed by reason.
const NumExitReasons = int(numExitReasons)

func (r ExitReason) String() string {
	if int(r) < len(exitNames) {
		return exitNames[r]
	}
	return fmt.Sprintf("exit(%d)", r)
}

// Exit describes one exit. Which fields are meaningful depends on Reason;
// the "complete by" column says what the hypervisor fills before the next Run.
//
//	reason       fields read                      complete by
//	hypercall    Hypercall.Nr, Args               Hypercall.Ret (written to RAX; RIP advanced)
//	io out       IO.Port, Size, Data              nothing
//	io in        IO.Port, Size                    IO.Data (written to AL/AX/EAX; RIP advanced)
//	mmio write   MMIO.Addr, Size, Data            nothing
//	mmio read    MMIO.Addr, Size                  MMIO.Data (the instruction is re-run with it)
//	hlt          -                                nothing (RIP already past HLT)
//	cpuid        CPUID.Leaf, Sub                  CPUID.EAX..EDX
//	msr read     MSR.Index, Known, Value          MSR.Value (to EDX:EAX), or InjectException(GP)
//	msr write    MSR.Index, Known, Value          nothing, or InjectException(GP)
//	cr           CR.Num, Write, Value             nothing (RIP advanced, state already set)
//	privileged   Inst[:Len], RIP                  the emulator sets state and RIP itself
//	triple/internal  Message                      the VM stops
//
// Any exit can instead be answered with InjectException, which cancels the
// completion and delivers the exception at the exiting instruction.
type Exit struct {
	Reason ExitReason
	RIP    uint64 // address of the exiting instruction

	Hypercall struct {
		Nr   uint64
		Args [6]uint64
		Ret  uint64
	}
	IO struct {
		Port uint16
		Size uint8 // 1, 2 or 4
		In   bool
		Data uint32
	}
	MMIO struct {
		Addr  uint64
		Size  uint8
		Write bool
		Data  uint64
	}
	CPUID struct {
		Leaf, Sub          uint32
		EAX, EBX, ECX, EDX uint32
	}
	MSR struct {
		Index uint32
		Write bool
		// Known: the engine implements this MSR; for a read Value is
		// already filled, for a write the engine has applied it.
		Known bool
		Value uint64
	}
	CR struct {
		Num   uint8
		Write bool
		Value uint64
	}
	// Inst holds the bytes of a privileged instruction (ExitPrivileged) or of
	// the instruction that faulted (ExitInternal).
	Inst    [15]byte
	InstLen uint8
	// Fault describes the exception behind ExitShadowFault and ExitTripleFault.
	Fault struct {
		Vector uint8
		Error  uint32
		Addr   uint64 // CR2 for #PF
	}
	Message string // ExitInternal and ExitTripleFault: what happened
}

// Exception vectors.
const (
	ExcDE  = 0
	ExcDB  = 1
	ExcNMI = 2
	ExcBP  = 3
	ExcOF  = 4
	ExcBR  = 5
	ExcUD  = 6
	ExcNM  = 7
	ExcDF  = 8
	ExcTS  = 10
	ExcNP  = 11
	ExcSS  = 12
	ExcGP  = 13
	ExcPF  = 14
	ExcMF  = 16
	ExcAC  = 17
	ExcMC  = 18
	ExcXM  = 19
)

// HasErrorCode reports whether exception vector pushes an error code
// (SDM Vol. 3, Table 6-1: #DF, #TS, #NP, #SS, #GP, #PF, #AC).
func HasErrorCode(vector uint8) bool {
	switch vector {
	case ExcDF, ExcTS, ExcNP, ExcSS, ExcGP, ExcPF, ExcAC:
		return true
	}
	return false
}

// Page-fault error code bits.
const (
	PFPresent = 1 << 0
	PFWrite   = 1 << 1
	PFUser    = 1 << 2
	PFRsvd    = 1 << 3
	PFFetch   = 1 << 4
)
