//go:build linux && amd64

package interp

// The differential test's MMX and SSE forms, and the x87/MMX/SSE state
// every case starts from (an FXRSTOR64 image).

import (
	"encoding/binary"
	"fmt"
	"math"
)

// fxImage fills fx with a random FXRSTOR64 image that no instruction can
// fault on natively: FCW masks every x87 exception and MXCSR every SIMD
// exception, so no exception is pending; ES and B are clear. TOP, the
// tags, the other status bits, the rounding controls, DAZ and FZ, the
// registers and their exponents are random; half the x87 registers are
// edge-biased 80-bit values (randF80), the others MMX-style lanes.
func (g *dgen) fxImage(fx []byte) {
	clear(fx)
	le := binary.LittleEndian
	le.PutUint16(fx, 0x7f|uint16(g.r.IntN(16))<<8) // masks; PC, RC
	if g.r.IntN(8) == 0 {
		fx[0] |= byte(g.r.IntN(2)) << 7 // reserved bits
		fx[1] |= byte(g.r.IntN(16)) << 4
	}
	le.PutUint16(fx[2:], uint16(g.r.Uint32())&^(0x80|0x8000)) // flags, SF, C0-C3, TOP
	fx[4] = byte(g.r.Uint32())                                // abridged tag
	mx := uint32(0x1f80) | g.r.Uint32()&0x3f | uint32(g.r.IntN(4))<<13
	if g.r.IntN(4) == 0 {
		mx |= g.r.Uint32() & (mxDAZ | mxFZ)
	}
	le.PutUint32(fx[24:], mx)
	for i := 0; i < 8; i++ {
		if g.r.IntN(2) == 0 {
			putF80(fx[32+16*i:], randF80(g.x87r()))
			continue
		}
		le.PutUint64(fx[32+16*i:], g.vec64())
		se := uint16(g.r.Uint32())
		if g.r.IntN(4) == 0 {
			se = 0xffff
		}
		le.PutUint16(fx[40+16*i:], se)
	}
	for i := 0; i < 32; i++ {
		le.PutUint64(fx[160+8*i:], g.vec64())
	}
}

// vec64 returns a quadword of 8-, 16-, 32- or 64-bit lanes, each biased to
// the edges of its width (saturation, sign and carry cases).
func (g *dgen) vec64() uint64 {
	w := 1 << g.r.IntN(4)
	var v uint64
	for s := 0; s < 64; s += 8 * w {
		v |= g.val(w) & dSizeMask[w] << s
	}
	return v
}

// fpVal returns a binary32 (low bits) or binary64 operand for conversions
// to integers: integers, ties and other fractions, values next to the
// int32 limits, zeros, denormals, infinities, NaNs and random patterns.
func (g *dgen) fpVal(dbl bool) uint64 {
	var f float64
	switch g.r.IntN(8) {
	case 0:
		f = float64(int32(g.val(4)))
	case 1:
		f = float64(g.r.IntN(400)-200) / 4
	case 2:
		f = math.Ldexp(float64(1-2*g.r.IntN(2)), 31) + float64(g.r.IntN(512)-256)
	case 3:
		f = g.r.NormFloat64() * math.Ldexp(1, g.r.IntN(40))
	case 4:
		specials32 := []uint64{0, 0x80000000, 1, 0x807fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff}
		specials64 := []uint64{0, 1 << 63, 1, 0x800fffffffffffff, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001, ^uint64(0)}
		if dbl {
			return specials64[g.r.IntN(len(specials64))]
		}
		return specials32[g.r.IntN(len(specials32))]
	default:
		if dbl {
			return g.r.Uint64()
		}
		return uint64(g.r.Uint32())
	}
	if dbl {
		return math.Float64bits(f)
	}
	return uint64(math.Float32bits(float32(f)))
}

// setMM sets mm register r (physical x87 register r&7) in the case's
// initial state; setXMM sets XMM register r.
func (c *dcase) setMM(r int, v uint64) {
	top := int(binary.LittleEndian.Uint16(c.fx[2:]) >> 11 & 7)
	binary.LittleEndian.PutUint64(c.fx[32+16*((r-top)&7):], v)
}

func (c *dcase) setXMM(r int, lo, hi uint64) {
	binary.LittleEndian.PutUint64(c.fx[160+16*r:], lo)
	binary.LittleEndian.PutUint64(c.fx[168+16*r:], hi)
}

// dVec says which register file a ModRM operand names.
type dVec int

const (
	vGPR dVec = iota
	vMM
	vXMM
)

// vs describes a vector instruction for addVec.
type vs struct {
	name  string
	pfx   byte // mandatory prefix (0, 66, F2, F3)
	op    byte // 0F op
	digit int  // -1: ModRM.reg is a register operand
	rm    dVec // file of a register r/m operand
	width int  // bytes of a memory r/m operand
	align int
	imm   int
	w     bool   // REX.W (operand size 64 for a GPR operand)
	kinds string // "r", "m", "rm"
	// src, if set, now and then replaces the r/m source operand by a
	// value of a chosen class (shift counts, floats).
	src func(g *dgen) (lo, hi uint64)
}

// addVec adds the register and/or memory forms of a vector instruction.
func (fs *dformSet) addVec(v vs) {
	s := ms{op: []byte{0x0f, v.op}, digit: v.digit, size: 4, align: v.align, imm: v.imm}
	if v.pfx != 0 {
		s.pfx = []byte{v.pfx}
	}
	if v.w {
		s.size = 8
	}
	pfx, w := "", ""
	if v.pfx != 0 {
		pfx = fmt.Sprintf("%x ", v.pfx)
	}
	if v.w {
		w = " rex.w"
	}
	for _, k := range v.kinds {
		s := s
		s.mem = k == 'm'
		kind := "reg"
		if s.mem {
			kind = "mem"
			s.rmSize = v.width
		}
		fs.add(fmt.Sprintf("%s %s0f%02x%s/%s", v.name, pfx, v.op, w, kind), 0, func(g *dgen, c *dcase) {
			g.modrm(c, &s)
			if v.src == nil || g.r.IntN(4) == 0 {
				return
			}
			lo, hi := v.src(g)
			switch {
			case c.ea != 0:
				c.setM(c.ea, min(v.width, 8), lo)
				if v.width == 16 {
					c.setM(c.ea+8, 8, hi)
				}
			case v.rm == vMM:
				c.setMM(c.rm, lo)
			case v.rm == vXMM:
				c.setXMM(c.rm, lo, hi)
			}
		}).vec = true
	}
}

// dVectorForms adds the MMX forms and the SSE forms whose results are bit
// patterns or integers (no floating-point arithmetic).
func dVectorForms(fs *dformSet) {
	count := func(g *dgen) (uint64, uint64) { return uint64(g.count()), g.r.Uint64() }
	f32s := func(g *dgen) (uint64, uint64) {
		return g.fpVal(false) | g.fpVal(false)<<32, g.fpVal(false) | g.fpVal(false)<<32
	}
	f64s := func(g *dgen) (uint64, uint64) { return g.fpVal(true), g.fpVal(true) }
	// mmAndXMM adds the mm form (0F op, m64) and the XMM form (66 0F op,
	// aligned m128) of a packed-integer instruction.
	mmAndXMM := func(name string, op byte, mm bool, src func(g *dgen) (uint64, uint64)) {
		if mm {
			fs.addVec(vs{name: name, op: op, digit: -1, rm: vMM, width: 8, kinds: "rm", src: src})
		}
		fs.addVec(vs{name: name, pfx: 0x66, op: op, digit: -1, rm: vXMM, width: 16, align: 16, kinds: "rm", src: src})
	}
	for _, o := range []struct {
		name string
		op   byte
	}{
		{"paddb", 0xfc}, {"paddw", 0xfd}, {"paddd", 0xfe}, {"paddq", 0xd4},
		{"paddsb", 0xec}, {"paddsw", 0xed}, {"paddusb", 0xdc}, {"paddusw", 0xdd},
		{"psubb", 0xf8}, {"psubw", 0xf9}, {"psubd", 0xfa}, {"psubq", 0xfb},
		{"psubsb", 0xe8}, {"psubsw", 0xe9}, {"psubusb", 0xd8}, {"psubusw", 0xd9},
		{"pcmpeqb", 0x74}, {"pcmpeqw", 0x75}, {"pcmpeqd", 0x76}, {"pcmpgtb", 0x64}, {"pcmpgtw", 0x65}, {"pcmpgtd", 0x66},
		{"pmullw", 0xd5}, {"pmulhw", 0xe5}, {"pmulhuw", 0xe4}, {"pmuludq", 0xf4}, {"pmaddwd", 0xf5},
		{"packsswb", 0x63}, {"packssdw", 0x6b}, {"packuswb", 0x67},
		{"punpcklbw", 0x60}, {"punpcklwd", 0x61}, {"punpckldq", 0x62},
		{"punpckhbw", 0x68}, {"punpckhwd", 0x69}, {"punpckhdq", 0x6a},
		{"pand", 0xdb}, {"pandn", 0xdf}, {"por", 0xeb}, {"pxor", 0xef},
		{"pavgb", 0xe0}, {"pavgw", 0xe3}, {"pminub", 0xda}, {"pmaxub", 0xde}, {"pminsw", 0xea}, {"pmaxsw", 0xee}, {"psadbw", 0xf6},
	} {
		mmAndXMM(o.name, o.op, true, nil)
	}
	mmAndXMM("punpcklqdq", 0x6c, false, nil)
	mmAndXMM("punpckhqdq", 0x6d, false, nil)
	for _, o := range []struct {
		name string
		op   byte
	}{
		{"psllw", 0xf1}, {"pslld", 0xf2}, {"psllq", 0xf3}, {"psrlw", 0xd1}, {"psrld", 0xd2}, {"psrlq", 0xd3}, {"psraw", 0xe1}, {"psrad", 0xe2},
	} {
		mmAndXMM(o.name, o.op, true, count)
	}
	// Shifts by an immediate (register operand only); PSRLDQ and PSLLDQ
	// exist for XMM only.
	for _, o := range []struct {
		name   string
		op     byte
		digit  int
		mmForm bool
	}{
		{"psrlw", 0x71, 2, true}, {"psraw", 0x71, 4, true}, {"psllw", 0x71, 6, true},
		{"psrld", 0x72, 2, true}, {"psrad", 0x72, 4, true}, {"pslld", 0x72, 6, true},
		{"psrlq", 0x73, 2, true}, {"psrldq", 0x73, 3, false}, {"psllq", 0x73, 6, true}, {"pslldq", 0x73, 7, false},
	} {
		name := fmt.Sprintf("%s /%d", o.name, o.digit)
		if o.mmForm {
			fs.addVec(vs{name: name, op: o.op, digit: o.digit, rm: vMM, imm: 1, kinds: "r"})
		}
		fs.addVec(vs{name: name, pfx: 0x66, op: o.op, digit: o.digit, rm: vXMM, imm: 1, kinds: "r"})
	}

	// Moves.
	for _, w := range []bool{false, true} {
		fs.addVec(vs{name: "movd/q mm,Ey", op: 0x6e, digit: -1, rm: vGPR, width: 4 << b2i(w), w: w, kinds: "rm"})
		fs.addVec(vs{name: "movd/q Ey,mm", op: 0x7e, digit: -1, rm: vGPR, width: 4 << b2i(w), w: w, kinds: "rm"})
		fs.addVec(vs{name: "movd/q xmm,Ey", pfx: 0x66, op: 0x6e, digit: -1, rm: vGPR, width: 4 << b2i(w), w: w, kinds: "rm"})
		fs.addVec(vs{name: "movd/q Ey,xmm", pfx: 0x66, op: 0x7e, digit: -1, rm: vGPR, width: 4 << b2i(w), w: w, kinds: "rm"})
	}
	fs.addVec(vs{name: "movq mm,mm/m64", op: 0x6f, digit: -1, rm: vMM, width: 8, kinds: "rm"})
	fs.addVec(vs{name: "movq mm/m64,mm", op: 0x7f, digit: -1, rm: vMM, width: 8, kinds: "rm"})
	fs.addVec(vs{name: "movq xmm,xmm/m64", pfx: 0xf3, op: 0x7e, digit: -1, rm: vXMM, width: 8, kinds: "rm"})
	fs.addVec(vs{name: "movq xmm/m64,xmm", pfx: 0x66, op: 0xd6, digit: -1, rm: vXMM, width: 8, kinds: "rm"})
	fs.addVec(vs{name: "movq2dq", pfx: 0xf3, op: 0xd6, digit: -1, rm: vMM, kinds: "r"})
	fs.addVec(vs{name: "movdq2q", pfx: 0xf2, op: 0xd6, digit: -1, rm: vXMM, kinds: "r"})
	fs.addVec(vs{name: "movntq", op: 0xe7, digit: -1, width: 8, kinds: "m"})
	fs.addVec(vs{name: "movntdq", pfx: 0x66, op: 0xe7, digit: -1, width: 16, align: 16, kinds: "m"})
	// XMM moves and bitwise operations: register r/m is XMM, ModRM.reg too.
	for _, v := range []vs{
		{name: "movdqa", pfx: 0x66, op: 0x6f, width: 16, align: 16, kinds: "rm"},
		{name: "movdqa st", pfx: 0x66, op: 0x7f, width: 16, align: 16, kinds: "rm"},
		{name: "movdqu", pfx: 0xf3, op: 0x6f, width: 16, align: 1, kinds: "rm"},
		{name: "movdqu st", pfx: 0xf3, op: 0x7f, width: 16, align: 1, kinds: "rm"},
		{name: "movaps", pfx: 0, op: 0x28, width: 16, align: 16, kinds: "rm"},
		{name: "movaps st", pfx: 0, op: 0x29, width: 16, align: 16, kinds: "rm"},
		{name: "movups", pfx: 0, op: 0x10, width: 16, align: 1, kinds: "rm"},
		{name: "movups st", pfx: 0, op: 0x11, width: 16, align: 1, kinds: "rm"},
		{name: "movapd", pfx: 0x66, op: 0x28, width: 16, align: 16, kinds: "rm"},
		{name: "movapd st", pfx: 0x66, op: 0x29, width: 16, align: 16, kinds: "rm"},
		{name: "movupd", pfx: 0x66, op: 0x10, width: 16, align: 1, kinds: "rm"},
		{name: "movupd st", pfx: 0x66, op: 0x11, width: 16, align: 1, kinds: "rm"},
		{name: "movntps", pfx: 0, op: 0x2b, width: 16, align: 16, kinds: "m"},
		{name: "movntpd", pfx: 0x66, op: 0x2b, width: 16, align: 16, kinds: "m"},
		{name: "andps", pfx: 0, op: 0x54, width: 16, align: 16, kinds: "rm"},
		{name: "andnps", pfx: 0, op: 0x55, width: 16, align: 16, kinds: "rm"},
		{name: "orps", pfx: 0, op: 0x56, width: 16, align: 16, kinds: "rm"},
		{name: "xorps", pfx: 0, op: 0x57, width: 16, align: 16, kinds: "rm"},
		{name: "andpd", pfx: 0x66, op: 0x54, width: 16, align: 16, kinds: "rm"},
		{name: "andnpd", pfx: 0x66, op: 0x55, width: 16, align: 16, kinds: "rm"},
		{name: "orpd", pfx: 0x66, op: 0x56, width: 16, align: 16, kinds: "rm"},
		{name: "xorpd", pfx: 0x66, op: 0x57, width: 16, align: 16, kinds: "rm"},
		{name: "unpcklps", pfx: 0, op: 0x14, width: 16, align: 16, kinds: "rm"},
		{name: "unpckhps", pfx: 0, op: 0x15, width: 16, align: 16, kinds: "rm"},
		{name: "unpcklpd", pfx: 0x66, op: 0x14, width: 16, align: 16, kinds: "rm"},
		{name: "unpckhpd", pfx: 0x66, op: 0x15, width: 16, align: 16, kinds: "rm"},
		{name: "movss", pfx: 0xf3, op: 0x10, width: 4, kinds: "rm"},
		{name: "movss st", pfx: 0xf3, op: 0x11, width: 4, kinds: "rm"},
		{name: "movsd", pfx: 0xf2, op: 0x10, width: 8, kinds: "rm"},
		{name: "movsd st", pfx: 0xf2, op: 0x11, width: 8, kinds: "rm"},
		{name: "movlps/movhlps", pfx: 0, op: 0x12, width: 8, kinds: "rm"},
		{name: "movhps/movlhps", pfx: 0, op: 0x16, width: 8, kinds: "rm"},
		{name: "movlpd", pfx: 0x66, op: 0x12, width: 8, kinds: "m"},
		{name: "movhpd", pfx: 0x66, op: 0x16, width: 8, kinds: "m"},
		{name: "movlps st", pfx: 0, op: 0x13, width: 8, kinds: "m"},
		{name: "movhps st", pfx: 0, op: 0x17, width: 8, kinds: "m"},
		{name: "movlpd st", pfx: 0x66, op: 0x13, width: 8, kinds: "m"},
		{name: "movhpd st", pfx: 0x66, op: 0x17, width: 8, kinds: "m"},
	} {
		v.digit, v.rm = -1, vXMM
		fs.addVec(v)
	}
	fs.add("emms 0f77", 0, func(g *dgen, c *dcase) { c.emit(0x0f, 0x77) }).vec = true

	// Shuffles, inserts, extracts, masks.
	fs.addVec(vs{name: "pshufw", op: 0x70, digit: -1, rm: vMM, width: 8, imm: 1, kinds: "rm"})
	for _, p := range []byte{0x66, 0xf2, 0xf3} {
		fs.addVec(vs{name: "pshufd/lw/hw", pfx: p, op: 0x70, digit: -1, rm: vXMM, width: 16, align: 16, imm: 1, kinds: "rm"})
	}
	fs.addVec(vs{name: "shufps", op: 0xc6, digit: -1, rm: vXMM, width: 16, align: 16, imm: 1, kinds: "rm"})
	fs.addVec(vs{name: "shufpd", pfx: 0x66, op: 0xc6, digit: -1, rm: vXMM, width: 16, align: 16, imm: 1, kinds: "rm"})
	for _, p := range []byte{0, 0x66} {
		fs.addVec(vs{name: "pinsrw", pfx: p, op: 0xc4, digit: -1, rm: vGPR, width: 2, imm: 1, kinds: "rm"})
		for _, w := range []bool{false, true} {
			rm := vMM
			if p != 0 {
				rm = vXMM
			}
			fs.addVec(vs{name: "pextrw", pfx: p, op: 0xc5, digit: -1, rm: rm, imm: 1, w: w, kinds: "r"})
			fs.addVec(vs{name: "pmovmskb", pfx: p, op: 0xd7, digit: -1, rm: rm, w: w, kinds: "r"})
		}
	}
	fs.addVec(vs{name: "movmskps", op: 0x50, digit: -1, rm: vXMM, kinds: "r"})
	fs.addVec(vs{name: "movmskpd", pfx: 0x66, op: 0x50, digit: -1, rm: vXMM, kinds: "r"})
	// MASKMOVQ/MASKMOVDQU store to [RDI], which must point into the window.
	for _, p := range []byte{0, 0x66} {
		fs.add(fmt.Sprintf("maskmov %x 0ff7/reg", p), 0, func(g *dgen, c *dcase) {
			s := ms{op: []byte{0x0f, 0xf7}, digit: -1, size: 4, regEx: 1 << 7, rmEx: 1 << 7}
			if p != 0 {
				s.pfx = []byte{p}
			}
			g.modrm(c, &s)
			c.in[7] = c.win + 512 + uint64(g.r.IntN(192)) - 96
		}).vec = true
	}

	// Conversions between mm and XMM.
	fs.addVec(vs{name: "cvtpi2ps", op: 0x2a, digit: -1, rm: vMM, width: 8, kinds: "rm"})
	fs.addVec(vs{name: "cvtpi2pd", pfx: 0x66, op: 0x2a, digit: -1, rm: vMM, width: 8, kinds: "rm"})
	fs.addVec(vs{name: "cvtps2pi", op: 0x2d, digit: -1, rm: vXMM, width: 8, kinds: "rm", src: f32s})
	fs.addVec(vs{name: "cvttps2pi", op: 0x2c, digit: -1, rm: vXMM, width: 8, kinds: "rm", src: f32s})
	fs.addVec(vs{name: "cvtpd2pi", pfx: 0x66, op: 0x2d, digit: -1, rm: vXMM, width: 16, align: 16, kinds: "rm", src: f64s})
	fs.addVec(vs{name: "cvttpd2pi", pfx: 0x66, op: 0x2c, digit: -1, rm: vXMM, width: 16, align: 16, kinds: "rm", src: f64s})
}
