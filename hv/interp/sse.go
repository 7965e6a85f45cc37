package interp

import (
	"github.com/pvisor/pvisor/hv/cpu"
)

// SSE/SSE2: operand access, the availability checks, data movement and
// MXCSR. Integer arithmetic is in sse_int.go, floating point in sse_fp.go.
//
// An XMM register is [2]uint64, low quadword first. Legacy (non-VEX)
// 128-bit memory operands must be 16-byte aligned (#GP(0)) except for the
// unaligned moves (MOVUPS, MOVUPD, MOVDQU); scalar and 64-bit operands
// have no alignment requirement. The MMX forms (no prefix on the 0F 6x,
// Dx, Ex integer opcodes) are in mmx.go.

type xmmv = [2]uint64

// MXCSR bits.
const (
	mxIE        = 1 << 0
	mxDE        = 1 << 1
	mxZE        = 1 << 2
	mxOE        = 1 << 3
	mxUE        = 1 << 4
	mxPE        = 1 << 5
	mxDAZ       = 1 << 6
	mxMaskShift = 7 // exception mask bits are the flag bits shifted left by 7
	mxRCShift   = 13
	mxFZ        = 1 << 15

	// mxcsrMask is the set of writable MXCSR bits (the MXCSR_MASK of
	// FXSAVE); setting any other bit with LDMXCSR raises #GP(0).
	mxcsrMask = 0xffff
)

// sseCheck raises #UD or #NM when SSE instructions are unavailable: #UD
// for a LOCK prefix, CR0.EM set or CR4.OSFXSR clear, then #NM for CR0.TS.
func (c *CPU) sseCheck(in *Inst) {
	if c.cr0&(cpu.CR0EM|cpu.CR0TS) != 0 || c.cr4&cpu.CR4OSFXSR == 0 || in.flags&iLock != 0 {
		c.sseUnavailable(in)
	}
}

func (c *CPU) sseUnavailable(in *Inst) {
	if c.cr0&cpu.CR0EM != 0 || c.cr4&cpu.CR4OSFXSR == 0 || in.flags&iLock != 0 {
		c.raise(cpu.ExcUD, noErr)
	}
	c.raise(cpu.ExcNM, noErr)
}

// xmmAddr returns the address of a 16-byte memory operand, raising #GP(0)
// when aligned is set and the address is not 16-byte aligned.
func (c *CPU) xmmAddr(in *Inst, aligned bool) uint64 {
	a := c.ea(in)
	if aligned && a&15 != 0 {
		c.raise(cpu.ExcGP, 0)
	}
	return a
}

// xmmRM reads the 16-byte r/m operand: an XMM register or aligned memory.
func (c *CPU) xmmRM(in *Inst) xmmv {
	if in.flags&iMem == 0 {
		return c.fpu.xmm[in.rm&15]
	}
	a := c.xmmAddr(in, true)
	return xmmv{c.read64(a), c.read64(a + 8)}
}

// xmmRMU reads the 16-byte r/m operand without an alignment check.
func (c *CPU) xmmRMU(in *Inst) xmmv {
	if in.flags&iMem == 0 {
		return c.fpu.xmm[in.rm&15]
	}
	a := c.ea(in)
	return xmmv{c.read64(a), c.read64(a + 8)}
}

// xmmRM64 reads the low quadword of an XMM register or 8 bytes of memory.
func (c *CPU) xmmRM64(in *Inst) uint64 {
	if in.flags&iMem == 0 {
		return c.fpu.xmm[in.rm&15][0]
	}
	return c.read64(c.ea(in))
}

// xmmRM32 reads the low doubleword of an XMM register or 4 bytes of memory.
func (c *CPU) xmmRM32(in *Inst) uint32 {
	if in.flags&iMem == 0 {
		return uint32(c.fpu.xmm[in.rm&15][0])
	}
	return c.read32(c.ea(in))
}

// write128 stores 16 bytes at a, all or nothing.
func (c *CPU) write128(a uint64, v xmmv) {
	if a&pageMask > pageSize-16 {
		c.checkWrite(a, 16)
	}
	c.write64(a, v[0])
	c.write64(a+8, v[1])
}

// xmmStoreRM writes the 16-byte r/m operand (register or memory).
func (c *CPU) xmmStoreRM(in *Inst, v xmmv, aligned bool) {
	if in.flags&iMem == 0 {
		c.fpu.xmm[in.rm&15] = v
		return
	}
	c.write128(c.xmmAddr(in, aligned), v)
}

// sseOp registers an SSE instruction under prefix slot p of 0F b.
// fMemOnly and fRegOnly apply to this prefix form only (opcode flags are
// shared by all prefix forms, group-member flags are not).
func sseOp(b byte, p int, f opFlags, name string, h handler) {
	op := defOp(name, false, h)
	setP(&table2, b, p, f&^(fMemOnly|fRegOnly), op)
	if f&(fMemOnly|fRegOnly) != 0 {
		for reg := 0; reg < 8; reg++ {
			setG(&table2, b, p, reg, f&(fMemOnly|fRegOnly), op)
		}
	}
}

func init() {
	// 16-byte loads and stores.
	load := func(aligned bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			var v xmmv
			if aligned {
				v = c.xmmRM(in)
			} else {
				v = c.xmmRMU(in)
			}
			c.fpu.xmm[in.reg&15] = v
		}
	}
	store := func(aligned bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			c.xmmStoreRM(in, c.fpu.xmm[in.reg&15], aligned)
		}
	}
	sseOp(0x10, pNone, 0, "movups", load(false))
	sseOp(0x10, p66, 0, "movupd", load(false))
	sseOp(0x11, pNone, 0, "movups st", store(false))
	sseOp(0x11, p66, 0, "movupd st", store(false))
	sseOp(0x28, pNone, 0, "movaps", load(true))
	sseOp(0x28, p66, 0, "movapd", load(true))
	sseOp(0x29, pNone, 0, "movaps st", store(true))
	sseOp(0x29, p66, 0, "movapd st", store(true))
	sseOp(0x6f, p66, 0, "movdqa", load(true))
	sseOp(0x6f, pF3, 0, "movdqu", load(false))
	sseOp(0x7f, p66, 0, "movdqa st", store(true))
	sseOp(0x7f, pF3, 0, "movdqu st", store(false))
	sseOp(0x2b, pNone, fMemOnly, "movntps", store(true))
	sseOp(0x2b, p66, fMemOnly, "movntpd", store(true))
	sseOp(0xe7, p66, fMemOnly, "movntdq", store(true))

	// MOVSS/MOVSD: a load from memory zeroes the rest of the register; a
	// register move merges the low element.
	sseOp(0x10, pF3, 0, "movss", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		d := &c.fpu.xmm[in.reg&15]
		if in.flags&iMem != 0 {
			*d = xmmv{uint64(c.read32(c.ea(in))), 0}
			return
		}
		d[0] = d[0]&^0xffffffff | c.fpu.xmm[in.rm&15][0]&0xffffffff
	})
	sseOp(0x10, pF2, 0, "movsd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		d := &c.fpu.xmm[in.reg&15]
		if in.flags&iMem != 0 {
			*d = xmmv{c.read64(c.ea(in)), 0}
			return
		}
		d[0] = c.fpu.xmm[in.rm&15][0]
	})
	sseOp(0x11, pF3, 0, "movss st", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.fpu.xmm[in.reg&15][0]
		if in.flags&iMem != 0 {
			c.write32(c.ea(in), uint32(s))
			return
		}
		d := &c.fpu.xmm[in.rm&15]
		d[0] = d[0]&^0xffffffff | s&0xffffffff
	})
	sseOp(0x11, pF2, 0, "movsd st", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.fpu.xmm[in.reg&15][0]
		if in.flags&iMem != 0 {
			c.write64(c.ea(in), s)
			return
		}
		c.fpu.xmm[in.rm&15][0] = s
	})

	// MOVLPS/MOVLPD/MOVHLPS and MOVHPS/MOVHPD/MOVLHPS.
	movlLoad := func(c *CPU, in *Inst) {
		c.sseCheck(in)
		var v uint64
		if in.flags&iMem != 0 {
			v = c.read64(c.ea(in))
		} else {
			v = c.fpu.xmm[in.rm&15][1] // MOVHLPS
		}
		c.fpu.xmm[in.reg&15][0] = v
	}
	movhLoad := func(c *CPU, in *Inst) {
		c.sseCheck(in)
		var v uint64
		if in.flags&iMem != 0 {
			v = c.read64(c.ea(in))
		} else {
			v = c.fpu.xmm[in.rm&15][0] // MOVLHPS
		}
		c.fpu.xmm[in.reg&15][1] = v
	}
	sseOp(0x12, pNone, 0, "movlps/movhlps", movlLoad)
	sseOp(0x12, p66, fMemOnly, "movlpd", movlLoad)
	sseOp(0x16, pNone, 0, "movhps/movlhps", movhLoad)
	sseOp(0x16, p66, fMemOnly, "movhpd", movhLoad)
	storeHalf := func(half int) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			c.write64(c.ea(in), c.fpu.xmm[in.reg&15][half])
		}
	}
	sseOp(0x13, pNone, fMemOnly, "movlps st", storeHalf(0))
	sseOp(0x13, p66, fMemOnly, "movlpd st", storeHalf(0))
	sseOp(0x17, pNone, fMemOnly, "movhps st", storeHalf(1))
	sseOp(0x17, p66, fMemOnly, "movhpd st", storeHalf(1))

	// MOVD/MOVQ.
	sseOp(0x6e, p66, 0, "movd/movq x,Ey", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		c.fpu.xmm[in.reg&15] = xmmv{c.readRM(in), 0}
	})
	sseOp(0x7e, p66, 0, "movd/movq Ey,x", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		c.writeRM(in, c.fpu.xmm[in.reg&15][0]&sizeMask[in.size])
	})
	sseOp(0x7e, pF3, 0, "movq x,x/m64", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		c.fpu.xmm[in.reg&15] = xmmv{c.xmmRM64(in), 0}
	})
	sseOp(0xd6, p66, 0, "movq x/m64,x", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		v := c.fpu.xmm[in.reg&15][0]
		if in.flags&iMem != 0 {
			c.write64(c.ea(in), v)
			return
		}
		c.fpu.xmm[in.rm&15] = xmmv{v, 0}
	})

	// MOVNTI stores a general register; it does not touch SSE state.
	sseOp(0xc3, pNone, fMemOnly, "movnti", func(c *CPU, in *Inst) {
		if in.flags&iLock != 0 {
			c.raise(cpu.ExcUD, noErr)
		}
		c.writeN(c.ea(in), in.size, c.getReg(in.reg, in.size))
	})

	// MASKMOVDQU: byte-masked store of xmm(reg) to [RDI] (mask = rm).
	sseOp(0xf7, p66, fRegOnly, "maskmovdqu", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		c.maskMove(in, c.fpu.xmm[in.reg&15], c.fpu.xmm[in.rm&15], 16)
	})

	// MOVMSKPS/MOVMSKPD/PMOVMSKB: sign bits to a general register.
	sseOp(0x50, pNone, fRegOnly, "movmskps", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.fpu.xmm[in.rm&15]
		v := s[0]>>31&1 | s[0]>>62&2 | s[1]>>29&4 | s[1]>>60&8
		c.setReg(in.reg, gsz(in), v)
	})
	sseOp(0x50, p66, fRegOnly, "movmskpd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.fpu.xmm[in.rm&15]
		c.setReg(in.reg, gsz(in), s[0]>>63|s[1]>>63<<1)
	})
	sseOp(0xd7, p66, fRegOnly, "pmovmskb", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.fpu.xmm[in.rm&15]
		c.setReg(in.reg, gsz(in), msb8(s[0])|msb8(s[1])<<8)
	})

	// LDMXCSR / STMXCSR (0F AE /2, /3).
	setG(&table2, 0xae, pNone, 2, fMemOnly, defOp("ldmxcsr", false, func(c *CPU, in *Inst) {
		c.sseCheck(in)
		v := c.read32(c.ea(in))
		if v&^mxcsrMask != 0 {
			c.raise(cpu.ExcGP, 0)
		}
		c.fpu.mxcsr = v
	}))
	setG(&table2, 0xae, pNone, 3, fMemOnly, defOp("stmxcsr", false, func(c *CPU, in *Inst) {
		c.sseCheck(in)
		c.write32(c.ea(in), c.fpu.mxcsr)
	}))
}

// maskMove is MASKMOVDQU (n = 16) and MASKMOVQ (n = 8): the bytes of v
// whose mask byte in m has its top bit set are stored at [rDI] (segment
// override allowed). With no byte selected nothing is accessed.
func (c *CPU) maskMove(in *Inst, v, m xmmv, n uint) {
	a := c.r[cpu.RDI]
	if in.flags&iAddr32 != 0 {
		a &= 0xffffffff
	}
	a += c.segBase[in.seg]
	if m[0]&hi1s == 0 && m[1]&hi1s == 0 {
		return
	}
	c.checkWrite(a, uint64(n))
	for i := uint(0); i < n; i++ {
		if m[i>>3]>>(i&7*8+7)&1 != 0 {
			c.write8(a+uint64(i), uint8(v[i>>3]>>(i&7*8)))
		}
	}
}

// gsz is the size of a general-register operand of an SSE instruction: 8
// with REX.W, else 4 (a 66 prefix next to F2/F3 does not make it 16-bit).
func gsz(in *Inst) uint8 {
	if in.size == 8 {
		return 8
	}
	return 4
}

// msb8 gathers the most significant bit of each byte of v into 8 bits.
func msb8(v uint64) uint64 {
	return (v >> 7 & 0x0101010101010101) * 0x0102040810204080 >> 56
}
