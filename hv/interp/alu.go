package interp

import (
	"math/bits"

	"github.com/pvisor/pvisor/hv/cpu"
)

// ALU operation kinds, in the x86 encoding order (opcode bits 5:3, grp1 reg).
const (
	aluADD = iota
	aluOR
	aluADC
	aluSBB
	aluAND
	aluSUB
	aluXOR
	aluCMP
)

// alu computes a op b at size, sets the lazy flags and returns the result
// (CMP's result is a - b, not to be written back).
func (c *CPU) alu(kind int, size uint8, a, b uint64) uint64 {
	m := sizeMask[size]
	var r uint64
	switch kind {
	case aluADD:
		r = (a + b) & m
		c.setAdd(size, a, b, r)
	case aluOR:
		r = (a | b) & m
		c.setLogic(size, r)
	case aluADC:
		cf := uint64(0)
		if c.getCF() {
			cf = 1
		}
		r = (a + b + cf) & m
		c.setAdd(size, a, b, r)
	case aluSBB:
		cf := uint64(0)
		if c.getCF() {
			cf = 1
		}
		r = (a - b - cf) & m
		c.setSub(size, a, b, r)
		c.lf.op = lfSbb
	case aluAND:
		r = a & b & m
		c.setLogic(size, r)
	case aluSUB, aluCMP:
		r = (a - b) & m
		c.setSub(size, a, b, r)
	case aluXOR:
		r = (a ^ b) & m
		c.setLogic(size, r)
	}
	return r
}

// aluRM: op Eb/Ev, Gb/Gv (and group 1 with an immediate when imm is true).
func aluRM(kind int, imm bool) handler {
	return func(c *CPU, in *Inst) {
		var b uint64
		if imm {
			b = in.imm & sizeMask[in.size]
		} else {
			b = c.getReg(in.reg, in.size)
		}
		if in.flags&iMem != 0 {
			addr := c.ea(in)
			a := c.readN(addr, in.size)
			r := c.alu(kind, in.size, a, b)
			if kind != aluCMP {
				c.writeN(addr, in.size, r)
			}
			return
		}
		r := c.alu(kind, in.size, c.getReg(in.rm, in.size), b)
		if kind != aluCMP {
			c.setReg(in.rm, in.size, r)
		}
	}
}

// aluReg: op Gb/Gv, Eb/Ev.
func aluReg(kind int) handler {
	return func(c *CPU, in *Inst) {
		r := c.alu(kind, in.size, c.getReg(in.reg, in.size), c.readRM(in))
		if kind != aluCMP {
			c.setReg(in.reg, in.size, r)
		}
	}
}

// aluAcc: op AL/eAX, imm.
func aluAcc(kind int) handler {
	return func(c *CPU, in *Inst) {
		r := c.alu(kind, in.size, c.getReg(cpu.RAX, in.size), in.imm&sizeMask[in.size])
		if kind != aluCMP {
			c.setReg(cpu.RAX, in.size, r)
		}
	}
}

var aluNames = [8]string{"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"}

func init() {
	for k := 0; k < 8; k++ {
		base := byte(k << 3)
		n := aluNames[k]
		set1(base+0, fModRM|fByte, lockableOp(defOp(n+" Eb,Gb", false, aluRM(k, false)), false))
		set1(base+1, fModRM, lockableOp(defOp(n+" Ev,Gv", false, aluRM(k, false)), false))
		set1(base+2, fModRM|fByte, defOp(n+" Gb,Eb", false, aluReg(k)))
		set1(base+3, fModRM, defOp(n+" Gv,Ev", false, aluReg(k)))
		set1(base+4, fByte|fIb, defOp(n+" AL,Ib", false, aluAcc(k)))
		set1(base+5, fIz, defOp(n+" eAX,Iz", false, aluAcc(k)))
		imm := lockableOp(defOp(n+" E,I", false, aluRM(k, true)), false)
		setG(&table1, 0x80, pNone, k, fByte|fIb, imm)
		setG(&table1, 0x81, pNone, k, fIz, imm)
		setG(&table1, 0x83, pNone, k, fIb, imm)
	}
	for _, b := range []byte{0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f,
		0x60, 0x61, 0x62, 0x82, 0x9a, 0xc4, 0xc5, 0xce, 0xd4, 0xd5, 0xd6, 0xea} {
		table1[b] = opDesc{flags: fInv64}
	}

	test := defOp("test E,G", false, func(c *CPU, in *Inst) {
		c.setLogic(in.size, c.readRM(in)&c.getReg(in.reg, in.size))
	})
	set1(0x84, fModRM|fByte, test)
	set1(0x85, fModRM, test)
	testAcc := defOp("test eAX,I", false, func(c *CPU, in *Inst) {
		c.setLogic(in.size, c.getReg(cpu.RAX, in.size)&in.imm)
	})
	set1(0xa8, fByte|fIb, testAcc)
	set1(0xa9, fIz, testAcc)
	testImm := defOp("test E,I", false, func(c *CPU, in *Inst) {
		c.setLogic(in.size, c.readRM(in)&in.imm&sizeMask[in.size])
	})
	// Group 3: the immediate exists only for TEST (/0, /1): fImmReg01.
	for _, b := range []byte{0xf6, 0xf7} {
		f := fImmReg01
		if b == 0xf6 {
			f |= fByte
		}
		setG(&table1, b, pNone, 0, f, testImm)
		setG(&table1, b, pNone, 1, f, testImm)
		setG(&table1, b, pNone, 2, f, lockableOp(defOp("not", false, opNOT), false))
		setG(&table1, b, pNone, 3, f, lockableOp(defOp("neg", false, opNEG), false))
		setG(&table1, b, pNone, 4, f, defOp("mul", false, opMUL))
		setG(&table1, b, pNone, 5, f, defOp("imul1", false, opIMUL1))
		setG(&table1, b, pNone, 6, f, defOp("div", false, opDIV))
		setG(&table1, b, pNone, 7, f, defOp("idiv", false, opIDIV))
	}

	incdec := func(dec bool) handler {
		return func(c *CPU, in *Inst) {
			cf := uint64(0)
			if c.getCF() {
				cf = auxCF
			}
			m := sizeMask[in.size]
			var addr, a uint64
			if in.flags&iMem != 0 {
				addr = c.ea(in)
				a = c.readN(addr, in.size)
			} else {
				a = c.getReg(in.rm, in.size)
			}
			var r uint64
			if dec {
				r = (a - 1) & m
				c.lf = lazyFlags{op: lfDec, size: in.size, a: a, b: 1, res: r, aux: cf}
			} else {
				r = (a + 1) & m
				c.lf = lazyFlags{op: lfInc, size: in.size, a: a, b: 1, res: r, aux: cf}
			}
			if in.flags&iMem != 0 {
				c.writeN(addr, in.size, r)
			} else {
				c.setReg(in.rm, in.size, r)
			}
		}
	}
	inc, dec := lockableOp(defOp("inc", false, incdec(false)), false), lockableOp(defOp("dec", false, incdec(true)), false)
	setG(&table1, 0xfe, pNone, 0, fByte, inc)
	setG(&table1, 0xfe, pNone, 1, fByte, dec)
	setG(&table1, 0xff, pNone, 0, 0, inc)
	setG(&table1, 0xff, pNone, 1, 0, dec)

	// MOV
	movRM := defOp("mov E,G", false, func(c *CPU, in *Inst) { c.writeRM(in, c.getReg(in.reg, in.size)) })
	set1(0x88, fModRM|fByte, movRM)
	set1(0x89, fModRM, movRM)
	movReg := defOp("mov G,E", false, func(c *CPU, in *Inst) { c.setReg(in.reg, in.size, c.readRM(in)) })
	set1(0x8a, fModRM|fByte, movReg)
	set1(0x8b, fModRM, movReg)
	movImm := defOp("mov E,I", false, func(c *CPU, in *Inst) { c.writeRM(in, in.imm) })
	setG(&table1, 0xc6, pNone, 0, fByte|fIb, movImm)
	setG(&table1, 0xc7, pNone, 0, fIz, movImm)
	movRegImm := defOp("mov r,I", false, func(c *CPU, in *Inst) { c.setReg(in.reg, in.size, in.imm) })
	for r := byte(0); r < 8; r++ {
		set1(0xb0+r, fOpReg|fByte|fIb, movRegImm)
		set1(0xb8+r, fOpReg|fIv, movRegImm)
	}
	movLoadOffs := defOp("mov eAX,moffs", false, func(c *CPU, in *Inst) {
		c.setReg(cpu.RAX, in.size, c.readN(in.imm+c.segBase[in.seg], in.size))
	})
	movStoreOffs := defOp("mov moffs,eAX", false, func(c *CPU, in *Inst) {
		c.writeN(in.imm+c.segBase[in.seg], in.size, c.getReg(cpu.RAX, in.size))
	})
	set1(0xa0, fByte|fMoffs, movLoadOffs)
	set1(0xa1, fMoffs, movLoadOffs)
	set1(0xa2, fByte|fMoffs, movStoreOffs)
	set1(0xa3, fMoffs, movStoreOffs)
	set1(0x8d, fModRM|fMemOnly, defOp("lea", false, func(c *CPU, in *Inst) {
		a := c.r[in.base] + c.r[in.index]<<in.scale + uint64(int64(in.disp))
		if in.flags&iRIPRel != 0 {
			a += c.rip
		}
		if in.flags&iAddr32 != 0 {
			a &= 0xffffffff
		}
		c.setReg(in.reg, in.size, a)
	}))
	set2(0xb6, fModRM|fRMByte, defOp("movzx Gv,Eb", false, func(c *CPU, in *Inst) {
		c.setReg(in.reg, in.size, c.readRMSize(in, 1))
	}))
	set2(0xb7, fModRM, defOp("movzx Gv,Ew", false, func(c *CPU, in *Inst) {
		c.setReg(in.reg, in.size, c.readRMSize(in, 2))
	}))
	set2(0xbe, fModRM|fRMByte, defOp("movsx Gv,Eb", false, func(c *CPU, in *Inst) {
		c.setReg(in.reg, in.size, uint64(int64(int8(c.readRMSize(in, 1)))))
	}))
	set2(0xbf, fModRM, defOp("movsx Gv,Ew", false, func(c *CPU, in *Inst) {
		c.setReg(in.reg, in.size, uint64(int64(int16(c.readRMSize(in, 2)))))
	}))
	set1(0x63, fModRM, defOp("movsxd", false, func(c *CPU, in *Inst) {
		c.setReg(in.reg, in.size, uint64(int64(int32(c.readRMSize(in, 4)))))
	}))

	// XCHG
	xchg := lockableOp(defOp("xchg E,G", false, func(c *CPU, in *Inst) {
		g := c.getReg(in.reg, in.size)
		if in.flags&iMem != 0 {
			addr := c.ea(in)
			v := c.readN(addr, in.size)
			c.writeN(addr, in.size, g)
			c.setReg(in.reg, in.size, v)
			return
		}
		v := c.getReg(in.rm, in.size)
		c.setReg(in.rm, in.size, g)
		c.setReg(in.reg, in.size, v)
	}), false)
	set1(0x86, fModRM|fByte, xchg)
	set1(0x87, fModRM, xchg)
	nop := defOp("nop", false, func(c *CPU, in *Inst) {})
	xchgAcc := defOp("xchg r,eAX", false, func(c *CPU, in *Inst) {
		if in.reg == cpu.RAX {
			return // 90 is NOP in 64-bit mode (PAUSE with F3), not XCHG EAX, EAX
		}
		a := c.getReg(cpu.RAX, in.size)
		c.setReg(cpu.RAX, in.size, c.getReg(in.reg, in.size))
		c.setReg(in.reg, in.size, a)
	})
	for r := byte(0); r < 8; r++ {
		set1(0x90+r, fOpReg, xchgAcc)
	}
	// 0F 0D prefetch, 0F 18-1F hint NOPs (incl. ENDBR64 = F3 0F 1E FA).
	set2(0x0d, fModRM, nop)
	for b := byte(0x18); b <= 0x1f; b++ {
		set2(b, fModRM, nop)
	}

	// CBW/CWDE/CDQE, CWD/CDQ/CQO
	set1(0x98, 0, defOp("cbw", false, func(c *CPU, in *Inst) {
		switch in.size {
		case 8:
			c.r[cpu.RAX] = uint64(int64(int32(c.r[cpu.RAX])))
		case 4:
			c.r[cpu.RAX] = uint64(uint32(int32(int16(c.r[cpu.RAX]))))
		default:
			c.setReg(cpu.RAX, 2, uint64(int64(int8(c.r[cpu.RAX]))))
		}
	}))
	set1(0x99, 0, defOp("cwd", false, func(c *CPU, in *Inst) {
		a := c.getReg(cpu.RAX, in.size)
		var d uint64
		if a>>signShift(in.size)&1 != 0 {
			d = ^uint64(0)
		}
		c.setReg(cpu.RDX, in.size, d)
	}))

	// CMOVcc, SETcc
	cmov := defOp("cmovcc", false, func(c *CPU, in *Inst) {
		v := c.readRM(in)
		if c.cond(in.ext0()) {
			c.setReg(in.reg, in.size, v)
		} else if in.size == 4 {
			c.r[in.reg] &= 0xffffffff
		}
	})
	setcc := defOp("setcc", false, func(c *CPU, in *Inst) {
		v := uint64(0)
		if c.cond(in.ext0()) {
			v = 1
		}
		c.writeRM(in, v)
	})
	for cc := byte(0); cc < 16; cc++ {
		set2(0x40+cc, fModRM, cmov)
		set2(0x90+cc, fModRM|fByte, setcc)
	}

	// BSWAP
	bswap := defOp("bswap", false, func(c *CPU, in *Inst) {
		switch in.size {
		case 8:
			c.r[in.reg] = bits.ReverseBytes64(c.r[in.reg])
		case 4:
			c.r[in.reg] = uint64(bits.ReverseBytes32(uint32(c.r[in.reg])))
		default:
			c.setReg(in.reg, 2, 0) // undefined; zero as Intel does
		}
	})
	for r := byte(0); r < 8; r++ {
		set2(0xc8+r, fOpReg, bswap)
	}

	// Flag instructions.
	set1(0xf5, 0, defOp("cmc", false, func(c *CPU, in *Inst) { c.commitFlags(); c.flags ^= cpu.FlagCF }))
	set1(0xf8, 0, defOp("clc", false, func(c *CPU, in *Inst) { c.commitFlags(); c.flags &^= cpu.FlagCF }))
	set1(0xf9, 0, defOp("stc", false, func(c *CPU, in *Inst) { c.commitFlags(); c.flags |= cpu.FlagCF }))
	set1(0xfc, 0, defOp("cld", false, func(c *CPU, in *Inst) { c.flags &^= cpu.FlagDF }))
	set1(0xfd, 0, defOp("std", false, func(c *CPU, in *Inst) { c.flags |= cpu.FlagDF }))
	set1(0x9f, 0, defOp("lahf", false, func(c *CPU, in *Inst) {
		c.setReg(16+cpu.RAX, 1, c.getFlags()&0xff|cpu.FlagsFixed)
	}))
	set1(0x9e, 0, defOp("sahf", false, func(c *CPU, in *Inst) {
		c.commitFlags()
		const m = cpu.FlagCF | cpu.FlagPF | cpu.FlagAF | cpu.FlagZF | cpu.FlagSF
		c.flags = c.flags&^m | (c.r[cpu.RAX]>>8)&m
	}))
	set1(0xd7, 0, defOp("xlat", false, func(c *CPU, in *Inst) {
		a := c.r[cpu.RBX] + c.r[cpu.RAX]&0xff
		if in.flags&iAddr32 != 0 {
			a &= 0xffffffff
		}
		c.setReg(cpu.RAX, 1, uint64(c.read8(a+c.segBase[in.seg])))
	}))
}

// ext0 returns the condition code of Jcc/SETcc/CMOVcc: the opcode's low nibble.
func (in *Inst) ext0() uint8 { return in.ext & 0xf }

func opNOT(c *CPU, in *Inst) {
	if in.flags&iMem != 0 {
		addr := c.ea(in)
		c.writeN(addr, in.size, ^c.readN(addr, in.size))
		return
	}
	c.setReg(in.rm, in.size, ^c.getReg(in.rm, in.size))
}

func opNEG(c *CPU, in *Inst) {
	var addr, a uint64
	if in.flags&iMem != 0 {
		addr = c.ea(in)
		a = c.readN(addr, in.size)
	} else {
		a = c.getReg(in.rm, in.size)
	}
	r := (0 - a) & sizeMask[in.size]
	c.setSub(in.size, 0, a, r)
	if in.flags&iMem != 0 {
		c.writeN(addr, in.size, r)
	} else {
		c.setReg(in.rm, in.size, r)
	}
}

func mulFlags(c *CPU, size uint8, lo uint64, overflow bool) {
	aux := uint64(0)
	if overflow {
		aux = auxCF | auxOF
	}
	c.setRes(size, lo, aux)
}

func opMUL(c *CPU, in *Inst) {
	b := c.readRM(in)
	a := c.getReg(cpu.RAX, in.size)
	switch in.size {
	case 1:
		r := a * b
		c.setReg(cpu.RAX, 2, r)
		mulFlags(c, 1, r, r>>8 != 0)
	case 2:
		r := a * b
		c.setReg(cpu.RAX, 2, r)
		c.setReg(cpu.RDX, 2, r>>16)
		mulFlags(c, 2, r, r>>16 != 0)
	case 4:
		r := a * b
		c.setReg(cpu.RAX, 4, r)
		c.setReg(cpu.RDX, 4, r>>32)
		mulFlags(c, 4, r, r>>32 != 0)
	default:
		hi, lo := bits.Mul64(a, b)
		c.r[cpu.RAX], c.r[cpu.RDX] = lo, hi
		mulFlags(c, 8, lo, hi != 0)
	}
}

func sext(v uint64, size uint8) int64 {
	s := 64 - uint(size)*8
	return int64(v<<s) >> s
}

// imul128 returns the signed 128-bit product of a and b.
func imul128(a, b int64) (hi int64, lo uint64) {
	h, l := bits.Mul64(uint64(a), uint64(b))
	if a < 0 {
		h -= uint64(b)
	}
	if b < 0 {
		h -= uint64(a)
	}
	return int64(h), l
}

func opIMUL1(c *CPU, in *Inst) {
	b := sext(c.readRM(in), in.size)
	a := sext(c.getReg(cpu.RAX, in.size), in.size)
	switch in.size {
	case 1:
		r := a * b
		c.setReg(cpu.RAX, 2, uint64(r))
		mulFlags(c, 1, uint64(r), r != int64(int8(r)))
	case 2:
		r := a * b
		c.setReg(cpu.RAX, 2, uint64(r))
		c.setReg(cpu.RDX, 2, uint64(r)>>16)
		mulFlags(c, 2, uint64(r), r != int64(int16(r)))
	case 4:
		r := a * b
		c.setReg(cpu.RAX, 4, uint64(r))
		c.setReg(cpu.RDX, 4, uint64(r)>>32)
		mulFlags(c, 4, uint64(r), r != int64(int32(r)))
	default:
		hi, lo := imul128(a, b)
		c.r[cpu.RAX], c.r[cpu.RDX] = lo, uint64(hi)
		mulFlags(c, 8, lo, hi != int64(lo)>>63)
	}
}

// imulTrunc: IMUL Gv, Ev[, imm] (two- and three-operand forms).
func imulTrunc(c *CPU, in *Inst, a, b int64) {
	switch in.size {
	case 2:
		r := a * b
		c.setReg(in.reg, 2, uint64(r))
		mulFlags(c, 2, uint64(r), r != int64(int16(r)))
	case 4:
		r := a * b
		c.setReg(in.reg, 4, uint64(r))
		mulFlags(c, 4, uint64(r), r != int64(int32(r)))
	default:
		hi, lo := imul128(a, b)
		c.r[in.reg] = lo
		mulFlags(c, 8, lo, hi != int64(lo)>>63)
	}
}

func opDIV(c *CPU, in *Inst) {
	d := c.readRM(in)
	if d == 0 {
		c.raise(cpu.ExcDE, noErr)
	}
	switch in.size {
	case 1:
		n := c.r[cpu.RAX] & 0xffff
		q := n / d
		if q > 0xff {
			c.raise(cpu.ExcDE, noErr)
		}
		c.setReg(cpu.RAX, 2, (n%d)<<8|q)
	case 2:
		n := c.r[cpu.RDX]&0xffff<<16 | c.r[cpu.RAX]&0xffff
		q := n / d
		if q > 0xffff {
			c.raise(cpu.ExcDE, noErr)
		}
		c.setReg(cpu.RAX, 2, q)
		c.setReg(cpu.RDX, 2, n%d)
	case 4:
		n := c.r[cpu.RDX]&0xffffffff<<32 | c.r[cpu.RAX]&0xffffffff
		q := n / d
		if q > 0xffffffff {
			c.raise(cpu.ExcDE, noErr)
		}
		c.setReg(cpu.RAX, 4, q)
		c.setReg(cpu.RDX, 4, n%d)
	default:
		hi, lo := c.r[cpu.RDX], c.r[cpu.RAX]
		if hi >= d {
			c.raise(cpu.ExcDE, noErr)
		}
		q, r := bits.Div64(hi, lo, d)
		c.r[cpu.RAX], c.r[cpu.RDX] = q, r
	}
	// Flags are undefined after DIV; leave them as they were.
}

func opIDIV(c *CPU, in *Inst) {
	d := sext(c.readRM(in), in.size)
	if d == 0 {
		c.raise(cpu.ExcDE, noErr)
	}
	switch in.size {
	case 1:
		n := int64(int16(c.r[cpu.RAX]))
		q, r := n/d, n%d
		if q != int64(int8(q)) {
			c.raise(cpu.ExcDE, noErr)
		}
		c.setReg(cpu.RAX, 2, uint64(r&0xff)<<8|uint64(q&0xff))
	case 2:
		n := int64(int32(uint32(c.r[cpu.RDX]&0xffff<<16 | c.r[cpu.RAX]&0xffff)))
		q, r := n/d, n%d
		if q != int64(int16(q)) {
			c.raise(cpu.ExcDE, noErr)
		}
		c.setReg(cpu.RAX, 2, uint64(q))
		c.setReg(cpu.RDX, 2, uint64(r))
	case 4:
		n := int64(c.r[cpu.RDX]&0xffffffff<<32 | c.r[cpu.RAX]&0xffffffff)
		q, r := n/d, n%d
		if q != int64(int32(q)) {
			c.raise(cpu.ExcDE, noErr)
		}
		c.setReg(cpu.RAX, 4, uint64(q))
		c.setReg(cpu.RDX, 4, uint64(r))
	default:
		q, r, ok := idiv128(int64(c.r[cpu.RDX]), c.r[cpu.RAX], d)
		if !ok {
			c.raise(cpu.ExcDE, noErr)
		}
		c.r[cpu.RAX], c.r[cpu.RDX] = uint64(q), uint64(r)
	}
}

// idiv128 divides the signed 128-bit hi:lo by d, truncating toward zero.
func idiv128(hi int64, lo uint64, d int64) (q, r int64, ok bool) {
	neg := hi < 0
	uh, ul := uint64(hi), lo
	if neg {
		ul = -lo
		uh = ^uh
		if ul == 0 {
			uh++
		}
	}
	ud := uint64(d)
	if d < 0 {
		ud = uint64(-d)
	}
	if uh >= ud {
		return 0, 0, false
	}
	uq, ur := bits.Div64(uh, ul, ud)
	qneg := neg != (d < 0)
	if qneg {
		if uq > 1<<63 {
			return 0, 0, false
		}
		q = -int64(uq)
	} else {
		if uq > 1<<63-1 {
			return 0, 0, false
		}
		q = int64(uq)
	}
	r = int64(ur)
	if neg {
		r = -r
	}
	return q, r, true
}
