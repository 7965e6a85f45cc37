package interp

import "github.com/pvisor/pvisor/hv/cpu"

// Far control transfers in 64-bit mode: IRET, far RET, far JMP and far CALL
// through memory (with 64-bit call gates), in every operand size, with the
// checks, in the order and with the error codes of the SDM's pseudocode
// for IA-32e mode. Every check happens before anything is committed, so a
// fault leaves the vCPU as it was before the instruction.
//
// Compatibility mode: a code segment with L=0 loads as on hardware; the
// first instruction the vCPU would execute in it raises #UD instead
// (compatFetch), as a CPU without compatibility mode would. The engine never
// decodes 16- or 32-bit code.

// Descriptor type bits (Segment.Attr bits 0-3 with S set).
const (
	segTypeCode       = 0x8
	segTypeConforming = 0x4 // code
	segTypeWritable   = 0x2 // data
	gateCall64        = 0xc // system type: 64-bit call gate
)

func isCode(s cpu.Segment) bool { return s.Attr&cpu.SegAttrS != 0 && s.Attr&segTypeCode != 0 }

func conforming(s cpu.Segment) bool { return s.Attr&segTypeConforming != 0 }

// longCode reports whether s is a 64-bit code segment (L=1, D=0).
func longCode(s cpu.Segment) bool { return s.Attr&(cpu.SegAttrL|cpu.SegAttrDB) == cpu.SegAttrL }

// checkLD raises #GP(sel) for a code segment with both L and D set, which is
// reserved in IA-32e mode.
func (c *CPU) checkLD(s cpu.Segment, err uint32) {
	if s.Attr&(cpu.SegAttrL|cpu.SegAttrDB) == cpu.SegAttrL|cpu.SegAttrDB {
		c.raise(cpu.ExcGP, err)
	}
}

// checkTarget raises #GP(0) when rip is no valid instruction pointer in
// code segment s: non-canonical in 64-bit mode, beyond the limit in
// compatibility mode.
func (c *CPU) checkTarget(s cpu.Segment, rip uint64) {
	if s.Attr&cpu.SegAttrL != 0 {
		if !cpu.Canonical(rip) {
			c.raise(cpu.ExcGP, 0)
		}
	} else if rip > uint64(s.Limit) {
		c.raise(cpu.ExcGP, 0)
	}
}

// loadCS makes s, selected by sel, the code segment at CPL cpl.
func (c *CPU) loadCS(sel uint16, s cpu.Segment, addr uint64, cpl uint8) {
	c.markAccessed(&s, addr)
	s.Selector = sel&^3 | uint16(cpl)
	c.sreg[segCS] = s
	c.setCPL(cpl)
	c.updateEvents() // compatibility mode is looked at before the next instruction
}

// returnCS checks the code segment a far RET or IRET returns to: null,
// table limit, type, privilege (RPL not below CPL; DPL equal to RPL, or
// not above it if conforming), presence and L/D.
func (c *CPU) returnCS(sel uint16) (cpu.Segment, uint64) {
	if sel&^3 == 0 {
		c.raise(cpu.ExcGP, 0)
	}
	lo, addr := c.descriptor(sel, 0)
	s := segFromDesc(sel, lo)
	e := uint32(sel &^ 3)
	rpl := uint8(sel & 3)
	if !isCode(s) || rpl < c.cpl {
		c.raise(cpu.ExcGP, e)
	}
	if conforming(s) && uint8(s.DPL()) > rpl || !conforming(s) && uint8(s.DPL()) != rpl {
		c.raise(cpu.ExcGP, e)
	}
	if s.Attr&cpu.SegAttrP == 0 {
		c.raise(cpu.ExcNP, e)
	}
	c.checkLD(s, e)
	return s, addr
}

// returnSS checks the stack segment popped by IRET or a far RET to CPL rpl
// with code segment cs. A null SS is allowed for a 64-bit target at CPL 0-2.
func (c *CPU) returnSS(sel uint16, cs cpu.Segment, rpl uint8) (cpu.Segment, uint64) {
	if sel&^3 == 0 {
		if longCode(cs) && rpl != 3 {
			return cpu.Segment{Selector: sel}, 0
		}
		c.raise(cpu.ExcGP, 0)
	}
	lo, addr := c.descriptor(sel, 0)
	s := segFromDesc(sel, lo)
	e := uint32(sel &^ 3)
	if uint8(sel&3) != rpl || s.Attr&cpu.SegAttrS == 0 || s.Attr&(segTypeCode|segTypeWritable) != segTypeWritable || uint8(s.DPL()) != rpl {
		c.raise(cpu.ExcGP, e)
	}
	if s.Attr&cpu.SegAttrP == 0 {
		c.raise(cpu.ExcSS, e)
	}
	return s, addr
}

// commitReturn finishes IRET or a far RET once every check has passed.
func (c *CPU) commitReturn(csSel uint16, cs cpu.Segment, csAddr uint64, ss cpu.Segment, ssAddr uint64, rsp, rip uint64) {
	old := c.cpl
	rpl := uint8(csSel & 3)
	c.loadCS(csSel, cs, csAddr, rpl)
	if ss.Selector&^3 != 0 {
		c.markAccessed(&ss, ssAddr)
	}
	c.sreg[segSS] = ss
	c.r[cpu.RSP] = rsp
	c.rip = rip
	if rpl > old {
		c.nullDataSegmentsAbove(rpl)
	}
}

// nullDataSegmentsAbove nulls the data segment registers (ES, DS, FS, GS)
// that hold a data or non-conforming code segment with a DPL below the new
// CPL, as a return to an outer privilege level does. The FS and GS bases
// (set by MSR in 64-bit mode) are kept, as Linux relies on.
func (c *CPU) nullDataSegmentsAbove(cpl uint8) {
	for _, s := range [...]int{segES, segDS, segFS, segGS} {
		r := &c.sreg[s]
		if r.Selector&^3 != 0 && uint8(r.DPL()) < cpl && r.Attr&(segTypeCode|segTypeConforming) != segTypeCode|segTypeConforming {
			*r = cpu.Segment{}
		}
	}
}

// opIRET: in 64-bit mode IRET pops RIP, CS, RFLAGS, RSP and SS, each of the
// operand size (IRETW 2, IRETD 4, IRETQ 8 bytes), whatever the privilege
// levels.
func opIRET(c *CPU, in *Inst) {
	if c.flags&cpu.FlagNT != 0 {
		c.raise(cpu.ExcGP, 0) // no task switches in IA-32e mode
	}
	n := uint64(in.size)
	sp := c.r[cpu.RSP]
	rip := c.readN(sp, in.size)
	csSel := uint16(c.readN(sp+n, in.size))
	fl := c.readN(sp+2*n, in.size)
	rsp := c.readN(sp+3*n, in.size)
	ssSel := uint16(c.readN(sp+4*n, in.size))
	cs, csAddr := c.returnCS(csSel)
	c.checkTarget(cs, rip)
	ss, ssAddr := c.returnSS(ssSel, cs, uint8(csSel&3))
	c.writeFlags(fl, in.size) // under the old CPL's rules
	c.commitReturn(csSel, cs, csAddr, ss, ssAddr, rsp, rip)
}

// opRETF: far RET (CB, and CA with imm16 released from the stack) pops RIP
// and CS of the operand size (default 32 bits); a return to an outer level
// also pops RSP and SS, and releases imm16 bytes from the new stack too.
func opRETF(c *CPU, in *Inst) {
	n := uint64(in.size)
	sp := c.r[cpu.RSP]
	rip := c.readN(sp, in.size)
	csSel := uint16(c.readN(sp+n, in.size))
	cs, csAddr := c.returnCS(csSel)
	rpl := uint8(csSel & 3)
	c.checkTarget(cs, rip)
	if rpl == c.cpl {
		c.loadCS(csSel, cs, csAddr, rpl)
		c.r[cpu.RSP] = sp + 2*n + in.imm
		c.rip = rip
		return
	}
	sp += 2*n + in.imm
	rsp := c.readN(sp, in.size)
	ssSel := uint16(c.readN(sp+n, in.size))
	ss, ssAddr := c.returnSS(ssSel, cs, rpl)
	c.commitReturn(csSel, cs, csAddr, ss, ssAddr, rsp+in.imm, rip)
}

// opFarCallJmp: far JMP (FF /5) and far CALL (FF /3) through a memory
// pointer m16:16, m16:32 or (REX.W) m16:64, to a code segment or through a
// 64-bit call gate. TSS and task-gate targets raise #GP (no task switches
// in IA-32e mode).
func opFarCallJmp(c *CPU, in *Inst) {
	call := in.reg&7 == 3
	addr := c.ea(in)
	off := c.readN(addr, in.size)
	sel := c.read16(addr + uint64(in.size))
	if sel&^3 == 0 {
		c.raise(cpu.ExcGP, 0)
	}
	lo, daddr := c.descriptor(sel, 0)
	s := segFromDesc(sel, lo)
	e := uint32(sel &^ 3)
	if s.Attr&cpu.SegAttrS == 0 {
		if s.Attr&0xf != gateCall64 {
			c.raise(cpu.ExcGP, e)
		}
		c.callGate(sel, lo, daddr, call)
		return
	}
	if !isCode(s) {
		c.raise(cpu.ExcGP, e)
	}
	if conforming(s) && uint8(s.DPL()) > c.cpl || !conforming(s) && (uint8(sel&3) > c.cpl || uint8(s.DPL()) != c.cpl) {
		c.raise(cpu.ExcGP, e)
	}
	if s.Attr&cpu.SegAttrP == 0 {
		c.raise(cpu.ExcNP, e)
	}
	c.checkLD(s, e)
	c.checkTarget(s, off)
	if call {
		n := uint64(in.size)
		c.checkWrite(c.r[cpu.RSP]-2*n, 2*n)
		c.writeN(c.r[cpu.RSP]-n, in.size, uint64(c.sreg[segCS].Selector))
		c.writeN(c.r[cpu.RSP]-2*n, in.size, c.rip)
		c.r[cpu.RSP] -= 2 * n
	}
	c.loadCS(sel, s, daddr, c.cpl)
	c.rip = off
}

// callGate transfers through the 64-bit call gate selected by sel, whose
// low descriptor half is lo at addr. A CALL to a more privileged
// non-conforming segment switches to the stack of TSS.RSPn with a null SS
// and pushes the old SS, RSP, CS and RIP there; otherwise CS and RIP are
// pushed on the current stack, as quadwords.
func (c *CPU) callGate(sel uint16, lo, addr uint64, call bool) {
	e := uint32(sel &^ 3)
	dpl := uint8(lo>>45) & 3
	if dpl < c.cpl || dpl < uint8(sel&3) {
		c.raise(cpu.ExcGP, e)
	}
	if lo>>47&1 == 0 {
		c.raise(cpu.ExcNP, e)
	}
	hi, _ := c.descriptor(sel+8, 0)
	if hi>>40&0x1f != 0 {
		c.raise(cpu.ExcGP, e)
	}
	target := lo&0xffff | (lo>>48&0xffff)<<16 | (hi&0xffffffff)<<32
	tsel := uint16(lo >> 16)
	if tsel&^3 == 0 {
		c.raise(cpu.ExcGP, 0)
	}
	tlo, taddr := c.descriptor(tsel, 0)
	cs := segFromDesc(tsel, tlo)
	te := uint32(tsel &^ 3)
	newCPL := uint8(cs.DPL())
	if !isCode(cs) || newCPL > c.cpl || !longCode(cs) {
		c.raise(cpu.ExcGP, te)
	}
	if cs.Attr&cpu.SegAttrP == 0 {
		c.raise(cpu.ExcNP, te)
	}
	if conforming(cs) || !call {
		newCPL = c.cpl
	}
	if !call && !conforming(cs) && uint8(cs.DPL()) != c.cpl {
		c.raise(cpu.ExcGP, te)
	}
	c.checkTarget(cs, target)
	if !call {
		c.loadCS(tsel, cs, taddr, newCPL)
		c.rip = target
		return
	}
	frame := [4]uint64{c.rip, uint64(c.sreg[segCS].Selector), c.r[cpu.RSP], uint64(c.sreg[segSS].Selector)}
	nf := 2
	rsp := c.r[cpu.RSP]
	if newCPL < c.cpl {
		rsp = c.tssRead64(4+uint64(newCPL)*8, 0)
		if !cpu.Canonical(rsp) {
			c.raise(cpu.ExcSS, 0)
		}
		nf = 4
	}
	for i := 0; i < nf; i++ {
		c.writeAt(newCPL, rsp-8*uint64(nf-i), frame[i])
	}
	c.loadCS(tsel, cs, taddr, newCPL)
	if nf == 4 {
		c.sreg[segSS] = cpu.Segment{Selector: uint16(newCPL)}
	}
	c.r[cpu.RSP] = rsp - 8*uint64(nf)
	c.rip = target
}

// writeAt writes a quadword with the access rights of privilege level cpl.
func (c *CPU) writeAt(cpl uint8, va, v uint64) {
	if saved := c.cpl; saved != cpl {
		c.setCPL(cpl)
		defer c.setCPL(saved)
	}
	c.write64(va, v)
}

// compatFetch raises #UD for the instruction at RIP when CS is a
// compatibility-mode (L=0) code segment: the engine executes 64-bit code
// only. The event loop calls it before the next instruction, after pending
// interrupts and exceptions had their turn; the #UD frame holds the 32-bit
// CS and RIP, so the guest kernel handles it (Linux: SIGILL).
func (c *CPU) compatFetch() {
	if c.sreg[segCS].Attr&cpu.SegAttrL != 0 {
		return
	}
	c.instStart = c.rip
	c.stats.Exceptions[cpu.ExcUD]++
	c.deliver(excInfo{valid: true, vector: cpu.ExcUD})
}
