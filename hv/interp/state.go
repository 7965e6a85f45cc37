package interp

import (
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Saved state (cpu.EngineState). Between two Run calls the vCPU's state is
// its registers plus a little hidden state: pending events, an answered
// exit, and what an instruction or event delivery that is run again after
// an exit learnt the first time (the MMIO answers, an INS's data, a
// shadow-fault pass). A position inside a block or a delivery is not state
// there: every Run starts a new block at RIP, and a delivery stopped by an
// exit is queued again. Caches (soft TLB, decoded blocks) are not saved;
// RestoreState flushes them.

// EngineName is the name this engine gives cpu.EngineState.Engine.
const EngineName = "interp"

// SaveState implements cpu.VCPU. It must not be called while Run runs.
func (c *CPU) SaveState() (cpu.EngineState, error) {
	if c.pendExc.valid || c.pc != c.blkStart {
		return cpu.EngineState{}, errors.New("interp: SaveState inside an instruction (called during Run?)")
	}
	if c.delivering != 0 {
		// Only an engine failure (ExitInternal) leaves a delivery half
		// done; an MMIO exit puts the event back (undeliver).
		return cpu.EngineState{}, errors.New("interp: SaveState: the vCPU stopped inside an event delivery (engine failure)")
	}
	if c.irqVector > 255 {
		return cpu.EngineState{}, fmt.Errorf("interp: SaveState: IRQ vector %d given to SetIRQ is not 0-255", c.irqVector)
	}
	s := cpu.EngineState{
		Engine:  EngineName,
		Regs:    c.Regs(),
		SRegs:   c.SRegs(),
		FPU:     c.FPU(),
		MSRs:    c.msr,
		TSC:     c.tscNow(),
		Retired: c.retired,
	}
	ev := &s.Events
	ev.InterruptShadow = c.shadow
	ev.IRQ = -1
	if c.irqVector >= 0 {
		ev.IRQ = int16(c.irqVector)
	}
	ev.IRQWindow = c.wantWindow
	ev.Injected = pendingOut(c.injExc, 0)
	ev.Raised = pendingOut(c.excQueue, c.instStart)

	comp := &s.Completion
	if c.complete != compNone {
		comp.Kind = completionKinds[c.complete]
		comp.RIP = c.exit.RIP
	}
	switch c.complete {
	case compIn, compINS:
		comp.Port, comp.Size, comp.Data = c.exit.IO.Port, c.exit.IO.Size, uint64(c.exit.IO.Data)
	case compMMIORead:
		comp.Addr, comp.Size, comp.Data = c.exit.MMIO.Addr, c.exit.MMIO.Size, c.exit.MMIO.Data
	case compCPUID:
		comp.CPUID = [4]uint32{c.exit.CPUID.EAX, c.exit.CPUID.EBX, c.exit.CPUID.ECX, c.exit.CPUID.EDX}
	case compRDMSR:
		comp.Data = c.exit.MSR.Value
	case compHypercall:
		comp.Data = c.exit.Hypercall.Ret
	}

	in := &s.Internal
	in.StepOne = c.stepOne
	// Restart state belongs to the instruction at attempt c.retired (the
	// next to run); what belongs to an earlier attempt can never match
	// again and is left out.
	if l := &c.mmio; l.seq == c.retired && (l.n > 0 || l.rip != 0 || l.seq != 0) {
		// With no answers yet the log still names the instruction that
		// the answer to a pending MMIO read completion is recorded for.
		if l.n > 0 {
			in.MMIOReads = make([]cpu.MMIORead, l.n)
		}
		for i := range in.MMIOReads {
			e := &l.ent[i]
			in.MMIOReads[i] = cpu.MMIORead{Addr: e.addr, Size: e.size, Data: e.data}
		}
		in.MMIOPos, in.MMIORIP, in.MMIOSeq = uint32(l.pos), l.rip, l.seq
	}
	if c.insReady {
		in.INSReady, in.INSRIP, in.INSPort, in.INSData = true, c.insRIP, c.insPort, c.insData
	}
	if c.shadowOK && c.shadowSeq == c.retired {
		in.ShadowFault, in.ShadowRIP, in.ShadowSeq = true, c.shadowRIP, c.shadowSeq
	}
	return s, nil
}

// completionKinds maps the engine's completions to the saved kinds.
var completionKinds = [...]cpu.CompletionKind{
	compNone:      cpu.CompletionNone,
	compIn:        cpu.CompletionIn,
	compMMIORead:  cpu.CompletionMMIORead,
	compCPUID:     cpu.CompletionCPUID,
	compRDMSR:     cpu.CompletionRDMSR,
	compHypercall: cpu.CompletionHypercall,
	compINS:       cpu.CompletionINS,
}

func pendingOut(e excInfo, instRIP uint64) cpu.PendingException {
	if !e.valid {
		return cpu.PendingException{}
	}
	p := cpu.PendingException{Valid: true, Vector: e.vector, HasError: e.hasErr, Error: e.err, Soft: e.soft}
	if e.soft {
		p.InstRIP = instRIP
	}
	return p
}

func pendingIn(p cpu.PendingException) excInfo {
	if !p.Valid {
		return excInfo{}
	}
	return excInfo{valid: true, vector: p.Vector, hasErr: p.HasError, err: p.Error, soft: p.Soft}
}

// RestoreState implements cpu.VCPU. It checks s whole first and on error
// leaves the vCPU as it was. It drops the soft TLB and every decoded block
// of this vCPU, and starts the counters of Stats afresh (Instructions
// continues from s.Retired). Memory is not part of s: the caller restores guest memory
// (and tells the engine with Memory.Invalidate if it rewrote memory this
// vCPU has run) before the next Run.
func (c *CPU) RestoreState(s cpu.EngineState) error {
	if err := c.checkState(&s); err != nil {
		return fmt.Errorf("interp: restore: %w", err)
	}
	copy(c.r[:16], s.Regs.GPR[:])
	c.rip = s.Regs.RIP
	c.setFlagsAll(s.Regs.RFLAGS)

	sr := &s.SRegs
	c.sreg = [8]cpu.Segment{segES: sr.ES, segCS: sr.CS, segSS: sr.SS, segDS: sr.DS, segFS: sr.FS, segGS: sr.GS, segTR: sr.TR, segLDT: sr.LDT}
	c.segBase[1], c.segBase[2] = sr.FS.Base, sr.GS.Base
	c.gdt, c.idt = sr.GDT, sr.IDT
	c.cr0, c.cr2, c.cr3, c.cr4, c.cr8, c.efer = sr.CR0, sr.CR2, sr.CR3, sr.CR4, sr.CR8, sr.EFER
	c.dr = sr.DR
	c.setCPL(uint8(sr.CS.Selector & 3))
	c.fpu.load(s.FPU)
	c.msr = s.MSRs

	c.retired = s.Retired
	c.pc, c.blkStart, c.blockEnd = 0, 0, 0
	c.curPage = noPhys
	c.instStart = c.rip
	if c.tscClock != nil {
		c.tsc = s.TSC - uint64(c.tscClock.Now())
	} else {
		c.tsc = s.TSC - s.Retired*c.tscScale
	}

	ev := &s.Events
	c.shadow = ev.InterruptShadow
	c.irqVector = int(ev.IRQ)
	c.wantWindow = ev.IRQWindow
	c.injExc = pendingIn(ev.Injected)
	c.excQueue = pendingIn(ev.Raised)
	if ev.Raised.Soft {
		c.instStart = ev.Raised.InstRIP
	}
	c.pendExc = excInfo{}
	c.halted = false

	comp := &s.Completion
	c.complete = compNone
	for k, v := range completionKinds {
		if v == comp.Kind {
			c.complete = completion(k)
		}
	}
	c.exit = cpu.Exit{RIP: comp.RIP}
	switch comp.Kind {
	case cpu.CompletionIn, cpu.CompletionINS:
		c.exit.Reason = cpu.ExitIO
		c.exit.IO.Port, c.exit.IO.Size, c.exit.IO.In, c.exit.IO.Data = comp.Port, comp.Size, true, uint32(comp.Data)
	case cpu.CompletionMMIORead:
		c.exit.Reason = cpu.ExitMMIO
		c.exit.MMIO.Addr, c.exit.MMIO.Size, c.exit.MMIO.Data = comp.Addr, comp.Size, comp.Data
	case cpu.CompletionCPUID:
		c.exit.Reason = cpu.ExitCPUID
		c.exit.CPUID.EAX, c.exit.CPUID.EBX, c.exit.CPUID.ECX, c.exit.CPUID.EDX = comp.CPUID[0], comp.CPUID[1], comp.CPUID[2], comp.CPUID[3]
	case cpu.CompletionRDMSR:
		c.exit.Reason = cpu.ExitMSR
		c.exit.MSR.Value = comp.Data
	case cpu.CompletionHypercall:
		c.exit.Reason = cpu.ExitHypercall
		c.exit.Hypercall.Ret = comp.Data
	}
	c.exitPending = false

	in := &s.Internal
	c.stepOne = in.StepOne
	c.mmio.n, c.mmio.pos, c.mmio.rip, c.mmio.seq = len(in.MMIOReads), int(in.MMIOPos), in.MMIORIP, in.MMIOSeq
	for i, r := range in.MMIOReads {
		e := &c.mmio.ent[i]
		e.addr, e.size, e.data = r.Addr, r.Size, r.Data
	}
	c.insReady, c.insRIP, c.insPort, c.insData = in.INSReady, in.INSRIP, in.INSPort, in.INSData
	c.shadowOK, c.shadowRIP, c.shadowSeq = in.ShadowFault, in.ShadowRIP, in.ShadowSeq
	c.delivering = 0

	c.stats = cpu.Stats{}
	c.flushCaches()
	c.updateEvents()
	return nil
}

// checkState checks s as RestoreState needs it: the architectural rules
// (cpu.CheckEngineState) and this engine's own.
func (c *CPU) checkState(s *cpu.EngineState) error {
	if s.Engine != EngineName {
		return fmt.Errorf("state saved by engine %q, not %q", s.Engine, EngineName)
	}
	if err := cpu.CheckEngineState(s); err != nil {
		return err
	}
	if s.FPU.MXCSR&^mxcsrMask != 0 {
		return fmt.Errorf("MXCSR %#x: reserved bits (MXCSR_MASK %#x)", s.FPU.MXCSR, mxcsrMask)
	}
	if err := checkCompletion(&s.Completion); err != nil {
		return fmt.Errorf("completion: %w", err)
	}
	if err := c.checkInternal(s); err != nil {
		return fmt.Errorf("internal: %w", err)
	}
	return nil
}

func checkCompletion(p *cpu.Completion) error {
	if p.Kind >= cpu.NumCompletionKinds {
		return fmt.Errorf("unknown kind %d", p.Kind)
	}
	want := cpu.Completion{Kind: p.Kind, RIP: p.RIP}
	switch p.Kind {
	case cpu.CompletionNone:
		want.RIP = 0
	case cpu.CompletionIn, cpu.CompletionINS:
		if p.Size != 1 && p.Size != 2 && p.Size != 4 {
			return fmt.Errorf("port access size %d", p.Size)
		}
		if p.Data>>32 != 0 {
			return fmt.Errorf("port data %#x wider than 32 bits", p.Data)
		}
		want.Port, want.Size, want.Data = p.Port, p.Size, p.Data
	case cpu.CompletionMMIORead:
		if err := checkMMIORead(p.Addr, p.Size); err != nil {
			return err
		}
		want.Addr, want.Size, want.Data = p.Addr, p.Size, p.Data
	case cpu.CompletionCPUID:
		want.CPUID = p.CPUID
	case cpu.CompletionRDMSR, cpu.CompletionHypercall:
		want.Data = p.Data
	}
	if !cpu.Canonical(p.RIP) {
		return fmt.Errorf("RIP %#x is not canonical", p.RIP)
	}
	if *p != want {
		return fmt.Errorf("fields set that kind %d does not use", p.Kind)
	}
	return nil
}

// checkMMIORead checks an MMIO read as physReadN makes one: 1, 2, 4 or 8
// bytes within one page of the guest-physical address space.
func checkMMIORead(addr uint64, size uint8) error {
	if size == 0 || size > 8 || size&(size-1) != 0 {
		return fmt.Errorf("MMIO read size %d", size)
	}
	if addr>>cpu.PhysAddrBits != 0 || addr&pageMask+uint64(size) > pageSize {
		return fmt.Errorf("MMIO read of %d bytes at %#x: beyond the physical address space or across a page", size, addr)
	}
	return nil
}

func (c *CPU) checkInternal(s *cpu.EngineState) error {
	in := &s.Internal
	if n := len(in.MMIOReads); n > 0 || in.MMIORIP != 0 || in.MMIOSeq != 0 {
		if n > mmioLogMax {
			return fmt.Errorf("%d MMIO answers, at most %d", n, mmioLogMax)
		}
		if in.MMIOPos > uint32(n) {
			return fmt.Errorf("MMIO position %d beyond %d answers", in.MMIOPos, n)
		}
		if in.MMIOSeq != s.Retired || !cpu.Canonical(in.MMIORIP) {
			return fmt.Errorf("MMIO answers for attempt %d at %#x: not the next instruction's (%d)", in.MMIOSeq, in.MMIORIP, s.Retired)
		}
		for i, r := range in.MMIOReads {
			if err := checkMMIORead(r.Addr, r.Size); err != nil {
				return fmt.Errorf("MMIO answer %d: %w", i, err)
			}
			if r.Data&^sizeMask[r.Size] != 0 {
				return fmt.Errorf("MMIO answer %d: data %#x wider than %d bytes", i, r.Data, r.Size)
			}
		}
	} else if in.MMIOPos != 0 {
		return errors.New("MMIO position set without answers")
	}
	if in.INSReady {
		if !cpu.Canonical(in.INSRIP) {
			return fmt.Errorf("INS at non-canonical %#x", in.INSRIP)
		}
	} else if in.INSRIP != 0 || in.INSPort != 0 || in.INSData != 0 {
		return errors.New("INS fields set without INSReady")
	}
	if in.ShadowFault {
		if !c.shadowPT {
			return errors.New("a shadow page-table fault in a mode without shadow page tables")
		}
		if in.ShadowSeq != s.Retired || !cpu.Canonical(in.ShadowRIP) {
			return fmt.Errorf("shadow fault for attempt %d at %#x: not the next instruction's (%d)", in.ShadowSeq, in.ShadowRIP, s.Retired)
		}
	} else if in.ShadowRIP != 0 || in.ShadowSeq != 0 {
		return errors.New("shadow-fault fields set without ShadowFault")
	}
	return nil
}
