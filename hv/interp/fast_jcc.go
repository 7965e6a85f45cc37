package interp

import "github.com/pvisor/pvisor/hv/cpu"

// Specialized conditional jumps: one handler per condition, with a direct
// comparison when the flags come from SUB/CMP (the common case), and the
// lazy-flag getters otherwise. Checked against cond() in TestFastJcc.

func (c *CPU) condB() bool {
	if c.lf.op == lfSub {
		return c.lf.a < c.lf.b
	}
	return c.getCF()
}

func (c *CPU) condBE() bool {
	if c.lf.op == lfSub {
		return c.lf.a <= c.lf.b
	}
	return c.getCF() || c.getZF()
}

func (c *CPU) condL() bool {
	if c.lf.op == lfSub {
		return sext(c.lf.a, c.lf.size) < sext(c.lf.b, c.lf.size)
	}
	return c.getSF() != c.getOF()
}

func (c *CPU) condLE() bool {
	if c.lf.op == lfSub {
		return sext(c.lf.a, c.lf.size) <= sext(c.lf.b, c.lf.size)
	}
	return c.getZF() || c.getSF() != c.getOF()
}

func fastJO(c *CPU, in *Inst) {
	if c.getOF() {
		c.rip += in.imm
	}
}
func fastJNO(c *CPU, in *Inst) {
	if !c.getOF() {
		c.rip += in.imm
	}
}
func fastJB(c *CPU, in *Inst) {
	if c.condB() {
		c.rip += in.imm
	}
}
func fastJAE(c *CPU, in *Inst) {
	if !c.condB() {
		c.rip += in.imm
	}
}
func fastJZ(c *CPU, in *Inst) {
	if c.getZF() {
		c.rip += in.imm
	}
}
func fastJNZ(c *CPU, in *Inst) {
	if !c.getZF() {
		c.rip += in.imm
	}
}
func fastJBE(c *CPU, in *Inst) {
	if c.condBE() {
		c.rip += in.imm
	}
}
func fastJA(c *CPU, in *Inst) {
	if !c.condBE() {
		c.rip += in.imm
	}
}
func fastJS(c *CPU, in *Inst) {
	if c.getSF() {
		c.rip += in.imm
	}
}
func fastJNS(c *CPU, in *Inst) {
	if !c.getSF() {
		c.rip += in.imm
	}
}
func fastJP(c *CPU, in *Inst) {
	if c.getPF() {
		c.rip += in.imm
	}
}
func fastJNP(c *CPU, in *Inst) {
	if !c.getPF() {
		c.rip += in.imm
	}
}
func fastJL(c *CPU, in *Inst) {
	if c.condL() {
		c.rip += in.imm
	}
}
func fastJGE(c *CPU, in *Inst) {
	if !c.condL() {
		c.rip += in.imm
	}
}
func fastJLE(c *CPU, in *Inst) {
	if c.condLE() {
		c.rip += in.imm
	}
}
func fastJG(c *CPU, in *Inst) {
	if !c.condLE() {
		c.rip += in.imm
	}
}

var jccOps [16]uint16

// fastIncDec: INC/DEC of a 64- or 32-bit register.
func fastInc64(c *CPU, in *Inst) {
	cf := uint64(0)
	if c.getCF() {
		cf = auxCF
	}
	a := c.r[in.rm]
	l := &c.lf
	l.op, l.size, l.a, l.b, l.res, l.aux = lfInc, 8, a, 1, a+1, cf
	c.r[in.rm] = a + 1
}

func fastDec64(c *CPU, in *Inst) {
	cf := uint64(0)
	if c.getCF() {
		cf = auxCF
	}
	a := c.r[in.rm]
	l := &c.lf
	l.op, l.size, l.a, l.b, l.res, l.aux = lfDec, 8, a, 1, a-1, cf
	c.r[in.rm] = a - 1
}

func fastInc32(c *CPU, in *Inst) {
	cf := uint64(0)
	if c.getCF() {
		cf = auxCF
	}
	a := c.r[in.rm] & 0xffffffff
	r := (a + 1) & 0xffffffff
	l := &c.lf
	l.op, l.size, l.a, l.b, l.res, l.aux = lfInc, 4, a, 1, r, cf
	c.r[in.rm] = r
}

func fastDec32(c *CPU, in *Inst) {
	cf := uint64(0)
	if c.getCF() {
		cf = auxCF
	}
	a := c.r[in.rm] & 0xffffffff
	r := (a - 1) & 0xffffffff
	l := &c.lf
	l.op, l.size, l.a, l.b, l.res, l.aux = lfDec, 4, a, 1, r, cf
	c.r[in.rm] = r
}

// Stack and call forms.
func fastPush64(c *CPU, in *Inst) {
	sp := c.r[cpu.RSP] - 8
	c.write64(sp, c.r[in.reg])
	c.r[cpu.RSP] = sp
}

func fastPop64(c *CPU, in *Inst) {
	v := c.read64(c.r[cpu.RSP])
	c.r[cpu.RSP] += 8
	c.r[in.reg] = v
}

func fastLea64(c *CPU, in *Inst) {
	a := c.r[in.base] + c.r[in.index]<<in.scale + uint64(int64(in.disp))
	if in.flags&iRIPRel != 0 {
		a += c.rip
	}
	c.r[in.reg] = a
}

func init() {
	fns := [16]handler{fastJO, fastJNO, fastJB, fastJAE, fastJZ, fastJNZ, fastJBE, fastJA,
		fastJS, fastJNS, fastJP, fastJNP, fastJL, fastJGE, fastJLE, fastJG}
	names := [16]string{"jo", "jno", "jb", "jae", "jz", "jnz", "jbe", "ja", "js", "jns", "jp", "jnp", "jl", "jge", "jle", "jg"}
	for cc := range fns {
		jccOps[cc] = defOp("fast "+names[cc], true, fns[cc])
	}
	byName := map[string]uint16{}
	for i := 1; i < nOps; i++ {
		byName[opNames[i]] = uint16(i)
	}
	jccGeneric = byName["jcc"]
	leaGeneric = byName["lea"]
	reg := func(generic string, size uint8, kind fastKind, name string, h handler) {
		g, ok := byName[generic]
		if !ok {
			panic("interp: fast form for unknown op " + generic)
		}
		si := 0
		if size == 4 {
			si = 1
		}
		op := defOp("fast "+name, opEnds[g], h)
		fastTab[g][si][kind] = op
		fastGeneric[op] = g
	}
	reg("inc", 8, fastRR, "inc64", fastInc64)
	reg("dec", 8, fastRR, "dec64", fastDec64)
	reg("inc", 4, fastRR, "inc32", fastInc32)
	reg("dec", 4, fastRR, "dec32", fastDec32)
	reg("push r", 8, fastRR, "push64", fastPush64)
	reg("pop r", 8, fastRR, "pop64", fastPop64)
	reg("lea", 8, fastMR, "lea64", fastLea64)
}

var jccGeneric, leaGeneric uint16
