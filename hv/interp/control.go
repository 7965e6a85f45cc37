package interp

import "github.com/pvisor/pvisor/hv/cpu"

func (c *CPU) jumpTo(t uint64) {
	if !cpu.Canonical(t) {
		c.raise(cpu.ExcGP, 0)
	}
	c.rip = t
}

// push and pop at the instruction's stack operand size (8, or 2 with 66).
func (c *CPU) pushSized(size uint8, v uint64) {
	if size == 2 {
		sp := c.r[cpu.RSP] - 2
		c.write16(sp, uint16(v))
		c.r[cpu.RSP] = sp
		return
	}
	c.push64(v)
}

func (c *CPU) popSized(size uint8) uint64 {
	if size == 2 {
		v := c.read16(c.r[cpu.RSP])
		c.r[cpu.RSP] += 2
		return uint64(v)
	}
	return c.pop64()
}

func init() {
	jcc := defOp("jcc", true, func(c *CPU, in *Inst) {
		if c.cond(in.ext0()) {
			c.rip += in.imm
		}
	})
	for cc := byte(0); cc < 16; cc++ {
		set1(0x70+cc, fIb|fForce64, jcc)
		set2(0x80+cc, fIz|fForce64, jcc)
	}
	jmp := defOp("jmp rel", true, func(c *CPU, in *Inst) { c.rip += in.imm })
	set1(0xeb, fIb|fForce64, jmp)
	set1(0xe9, fIz|fForce64, jmp)
	set1(0xe8, fIz|fForce64, defOp("call rel", true, func(c *CPU, in *Inst) {
		c.push64(c.rip)
		c.rip += in.imm
	}))
	setG(&table1, 0xff, pNone, 2, fForce64, defOp("call Ev", true, func(c *CPU, in *Inst) {
		t := c.readRM(in)
		if !cpu.Canonical(t) {
			c.raise(cpu.ExcGP, 0)
		}
		c.push64(c.rip)
		c.rip = t
	}))
	setG(&table1, 0xff, pNone, 4, fForce64, defOp("jmp Ev", true, func(c *CPU, in *Inst) {
		c.jumpTo(c.readRM(in))
	}))
	set1(0xc3, fForce64, defOp("ret", true, func(c *CPU, in *Inst) {
		t := c.read64(c.r[cpu.RSP])
		if !cpu.Canonical(t) {
			c.raise(cpu.ExcGP, 0)
		}
		c.r[cpu.RSP] += 8
		c.rip = t
	}))
	set1(0xc2, fIw|fForce64, defOp("ret Iw", true, func(c *CPU, in *Inst) {
		t := c.read64(c.r[cpu.RSP])
		if !cpu.Canonical(t) {
			c.raise(cpu.ExcGP, 0)
		}
		c.r[cpu.RSP] += 8 + in.imm
		c.rip = t
	}))
	loop := defOp("loop", true, func(c *CPU, in *Inst) {
		var cnt uint64
		if in.flags&iAddr32 != 0 {
			cnt = (c.r[cpu.RCX] - 1) & 0xffffffff
			c.r[cpu.RCX] = cnt
		} else {
			cnt = c.r[cpu.RCX] - 1
			c.r[cpu.RCX] = cnt
		}
		take := cnt != 0
		switch in.ext {
		case 0xe0: // LOOPNE
			take = take && !c.getZF()
		case 0xe1: // LOOPE
			take = take && c.getZF()
		}
		if take {
			c.rip += in.imm
		}
	})
	set1(0xe0, fIb|fForce64, loop)
	set1(0xe1, fIb|fForce64, loop)
	set1(0xe2, fIb|fForce64, loop)
	set1(0xe3, fIb|fForce64, defOp("jrcxz", true, func(c *CPU, in *Inst) {
		cnt := c.r[cpu.RCX]
		if in.flags&iAddr32 != 0 {
			cnt &= 0xffffffff
		}
		if cnt == 0 {
			c.rip += in.imm
		}
	}))

	// Stack.
	push := defOp("push r", false, func(c *CPU, in *Inst) { c.pushSized(in.size, c.getReg(in.reg, in.size)) })
	pop := defOp("pop r", false, func(c *CPU, in *Inst) {
		v := c.popSized(in.size)
		c.setReg(in.reg, in.size, v)
	})
	for r := byte(0); r < 8; r++ {
		set1(0x50+r, fOpReg|fDef64, push)
		set1(0x58+r, fOpReg|fDef64, pop)
	}
	pushImm := defOp("push I", false, func(c *CPU, in *Inst) { c.pushSized(in.size, in.imm) })
	set1(0x68, fIz|fDef64, pushImm)
	set1(0x6a, fIb|fDef64, pushImm)
	setG(&table1, 0xff, pNone, 6, fDef64, defOp("push Ev", false, func(c *CPU, in *Inst) {
		c.pushSized(in.size, c.readRM(in))
	}))
	setG(&table1, 0x8f, pNone, 0, fDef64, defOp("pop Ev", false, func(c *CPU, in *Inst) {
		// The address is computed with RSP already incremented.
		v := c.readN(c.r[cpu.RSP], in.size)
		if in.flags&iMem != 0 {
			c.r[cpu.RSP] += uint64(in.size)
			addr := c.ea(in)
			c.r[cpu.RSP] -= uint64(in.size)
			c.writeN(addr, in.size, v)
			c.r[cpu.RSP] += uint64(in.size)
			return
		}
		c.r[cpu.RSP] += uint64(in.size)
		c.setReg(in.rm, in.size, v)
	}))
	set1(0x9c, fDef64, defOp("pushf", false, func(c *CPU, in *Inst) {
		c.pushSized(in.size, c.getFlags()&^(cpu.FlagVM|cpu.FlagRF))
	}))
	set1(0x9d, fDef64, defOp("popf", true, func(c *CPU, in *Inst) {
		v := c.popSized(in.size)
		c.writeFlags(v, in.size)
	}))
	set1(0xc9, fDef64, defOp("leave", false, func(c *CPU, in *Inst) {
		v := c.readN(c.r[cpu.RBP], in.size)
		c.r[cpu.RSP] = c.r[cpu.RBP] + uint64(in.size)
		c.setReg(cpu.RBP, in.size, v)
	}))
	set1(0xc8, fIwIb|fDef64, defOp("enter", false, opENTER))

	// Software interrupts and IRET.
	set1(0xcc, 0, defOp("int3", true, func(c *CPU, in *Inst) { c.softInt(cpu.ExcBP) }))
	set1(0xcd, fIbU, defOp("int", true, func(c *CPU, in *Inst) { c.softInt(uint8(in.imm)) }))
	set1(0xf1, 0, defOp("int1", true, func(c *CPU, in *Inst) {
		// INT1 (ICEBP) is a trap without the gate DPL check of INT n: it
		// completes, and #DB is delivered with RIP after it.
		c.excQueue = excInfo{valid: true, vector: cpu.ExcDB}
		c.stats.Exceptions[cpu.ExcDB]++
		c.updateEvents()
		c.blockEnd = c.pc
	}))
	set2(0x0b, 0, defOp("ud2", true, opUD))
	set1(0xcf, 0, defOp("iret", true, opIRET))
	retf := defOp("retf", true, opRETF)
	set1(0xcb, 0, retf)
	set1(0xca, fIw, retf)
	setG(&table1, 0xff, pNone, 3, fMemOnly, defOp("call far", true, opFarCallJmp))
	setG(&table1, 0xff, pNone, 5, fMemOnly, defOp("jmp far", true, opFarCallJmp))
}

func (c *CPU) softInt(vec uint8) {
	c.pendExc = excInfo{valid: true, vector: vec, soft: true}
	panic(faultSentinel)
}

// writeFlags applies POPF/IRET rules for which RFLAGS bits may change.
func (c *CPU) writeFlags(v uint64, size uint8) {
	c.commitFlags()
	mask := uint64(rflagsWritable &^ (cpu.FlagRF | cpu.FlagVIF | cpu.FlagVIP))
	if c.cpl > 0 {
		mask &^= cpu.FlagIOPL
		if uint64(c.cpl) > (c.flags&cpu.FlagIOPL)>>12 {
			mask &^= cpu.FlagIF
		}
	}
	if size == 2 {
		mask &= 0xffff
	}
	c.flags = c.flags&^mask | v&mask | cpu.FlagsFixed
	c.updateEvents()
}

func opENTER(c *CPU, in *Inst) {
	size := uint64(in.size)
	alloc := in.imm & 0xffff
	level := uint64(in.disp) & 31
	rsp := c.r[cpu.RSP] - size
	c.writeN(rsp, in.size, c.getReg(cpu.RBP, in.size))
	frame := rsp
	if level > 0 {
		bp := c.r[cpu.RBP]
		for i := uint64(1); i < level; i++ {
			bp -= size
			rsp -= size
			c.writeN(rsp, in.size, c.readN(bp, in.size))
		}
		rsp -= size
		c.writeN(rsp, in.size, frame)
	}
	c.setReg(cpu.RBP, in.size, frame)
	c.r[cpu.RSP] = rsp - alloc
}
