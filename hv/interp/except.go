package interp

import (
	"github.com/pvisor/pvisor/hv/cpu"
)

func contributory(v uint8) bool {
	switch v {
	case cpu.ExcDE, cpu.ExcTS, cpu.ExcNP, cpu.ExcSS, cpu.ExcGP:
		return true
	}
	return false
}

// deliver delivers an exception or interrupt through the 64-bit IDT. A
// fault during delivery unwinds to recovered, which turns it into #DF or a
// triple fault where the first event was an exception (deliverExc); after
// a software or external interrupt it is delivered as it is. An MMIO read
// exit during delivery puts the event back to be delivered again
// (undeliver).
//
// Error codes of faults found here carry the EXT bit (bit 0) for events
// external to the program (exceptions, interrupts, INT1) and not for INT n
// and INT3, whose gate DPL check (the only one) raises #GP(vector<<3|2).
func (c *CPU) deliver(e excInfo) {
	c.commitFlags()
	c.deliverEv = e
	c.delivering = int(e.vector) + 1
	c.deliverExc = !e.soft && !e.irq
	c.deliverCPL = c.cpl
	c.deliverRIP = c.rip
	if e.soft {
		// A fault while delivering INT n / INT3 points at the instruction.
		c.deliverRIP = c.instStart
	}
	c.instStart = c.rip
	ext := uint32(1)
	if e.soft {
		ext = 0
	}
	vec := uint64(e.vector)
	idtErr := uint32(vec*8+2) | ext
	if vec*16+15 > uint64(c.idt.Limit) {
		c.raise(cpu.ExcGP, idtErr)
	}
	lo := c.sysRead64(c.idt.Base + vec*16)
	hi := c.sysRead64(c.idt.Base + vec*16 + 8)
	typ := (lo >> 40) & 0xf
	dpl := uint8(lo>>45) & 3
	if typ != 0xe && typ != 0xf {
		c.raise(cpu.ExcGP, idtErr)
	}
	if e.soft && dpl < c.cpl {
		c.raise(cpu.ExcGP, idtErr)
	}
	if lo>>47&1 == 0 {
		c.raise(cpu.ExcNP, idtErr)
	}
	sel := uint16(lo >> 16)
	target := lo&0xffff | (lo>>48&0xffff)<<16 | (hi&0xffffffff)<<32
	ist := (lo >> 32) & 7
	if sel&^3 == 0 {
		c.raise(cpu.ExcGP, ext)
	}
	clo, caddr := c.descriptor(sel, ext)
	cs := segFromDesc(sel, clo)
	ce := uint32(sel&^3) | ext
	newCPL := uint8(cs.DPL())
	if !isCode(cs) || newCPL > c.cpl {
		c.raise(cpu.ExcGP, ce)
	}
	if cs.Attr&cpu.SegAttrP == 0 {
		c.raise(cpu.ExcNP, ce)
	}
	if !longCode(cs) {
		c.raise(cpu.ExcGP, ce)
	}
	if conforming(cs) {
		newCPL = c.cpl
	}
	if !cpu.Canonical(target) {
		c.raise(cpu.ExcGP, ext)
	}
	oldCPL := c.cpl
	rsp := c.r[cpu.RSP]
	switch {
	case ist != 0:
		rsp = c.tssRead64(36+(ist-1)*8, ext)
	case newCPL < oldCPL:
		rsp = c.tssRead64(4+uint64(newCPL)*8, ext)
	}
	rsp &^= 0xf
	if !cpu.Canonical(rsp) {
		c.raise(cpu.ExcSS, ext)
	}
	frame := [6]uint64{c.rip, uint64(c.sreg[segCS].Selector), c.flags, c.r[cpu.RSP], uint64(c.sreg[segSS].Selector)}
	nf := 5
	if e.hasErr {
		copy(frame[1:], frame[:5])
		frame[0] = uint64(e.err)
		nf = 6
	}
	c.setCPL(newCPL)
	sp := rsp
	for i := nf - 1; i >= 0; i-- {
		sp -= 8
		c.write64(sp, frame[i])
	}
	// Commit.
	c.r[cpu.RSP] = sp
	c.markAccessed(&cs, caddr)
	cs.Selector = sel&^3 | uint16(newCPL)
	c.sreg[segCS] = cs
	if newCPL != oldCPL {
		c.sreg[segSS] = cpu.Segment{Selector: uint16(newCPL)}
	}
	c.flags &^= cpu.FlagTF | cpu.FlagNT | cpu.FlagRF | cpu.FlagVM
	if typ == 0xe {
		c.flags &^= cpu.FlagIF
	}
	c.rip = target
	c.halted = false
	c.shadow = false // delivery ends an STI / MOV SS shadow
	c.delivering = 0
	c.updateEvents()
}

// undeliver puts back the event whose delivery an MMIO read exit stopped
// (its gate, the TSS or a descriptor outside RAM): nothing was committed
// (the reads come before the CPL changes and the frame is written), and
// the delivery runs again from its start on the next Run, its earlier
// reads answered from the MMIO log (access.go) as an instruction's are.
func (c *CPU) undeliver() {
	e := c.deliverEv
	c.delivering = 0
	c.setCPL(c.deliverCPL)
	c.rip = c.instStart // deliver set instStart to the RIP it started at
	if e.soft {
		c.instStart = c.deliverRIP // the INT n, for a fault in the next try
	}
	switch {
	case e.irq:
		c.irqVector = int(e.vector)
		c.stats.Interrupts--
	case e.inj:
		c.injExc = e
	default:
		c.excQueue = e
	}
	c.updateEvents()
}

// sysRead64 reads linear memory with supervisor rights (descriptor tables,
// the TSS), whatever the CPL.
func (c *CPU) sysRead64(va uint64) uint64 {
	saved := c.cpl
	if saved == 3 {
		c.setCPL(0)
		defer c.setCPL(3)
	}
	return c.read64(va)
}

// tssRead64 reads the TSS at off; beyond its limit it raises #TS with the
// TSS selector and ext (the EXT bit).
func (c *CPU) tssRead64(off uint64, ext uint32) uint64 {
	tr := &c.sreg[segTR]
	if off+7 > uint64(tr.Limit) {
		c.raise(cpu.ExcTS, uint32(tr.Selector&^3)|ext)
	}
	return c.sysRead64(tr.Base + off)
}

// descriptor reads the 8-byte descriptor of selector sel from the GDT or
// LDT, raising #GP(sel|ext) when it is outside the table.
func (c *CPU) descriptor(sel uint16, ext uint32) (lo uint64, addr uint64) {
	idx := uint64(sel &^ 7)
	base, limit := c.gdt.Base, uint64(c.gdt.Limit)
	if sel&4 != 0 {
		base, limit = c.sreg[segLDT].Base, uint64(c.sreg[segLDT].Limit)
	}
	if idx+7 > limit {
		c.raise(cpu.ExcGP, uint32(sel&^3)|ext)
	}
	return c.sysRead64(base + idx), base + idx
}

// markAccessed sets the Accessed bit of segment s, loaded from the
// descriptor at addr, in the descriptor as loading a segment register does.
func (c *CPU) markAccessed(s *cpu.Segment, addr uint64) {
	if s.Attr&cpu.SegAttrAccessed == 0 {
		s.Attr |= cpu.SegAttrAccessed
		c.sysWrite8(addr+5, uint8(s.Attr))
	}
}

// segFromDesc converts a code/data descriptor to a Segment.
func segFromDesc(sel uint16, lo uint64) cpu.Segment {
	base := (lo>>16)&0xffffff | (lo>>56&0xff)<<24
	limit := uint32(lo&0xffff | (lo>>48&0xf)<<16)
	attr := uint16(lo>>40&0xff) | uint16(lo>>52&0xf)<<12
	if attr&cpu.SegAttrG != 0 {
		limit = limit<<12 | 0xfff
	}
	return cpu.Segment{Selector: sel, Base: base, Limit: limit, Attr: attr}
}

// loadDataSegment loads a data segment register (DS, ES, SS, FS, GS) with
// the 64-bit mode rules: a null selector is allowed except SS at CPL 3.
func (c *CPU) loadDataSegment(which int, sel uint16) {
	if sel&^3 == 0 {
		if which == segSS && (c.cpl == 3 || uint8(sel&3) != c.cpl) {
			c.raise(cpu.ExcGP, 0)
		}
		c.sreg[which] = cpu.Segment{Selector: sel}
		if which == segFS {
			c.segBase[1] = 0
		} else if which == segGS {
			c.segBase[2] = 0
		}
		return
	}
	lo, addr := c.descriptor(sel, 0)
	s := segFromDesc(sel, lo)
	if s.Attr&cpu.SegAttrS == 0 || (s.Attr&0x8 != 0 && s.Attr&0x2 == 0) {
		c.raise(cpu.ExcGP, uint32(sel&^3))
	}
	if which == segSS {
		if s.Attr&0x8 != 0 || s.Attr&0x2 == 0 || uint8(s.DPL()) != c.cpl || uint8(sel&3) != c.cpl {
			c.raise(cpu.ExcGP, uint32(sel&^3))
		}
		if s.Attr&cpu.SegAttrP == 0 {
			c.raise(cpu.ExcSS, uint32(sel&^3))
		}
	} else {
		// A data or non-conforming code segment must be at least as
		// privileged as the CPL and the RPL allow (SDM: MOV, "IF DS, ES,
		// FS, or GS is loaded with non-NULL selector").
		conforming := s.Attr&0xc == 0xc
		if !conforming && (uint8(sel&3) > uint8(s.DPL()) || c.cpl > uint8(s.DPL())) {
			c.raise(cpu.ExcGP, uint32(sel&^3))
		}
		if s.Attr&cpu.SegAttrP == 0 {
			c.raise(cpu.ExcNP, uint32(sel&^3))
		}
	}
	c.markAccessed(&s, addr)
	c.sreg[which] = s
	if which == segFS {
		c.segBase[1] = s.Base
	} else if which == segGS {
		c.segBase[2] = s.Base
	}
}

func (c *CPU) sysWrite8(va uint64, v uint8) {
	saved := c.cpl
	if saved == 3 {
		c.setCPL(0)
		defer c.setCPL(3)
	}
	c.write8(va, v)
}
