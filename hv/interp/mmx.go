package interp

import (
	"github.com/pvisor/pvisor/hv/cpu"
)

// MMX: the no-prefix forms of the 0F 6x, 7x, Dx, Ex and Fx integer
// opcodes, EMMS, the SSE/SSE2 instructions on mm registers (PSHUFW,
// PAVGB, MASKMOVQ, PADDQ mm, ...) and the moves and conversions between
// mm and XMM registers. The element rules are those of the 128-bit forms
// (sse_int.go, sse_fp.go), applied to 64 bits.
//
// State: mm0-mm7 are the significands of the x87 physical registers
// R0-R7 (fpuState.st, not ST(i)); REX.R and REX.B do not extend an mm
// register number. Every instruction here except EMMS (and CVTPI2PS and
// CVTPI2PD with a memory source) switches the x87 unit to MMX state:
// TOP = 0 and all eight tags valid. Writing an mm register sets bits 64-79
// of its x87 register (sign and exponent) to all ones. EMMS marks all
// eight registers empty and also sets TOP to 0 (SDM Vol. 1, Table 9-3;
// the host does the same).
// The x87 FIP, FDP and FOP are not changed. A faulting instruction
// changes no state, the x87 transition included.
//
// Checks, in order: #UD for a LOCK prefix or CR0.EM; #UD for CR4.OSFXSR
// clear, for the SSE and SSE2 additions and the instructions with an XMM
// operand only (the SDM exempts PSHUFW and MOVNTQ, and the original MMX
// instructions do not look at OSFXSR); #NM for CR0.TS; #MF for a pending
// unmasked x87 exception, under the same CR0.NE rule as x87 instructions
// (x87Begin). An unmasked SIMD floating-point exception of a conversion
// raises #XM (or #UD) as in sse_fp.go.

// mmxSSE lists the opcodes (0F xx) whose no-prefix mm form came with SSE
// or SSE2 rather than MMX: PMINUB, PMAXUB, PMINSW, PMAXSW, PMULHUW,
// PSADBW, PAVGB, PAVGW, PMULUDQ, PADDQ, PSUBQ, PINSRW, PEXTRW, PMOVMSKB,
// MASKMOVQ. (PSHUFW and MOVNTQ are SSE too but do not check OSFXSR.)
var mmxSSE = [256]bool{
	0xda: true, 0xde: true, 0xea: true, 0xee: true, 0xe4: true, 0xf6: true,
	0xe0: true, 0xe3: true, 0xf4: true, 0xd4: true, 0xfb: true,
	0xc4: true, 0xc5: true, 0xd7: true, 0xf7: true,
}

// mmxCheck raises the exceptions of an MMX instruction (see above); osfxsr
// adds the #UD for CR4.OSFXSR clear.
func (c *CPU) mmxCheck(in *Inst, osfxsr bool) {
	if c.cr0&cpu.CR0EM != 0 || in.flags&iLock != 0 || osfxsr && c.cr4&cpu.CR4OSFXSR == 0 {
		c.raise(cpu.ExcUD, noErr)
	}
	c.x87Begin(in, true, false) // CR0.EM is clear: #NM for CR0.TS, then #MF
}

// sseMMXCheck is the check of an SSE instruction with an mm operand: the
// SSE conditions, then #MF for a pending x87 exception when the
// instruction switches to MMX state.
func (c *CPU) sseMMXCheck(in *Inst, transition bool) {
	c.sseCheck(in)
	if transition {
		c.x87Begin(in, true, false)
	}
}

// mm returns mm register r (REX bits ignored).
func (f *fpuState) mm(r uint8) uint64 { return f.st[r&7].mant }

// setMM writes mm register r.
func (f *fpuState) setMM(r uint8, v uint64) { f.st[r&7] = f80{mant: v, se: 0xffff} }

// mmxEnter switches the x87 unit to MMX state.
func (f *fpuState) mmxEnter() { f.top, f.ftw = 0, 0xff }

// mmRM reads the 64-bit r/m operand: an mm register or 8 bytes of memory.
func (c *CPU) mmRM(in *Inst) uint64 {
	if in.flags&iMem == 0 {
		return c.fpu.mm(in.rm)
	}
	return c.read64(c.ea(in))
}

// How a 64-bit MMX operation maps onto the 128-bit rule of its SSE2 form.
const (
	mmNone = iota // no MMX form
	mmLo          // lane-wise rules: the rule on the low quadwords
	mmHi          // high unpacks: operands in the high quadwords, result the high quadword
	mmPack        // packs: the rule on the single source a:b, result the low quadword
)

// mmxOp registers the MMX form 0F b of the 128-bit packed-integer rule f:
// mm(reg) = f(mm(reg), mm/m64) under the mapping shape.
func mmxOp(b byte, name string, shape int, f func(a, b xmmv) xmmv) {
	var g func(a, b uint64) uint64
	switch shape {
	case mmNone:
		return
	case mmLo:
		g = func(a, b uint64) uint64 { return f(xmmv{a, 0}, xmmv{b, 0})[0] }
	case mmHi:
		g = func(a, b uint64) uint64 { return f(xmmv{0, a}, xmmv{0, b})[1] }
	case mmPack:
		g = func(a, b uint64) uint64 { return f(xmmv{a, b}, xmmv{})[0] }
	}
	osfxsr := mmxSSE[b]
	sseOp(b, pNone, 0, name+" mm", func(c *CPU, in *Inst) {
		c.mmxCheck(in, osfxsr)
		s := c.mmRM(in)
		r := g(c.fpu.mm(in.reg), s)
		c.fpu.mmxEnter()
		c.fpu.setMM(in.reg, r)
	})
}

// mmxShiftImm registers the MMX form of a shift-by-immediate group member
// (0F 71/72/73 /reg ib, register operand only).
func mmxShiftImm(b byte, reg int, name string, esz uint, kind int) {
	setP(&table2, b, pNone, fIbU, 0) // marks the opcode as prefix-selected
	setG(&table2, b, pNone, reg, fRegOnly, defOp(name+" mm", false, func(c *CPU, in *Inst) {
		c.mmxCheck(in, false)
		r := pshift(xmmv{c.fpu.mm(in.rm), 0}, esz, kind, in.imm)[0]
		c.fpu.mmxEnter()
		c.fpu.setMM(in.rm, r)
	}))
}

// mmxLoad registers an MMX instruction 0F b that writes mm(reg) with the
// value val computes.
func mmxLoad(b byte, f opFlags, name string, osfxsr bool, val func(c *CPU, in *Inst) uint64) {
	sseOp(b, pNone, f, name, func(c *CPU, in *Inst) {
		c.mmxCheck(in, osfxsr)
		v := val(c, in)
		c.fpu.mmxEnter()
		c.fpu.setMM(in.reg, v)
	})
}

func init() {
	// Moves.
	mmxLoad(0x6e, 0, "movd/movq mm,Ey", false, (*CPU).readRM)
	mmxLoad(0x6f, 0, "movq mm,mm/m64", false, (*CPU).mmRM)
	sseOp(0x7e, pNone, 0, "movd/movq Ey,mm", func(c *CPU, in *Inst) {
		c.mmxCheck(in, false)
		c.writeRM(in, c.fpu.mm(in.reg)&sizeMask[in.size])
		c.fpu.mmxEnter()
	})
	sseOp(0x7f, pNone, 0, "movq mm/m64,mm", func(c *CPU, in *Inst) {
		c.mmxCheck(in, false)
		v := c.fpu.mm(in.reg)
		if in.flags&iMem != 0 {
			c.write64(c.ea(in), v)
			c.fpu.mmxEnter()
			return
		}
		c.fpu.mmxEnter()
		c.fpu.setMM(in.rm, v)
	})
	sseOp(0xe7, pNone, fMemOnly, "movntq", func(c *CPU, in *Inst) {
		c.mmxCheck(in, false)
		c.write64(c.ea(in), c.fpu.mm(in.reg))
		c.fpu.mmxEnter()
	})

	// EMMS: all registers empty, TOP = 0.
	set2(0x77, 0, defOp("emms", false, func(c *CPU, in *Inst) {
		c.mmxCheck(in, false)
		c.fpu.top, c.fpu.ftw = 0, 0
	}))

	// SSE additions on mm registers.
	mmxLoad(0x70, fIbU, "pshufw", false, func(c *CPU, in *Inst) uint64 {
		return shuffleWords(c.mmRM(in), uint(in.imm))
	})
	mmxLoad(0xc4, fIbU, "pinsrw mm", true, func(c *CPU, in *Inst) uint64 {
		return withWord(c.fpu.mm(in.reg), uint(in.imm)&3, c.readRMSize(in, 2))
	})
	sseOp(0xc5, pNone, fIbU|fRegOnly, "pextrw mm", func(c *CPU, in *Inst) {
		c.mmxCheck(in, true)
		c.setReg(in.reg, gsz(in), c.fpu.mm(in.rm)>>(uint(in.imm)&3*16)&0xffff)
		c.fpu.mmxEnter()
	})
	sseOp(0xd7, pNone, fRegOnly, "pmovmskb mm", func(c *CPU, in *Inst) {
		c.mmxCheck(in, true)
		c.setReg(in.reg, gsz(in), msb8(c.fpu.mm(in.rm)))
		c.fpu.mmxEnter()
	})
	sseOp(0xf7, pNone, fRegOnly, "maskmovq", func(c *CPU, in *Inst) {
		c.mmxCheck(in, true)
		c.maskMove(in, xmmv{c.fpu.mm(in.reg), 0}, xmmv{c.fpu.mm(in.rm), 0}, 8)
		c.fpu.mmxEnter()
	})

	// Moves between mm and XMM registers (register operands only).
	sseOp(0xd6, pF3, fRegOnly, "movq2dq", func(c *CPU, in *Inst) {
		c.sseMMXCheck(in, true)
		c.fpu.xmm[in.reg&15] = xmmv{c.fpu.mm(in.rm), 0}
		c.fpu.mmxEnter()
	})
	sseOp(0xd6, pF2, fRegOnly, "movdq2q", func(c *CPU, in *Inst) {
		c.sseMMXCheck(in, true)
		v := c.fpu.xmm[in.rm&15][0]
		c.fpu.mmxEnter()
		c.fpu.setMM(in.reg, v)
	})

	// Conversions. CVTPI2PS and CVTPI2PD convert two int32 from mm/m64
	// into XMM; with a memory source they are no MMX instructions: no
	// transition, no #MF (the SDM says so of CVTPI2PD; the host does the
	// same for both).
	sseOp(0x2a, pNone, 0, "cvtpi2ps", func(c *CPU, in *Inst) {
		reg := in.flags&iMem == 0
		c.sseMMXCheck(in, reg)
		s := c.mmRM(in)
		e := fpEnv{mx: c.fpu.mxcsr}
		r := e.i32x2ToF32(s)
		c.sseFinish(&e)
		c.fpu.xmm[in.reg&15][0] = r
		if reg {
			c.fpu.mmxEnter()
		}
	})
	sseOp(0x2a, p66, 0, "cvtpi2pd", func(c *CPU, in *Inst) {
		reg := in.flags&iMem == 0
		c.sseMMXCheck(in, reg)
		c.fpu.xmm[in.reg&15] = i32x2ToF64(c.mmRM(in))
		if reg {
			c.fpu.mmxEnter()
		}
	})
	// CVT(T)PS2PI mm, xmm/m64 and CVT(T)PD2PI mm, xmm/m128.
	toPI := func(dbl, trunc bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseMMXCheck(in, true)
			e := fpEnv{mx: c.fpu.mxcsr}
			var r uint64
			if dbl {
				r = e.f64x2ToI32(c.xmmRM(in), trunc)
			} else {
				r = e.f32x2ToI32(c.xmmRM64(in), trunc)
			}
			c.sseFinish(&e)
			c.fpu.mmxEnter()
			c.fpu.setMM(in.reg, r)
		}
	}
	sseOp(0x2d, pNone, 0, "cvtps2pi", toPI(false, false))
	sseOp(0x2c, pNone, 0, "cvttps2pi", toPI(false, true))
	sseOp(0x2d, p66, 0, "cvtpd2pi", toPI(true, false))
	sseOp(0x2c, p66, 0, "cvttpd2pi", toPI(true, true))
}
