package cpu

import "fmt"

// Mode is the virtualization technique a VM runs under (the table in
// README.md and docs/engine.md: pv, trap, hwassist).
type Mode uint8

const (
	// ModePV runs a patched kernel whose privileged operations are
	// hypercalls; a privileged instruction still exits, and is counted.
	ModePV Mode = iota
	// ModeTrap runs an unpatched kernel with every privileged instruction
	// trapped and emulated by hv/emul on virtual state.
	ModeTrap
	// ModeHWAssist exits only where VT-x with EPT would.
	ModeHWAssist
	NumModes
)

var modeNames = [NumModes]string{"pv", "trap", "hwassist"}

func (m Mode) String() string {
	if m < NumModes {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", m)
}

// ParseMode parses a --mode value.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q: want pv, trap or hwassist", s)
}

// Class is a class of sensitive instruction, the unit of the exit table.
type Class uint8

const (
	ClassCPUID     Class = iota // CPUID
	ClassHLT                    // HLT
	ClassIO                     // IN, OUT, INS, OUTS
	ClassRDMSR                  // RDMSR
	ClassWRMSR                  // WRMSR
	ClassCRRead                 // MOV from CR0/3/4/8
	ClassCR0Write               // MOV to CR0, CLTS, LMSW
	ClassCR3Write               // MOV to CR3
	ClassCR4Write               // MOV to CR4
	ClassCR8Write               // MOV to CR8
	ClassDRAccess               // MOV to/from DR0-7
	ClassDescLoad               // LGDT, LIDT, LLDT, LTR
	ClassDescStore              // SGDT, SIDT, SLDT, STR, SMSW
	ClassINVLPG                 // INVLPG, INVPCID
	ClassCacheCtl               // WBINVD, INVD
	ClassRDTSC                  // RDTSC, RDTSCP
	ClassRDPMC                  // RDPMC
	ClassHypercall              // VMCALL, VMMCALL
	ClassSWAPGS                 // SWAPGS
	ClassSysRet                 // SYSRET, IRET to a lower privilege, SYSEXIT
	ClassCR2Read                // MOV from CR2
	NumClasses
)

var classNames = [NumClasses]string{
	"cpuid", "hlt", "io", "rdmsr", "wrmsr", "cr-read", "cr0-write",
	"cr3-write", "cr4-write", "cr8-write", "dr-access", "desc-load",
	"desc-store", "invlpg", "cache-ctl", "rdtsc", "rdpmc", "hypercall",
	"swapgs", "sysret", "cr2-read",
}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", c)
}

// Action is what an engine does with an instruction of a class.
type Action uint8

const (
	// ActExecute: the engine carries the instruction out on its own state.
	ActExecute Action = iota
	// ActExit: the engine stops with the typed exit for the class (ExitCPUID,
	// ExitIO, ...), to be completed by the hypervisor.
	ActExit
	// ActPrivileged: the engine stops with ExitPrivileged carrying the
	// instruction bytes; hv/emul emulates it on virtual state.
	ActPrivileged
)

var actionNames = [...]string{"execute", "exit", "privileged"}

func (a Action) String() string { return actionNames[a] }

// ExitTable is the single table deciding, per mode, which instructions leave
// the engine. Engines index it; nothing else decides.
//
// Rationale per mode:
//   - pv: the patched kernel should never execute a privileged instruction
//     after PV start-up; each one that does is handed to the hypervisor as
//     ExitPrivileged so it is counted (and emulated during early boot).
//     CPUID is not privileged on x86 and is answered by the engine from the
//     shaped table. VMCALL is the hypercall. CR2 is virtualized like
//     RFLAGS.IF: the engine holds the faulting address, so the page-fault
//     handler reads it without an exit (Xen PV passes it in memory instead).
//   - trap: classic trap-and-emulate; every privileged instruction traps,
//     including CPUID and RDTSC (a deprivileged kernel would see them trap
//     only with CPUID faulting and CR4.TSD, which the model assumes).
//   - hwassist: what VT-x with EPT and the usual KVM controls exits on:
//     CPUID, HLT, I/O, MSRs, CR0/CR4 writes, CR8 with no TPR shadow; not CR3,
//     INVLPG, descriptor tables or RDTSC.
var ExitTable = [NumModes][NumClasses]Action{
	ModePV: {
		ClassCPUID:     ActExecute,
		ClassHLT:       ActPrivileged,
		ClassIO:        ActPrivileged,
		ClassRDMSR:     ActPrivileged,
		ClassWRMSR:     ActPrivileged,
		ClassCRRead:    ActPrivileged,
		ClassCR0Write:  ActPrivileged,
		ClassCR3Write:  ActPrivileged,
		ClassCR4Write:  ActPrivileged,
		ClassCR8Write:  ActPrivileged,
		ClassDRAccess:  ActPrivileged,
		ClassDescLoad:  ActPrivileged,
		ClassDescStore: ActExecute,
		ClassINVLPG:    ActPrivileged,
		ClassCacheCtl:  ActPrivileged,
		ClassRDTSC:     ActExecute,
		ClassRDPMC:     ActPrivileged,
		ClassHypercall: ActExit,
		ClassSWAPGS:    ActExecute,
		ClassSysRet:    ActExecute,
		ClassCR2Read:   ActExecute,
	},
	ModeTrap: {
		ClassCPUID:     ActPrivileged,
		ClassHLT:       ActPrivileged,
		ClassIO:        ActPrivileged,
		ClassRDMSR:     ActPrivileged,
		ClassWRMSR:     ActPrivileged,
		ClassCRRead:    ActPrivileged,
		ClassCR0Write:  ActPrivileged,
		ClassCR3Write:  ActPrivileged,
		ClassCR4Write:  ActPrivileged,
		ClassCR8Write:  ActPrivileged,
		ClassDRAccess:  ActPrivileged,
		ClassDescLoad:  ActPrivileged,
		ClassDescStore: ActPrivileged,
		ClassINVLPG:    ActPrivileged,
		ClassCacheCtl:  ActPrivileged,
		ClassRDTSC:     ActPrivileged,
		ClassRDPMC:     ActPrivileged,
		ClassHypercall: ActExit,
		ClassSWAPGS:    ActExecute,
		ClassSysRet:    ActExecute,
		ClassCR2Read:   ActPrivileged,
	},
	ModeHWAssist: {
		ClassCPUID:     ActExit,
		ClassHLT:       ActExit,
		ClassIO:        ActExit,
		ClassRDMSR:     ActExit,
		ClassWRMSR:     ActExit,
		ClassCRRead:    ActExecute,
		ClassCR0Write:  ActExit,
		ClassCR3Write:  ActExecute,
		ClassCR4Write:  ActExit,
		ClassCR8Write:  ActExit,
		ClassDRAccess:  ActExecute,
		ClassDescLoad:  ActExecute,
		ClassDescStore: ActExecute,
		ClassINVLPG:    ActExecute,
		ClassCacheCtl:  ActExecute,
		ClassRDTSC:     ActExecute,
		ClassRDPMC:     ActExecute,
		ClassHypercall: ActExit,
		ClassSWAPGS:    ActExecute,
		ClassSysRet:    ActExecute,
		ClassCR2Read:   ActExecute,
	},
}

// ShadowPageTables says, per mode, whether the engine models a shadow MMU:
// trap mode is classic trap-and-emulate, where the hypervisor keeps shadow
// copies of the guest's page tables and so write-protects every guest
// page-table page. A guest write to one then leaves the engine as
// ExitShadowFault (the hypervisor's shadow update); running again
// re-executes the instruction, which completes. Translation itself stays
// two-stage (the engine walks the guest's tables): the model reproduces the
// exits, which are the cost, not the copies. A page stops being treated as a
// page table after ShadowFloodWrites trapped writes with no walk through it in
// between: the next write completes without an exit (the "write flooding"
// heuristic of shadow MMUs, for pages the guest has freed and reused). pv and hwassist (EPT) have no shadow.
var ShadowPageTables = [NumModes]bool{ModeTrap: true}

// ShadowFloodWrites: see ShadowPageTables.
const ShadowFloodWrites = 16
