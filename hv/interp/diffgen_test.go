//go:build linux && amd64

package interp

// Test-case generator of the differential test (diff_test.go): instruction
// forms are rows of a table (dform), each generating the bytes of one
// instruction (or a short sequence) plus register, flag and memory inputs
// that cannot fault natively.

import (
	"fmt"
	"math/big"
	"math/rand/v2"
)

// Address layout shared by the host (a fixed RWX mapping) and the guest
// (identity-mapped test machine), so pointers need no translation.
const (
	dCodeBase = 0x100000 // one dSlot per case: prologue, test bytes, epilogue
	dSlot     = 512
	dBatch    = 1024
	dFXBase   = 0x180000 // one dFXSlot FXSAVE image per case: loaded before the test bytes, stored after
	dFXSlot   = 512
	dDataBase = 0x200000 // one dWin window of scratch memory per case
	dWin      = 1024
	dCtxBase  = 0x300000 // native register records, 512 bytes per case
	dCtxSlot  = 512
	dSave     = 0x380000      // saved Go registers
	dSaveFX   = dSave + 0x100 // the caller's x87/SSE state during a batch
	dPrivTop  = 0x381000      // top of the trampoline's own stack
	dEntry    = 0x381000      // batch entry and exit stubs
	dExit     = 0x381100
	dRegion   = 0x100000
	dRegionSz = 0x382000 - dRegion
)

// RFLAGS bits compared by the test.
const (
	dCF = 1 << 0
	dPF = 1 << 2
	dAF = 1 << 4
	dZF = 1 << 6
	dSF = 1 << 7
	dDF = 1 << 10
	dOF = 1 << 11

	dArith   = dCF | dPF | dAF | dZF | dSF | dOF
	dCmpMask = dArith | dDF
)

// dcase is one generated test case.
type dcase struct {
	f      *dform
	addr   uint64 // address of the first test byte (same natively and in the guest)
	code   [64]byte
	n      int
	in     [16]uint64
	flags  uint64
	undef  uint64 // RFLAGS bits the SDM leaves undefined for this case
	undefR uint32 // GPRs whose result is undefined
	undefM bool   // the memory result is undefined
	zextR  uint32 // GPRs an Intel host may zero-extend from bit 31 (a32 REP, ECX = 0)
	skipAt uint64 // skipN bytes from skipAt are not compared (stored code and data addresses)
	skipN  int
	win    uint64 // scratch window address
	mem    []byte // initial window contents
	fxa    uint64 // FXSAVE image address
	fx     []byte // initial x87/MMX/SSE state: the image FXRSTOR64 loads

	// Operands of the last instruction built by modrm, for fix-ups.
	reg, rm int    // register ids (16..19 = AH..BH), -1 if none
	ea      uint64 // memory operand address, 0 if none
	immAt   int    // offset of the immediate in code, -1 if none
}

// dform is one distinct instruction form: encoding, operand size, operand kind.
type dform struct {
	key   string
	undef uint64 // flags undefined for every case of the form
	vec   bool   // the form uses x87, MMX or SSE registers (failures show them)
	gen   func(g *dgen, c *dcase)
	// fxCmp, if set, compares the FXSAVE images instead of dFXDiff; it
	// reports whether it accepted a difference.
	fxCmp func(c *dcase, n, e []byte) (diff string, tolerated bool)
}

type dgen struct {
	r  *rand.Rand
	r1 *dRand1 // r for the x87 operand generators (x87r)
}

func (c *dcase) emit(b ...byte) { c.n += copy(c.code[c.n:], b) }

func (c *dcase) emitN(v uint64, n int) {
	for i := 0; i < n; i++ {
		c.code[c.n] = byte(v >> (8 * i))
		c.n++
	}
}

var dSizeMask = [9]uint64{1: 0xff, 2: 0xffff, 4: 0xffffffff, 8: ^uint64(0)}

// getR/setR read and write register id (16..19 = AH..BH) at size in the inputs.
func (c *dcase) getR(id, size int) uint64 {
	if id >= 16 {
		return c.in[id-16] >> 8 & 0xff
	}
	return c.in[id] & dSizeMask[size]
}

func (c *dcase) setR(id, size int, v uint64) {
	if id >= 16 {
		c.in[id-16] = c.in[id-16]&^0xff00 | (v&0xff)<<8
		return
	}
	m := dSizeMask[size]
	c.in[id] = c.in[id]&^m | v&m
}

func (c *dcase) getM(a uint64, size int) uint64 {
	off := a - c.win
	var v uint64
	for i := 0; i < size; i++ {
		v |= uint64(c.mem[off+uint64(i)]) << (8 * i)
	}
	return v
}

func (c *dcase) setM(a uint64, size int, v uint64) {
	off := a - c.win
	for i := 0; i < size; i++ {
		c.mem[off+uint64(i)] = byte(v >> (8 * i))
	}
}

func (c *dcase) getRM(size int) uint64 {
	if c.ea != 0 {
		return c.getM(c.ea, size)
	}
	return c.getR(c.rm, size)
}

func (c *dcase) setRM(size int, v uint64) {
	if c.ea != 0 {
		c.setM(c.ea, size, v)
		return
	}
	c.setR(c.rm, size, v)
}

// val returns a value biased to the edges of an operand of size bytes; the
// bits above the operand are random.
func (g *dgen) val(size int) uint64 {
	bitsN := uint(size * 8)
	sign := uint64(1) << (bitsN - 1)
	m := dSizeMask[size]
	var v uint64
	switch g.r.IntN(16) {
	case 0:
		v = 0
	case 1:
		v = 1
	case 2:
		v = m
	case 3:
		v = sign - 1
	case 4:
		v = sign
	case 5:
		v = sign + 1
	case 6:
		v = m - 1
	case 7:
		v = uint64(g.r.IntN(64))
	case 8:
		v = -uint64(g.r.IntN(64))
	case 9:
		v = 1 << g.r.IntN(int(bitsN))
	default:
		return g.r.Uint64()
	}
	return g.r.Uint64()&^m | v&m
}

// flagsVal returns random arithmetic flags (plus reserved bits 3, 5 and 15,
// which must read as zero) for the prologue's POPF.
func (g *dgen) flagsVal() uint64 {
	return g.r.Uint64() & (dArith | 1<<3 | 1<<5 | 1<<15)
}

// popfVal is a value safe for a guest POPF both natively at CPL3 and in the
// engine at CPL0: arithmetic flags, DF and reserved bits only (never TF, AC,
// IOPL, NT).
func (g *dgen) popfVal() uint64 {
	return g.r.Uint64()&(dArith|dDF|1<<3|1<<5|1<<15) | 0x202
}

// pick returns a register number in 0..15 (0..7 if low) not in excl.
func (g *dgen) pick(low bool, excl uint32) int {
	n := 16
	if low {
		n = 8
	}
	for {
		r := g.r.IntN(n)
		if excl&(1<<r) == 0 {
			return r
		}
	}
}

// regID converts an encoded register number to the engine's id for an
// operand of size (AH..BH without REX).
func regID(r, size int, rex bool) int {
	if size == 1 && !rex && r >= 4 && r < 8 {
		return 16 + r - 4
	}
	return r
}

// ms describes a ModRM instruction.
type ms struct {
	pfx      []byte // legacy prefixes before 66 (F0, F2, F3, 67)
	op       []byte
	digit    int // -1: ModRM.reg is a register operand
	size     int // operand size: 66 for 2, REX.W for 8 unless noW
	regSize  int // width of the ModRM.reg register operand (0: size)
	rmSize   int // width of the r/m operand (0: size)
	mem      bool
	imm      int
	noW      bool
	align    int
	lea      bool   // address only, no access: registers are free
	cc       bool   // a random condition code is added to the last opcode byte
	implicit uint32 // registers used implicitly: never address registers
	regEx    uint32
	rmEx     uint32
}

func (g *dgen) modrm(c *dcase, s *ms) {
	regSize, rmSize := s.regSize, s.rmSize
	if regSize == 0 {
		regSize = s.size
	}
	if rmSize == 0 {
		rmSize = s.size
	}
	a32 := false
	for _, p := range s.pfx {
		if p == 0x67 {
			a32 = true
		}
	}
	w := s.size == 8 && !s.noW
	byteRegs := (s.digit < 0 && regSize == 1) || (!s.mem && rmSize == 1)
	low := byteRegs && !w && g.r.IntN(2) == 0
	forceRex := byteRegs && !low
	reg := s.digit
	if s.digit < 0 {
		reg = g.pick(low, s.regEx)
	}
	var x, b bool
	var modrm byte
	var sib []byte
	var disp []byte
	ripRel := false
	c.rm, c.ea = -1, 0
	if !s.mem {
		rm := g.pick(low, s.rmEx)
		b = rm >= 8
		modrm = 0xc0 | byte(rm&7)
		c.rm = regID(rm, rmSize, !low)
	} else {
		excl := s.implicit
		if s.digit < 0 {
			excl |= 1 << reg
		}
		var mod, rm byte
		mod, rm, sib, disp, x, b, ripRel = g.address(c, excl, low, rmSize, s.align, a32, s.lea)
		modrm = mod<<6 | rm
	}
	if s.digit < 0 {
		c.reg = regID(reg, regSize, !low)
	} else {
		c.reg = -1
	}
	r := reg >= 8
	emitRex := w || r || x || b || forceRex || (!low && !byteRegs && g.r.IntN(8) == 0)
	// Sometimes a stray REX that is not immediately before the opcode
	// (44 66 03 /r, 4F 48 0F C1 /r): the CPU ignores it.
	if (len(s.pfx) > 0 || s.size == 2 || emitRex) && len(s.op)+s.imm+len(s.pfx) <= 4 && g.r.IntN(8) == 0 {
		c.emit(0x40 | byte(g.r.IntN(16)))
	}
	c.emit(s.pfx...)
	if s.size == 2 {
		c.emit(0x66)
	}
	if emitRex {
		rex := byte(0x40)
		if w {
			rex |= 8
		}
		if r {
			rex |= 4
		}
		if x {
			rex |= 2
		}
		if b {
			rex |= 1
		}
		c.emit(rex)
	}
	c.emit(s.op...)
	if s.cc {
		c.code[c.n-1] += byte(g.r.IntN(16))
	}
	c.emit(modrm | byte(reg&7)<<3)
	c.emit(sib...)
	dispAt := c.n
	c.emit(disp...)
	c.immAt = -1
	if s.imm > 0 {
		c.immAt = c.n
		c.emitN(g.val(s.imm), s.imm)
	}
	if ripRel {
		d := c.ea - (c.addr + uint64(c.n))
		if s.lea {
			d = uint64(int64(int32(g.val(4))))
		}
		c.code[dispAt] = byte(d)
		c.code[dispAt+1] = byte(d >> 8)
		c.code[dispAt+2] = byte(d >> 16)
		c.code[dispAt+3] = byte(d >> 24)
	}
	if s.lea {
		c.ea = 0
	}
}

// address builds a memory operand addressing an operand of width bytes
// (aligned to align) in the case's window. It sets the base and index
// registers accordingly and returns ModRM.mod, ModRM.rm, SIB, displacement,
// REX.X, REX.B and whether the operand is RIP-relative (the caller patches
// the displacement).
func (g *dgen) address(c *dcase, excl uint32, low bool, width, align int, a32, free bool) (mod, rm byte, sib, disp []byte, x, b, ripRel bool) {
	off := int64(g.r.IntN(192)) - 96
	if align > 1 {
		off &^= int64(align - 1)
	}
	target := c.win + 512 + uint64(off)
	c.ea = target
	d8 := func() int64 { return int64(g.r.IntN(256)) - 128 }
	d32 := func() int64 {
		if g.r.IntN(2) == 0 {
			return int64(int32(g.val(4)))
		}
		return int64(g.r.IntN(1<<16)) - 1<<15
	}
	setBase := func(reg int, v uint64) {
		if a32 {
			v = v&0xffffffff | g.r.Uint64()<<32
		}
		if free {
			v = g.val(8)
		}
		c.in[reg] = v
	}
	var dispV int64
	switch g.r.IntN(6) {
	case 0: // [base]
		base := g.pick(low, excl|1<<4|1<<5|1<<12|1<<13)
		mod, rm, b = 0, byte(base&7), base >= 8
		setBase(base, target)
	case 1, 2: // [base+disp8], [base+disp32]
		base := g.pick(low, excl|1<<4|1<<12)
		if g.r.IntN(2) == 0 {
			dispV = d8()
			mod = 1
			disp = []byte{byte(dispV)}
		} else {
			dispV = d32()
			mod = 2
			disp = le32(dispV)
		}
		rm, b = byte(base&7), base >= 8
		setBase(base, target-uint64(dispV))
	case 3, 4: // SIB
		rm = 4
		scale := g.r.IntN(4)
		index := g.pick(low, excl)
		noIndex := index == 4
		idxV := g.val(8)
		if noIndex {
			idxV = 0
		}
		mod = byte(g.r.IntN(3))
		var base int
		noBase := false
		if g.r.IntN(6) == 0 {
			mod = 0
			base, noBase = 5, true
			if !low && g.r.IntN(2) == 0 {
				base = 13
			}
		} else {
			base = g.pick(low, excl|1<<index&^(1<<4))
			if noIndex {
				base = g.pick(low, excl)
			}
			if mod == 0 && base&7 == 5 {
				mod = 1
			}
		}
		switch {
		case noBase || mod == 2:
			dispV = d32()
			disp = le32(dispV)
		case mod == 1:
			dispV = d8()
			disp = []byte{byte(dispV)}
		}
		if noBase {
			// address = index<<scale + disp32: pick the index to match.
			if noIndex {
				idxV = 0
				dispV = int64(int32(target))
				disp = le32(dispV)
			} else {
				dispV &^= int64(1<<scale - 1)
				dispV += int64(target) & int64(1<<scale-1)
				disp = le32(dispV)
				idxV = (target - uint64(dispV)) >> scale
				if !a32 && g.r.IntN(2) == 0 && scale == 0 {
					idxV = target - uint64(dispV)
				}
				if a32 {
					idxV = idxV&(0xffffffff>>scale) | g.r.Uint64()<<32
				}
			}
		}
		if !noIndex {
			c.in[index] = idxV
			if free {
				c.in[index] = g.val(8)
			}
		}
		if !noBase {
			setBase(base, target-uint64(dispV)-idxV<<scale)
		}
		sib = []byte{byte(scale)<<6 | byte(index&7)<<3 | byte(base&7)}
		x, b = index >= 8, base >= 8
	case 5: // RIP-relative
		mod, rm = 0, 5
		disp = []byte{0, 0, 0, 0}
		ripRel = true
	}
	return
}

func le32(v int64) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

// dformSet collects the form table.
type dformSet struct {
	forms []*dform
	keys  map[string]bool
}

func (fs *dformSet) add(key string, undef uint64, gen func(g *dgen, c *dcase)) *dform {
	if fs.keys[key] {
		panic("duplicate differential form " + key)
	}
	fs.keys[key] = true
	f := &dform{key: key, undef: undef, gen: gen}
	fs.forms = append(fs.forms, f)
	return f
}

// addMS adds the register and/or memory forms of a ModRM instruction.
// kinds: "r" register only, "m" memory only, "rm" both. fix adjusts the
// inputs after the bytes are built.
func (fs *dformSet) addMS(name string, s ms, kinds string, undef uint64, fix func(g *dgen, c *dcase, s *ms)) {
	for _, k := range kinds {
		s := s
		s.mem = k == 'm'
		kind := "reg"
		if s.mem {
			kind = "mem"
		}
		fs.add(fmt.Sprintf("%s %x/%d/%s", name, s.op, s.size, kind), undef, func(g *dgen, c *dcase) {
			g.modrm(c, &s)
			if fix != nil {
				fix(g, c, &s)
			}
		})
	}
}

var dCondNames = [16]string{"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"}

// sizesV calls f for the 16/32/64-bit operand sizes.
func sizesV(f func(size int)) {
	for _, s := range []int{2, 4, 8} {
		f(s)
	}
}

func izLen(size int) int {
	if size == 2 {
		return 2
	}
	return 4
}

// shiftUndef: SDM "SAL/SAR/SHL/SHR": "The CF flag contains the value of the
// last bit shifted out ... it is undefined for SHL and SHR instructions where
// the count is greater than or equal to the size (in bits) of the destination
// operand. The OF flag is affected only for 1-bit shifts; otherwise, it is
// undefined. ... If the count is 0, the flags are not affected. For a
// non-zero count, the AF flag is undefined." "RCL/RCR/ROL/ROR": "If the
// masked count is 0, the flags are not affected. If the masked count is 1,
// then the OF flag is affected, otherwise (masked count is greater than 1)
// the OF flag is undefined."
func shiftUndef(digit, size int, cnt uint8) uint64 {
	m := int(cnt & 31)
	if size == 8 {
		m = int(cnt & 63)
	}
	if m == 0 {
		return 0
	}
	var u uint64
	if m != 1 {
		u |= dOF
	}
	if digit >= 4 {
		u |= dAF
		if digit != 7 && m >= size*8 {
			u |= dCF
		}
	}
	return u
}

// count returns a shift count biased to the interesting range 0..65.
func (g *dgen) count() uint8 {
	switch g.r.IntN(4) {
	case 0:
		return uint8(g.r.IntN(4))
	case 1, 2:
		return uint8(g.r.IntN(66))
	default:
		return uint8(g.r.Uint32())
	}
}

// setCount stores the count of a shift built by modrm: into the immediate,
// or into CL (unless CL is the shifted operand itself).
func (g *dgen) setCount(c *dcase, useCL bool) uint8 {
	cnt := g.count()
	if useCL {
		if c.ea == 0 && c.rm == 1 {
			return uint8(c.in[1])
		}
		c.in[1] = c.in[1]&^0xff | uint64(cnt)
		return cnt
	}
	c.code[c.immAt] = cnt
	return cnt
}

// divSetup chooses a dividend in rDX:rAX (AX for bytes) and a non-zero
// divisor in r/m such that the quotient fits: DIV and IDIV never fault.
func (g *dgen) divSetup(c *dcase, size int, signed bool) {
	nb := uint(size * 8)
	m := dSizeMask[size]
	var q, d, r *big.Int
	sx := func(v uint64) *big.Int {
		v &= m
		if v>>(nb-1) != 0 {
			return new(big.Int).Sub(new(big.Int).SetUint64(v), new(big.Int).Lsh(big.NewInt(1), nb))
		}
		return new(big.Int).SetUint64(v)
	}
	dv := g.val(size) & m
	if dv == 0 {
		dv = 1 + uint64(g.r.IntN(3))
	}
	if signed {
		d = sx(dv)
		q = sx(g.val(size))
		ad := new(big.Int).Abs(d).Uint64()
		r = new(big.Int).SetUint64(g.r.Uint64() % ad)
		if g.r.IntN(4) == 0 {
			r.SetUint64(ad - 1)
		}
		prod := new(big.Int).Mul(q, d)
		if prod.Sign() < 0 || prod.Sign() == 0 && g.r.IntN(2) == 0 {
			r.Neg(r)
		}
	} else {
		d = new(big.Int).SetUint64(dv)
		q = new(big.Int).SetUint64(g.val(size) & m)
		r = new(big.Int).SetUint64(g.r.Uint64() % dv)
		if g.r.IntN(4) == 0 {
			r.SetUint64(dv - 1)
		}
	}
	n := new(big.Int).Mul(q, d)
	n.Add(n, r)
	if n.Sign() < 0 {
		n.Add(n, new(big.Int).Lsh(big.NewInt(1), 2*nb))
	}
	lo := new(big.Int).And(n, new(big.Int).SetUint64(m)).Uint64()
	hi := new(big.Int).Rsh(n, nb).Uint64() & m
	c.setRM(size, dv)
	if size == 1 {
		c.setR(0, 2, hi<<8|lo)
		return
	}
	c.setR(0, size, lo)
	c.setR(2, size, hi)
}
