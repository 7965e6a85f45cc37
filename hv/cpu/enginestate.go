package cpu

import (
	"errors"
	"fmt"
)

// EngineState is the whole state of a vCPU between two Run calls, as
// VCPU.SaveState returns it and VCPU.RestoreState takes it back: the
// architectural registers plus the hidden state (pending events, an exit
// whose answer is not yet consumed) that decide what the next Run does. A
// vCPU restored from it continues exactly as the one that saved it would
// have. Caches (soft TLBs, decoded code) are not part of it.
//
// It is plain data (no pointers, maps or interfaces), so encoding/gob
// encodes it deterministically. A saved state is operator input:
// RestoreState checks every field (CheckEngineState for the architectural
// rules, the engine for its own) and refuses anything a vCPU could not
// have been in.
type EngineState struct {
	// Engine names the engine that saved the state ("interp"). Internal
	// is that engine's own; an engine refuses a state saved by another.
	Engine string

	// Regs holds the general registers, RIP and RFLAGS (with the
	// arithmetic flags computed, however the engine keeps them).
	Regs Regs
	// SRegs holds the segment registers with their hidden descriptor
	// caches (FS.Base and GS.Base are the FS and GS base MSRs), GDTR,
	// IDTR, LDTR, TR, CR0, CR2, CR3, CR4, CR8, EFER and DR0-DR7 (stored
	// as written: no engine implements debug breakpoints).
	SRegs SRegs
	// FPU holds the x87, MMX and SSE registers and MXCSR, as FXSAVE
	// keeps them.
	FPU FPU
	// MSRs holds the model-specific registers outside SRegs (syscall
	// MSRs, kernel GS base, PAT, TSC_AUX...).
	MSRs MSRs
	// TSC is the time-stamp counter when the state was saved; the
	// restored vCPU's counter continues from this value. An engine whose
	// TSC follows the VM's clock (Clock: guest nanoseconds, standing still
	// while the VM is paused) keeps TSC = clock + offset and sets the
	// offset at restore so that the TSC reads TSC at the clock's time
	// then: the VM's clock is restored first (to the saved guest time,
	// hv/vclock), and the offset is then the saved vCPU's, so pvclock's
	// TSC-to-time mapping holds across the snapshot. An engine whose TSC
	// counts retired instructions goes on counting from TSC.
	TSC uint64
	// Retired is the number of instructions the vCPU has retired
	// (Stats.Instructions); it goes on counting from this value.
	Retired uint64

	// Events is the interrupt and exception state not yet acted on.
	Events EventState
	// Completion is an exit the hypervisor has answered (filled in the
	// Exit) whose answer the next Run consumes before anything else.
	Completion Completion
	// Internal is state of the engine's own instruction-restart machinery;
	// an engine that has none keeps it zero and refuses a non-zero one.
	Internal InternalState
}

// EventState is the pending event state of a vCPU. Halt is not in it: HLT
// is an exit, and the hypervisor keeps a halted vCPU out of Run.
type EventState struct {
	// InterruptShadow: the next instruction runs before an external
	// interrupt can be taken (after an STI that set IF, MOV SS or POP SS).
	InterruptShadow bool
	// Injected is an exception given to InjectException and not yet
	// delivered.
	Injected PendingException
	// Raised is an exception, or a software interrupt (INT n, INT3, INT1),
	// that an instruction raised and that is not yet delivered. It is
	// delivered first on the next Run, before Injected.
	Raised PendingException
	// IRQ is the vector on the external interrupt line (SetIRQ) not yet
	// delivered, 0-255, or -1 when the line is low.
	IRQ int16
	// IRQWindow: RequestIRQWindow(true) is in force.
	IRQWindow bool
}

// PendingException is an exception waiting for delivery.
type PendingException struct {
	Valid  bool
	Vector uint8
	// HasError: the exception pushes Error (exactly the vectors of
	// HasErrorCode; never for a software interrupt).
	HasError bool
	Error    uint32
	// Soft: a software interrupt (INT n, INT3): the gate's DPL is checked
	// and the pushed RIP is that of the next instruction. Only in Raised.
	Soft bool
	// InstRIP is, for Soft, the address of the INT instruction: a fault
	// while delivering it is reported there.
	InstRIP uint64
}

// CompletionKind says which answered exit a Completion completes.
type CompletionKind uint8

// Completion kinds.
const (
	CompletionNone      CompletionKind = iota
	CompletionIn                       // IN: Size bytes of Data go to AL/AX/EAX
	CompletionMMIORead                 // MMIO read: Size bytes of Data from Addr; the instruction runs again
	CompletionCPUID                    // CPUID: CPUID goes to EAX, EBX, ECX, EDX
	CompletionRDMSR                    // RDMSR: Data goes to EDX:EAX
	CompletionHypercall                // hypercall: Data goes to RAX
	CompletionINS                      // INS: Data from Port; the instruction runs again
	NumCompletionKinds
)

// Completion is an answered exit not yet consumed: Exit.RIP and the Exit
// fields the hypervisor filled, per Kind.
type Completion struct {
	Kind CompletionKind
	// RIP is the address of the instruction that exited (Exit.RIP);
	// InjectException rewinds to it.
	RIP   uint64
	Port  uint16    // In, INS: Exit.IO.Port
	Addr  uint64    // MMIORead: Exit.MMIO.Addr (guest-physical)
	Size  uint8     // In, INS: Exit.IO.Size; MMIORead: Exit.MMIO.Size
	Data  uint64    // In, INS: Exit.IO.Data; MMIORead: Exit.MMIO.Data; RDMSR: Exit.MSR.Value; Hypercall: Exit.Hypercall.Ret
	CPUID [4]uint32 // CPUID: Exit.CPUID.EAX, EBX, ECX, EDX
}

// InternalState is the interpreter's (hv/interp) instruction-restart
// state. An instruction (or an event delivery) that exits for an MMIO
// read, an INS or a shadow page-table write is run again from its start;
// what it learnt before is kept here, keyed by its address and the retire
// count it started at.
type InternalState struct {
	// StepOne: the next block is one instruction long (an interrupt
	// shadow was consumed before the instruction it covers ran).
	StepOne bool
	// MMIOReads are the answers to the MMIO reads of the instruction at
	// MMIORIP, attempt MMIOSeq (its retire count), in order; MMIOPos of
	// them were taken by the current run of it. MMIORIP and MMIOSeq are
	// set without answers when the first MMIO read's answer is the
	// pending Completion.
	MMIOReads []MMIORead
	MMIOPos   uint32
	MMIORIP   uint64
	MMIOSeq   uint64
	// INSReady: INSData is the answer from port INSPort for the INS at
	// INSRIP, to be stored when it runs again.
	INSReady bool
	INSRIP   uint64
	INSPort  uint16
	INSData  uint32
	// ShadowFault: the instruction at ShadowRIP, attempt ShadowSeq, exited
	// for a shadow page-table write and completes when it runs again.
	ShadowFault bool
	ShadowRIP   uint64
	ShadowSeq   uint64
}

// MMIORead is one answered MMIO read.
type MMIORead struct {
	Addr uint64
	Size uint8
	Data uint64
}

// Segment type bits (Segment.Attr bits 0-3).
const (
	segTypeAccessed = 0x1
	segTypeRW       = 0x2 // data: writable; code: readable
	segTypeCode     = 0x8
	segAttrReserved = 0xf00 // bits 11:8 between the access byte and the flags
	segTypeBusyTSS  = 0xb   // busy 64-bit TSS
	segTypeLDT      = 0x2
)

// CheckEngineState checks the architectural part of s against the rules
// of a pvisor vCPU (long mode with paging, the CR and MSR rules of
// rules.go and msr.go, the descriptor-cache checks a VM entry makes) and
// returns an error naming the first field that breaks one. Engines call it
// from RestoreState and check Internal themselves.
func CheckEngineState(s *EngineState) error {
	if err := checkSRegs(&s.SRegs); err != nil {
		return err
	}
	cs := s.SRegs.CS
	rip := s.Regs.RIP
	if !Canonical(rip) {
		return fmt.Errorf("RIP %#x is not canonical", rip)
	}
	if cs.Attr&SegAttrL == 0 && rip>>32 != 0 {
		return fmt.Errorf("RIP %#x does not fit the 32-bit code segment", rip)
	}
	fl := s.Regs.RFLAGS
	if fl&FlagsFixed == 0 || fl&^(FlagsLongMode|FlagsFixed) != 0 {
		return fmt.Errorf("RFLAGS %#x: reserved bits (bit 1 must be set; VM, 3, 5, 15 and 22-63 clear)", fl)
	}
	if err := checkMSRs(s); err != nil {
		return err
	}
	return checkEvents(&s.Events)
}

func checkSRegs(s *SRegs) error {
	if v, ok := CR0Write(s.CR0); !ok || v != s.CR0 {
		return fmt.Errorf("CR0 %#x: reserved bits, ET clear, or not protected mode with paging", s.CR0)
	}
	if v, ok := CR3Write(s.CR3); !ok || v != s.CR3 {
		return fmt.Errorf("CR3 %#x: reserved bits", s.CR3)
	}
	if _, ok := CR4Write(s.CR4); !ok {
		return fmt.Errorf("CR4 %#x: reserved bits or PAE clear", s.CR4)
	}
	if _, ok := CR8Write(s.CR8); !ok {
		return fmt.Errorf("CR8 %#x: reserved bits", s.CR8)
	}
	if s.EFER&^EFERWritable != 0 || s.EFER&(EFERLME|EFERLMA) != EFERLME|EFERLMA {
		return fmt.Errorf("EFER %#x: reserved bits, or LME/LMA clear (only long mode runs)", s.EFER)
	}
	cs := s.CS
	if cs.Attr&SegAttrP == 0 || cs.Attr&SegAttrS == 0 || cs.Attr&segTypeCode == 0 {
		return fmt.Errorf("CS attributes %#x: not a present code segment", cs.Attr)
	}
	if cs.Attr&(SegAttrL|SegAttrDB) == SegAttrL|SegAttrDB {
		return fmt.Errorf("CS attributes %#x: L and D both set", cs.Attr)
	}
	if s.SS.Selector&3 != cs.Selector&3 {
		return fmt.Errorf("SS selector %#x and CS selector %#x differ in RPL (the CPL)", s.SS.Selector, cs.Selector)
	}
	for _, g := range []struct {
		name string
		seg  Segment
	}{{"CS", s.CS}, {"SS", s.SS}, {"DS", s.DS}, {"ES", s.ES}, {"FS", s.FS}, {"GS", s.GS}} {
		seg := g.seg
		if seg.Attr&segAttrReserved != 0 {
			return fmt.Errorf("%s attributes %#x: reserved bits 11:8", g.name, seg.Attr)
		}
		switch g.name {
		case "FS", "GS":
			if !Canonical(seg.Base) {
				return fmt.Errorf("%s base %#x is not canonical", g.name, seg.Base)
			}
		default:
			if seg.Base>>32 != 0 {
				return fmt.Errorf("%s base %#x does not fit 32 bits", g.name, seg.Base)
			}
		}
		if seg.Attr&SegAttrP == 0 || g.name == "CS" {
			continue // a null (unusable) data segment register
		}
		if seg.Attr&SegAttrS == 0 {
			return fmt.Errorf("%s attributes %#x: a system segment", g.name, seg.Attr)
		}
		code, rw := seg.Attr&segTypeCode != 0, seg.Attr&segTypeRW != 0
		if g.name == "SS" && (code || !rw) {
			return fmt.Errorf("SS attributes %#x: not a writable data segment", seg.Attr)
		}
		if code && !rw {
			return fmt.Errorf("%s attributes %#x: an execute-only code segment", g.name, seg.Attr)
		}
	}
	tr := s.TR
	if tr.Selector&4 != 0 || tr.Attr&(SegAttrS|SegAttrP|0xf) != SegAttrP|segTypeBusyTSS || tr.Attr&segAttrReserved != 0 {
		return fmt.Errorf("TR selector %#x attributes %#x: not a present busy 64-bit TSS in the GDT", tr.Selector, tr.Attr)
	}
	if !Canonical(tr.Base) {
		return fmt.Errorf("TR base %#x is not canonical", tr.Base)
	}
	ldt := s.LDT
	if ldt.Attr&SegAttrP != 0 && (ldt.Selector&4 != 0 || ldt.Attr&(SegAttrS|0xf) != segTypeLDT || ldt.Attr&segAttrReserved != 0) {
		return fmt.Errorf("LDTR selector %#x attributes %#x: not an LDT in the GDT", ldt.Selector, ldt.Attr)
	}
	if !Canonical(ldt.Base) {
		return fmt.Errorf("LDTR base %#x is not canonical", ldt.Base)
	}
	if !Canonical(s.GDT.Base) {
		return fmt.Errorf("GDTR base %#x is not canonical", s.GDT.Base)
	}
	if !Canonical(s.IDT.Base) {
		return fmt.Errorf("IDTR base %#x is not canonical", s.IDT.Base)
	}
	return nil
}

// checkMSRs writes every MSR of s through the MSR model (WriteMSR) and
// requires it to take the value unchanged.
func checkMSRs(s *EngineState) error {
	var m MSRState
	m.EFER = s.SRegs.EFER
	m.MSRs.MiscEnable = s.MSRs.MiscEnable // outside the MSR model: held as set
	for _, w := range []struct {
		idx uint32
		v   uint64
	}{
		{MSRSTAR, s.MSRs.STAR}, {MSRLSTAR, s.MSRs.LSTAR}, {MSRCSTAR, s.MSRs.CSTAR},
		{MSRSFMASK, s.MSRs.SFMASK}, {MSRKernelGSBase, s.MSRs.KernelGSBase},
		{MSRSysenterCS, s.MSRs.SysenterCS}, {MSRSysenterESP, s.MSRs.SysenterESP},
		{MSRSysenterEIP, s.MSRs.SysenterEIP}, {MSRPAT, s.MSRs.PAT}, {MSRTSCAux, s.MSRs.TSCAux},
		{MSRFSBase, s.SRegs.FS.Base}, {MSRGSBase, s.SRegs.GS.Base},
	} {
		if WriteMSR(&m, w.idx, w.v) != MSRWritten {
			return fmt.Errorf("MSR %#x value %#x: refused by the MSR model", w.idx, w.v)
		}
		if got, _ := ReadMSR(&m, w.idx); got != w.v {
			return fmt.Errorf("MSR %#x value %#x: reserved bits (the MSR holds %#x)", w.idx, w.v, got)
		}
	}
	return nil
}

func checkEvents(e *EventState) error {
	if e.IRQ < -1 || e.IRQ > 255 {
		return fmt.Errorf("IRQ vector %d: not -1 or 0-255", e.IRQ)
	}
	if err := checkPending(&e.Injected, false); err != nil {
		return fmt.Errorf("injected exception: %v", err)
	}
	if err := checkPending(&e.Raised, true); err != nil {
		return fmt.Errorf("raised exception: %v", err)
	}
	return nil
}

func checkPending(p *PendingException, softOK bool) error {
	if !p.Valid {
		if *p != (PendingException{}) {
			return errors.New("fields set on an invalid entry")
		}
		return nil
	}
	if p.Soft {
		if !softOK {
			return errors.New("a software interrupt cannot be injected")
		}
		if p.HasError || p.Error != 0 {
			return fmt.Errorf("software interrupt %d with an error code", p.Vector)
		}
		if !Canonical(p.InstRIP) {
			return fmt.Errorf("software interrupt at non-canonical %#x", p.InstRIP)
		}
		return nil
	}
	if p.InstRIP != 0 {
		return errors.New("InstRIP set on an exception")
	}
	if p.Vector >= 32 {
		return fmt.Errorf("vector %d is not an exception (0-31)", p.Vector)
	}
	if p.HasError != HasErrorCode(p.Vector) {
		return fmt.Errorf("vector %d: HasError %v, the vector has an error code: %v", p.Vector, p.HasError, HasErrorCode(p.Vector))
	}
	if !p.HasError && p.Error != 0 {
		return fmt.Errorf("vector %d: error code %#x without HasError", p.Vector, p.Error)
	}
	return nil
}
