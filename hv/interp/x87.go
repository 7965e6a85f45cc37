package interp

import (
	"github.com/pvisor/pvisor/hv/cpu"
)

// The x87 floating-point unit (D8-DF, 9B) and FXSAVE/FXRSTOR (0F AE /0,
// /1). Arithmetic is in x87_float.go.
//
// State: fpuState.st holds the eight physical registers, top the stack
// top, ftw the abridged tag (bit i set: physical register i is valid).
// ST(i) is physical register (top+i)&7.
//
// Exceptions: masked exceptions produce the SDM's default results (QNaN
// indefinite, infinities, ...). An unmasked exception sets ES and B; for
// IE, ZE and DE the destination is left unchanged (an unmasked DE also
// drops the PE, UE, OE and C1 of the computation; FLD m32/m64 still loads
// a denormal). Unmasked OE and UE deliver a register result with its
// exponent wrapped by 24576 (roundReg) and store nothing to memory
// (toFloat). The next waiting x87
// instruction (or FWAIT) then raises #MF when CR0.NE is set; with CR0.NE
// clear the engine does not model the FERR# interrupt and execution goes
// on.
//
// FOP is rebuilt from the decoded instruction; for memory operands the
// ModRM mod field is the shortest encoding of the displacement, which is
// what assemblers emit.

// x87 operand kinds of memory forms.
const (
	memF32 = iota
	memF64
	memI32
	memI16
	memI64
	memF80
	memBCD // 18-digit packed BCD (FBLD, FBSTP)
)

func (f *fpuState) phys(i uint8) uint8   { return (f.top + i) & 7 }
func (f *fpuState) empty(i uint8) bool   { return f.ftw>>f.phys(i)&1 == 0 }
func (f *fpuState) get(i uint8) f80      { return f.st[f.phys(i)] }
func (f *fpuState) set(i uint8, v f80)   { p := f.phys(i); f.st[p] = v; f.ftw |= 1 << p }
func (f *fpuState) status() uint16       { return f.fsw&^0x3800 | uint16(f.top&7)<<11 }
func (f *fpuState) setStatus(v uint16)   { f.fsw, f.top = v&^0x3800, uint8(v>>11)&7 }
func (f *fpuState) pop()                 { f.ftw &^= 1 << (f.top & 7); f.top = (f.top + 1) & 7 }
func (f *fpuState) pushRaw(v f80)        { f.top = (f.top - 1) & 7; f.st[f.top] = v; f.ftw |= 1 << f.top }
func (f *fpuState) setCC(cc uint16)      { f.fsw = f.fsw&^fswCC | cc }
func (f *fpuState) masked(e uint16) bool { return f.fcw&e&fswExc == e&fswExc }

// fcwLoaded is a control word as FLDCW, FLDENV, FRSTOR and FXRSTOR load
// it: bits 13-15 and 7 read as 0, bit 6 as 1 (measured on the host).
func fcwLoaded(v uint16) uint16 { return v&0x1f3f | 0x40 }

// fixES derives ES and B from the exception flags and masks, as the
// hardware does after loading a control or status word.
func (f *fpuState) fixES() {
	if f.fsw&fswExc&^f.fcw != 0 {
		f.fsw |= fswES | fswB
	} else {
		f.fsw &^= fswES | fswB
	}
}

// x87Begin performs the checks common to x87 instructions: #NM when CR0.EM
// or CR0.TS is set, and #MF for a pending unmasked exception (waiting
// instructions only). Non-control instructions record FIP and FOP.
func (c *CPU) x87Begin(in *Inst, wait, record bool) {
	if c.cr0&(cpu.CR0EM|cpu.CR0TS) != 0 {
		c.raise(cpu.ExcNM, noErr)
	}
	if wait && c.fpu.fsw&fswES != 0 && c.cr0&cpu.CR0NE != 0 {
		c.raise(cpu.ExcMF, noErr)
	}
	if record {
		c.fpu.fip = c.instStart
		c.fpu.fop = uint16(in.ext&7)<<8 | uint16(x87ModRM(in))
		if in.flags&iMem != 0 {
			c.fpu.fdp = c.ea(in)
		}
	}
}

// x87ModRM rebuilds the ModRM byte of an x87 instruction for FOP.
func x87ModRM(in *Inst) uint8 {
	reg := (in.reg & 7) << 3
	if in.flags&iMem == 0 {
		return 0xc0 | reg | in.rm&7
	}
	if in.flags&iRIPRel != 0 {
		return reg | 5
	}
	rm := in.base & 7
	if in.index != regNone || in.base == regNone {
		rm = 4
	}
	switch {
	case in.base == regNone:
		return reg | rm
	case in.disp == 0 && in.base&7 != 5:
		return reg | rm
	case in.disp == int32(int8(in.disp)):
		return 0x40 | reg | rm
	}
	return 0x80 | reg | rm
}

// x87Exc merges the exception flags of fl into FSW and sets C1 from fl
// (other condition codes are untouched). It reports whether the result may
// be written: false when an unmasked IE, ZE or DE occurred.
func (c *CPU) x87Exc(fl uint16) bool {
	f := &c.fpu
	e := fl & (fswExc | fswSF)
	if e&fswDE&^f.fcw != 0 {
		// An unmasked denormal operand stops the operation before it
		// computes anything.
		e &^= fswPE | fswUE | fswOE
		fl &^= fswC1
	}
	f.fsw = f.fsw&^fswC1 | fl&fswC1 | e
	if un := e & fswExc &^ f.fcw; un != 0 {
		f.fsw |= fswES | fswB
		return un&(fswIE|fswZE|fswDE) == 0
	}
	return true
}

// stackFault reports stack underflow (over=false) or overflow: IE and SF,
// C1 = over. It reports whether the masked response applies.
func (c *CPU) stackFault(over bool) bool {
	fl := uint16(fswIE | fswSF)
	if over {
		fl |= fswC1
	}
	return c.x87Exc(fl)
}

// x87Push pushes v, handling stack overflow.
func (c *CPU) x87Push(v f80) {
	f := &c.fpu
	if f.ftw>>((f.top-1)&7)&1 != 0 {
		if c.stackFault(true) {
			f.pushRaw(f80Indefinite)
		}
		return
	}
	f.fsw &^= fswC1
	f.pushRaw(v)
}

// x87Arith computes the arithmetic group member r (0 add, 1 mul, 4 a-b,
// 5 b-a, 6 a/b, 7 b/a) where a is ST(0).
func x87Arith(r uint8, a, b f80, fcw uint16) (f80, uint16) {
	switch r {
	case 0:
		return f80Add(a, b, false, fcw)
	case 1:
		return f80Mul(a, b, fcw)
	case 4:
		return f80Add(a, b, true, fcw)
	case 5:
		return f80Add(b, a, true, fcw)
	case 6:
		return f80Div(a, b, fcw)
	}
	return f80Div(b, a, fcw)
}

// cmpCC maps a comparison result to C3, C2, C0.
func cmpCC(r int) uint16 {
	switch r {
	case -1:
		return fswC0
	case 0:
		return fswC3
	case 1:
		return 0
	}
	return fswC3 | fswC2 | fswC0
}

// x87Compare sets C3/C2/C0 (C1 cleared) from comparing ST(0) with b, or
// the unordered code on stack underflow. The codes are set even when an
// unmasked IE or DE stops the instruction (as the host does); it reports
// whether the comparison completed: a compare-and-pop pops only then.
func (c *CPU) x87Compare(a, b f80, quietOK, underflow bool) bool {
	return c.x87CompareX(a, b, quietOK, underflow, 0)
}

// x87CompareX is x87Compare with extra flags from loading b.
func (c *CPU) x87CompareX(a, b f80, quietOK, underflow bool, extra uint16) bool {
	f := &c.fpu
	if underflow {
		ok := c.stackFault(false)
		f.setCC(fswC3 | fswC2 | fswC0)
		return ok
	}
	r, fl := f80Cmp(a, b, quietOK)
	if fl&fswIE == 0 {
		fl |= extra
	}
	ok := c.x87Exc(fl)
	f.setCC(cmpCC(r))
	return ok
}

// x87CompareFlags is FCOMI/FUCOMI: ZF, PF, CF from the comparison, set
// even when an unmasked IE or DE stops the instruction; C1 is cleared
// only by a stack underflow. It reports whether the comparison completed
// (FCOMIP and FUCOMIP pop only then).
func (c *CPU) x87CompareFlags(a, b f80, quietOK, underflow bool) bool {
	f := &c.fpu
	r, ok := 2, false
	if underflow {
		ok = c.stackFault(false)
	} else {
		c1 := f.fsw & fswC1
		var fl uint16
		r, fl = f80Cmp(a, b, quietOK)
		ok = c.x87Exc(fl)
		f.fsw |= c1
	}
	var fl uint64
	switch r {
	case -1:
		fl = cpu.FlagCF
	case 0:
		fl = cpu.FlagZF
	case 2:
		fl = cpu.FlagZF | cpu.FlagPF | cpu.FlagCF
	}
	c.commitFlags()
	c.flags = c.flags&^cpu.FlagsArith | fl
	return ok
}

// x87Load reads a memory operand of the given kind as an extended value,
// with the conversion flags (IE for SNaN, DE for denormals of m32/m64).
func (c *CPU) x87Load(in *Inst, kind int) (f80, uint16) {
	va := c.ea(in)
	switch kind {
	case memF32:
		return fromFloat(uint64(c.read32(va)), 24)
	case memF64:
		return fromFloat(c.read64(va), 53)
	case memI16:
		return intToF80(int64(int16(c.read16(va)))), 0
	case memI32:
		return intToF80(int64(int32(c.read32(va)))), 0
	case memI64:
		return intToF80(int64(c.read64(va))), 0
	case memBCD:
		return bcdToF80(c.readF80(va)), 0
	}
	return c.readF80(va), 0
}

func (c *CPU) readF80(va uint64) f80 {
	c.readN(va+9, 1) // fault on the whole operand before using part of it
	return f80{mant: c.read64(va), se: c.read16(va + 8)}
}

func (c *CPU) writeF80(va uint64, v f80) {
	c.checkWrite(va, 10)
	c.write64(va, v.mant)
	c.write16(va+8, v.se)
}

// x87ArithMem is D8/DC/DA/DE with a memory operand.
func (c *CPU) x87ArithMem(in *Inst, r uint8, kind int) {
	c.x87Begin(in, true, true)
	b, lfl := c.x87Load(in, kind)
	f := &c.fpu
	under := f.empty(0)
	if r == 2 || r == 3 {
		if !under && lfl&fswIE != 0 {
			// An SNaN memory operand: the comparison reports it.
			b.mant &^= f80QBit
		}
		if c.x87CompareX(f.get(0), b, false, under, lfl&fswDE) && r == 3 {
			f.pop()
		}
		return
	}
	if under {
		if c.stackFault(false) {
			f.set(0, f80Indefinite)
		}
		return
	}
	a := f.get(0)
	if lfl&fswIE != 0 {
		b.mant &^= f80QBit // keep it signalling for the NaN rules
	}
	res, fl := x87Arith(r, a, b, f.fcw)
	if fl&(fswIE|fswZE) == 0 && !isNaNClass(a.class()) && !isNaNClass(b.class()) {
		fl |= lfl & fswDE // lower priority than invalid, zero divide and NaNs
	}
	if c.x87Exc(fl) {
		f.set(0, res)
	}
}

// x87ArithReg is the register form: dest ST(0) (toST0) or ST(i), popping
// when pop is set. The computation is always on (ST(0), ST(i)).
func (c *CPU) x87ArithReg(in *Inst, r uint8, toST0, pop bool) {
	c.x87Begin(in, true, true)
	f := &c.fpu
	i := in.rm & 7
	dst := i
	if toST0 {
		dst = 0
	}
	if f.empty(0) || f.empty(i) {
		if c.stackFault(false) {
			f.set(dst, f80Indefinite)
			if pop {
				f.pop()
			}
		}
		return
	}
	res, fl := x87Arith(r, f.get(0), f.get(i), f.fcw)
	if c.x87Exc(fl) {
		f.set(dst, res)
		if pop {
			f.pop()
		}
	}
}

// x87Store stores ST(0) to memory in the given kind (and pops).
func (c *CPU) x87Store(in *Inst, kind int, pop bool) {
	c.x87Begin(in, true, true)
	f := &c.fpu
	va := c.ea(in)
	rc := fcwRC(f.fcw)
	var v f80
	var fl uint16
	if f.empty(0) {
		fl = fswIE | fswSF
		v = f80Indefinite
	} else {
		v = f.get(0)
	}
	var out uint64
	var size uint8
	noStore := false
	switch kind {
	case memF80:
		if fl == 0 || f.masked(fswIE) {
			c.writeF80(va, v)
		}
		c.x87Exc(fl)
		if pop && (fl == 0 || f.masked(fswIE)) {
			f.pop()
		}
		return
	case memBCD:
		mag, neg, f2, ok := f80ToInt(v, rc)
		bcd := f80Indefinite // the packed-BCD indefinite has the same bytes
		if fl != 0 || !ok || mag > bcdMax {
			fl |= fswIE
		} else {
			fl |= f2
			bcd = uint64ToBCD(mag, neg)
		}
		fl &^= fswDE
		if c.x87Exc(fl) {
			c.writeF80(va, bcd)
			if pop {
				f.pop()
			}
		}
		return
	case memF32, memF64:
		spec, s := fmtSingle, uint8(4)
		if kind == memF64 {
			spec, s = fmtDouble, 8
		}
		var f2 uint16
		out, f2 = toFloat(v, spec, f.fcw)
		noStore = f2&(fswOE|fswUE)&^f.fcw != 0 // unmasked overflow or underflow
		fl |= f2
		size = s
	default:
		var s uint8
		var lim uint64
		switch kind {
		case memI16:
			s, lim = 2, 1<<15
		case memI32:
			s, lim = 4, 1<<31
		default:
			s, lim = 8, 1<<63
		}
		size = s
		mag, neg, f2, ok := f80ToInt(v, rc)
		if fl != 0 || !ok || mag > lim || mag == lim && !neg {
			fl |= fswIE
			f2 &^= fswPE | fswC1
			out = lim // integer indefinite
		} else if neg {
			out = -mag
		} else {
			out = mag
		}
		fl |= f2
	}
	fl &^= fswDE // stores do not report denormal operands
	if c.x87Exc(fl) && !noStore {
		c.writeN(va, size, out)
		if pop {
			f.pop()
		}
	}
}

// x87LoadMem pushes a memory operand (FLD m32/m64/m80, FILD).
func (c *CPU) x87LoadMem(in *Inst, kind int) {
	c.x87Begin(in, true, true)
	v, fl := c.x87Load(in, kind)
	f := &c.fpu
	if f.ftw>>((f.top-1)&7)&1 != 0 {
		c.x87Push(v) // overflow
		return
	}
	if c.x87Exc(fl) || fl&fswIE == 0 {
		f.pushRaw(v) // an unmasked DE still loads the operand, as the host does
	}
}

// x87Unary applies op to ST(0).
func (c *CPU) x87Unary(in *Inst, op func(a f80, fcw uint16) (f80, uint16)) {
	c.x87Begin(in, true, true)
	f := &c.fpu
	if f.empty(0) {
		if c.stackFault(false) {
			f.set(0, f80Indefinite)
		}
		return
	}
	r, fl := op(f.get(0), f.fcw)
	if c.x87Exc(fl) {
		f.set(0, r)
	}
}

// x87Const pushes a constant given with 128 significand bits, rounded by
// the rounding control to 64 bits.
func (c *CPU) x87Const(in *Inst, exp int32, hi, lo uint64) {
	c.x87Begin(in, true, true)
	v := f80{}
	if hi != 0 {
		m, e, _, _ := roundAt(false, exp, hi, lo, 64, fcwRC(c.fpu.fcw))
		v = f80{mant: m, se: uint16(e + f80Bias)}
	}
	c.x87Push(v)
}

// fullTag converts the abridged tag word to the 16-bit tag word.
func (f *fpuState) fullTag() uint16 {
	var t uint16
	for p := uint8(0); p < 8; p++ {
		var tag uint16 = 3
		if f.ftw>>p&1 != 0 {
			switch f.st[p].class() {
			case clsZero:
				tag = 1
			case clsNormal:
				tag = 0
			default:
				tag = 2
			}
		}
		t |= tag << (2 * p)
	}
	return t
}

// abridgedTag converts a 16-bit tag word.
func abridgedTag(t uint16) uint8 {
	var a uint8
	for p := 0; p < 8; p++ {
		if t>>(2*p)&3 != 3 {
			a |= 1 << p
		}
	}
	return a
}

// envSize returns the size of the environment image of in: 14 bytes in the
// 16-bit layout (an operand-size prefix without REX.W), else 28.
func envSize(in *Inst) uint64 {
	if in.size == 2 {
		return 14
	}
	return 28
}

// storeEnv writes the protected-mode environment of size envSize at va.
// The reserved upper halves of the control, status and tag dwords and the
// selector dwords of the 28-byte layout are written as the hardware does
// (checked against the host in TestX87Stack and TestFXSAVE). The 14-byte
// layout holds the low 16 bits of FIP and FDP and no FOP. FCS and FDS are
// stored as 0 in both, as on processors that deprecate them.
func (c *CPU) storeEnv(va, size uint64) {
	f := &c.fpu
	if size == 14 {
		c.write16(va, f.fcw)
		c.write16(va+2, f.status())
		c.write16(va+4, f.fullTag())
		c.write16(va+6, uint16(f.fip))
		c.write16(va+8, 0)
		c.write16(va+10, uint16(f.fdp))
		c.write16(va+12, 0)
		return
	}
	c.write32(va, uint32(f.fcw)|0xffff0000)
	c.write32(va+4, uint32(f.status())|0xffff0000)
	c.write32(va+8, uint32(f.fullTag())|0xffff0000)
	c.write32(va+12, uint32(f.fip))
	c.write32(va+16, uint32(f.fop&0x7ff)<<16)
	c.write32(va+20, uint32(f.fdp))
	c.write32(va+24, 0xffff0000)
}

// loadEnv reads the environment of size envSize at va; it returns the
// values without committing them. The 14-byte layout loads FIP and FDP as
// 16-bit values and FOP as 0 (as the host does).
func (c *CPU) loadEnv(va, size uint64) (fcw, fsw, ftw uint16, fip, fdp uint64, fop uint16) {
	if size == 14 {
		return c.read16(va), c.read16(va + 2), c.read16(va + 4), uint64(c.read16(va + 6)), uint64(c.read16(va + 10)), 0
	}
	fcw = c.read16(va)
	fsw = c.read16(va + 4)
	ftw = c.read16(va + 8)
	fip = uint64(c.read32(va + 12))
	fop = uint16(c.read32(va+16)>>16) & 0x7ff
	fdp = uint64(c.read32(va + 20))
	return
}

func (c *CPU) commitEnv(fcw, fsw, ftw uint16, fip, fdp uint64, fop uint16) {
	f := &c.fpu
	f.fcw = fcwLoaded(fcw)
	f.setStatus(fsw)
	f.ftw = abridgedTag(ftw)
	f.fip, f.fdp, f.fop = fip, fdp, fop
	f.fixES()
}

func (f *fpuState) init() {
	f.fcw, f.fsw, f.top, f.ftw = 0x037f, 0, 0, 0
	f.fip, f.fdp, f.fop = 0, 0, 0
}

// fxsave writes the 512-byte FXSAVE image (64-bit FIP/FDP when w64).
func (c *CPU) fxsave(in *Inst) {
	if c.cr0&cpu.CR0EM != 0 || in.flags&iLock != 0 {
		c.raise(cpu.ExcUD, noErr)
	}
	if c.cr0&cpu.CR0TS != 0 {
		c.raise(cpu.ExcNM, noErr)
	}
	va := c.ea(in)
	if va&15 != 0 {
		c.raise(cpu.ExcGP, 0)
	}
	c.checkWrite(va, 512)
	f := &c.fpu
	c.write64(va, uint64(f.fcw)|uint64(f.status())<<16|uint64(f.ftw)<<32|uint64(f.fop&0x7ff)<<48)
	if in.size == 8 {
		c.write64(va+8, f.fip)
		c.write64(va+16, f.fdp)
	} else {
		c.write64(va+8, f.fip&0xffffffff)
		c.write64(va+16, f.fdp&0xffffffff)
	}
	c.write32(va+24, f.mxcsr)
	c.write32(va+28, mxcsrMask)
	for i := uint8(0); i < 8; i++ {
		r := f.st[f.phys(i)]
		a := va + 32 + uint64(i)*16
		c.write64(a, r.mant)
		c.write64(a+8, uint64(r.se))
	}
	for i := range f.xmm {
		a := va + 160 + uint64(i)*16
		c.write64(a, f.xmm[i][0])
		c.write64(a+8, f.xmm[i][1])
	}
}

// fxrstor loads the FXSAVE image; reserved MXCSR bits raise #GP(0).
func (c *CPU) fxrstor(in *Inst) {
	if c.cr0&cpu.CR0EM != 0 || in.flags&iLock != 0 {
		c.raise(cpu.ExcUD, noErr)
	}
	if c.cr0&cpu.CR0TS != 0 {
		c.raise(cpu.ExcNM, noErr)
	}
	va := c.ea(in)
	if va&15 != 0 {
		c.raise(cpu.ExcGP, 0)
	}
	var img [52]uint64 // bytes 0..415
	c.readN(va+415, 1)
	for i := range img {
		img[i] = c.read64(va + uint64(i)*8)
	}
	mx := uint32(img[3])
	if mx&^mxcsrMask != 0 {
		c.raise(cpu.ExcGP, 0)
	}
	f := &c.fpu
	f.fcw = fcwLoaded(uint16(img[0]))
	f.setStatus(uint16(img[0] >> 16))
	f.ftw = uint8(img[0] >> 32)
	f.fop = uint16(img[0]>>48) & 0x7ff
	if in.size == 8 {
		f.fip, f.fdp = img[1], img[2]
	} else {
		f.fip, f.fdp = img[1]&0xffffffff, img[2]&0xffffffff
	}
	f.mxcsr = mx
	f.fixES()
	for i := uint8(0); i < 8; i++ {
		f.st[f.phys(i)] = f80{mant: img[4+2*i], se: uint16(img[5+2*i])}
	}
	for i := range f.xmm {
		f.xmm[i] = [2]uint64{img[20+2*i], img[21+2*i]}
	}
}

// x87Names are the arithmetic group members by ModRM.reg.
var x87Names = [8]string{"fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"}

// Constants (significand to 128 bits, exponent of the leading bit).
const (
	cL2THi, cL2TLo = 0xd49a784bcd1b8afe, 0x492bf6ff4dafdb4c
	cL2EHi, cL2ELo = 0xb8aa3b295c17f0bb, 0xbe87fed0691d3e88
	cPiHi, cPiLo   = 0xc90fdaa22168c234, 0xc4c6628b80dc1cd1
	cLG2Hi, cLG2Lo = 0x9a209a84fbcff798, 0x8f8959ac0b7c9178
	cLN2Hi, cLN2Lo = 0xb17217f7d1cf79ab, 0xc9e3b39803f2f6af
)

func init() {
	rnames := x87Names
	revName := func(r uint8) string {
		if r >= 4 {
			return rnames[r^1]
		}
		return rnames[r]
	}
	var kindName = [...]string{memF32: "m32", memF64: "m64", memI32: "m32int", memI16: "m16int", memI64: "m64int", memF80: "m80"}
	arithMem := func(b byte, kind int) {
		for r := uint8(0); r < 8; r++ {
			name := rnames[r]
			if kind == memI32 || kind == memI16 {
				name = "fi" + name[1:]
			}
			setG(&table1, b, pNone, int(r), fMemOnly, defOp(name+" "+kindName[kind], false, func(c *CPU, in *Inst) {
				c.x87ArithMem(in, r, kind)
			}))
		}
	}
	arithMem(0xd8, memF32)
	arithMem(0xdc, memF64)
	arithMem(0xda, memI32)
	arithMem(0xde, memI16)

	// Register forms.
	for r := uint8(0); r < 8; r++ {
		switch r {
		case 2, 3:
			pop := r == 3
			setM3Reg(&table1, 0xd8, pNone, int(r), defOp(rnames[r]+" st(i)", false, func(c *CPU, in *Inst) {
				c.x87Begin(in, true, true)
				f := &c.fpu
				i := in.rm & 7
				if c.x87Compare(f.get(0), f.get(i), false, f.empty(0) || f.empty(i)) && pop {
					f.pop()
				}
			}))
			continue
		}
		setM3Reg(&table1, 0xd8, pNone, int(r), defOp(rnames[r]+" st,st(i)", false, func(c *CPU, in *Inst) {
			c.x87ArithReg(in, r, true, false)
		}))
		setM3Reg(&table1, 0xdc, pNone, int(r), defOp(revName(r)+" st(i),st", false, func(c *CPU, in *Inst) {
			c.x87ArithReg(in, r, false, false)
		}))
		setM3Reg(&table1, 0xde, pNone, int(r), defOp(revName(r)+"p st(i),st", false, func(c *CPU, in *Inst) {
			c.x87ArithReg(in, r, false, true)
		}))
	}
	// DC D0+i / D8+i, DE D0+i: aliases of FCOM / FCOMP.
	setM3Reg(&table1, 0xdc, pNone, 2, table1[0xd8].mod3[pNone][2<<3])
	setM3Reg(&table1, 0xdc, pNone, 3, table1[0xd8].mod3[pNone][3<<3])
	setM3Reg(&table1, 0xde, pNone, 2, table1[0xd8].mod3[pNone][3<<3])
	setM3(&table1, 0xde, pNone, 3<<3|1, defOp("fcompp", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		f := &c.fpu
		if c.x87Compare(f.get(0), f.get(1), false, f.empty(0) || f.empty(1)) {
			f.pop()
			f.pop()
		}
	}))
	setM3(&table1, 0xda, pNone, 5<<3|1, defOp("fucompp", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		f := &c.fpu
		if c.x87Compare(f.get(0), f.get(1), true, f.empty(0) || f.empty(1)) {
			f.pop()
			f.pop()
		}
	}))
	ucom := func(pop bool) handler {
		return func(c *CPU, in *Inst) {
			c.x87Begin(in, true, true)
			f := &c.fpu
			i := in.rm & 7
			if c.x87Compare(f.get(0), f.get(i), true, f.empty(0) || f.empty(i)) && pop {
				f.pop()
			}
		}
	}
	setM3Reg(&table1, 0xdd, pNone, 4, defOp("fucom", false, ucom(false)))
	setM3Reg(&table1, 0xdd, pNone, 5, defOp("fucomp", false, ucom(true)))
	comi := func(quiet, pop bool) handler {
		return func(c *CPU, in *Inst) {
			c.x87Begin(in, true, true)
			f := &c.fpu
			i := in.rm & 7
			if c.x87CompareFlags(f.get(0), f.get(i), quiet, f.empty(0) || f.empty(i)) && pop {
				f.pop()
			}
		}
	}
	setM3Reg(&table1, 0xdb, pNone, 5, defOp("fucomi", false, comi(true, false)))
	setM3Reg(&table1, 0xdb, pNone, 6, defOp("fcomi", false, comi(false, false)))
	setM3Reg(&table1, 0xdf, pNone, 5, defOp("fucomip", false, comi(true, true)))
	setM3Reg(&table1, 0xdf, pNone, 6, defOp("fcomip", false, comi(false, true)))

	// FCMOVcc: DA C0-DF (B, E, BE, U), DB C0-DF (negated).
	fcmovCC := [4]uint8{0x2, 0x4, 0x6, 0xa}
	fcmovName := [4]string{"b", "e", "be", "u"}
	for k := 0; k < 4; k++ {
		for neg := uint8(0); neg < 2; neg++ {
			cc := fcmovCC[k] | neg
			name := "fcmov" + fcmovName[k]
			b := byte(0xda)
			if neg != 0 {
				name = "fcmovn" + fcmovName[k]
				b = 0xdb
			}
			setM3Reg(&table1, b, pNone, k, defOp(name, false, func(c *CPU, in *Inst) {
				c.x87Begin(in, true, true)
				f := &c.fpu
				i := in.rm & 7
				if f.empty(0) || f.empty(i) {
					if c.stackFault(false) {
						f.set(0, f80Indefinite)
					}
					return
				}
				if c.cond(cc) { // C1 is left as it was
					f.set(0, f.get(i))
				}
			}))
		}
	}

	// Loads and stores.
	setG(&table1, 0xd9, pNone, 0, fMemOnly, defOp("fld m32", false, func(c *CPU, in *Inst) { c.x87LoadMem(in, memF32) }))
	setG(&table1, 0xdd, pNone, 0, fMemOnly, defOp("fld m64", false, func(c *CPU, in *Inst) { c.x87LoadMem(in, memF64) }))
	setG(&table1, 0xdb, pNone, 5, fMemOnly, defOp("fld m80", false, func(c *CPU, in *Inst) { c.x87LoadMem(in, memF80) }))
	setG(&table1, 0xdf, pNone, 0, fMemOnly, defOp("fild m16", false, func(c *CPU, in *Inst) { c.x87LoadMem(in, memI16) }))
	setG(&table1, 0xdb, pNone, 0, fMemOnly, defOp("fild m32", false, func(c *CPU, in *Inst) { c.x87LoadMem(in, memI32) }))
	setG(&table1, 0xdf, pNone, 5, fMemOnly, defOp("fild m64", false, func(c *CPU, in *Inst) { c.x87LoadMem(in, memI64) }))
	st := func(b byte, reg int, kind int, pop bool, name string) {
		setG(&table1, b, pNone, reg, fMemOnly, defOp(name, false, func(c *CPU, in *Inst) { c.x87Store(in, kind, pop) }))
	}
	st(0xd9, 2, memF32, false, "fst m32")
	st(0xd9, 3, memF32, true, "fstp m32")
	st(0xdd, 2, memF64, false, "fst m64")
	st(0xdd, 3, memF64, true, "fstp m64")
	st(0xdb, 7, memF80, true, "fstp m80")
	st(0xdf, 2, memI16, false, "fist m16")
	st(0xdf, 3, memI16, true, "fistp m16")
	st(0xdb, 2, memI32, false, "fist m32")
	st(0xdb, 3, memI32, true, "fistp m32")
	st(0xdf, 7, memI64, true, "fistp m64")
	st(0xdf, 6, memBCD, true, "fbstp m80bcd")
	setG(&table1, 0xdf, pNone, 4, fMemOnly, defOp("fbld m80bcd", false, func(c *CPU, in *Inst) { c.x87LoadMem(in, memBCD) }))
	// FISTTP (DB /1, DD /1, DF /1) needs SSE3, which is not advertised:
	// left undefined (#UD).

	setM3Reg(&table1, 0xd9, pNone, 0, defOp("fld st(i)", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		f := &c.fpu
		i := in.rm & 7
		if f.empty(i) {
			// Underflow wins over a full ST(7): C1 = 0.
			if c.stackFault(false) {
				f.pushRaw(f80Indefinite)
			}
			return
		}
		f.fsw &^= fswC1
		c.x87Push(f.get(i))
	}))
	// fstReg is FST/FSTP ST(i); quiet is the D9 D8+i alias, which on the
	// host only pops (C1 = 0) when ST(0) is empty: no stack fault, ST(i)
	// kept.
	fstReg := func(pop, quiet bool) handler {
		return func(c *CPU, in *Inst) {
			c.x87Begin(in, true, true)
			f := &c.fpu
			i := in.rm & 7
			if quiet && f.empty(0) {
				f.fsw &^= fswC1
				f.pop()
				return
			}
			if f.empty(0) {
				if !c.stackFault(false) {
					return
				}
				f.set(i, f80Indefinite)
			} else {
				f.fsw &^= fswC1
				f.set(i, f.get(0))
			}
			if pop {
				f.pop()
			}
		}
	}
	setM3Reg(&table1, 0xdd, pNone, 2, defOp("fst st(i)", false, fstReg(false, false)))
	setM3Reg(&table1, 0xdd, pNone, 3, defOp("fstp st(i)", false, fstReg(true, false)))
	setM3Reg(&table1, 0xd9, pNone, 3, defOp("fstp1", false, fstReg(true, true)))
	setM3Reg(&table1, 0xdf, pNone, 2, table1[0xdd].mod3[pNone][3<<3]) // FSTP8 alias
	setM3Reg(&table1, 0xdf, pNone, 3, table1[0xdd].mod3[pNone][3<<3]) // FSTP9 alias

	fxch := defOp("fxch", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		f := &c.fpu
		i := in.rm & 7
		a, b := f.get(0), f.get(i)
		if f.empty(0) || f.empty(i) {
			if !c.stackFault(false) {
				return
			}
			if f.empty(0) {
				a = f80Indefinite
			}
			if f.empty(i) {
				b = f80Indefinite
			}
		} else {
			f.fsw &^= fswC1
		}
		f.set(0, b)
		f.set(i, a)
	})
	setM3Reg(&table1, 0xd9, pNone, 1, fxch)
	setM3Reg(&table1, 0xdd, pNone, 1, fxch) // FXCH4 alias
	setM3Reg(&table1, 0xdf, pNone, 1, fxch) // FXCH7 alias

	setM3(&table1, 0xd9, pNone, 2<<3, defOp("fnop", false, func(c *CPU, in *Inst) { c.x87Begin(in, true, true) }))
	setM3(&table1, 0xd9, pNone, 4<<3|0, defOp("fchs", false, func(c *CPU, in *Inst) {
		c.x87Unary(in, func(a f80, _ uint16) (f80, uint16) { return a.neg(), 0 })
	}))
	setM3(&table1, 0xd9, pNone, 4<<3|1, defOp("fabs", false, func(c *CPU, in *Inst) {
		c.x87Unary(in, func(a f80, _ uint16) (f80, uint16) { return a.abs(), 0 })
	}))
	setM3(&table1, 0xd9, pNone, 4<<3|4, defOp("ftst", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		f := &c.fpu
		c.x87Compare(f.get(0), f80PosZero, false, f.empty(0))
	}))
	setM3(&table1, 0xd9, pNone, 4<<3|5, defOp("fxam", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		f := &c.fpu
		v := f.get(0)
		var cc uint16
		if v.sign() {
			cc = fswC1
		}
		if f.empty(0) {
			cc |= fswC3 | fswC0
		} else {
			switch v.class() {
			case clsUnsupported:
			case clsQNaN, clsSNaN:
				cc |= fswC0
			case clsNormal:
				cc |= fswC2
			case clsInf:
				cc |= fswC2 | fswC0
			case clsZero:
				cc |= fswC3
			case clsDenorm:
				cc |= fswC3 | fswC2
			}
		}
		f.setCC(cc)
	}))
	konst := func(rm int, name string, exp int32, hi, lo uint64) {
		setM3(&table1, 0xd9, pNone, 5<<3|rm, defOp(name, false, func(c *CPU, in *Inst) { c.x87Const(in, exp, hi, lo) }))
	}
	konst(0, "fld1", 0, f80Int, 0)
	konst(1, "fldl2t", 1, cL2THi, cL2TLo)
	konst(2, "fldl2e", 0, cL2EHi, cL2ELo)
	konst(3, "fldpi", 1, cPiHi, cPiLo)
	konst(4, "fldlg2", -2, cLG2Hi, cLG2Lo)
	konst(5, "fldln2", -1, cLN2Hi, cLN2Lo)
	konst(6, "fldz", 0, 0, 0)

	// D9 F0-FF: transcendentals (x87_trans.go).
	for _, u := range []struct {
		regrm int
		name  string
		op    int
	}{{7<<3 | 6, "fsin", trigSin}, {7<<3 | 7, "fcos", trigCos}, {7<<3 | 3, "fsincos", trigSinCos}, {6<<3 | 2, "fptan", trigTan}} {
		op := u.op
		setM3(&table1, 0xd9, pNone, u.regrm, defOp(u.name, false, func(c *CPU, in *Inst) { c.x87Trig(in, op) }))
	}
	setM3(&table1, 0xd9, pNone, 6<<3|3, defOp("fpatan", false, func(c *CPU, in *Inst) { c.x87Binary2(in, f80Atan2) }))
	setM3(&table1, 0xd9, pNone, 6<<3|1, defOp("fyl2x", false, func(c *CPU, in *Inst) { c.x87Binary2(in, f80Yl2x) }))
	setM3(&table1, 0xd9, pNone, 7<<3|1, defOp("fyl2xp1", false, func(c *CPU, in *Inst) { c.x87Binary2(in, f80Yl2xp1) }))
	setM3(&table1, 0xd9, pNone, 6<<3|0, defOp("f2xm1", false, func(c *CPU, in *Inst) { c.x87Unary(in, f80Exp2m1) }))
	setM3(&table1, 0xd9, pNone, 6<<3|4, defOp("fxtract", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		f := &c.fpu
		if f.empty(0) {
			if c.stackFault(false) {
				// Underflow wins over a full ST(7): C1 = 0.
				f.set(0, f80Indefinite)
				f.pushRaw(f80Indefinite)
			}
			return
		}
		if f.ftw>>((f.top-1)&7)&1 != 0 {
			if c.stackFault(true) {
				f.set(0, f80Indefinite)
				f.pushRaw(f80Indefinite)
			}
			return
		}
		e, s, fl := f80Xtract(f.get(0))
		if c.x87Exc(fl) {
			f.set(0, e)
			f.pushRaw(s)
		}
	}))
	prem := func(nearest bool) handler {
		return func(c *CPU, in *Inst) {
			c.x87Begin(in, true, true)
			f := &c.fpu
			f.fsw &^= fswC2 // even when a fault or an exception stops it
			if f.empty(0) || f.empty(1) {
				if c.stackFault(false) {
					f.set(0, f80Indefinite) // C0 and C3 are left as they were
				}
				return
			}
			r, q, quot, partial, fl := f80Rem(f.get(0), f.get(1), nearest, f.fcw)
			if !c.x87Exc(fl) {
				return
			}
			f.set(0, r)
			var cc uint16
			switch {
			case partial:
				cc = fswC2
			case !quot:
				return // C0, C3 (and C1 as x87Exc set it) stay
			default:
				if q&4 != 0 {
					cc |= fswC0
				}
				if q&2 != 0 {
					cc |= fswC3
				}
				if q&1 != 0 {
					cc |= fswC1
				}
			}
			f.setCC(cc)
		}
	}
	setM3(&table1, 0xd9, pNone, 6<<3|5, defOp("fprem1", false, prem(true)))
	setM3(&table1, 0xd9, pNone, 7<<3|0, defOp("fprem", false, prem(false)))
	setM3(&table1, 0xd9, pNone, 6<<3|6, defOp("fdecstp", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		c.fpu.top = (c.fpu.top - 1) & 7
		c.fpu.fsw &^= fswC1
	}))
	setM3(&table1, 0xd9, pNone, 6<<3|7, defOp("fincstp", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		c.fpu.top = (c.fpu.top + 1) & 7
		c.fpu.fsw &^= fswC1
	}))
	setM3(&table1, 0xd9, pNone, 7<<3|2, defOp("fsqrt", false, func(c *CPU, in *Inst) {
		c.x87Unary(in, f80Sqrt)
	}))
	setM3(&table1, 0xd9, pNone, 7<<3|4, defOp("frndint", false, func(c *CPU, in *Inst) {
		c.x87Unary(in, func(a f80, fcw uint16) (f80, uint16) { return f80RoundInt(a, fcwRC(fcw)) })
	}))
	setM3(&table1, 0xd9, pNone, 7<<3|5, defOp("fscale", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		f := &c.fpu
		if f.empty(0) || f.empty(1) {
			if c.stackFault(false) {
				f.set(0, f80Indefinite)
			}
			return
		}
		r, fl := f80Scale(f.get(0), f.get(1), f.fcw)
		if c.x87Exc(fl) {
			f.set(0, r)
		}
	}))

	setM3Reg(&table1, 0xdd, pNone, 0, defOp("ffree", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		c.fpu.ftw &^= 1 << c.fpu.phys(in.rm&7)
		c.fpu.fsw &^= fswC1
	}))
	setM3Reg(&table1, 0xdf, pNone, 0, defOp("ffreep", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, true, true)
		c.fpu.ftw &^= 1 << c.fpu.phys(in.rm&7)
		c.fpu.fsw &^= fswC1
		c.fpu.pop()
	}))

	// Control instructions.
	setM3(&table1, 0xdb, pNone, 4<<3|3, defOp("fninit", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		c.fpu.init()
	}))
	setM3(&table1, 0xdb, pNone, 4<<3|2, defOp("fnclex", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		c.fpu.fsw &^= fswExc | fswSF | fswES | fswB
	}))
	// FNENI, FNDISI, FNSETPM: no-ops since the 80387.
	for _, rm := range []int{0, 1, 4} {
		setM3(&table1, 0xdb, pNone, 4<<3|rm, defOp("fnop(387)", false, func(c *CPU, in *Inst) { c.x87Begin(in, false, false) }))
	}
	setG(&table1, 0xd9, pNone, 5, fMemOnly, defOp("fldcw", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		f := &c.fpu
		f.fcw = fcwLoaded(c.read16(c.ea(in)))
		f.fixES()
	}))
	setG(&table1, 0xd9, pNone, 7, fMemOnly, defOp("fnstcw", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		c.write16(c.ea(in), c.fpu.fcw)
	}))
	setG(&table1, 0xdd, pNone, 7, fMemOnly, defOp("fnstsw m16", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		c.write16(c.ea(in), c.fpu.status())
	}))
	setM3(&table1, 0xdf, pNone, 4<<3, defOp("fnstsw ax", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		c.r[cpu.RAX] = c.r[cpu.RAX]&^0xffff | uint64(c.fpu.status())
	}))
	setG(&table1, 0xd9, pNone, 6, fMemOnly, defOp("fnstenv", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		va, n := c.ea(in), envSize(in)
		c.checkWrite(va, n)
		c.storeEnv(va, n)
		c.fpu.fcw |= fswExc // all exceptions masked
		c.fpu.fixES()
	}))
	setG(&table1, 0xd9, pNone, 4, fMemOnly, defOp("fldenv", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		va, n := c.ea(in), envSize(in)
		c.readN(va+n-1, 1)
		c.commitEnv(c.loadEnv(va, n))
	}))
	// FNSAVE and FRSTOR: the environment, then ST(0)..ST(7) (80 bytes).
	setG(&table1, 0xdd, pNone, 6, fMemOnly, defOp("fnsave", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		va, n := c.ea(in), envSize(in)
		c.checkWrite(va, n+80)
		c.storeEnv(va, n)
		f := &c.fpu
		for i := uint8(0); i < 8; i++ {
			r := f.get(i)
			c.write64(va+n+uint64(i)*10, r.mant)
			c.write16(va+n+8+uint64(i)*10, r.se)
		}
		f.init()
	}))
	setG(&table1, 0xdd, pNone, 4, fMemOnly, defOp("frstor", false, func(c *CPU, in *Inst) {
		c.x87Begin(in, false, false)
		va, n := c.ea(in), envSize(in)
		c.readN(va+n+79, 1)
		var regs [8]f80
		for i := range regs {
			regs[i] = c.readF80(va + n + uint64(i)*10)
		}
		c.commitEnv(c.loadEnv(va, n))
		f := &c.fpu
		for i := uint8(0); i < 8; i++ {
			f.st[f.phys(i)] = regs[i]
		}
	}))

	set1(0x9b, 0, defOp("fwait", false, func(c *CPU, in *Inst) {
		if c.cr0&(cpu.CR0MP|cpu.CR0TS) == cpu.CR0MP|cpu.CR0TS {
			c.raise(cpu.ExcNM, noErr)
		}
		if c.fpu.fsw&fswES != 0 && c.cr0&cpu.CR0NE != 0 {
			c.raise(cpu.ExcMF, noErr)
		}
	}))

	setG(&table2, 0xae, pNone, 0, fMemOnly, defOp("fxsave", false, (*CPU).fxsave))
	setG(&table2, 0xae, pNone, 1, fMemOnly, defOp("fxrstor", false, (*CPU).fxrstor))
}
