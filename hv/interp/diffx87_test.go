//go:build linux && amd64

package interp

// The differential test's x87 forms. Each is one instruction run between
// the case's FXRSTOR64 and FXSAVE64; its operands come from the x87
// tests' edge-biased generators (x87_test.go, x87_trans_test.go,
// x87_edge_test.go, x87_bcd_test.go) drawing from the case generator.
// The image's tags and TOP stay random, so stack overflows and underflows
// occur; now and then some exceptions are unmasked with their flags
// clear, so nothing is pending when the instruction starts and only the
// no-wait FXSAVE64 follows it (no #MF natively or in the engine). The
// transcendentals are compared with the tolerance of x87_trans_test.go
// (transTolerance).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	randv2 "math/rand/v2"
)

// dRand1 is the math/rand generator the x87 operand generators take.
type dRand1 = rand.Rand

// dRandSource feeds a math/rand generator from the case generator.
type dRandSource struct{ r *randv2.Rand }

func (s dRandSource) Int63() int64   { return int64(s.r.Uint64() >> 1) }
func (s dRandSource) Uint64() uint64 { return s.r.Uint64() }
func (s dRandSource) Seed(int64)     {}

// x87r returns the case generator as a math/rand generator.
func (g *dgen) x87r() *rand.Rand {
	if g.r1 == nil {
		g.r1 = rand.New(dRandSource{g.r})
	}
	return g.r1
}

// fxRegs reads the status word and ST(0)-ST(7) of an FXSAVE image.
func fxRegs(fx []byte) x87Regs {
	r := x87Regs{fsw: le16(fx[2:])}
	top := int(r.fsw >> 11 & 7)
	for i := range r.st {
		r.valid[i] = fx[4]>>((top+i)&7)&1 != 0
		r.st[i] = getF80(fx[32+16*i:])
	}
	return r
}

// setST makes ST(i) of the case's initial image v; it is tagged valid
// except now and then (its random tag stays).
func (g *dgen) setST(c *dcase, i int, v f80) {
	o := 32 + 16*i
	putF80(c.fx[o:], v)
	if g.r.IntN(8) != 0 {
		top := int(le16(c.fx[2:]) >> 11 & 7)
		c.fx[4] |= 1 << ((top + i) & 7)
	}
}

// x87Start prepares the image for an x87 form: ST(7) mostly empty for an
// instruction that pushes, and, one case in eight, some exceptions
// unmasked with their flags cleared.
func (g *dgen) x87Start(c *dcase, push bool) {
	le := binary.LittleEndian
	if push && g.r.IntN(4) != 0 {
		top := int(le16(c.fx[2:]) >> 11 & 7)
		c.fx[4] &^= 1 << ((top + 7) & 7)
	}
	if g.r.IntN(8) == 0 {
		un := uint16(g.r.IntN(64))
		le.PutUint16(c.fx, le16(c.fx)&^un)
		le.PutUint16(c.fx[2:], le16(c.fx[2:])&^un)
	}
}

// x87Setup writes the operands of one case: ST registers in the image,
// the memory operand at c.ea; i is the register operand ST(i).
type x87Setup func(g *dgen, c *dcase, r *rand.Rand, i int)

// x87Form describes one x87 instruction form.
type x87Form struct {
	name  string
	op    byte // D8-DF
	modrm byte // register forms: the ModRM byte (plus i if withI)
	digit int  // memory forms: ModRM.reg
	width int  // memory forms: operand bytes; 0 for a register form
	o16   bool // 66 prefix (16-bit environment layouts)
	withI bool
	push  bool
	setup x87Setup
	skip  [2]int // memory forms: bytes [skip[0], skip[1]) of the operand are not compared
	trans string // transcendental: compared with transTolerance
}

func (fs *dformSet) addX87(x x87Form) *dform {
	var key string
	switch {
	case x.width != 0 && x.o16:
		key = fmt.Sprintf("%s 66 %02x/%d/m%d", x.name, x.op, x.digit, x.width*8)
	case x.width != 0:
		key = fmt.Sprintf("%s %02x/%d/m%d", x.name, x.op, x.digit, x.width*8)
	case x.withI:
		key = fmt.Sprintf("%s %02x %02x+i", x.name, x.op, x.modrm)
	default:
		key = fmt.Sprintf("%s %02x %02x", x.name, x.op, x.modrm)
	}
	f := fs.add(key, 0, func(g *dgen, c *dcase) {
		g.x87Start(c, x.push)
		i := 0
		if x.width != 0 {
			s := ms{op: []byte{x.op}, digit: x.digit, size: 4, rmSize: x.width, mem: true}
			if x.o16 {
				s.size = 2
			}
			g.modrm(c, &s)
			if x.skip[1] != 0 {
				c.skipAt, c.skipN = c.ea+uint64(x.skip[0]), x.skip[1]-x.skip[0]
			}
		} else {
			if g.r.IntN(8) == 0 {
				c.emit(0x40 | byte(g.r.IntN(16))) // REX is ignored
			}
			m := x.modrm
			if x.withI {
				i = g.r.IntN(8)
				m += byte(i)
			}
			c.emit(x.op, m)
		}
		if x.setup != nil {
			x.setup(g, c, g.x87r(), i)
		}
	})
	f.vec = true
	if x.trans != "" {
		f.fxCmp = x87TransCmp(x.trans)
	}
	return f
}

// fscaleFXCmp compares the FXSAVE images after FSCALE: equal, or, where
// fscaleZeroTiny holds on an Intel host (hostVariant.fscaleZeroKeepsTiny),
// the engine's unmasked underflow response against the host's unchanged
// ST(0) with DE alone.
func fscaleFXCmp(c *dcase, n, e []byte) (string, bool) {
	d := dFXDiff(n, e)
	in := fxRegs(c.fx)
	wrapped, tiny := fscaleZeroTiny(in.st[0], in.st[1], le16(c.fx))
	if !tiny || !in.valid[0] || !in.valid[1] || !hostCPU().fscaleZeroKeepsTiny() {
		return d, false
	}
	efsw := le16(e[2:])
	if got := getF80(e[32:]); got != wrapped || efsw&fscaleTinyResp != fscaleTinyResp {
		return d + fmt.Sprintf("  engine: ST(0) %s fsw %#04x, want %s with UE, ES and B\n", hexF80a(got), efsw, hexF80a(wrapped)), false
	}
	want := append([]byte(nil), e...)
	binary.LittleEndian.PutUint16(want[2:], efsw&^fscaleTinyResp)
	putF80(want[32:], in.st[0])
	if dd := dFXDiff(n, want); dd != "" {
		return d + "  (a zero scale of a denormal: the host may keep ST(0) with DE alone)\n" + dd, false
	}
	return "", false
}

// x87TransCmp compares the FXSAVE images after a transcendental: equal,
// or different only in ST values and C1 as transTolerance allows for the
// case's operands.
func x87TransCmp(op string) func(c *dcase, n, e []byte) (string, bool) {
	twoOps := false
	for _, o := range transOps {
		if o.name == op {
			twoOps = o.b != nil
		}
	}
	return func(c *dcase, n, e []byte) (string, bool) {
		d := dFXDiff(n, e)
		if d == "" {
			return "", false
		}
		if !bytes.Equal(n[:2], e[:2]) || n[4] != e[4] || !bytes.Equal(n[24:28], e[24:28]) || !bytes.Equal(n[160:416], e[160:416]) {
			return d, false
		}
		hr, er := fxRegs(n), fxRegs(e)
		for i := range hr.st {
			if !hr.valid[i] && hr.st[i] != er.st[i] {
				return d, false
			}
		}
		in := fxRegs(c.fx)
		if !in.valid[0] || twoOps && !in.valid[1] {
			return d, false
		}
		if r := transTolerance(op, in.st[0], in.st[1], le16(c.fx), &hr, &er, &transStats{}); r != "" {
			return d + r, false
		}
		return "", true
	}
}

// x87IntOperand returns an FIST/FISTP/FISTTP operand for an integer of
// size bytes: the width's edge values (and their neighbours), halves and
// other roundings, BCD-range edges, or any class.
func (g *dgen) x87IntOperand(r *rand.Rand, size int) f80 {
	switch r.Intn(4) {
	case 0:
		v := g.val(size)
		sh := uint(64 - 8*size)
		return ulpNudge(r, intToF80(int64(v<<sh)>>sh))
	case 1:
		return roundOperand(r)
	case 2:
		return randBCDF80(r)
	}
	return randF80(r)
}

// x87Env writes an FLDENV (regs false) or FRSTOR image at c.ea in the
// 32-bit or (o16) 16-bit layout: random control, status and tag words
// (exceptions masked or not), then edge-biased registers.
func x87Env(o16, regs bool) x87Setup {
	return func(g *dgen, c *dcase, r *rand.Rand, _ int) {
		step, n := 4, 28
		if o16 {
			step, n = 2, 14
		}
		fcw := randFCW(r)
		if r.Intn(2) == 0 {
			fcw = uint16(g.val(2))
		}
		ftw := uint16(g.val(2))
		if r.Intn(4) == 0 {
			ftw = 0xffff
		}
		c.setM(c.ea, 2, uint64(fcw))
		c.setM(c.ea+uint64(step), 2, g.val(2))
		c.setM(c.ea+uint64(2*step), 2, uint64(ftw))
		if regs {
			for i := 0; i < 8; i++ {
				v := randF80(r)
				a := c.ea + uint64(n+10*i)
				c.setM(a, 8, v.mant)
				c.setM(a+8, 2, uint64(v.se))
			}
		}
	}
}

// dX87Forms adds the x87 forms.
func dX87Forms(fs *dformSet) {
	st0 := func(gen func(r *rand.Rand) f80) x87Setup {
		return func(g *dgen, c *dcase, r *rand.Rand, _ int) { g.setST(c, 0, gen(r)) }
	}
	// Two register operands: ST(0) and ST(i) (ST(1) if i is 0) close in
	// magnitude most of the time.
	pair := func(g *dgen, c *dcase, r *rand.Rand, i int) {
		a := randF80(r)
		g.setST(c, 0, a)
		g.setST(c, max(i, 1), near(r, a, 70))
	}
	put80 := func(c *dcase, v f80) {
		c.setM(c.ea, 8, v.mant)
		c.setM(c.ea+8, 2, uint64(v.se))
	}
	// ST(0) and a memory operand: a float of w significand bits
	// (24, 53, 64) or a signed integer of size bytes (w = 0).
	memArith := func(w uint, size int) x87Setup {
		return func(g *dgen, c *dcase, r *rand.Rand, _ int) {
			g.setST(c, 0, randF80(r))
			switch w {
			case 0:
				c.setM(c.ea, size, g.val(size))
			case 64:
				put80(c, randF80(r))
			default:
				c.setM(c.ea, size, randFloatBits(r, w))
			}
		}
	}
	intStore := func(size int) x87Setup {
		return func(g *dgen, c *dcase, r *rand.Rand, _ int) { g.setST(c, 0, g.x87IntOperand(r, size)) }
	}

	arith := []string{"fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"}
	for d, name := range arith {
		fs.addX87(x87Form{name: name, op: 0xd8, modrm: 0xc0 | byte(d)<<3, withI: true, setup: pair})
		fs.addX87(x87Form{name: name, op: 0xd8, digit: d, width: 4, setup: memArith(24, 4)})
		fs.addX87(x87Form{name: name, op: 0xdc, digit: d, width: 8, setup: memArith(53, 8)})
		fs.addX87(x87Form{name: "fi" + name[1:], op: 0xda, digit: d, width: 4, setup: memArith(0, 4)})
		fs.addX87(x87Form{name: "fi" + name[1:], op: 0xde, digit: d, width: 2, setup: memArith(0, 2)})
	}
	// DC and DE register forms: ST(i) op= ST(0), and with a pop.
	for _, o := range []struct {
		name string
		m    byte
	}{{"fadd", 0xc0}, {"fmul", 0xc8}, {"fsubr", 0xe0}, {"fsub", 0xe8}, {"fdivr", 0xf0}, {"fdiv", 0xf8}} {
		fs.addX87(x87Form{name: o.name + " st(i),st", op: 0xdc, modrm: o.m, withI: true, setup: pair})
		fs.addX87(x87Form{name: o.name + "p", op: 0xde, modrm: o.m, withI: true, setup: pair})
	}
	fs.addX87(x87Form{name: "fcompp", op: 0xde, modrm: 0xd9, setup: pair})
	fs.addX87(x87Form{name: "fucompp", op: 0xda, modrm: 0xe9, setup: pair})
	for _, o := range []struct {
		name string
		op   byte
		m    byte
	}{
		{"fucom", 0xdd, 0xe0}, {"fucomp", 0xdd, 0xe8}, {"fucomi", 0xdb, 0xe8}, {"fcomi", 0xdb, 0xf0},
		{"fucomip", 0xdf, 0xe8}, {"fcomip", 0xdf, 0xf0},
		{"fcmovb", 0xda, 0xc0}, {"fcmove", 0xda, 0xc8}, {"fcmovbe", 0xda, 0xd0}, {"fcmovu", 0xda, 0xd8},
		{"fcmovnb", 0xdb, 0xc0}, {"fcmovne", 0xdb, 0xc8}, {"fcmovnbe", 0xdb, 0xd0}, {"fcmovnu", 0xdb, 0xd8},
		{"fxch", 0xd9, 0xc8}, {"fst st(i)", 0xdd, 0xd0}, {"fstp st(i)", 0xdd, 0xd8},
	} {
		fs.addX87(x87Form{name: o.name, op: o.op, modrm: o.m, withI: true, setup: pair})
	}
	// Aliases without their own mnemonic in the SDM.
	for _, o := range []struct {
		name string
		op   byte
		m    byte
	}{
		{"fcom2", 0xdc, 0xd0}, {"fcomp3", 0xdc, 0xd8}, {"fcomp5", 0xde, 0xd0}, {"fxch4", 0xdd, 0xc8}, {"fxch7", 0xdf, 0xc8},
		{"fstp1", 0xd9, 0xd8}, {"fstp8", 0xdf, 0xd0}, {"fstp9", 0xdf, 0xd8}, {"ffreep", 0xdf, 0xc0},
	} {
		fs.addX87(x87Form{name: o.name, op: o.op, modrm: o.m, withI: true, setup: pair})
	}
	fs.addX87(x87Form{name: "fld st(i)", op: 0xd9, modrm: 0xc0, withI: true, push: true, setup: pair})
	fs.addX87(x87Form{name: "ffree", op: 0xdd, modrm: 0xc0, withI: true})

	// Loads and stores of every width.
	for _, o := range []struct {
		name  string
		op    byte
		digit int
		size  int
		w     uint // float significand bits; 0: integer
	}{
		{"fld", 0xd9, 0, 4, 24}, {"fld", 0xdd, 0, 8, 53}, {"fld", 0xdb, 5, 10, 64},
		{"fild", 0xdf, 0, 2, 0}, {"fild", 0xdb, 0, 4, 0}, {"fild", 0xdf, 5, 8, 0},
	} {
		fs.addX87(x87Form{name: o.name, op: o.op, digit: o.digit, width: o.size, push: true, setup: memArith(o.w, o.size)})
	}
	// FISTTP (DB /1, DD /1, DF /1) is SSE3, which the engine does not
	// advertise: it raises #UD there, so it has no form here.
	for _, o := range []struct {
		name  string
		op    byte
		digit int
		size  int
		setup x87Setup
	}{
		{"fst", 0xd9, 2, 4, st0(randF80)}, {"fstp", 0xd9, 3, 4, st0(randF80)}, {"fst", 0xdd, 2, 8, st0(randF80)},
		{"fstp", 0xdd, 3, 8, st0(randF80)}, {"fstp", 0xdb, 7, 10, st0(randF80)},
		{"fist", 0xdf, 2, 2, intStore(2)}, {"fistp", 0xdf, 3, 2, intStore(2)}, {"fist", 0xdb, 2, 4, intStore(4)},
		{"fistp", 0xdb, 3, 4, intStore(4)}, {"fistp", 0xdf, 7, 8, intStore(8)},
	} {
		fs.addX87(x87Form{name: o.name, op: o.op, digit: o.digit, width: o.size, setup: o.setup})
	}
	fs.addX87(x87Form{name: "fbld", op: 0xdf, digit: 4, width: 10, push: true, setup: func(g *dgen, c *dcase, r *rand.Rand, _ int) {
		var b [10]byte
		randBCD(r, b[:])
		copy(c.mem[c.ea-c.win:], b[:])
	}})
	fs.addX87(x87Form{name: "fbstp", op: 0xdf, digit: 6, width: 10, setup: st0(randBCDF80)})

	// One-operand and stack instructions, constants.
	for _, o := range []struct {
		name  string
		m     byte
		push  bool
		setup x87Setup
	}{
		{"fnop", 0xd0, false, nil}, {"fchs", 0xe0, false, st0(randF80)}, {"fabs", 0xe1, false, st0(randF80)},
		{"ftst", 0xe4, false, st0(randF80)}, {"fxam", 0xe5, false, st0(randF80)},
		{"fld1", 0xe8, true, nil}, {"fldl2t", 0xe9, true, nil}, {"fldl2e", 0xea, true, nil}, {"fldpi", 0xeb, true, nil},
		{"fldlg2", 0xec, true, nil}, {"fldln2", 0xed, true, nil}, {"fldz", 0xee, true, nil},
		{"fxtract", 0xf4, true, st0(randF80)}, {"fdecstp", 0xf6, false, nil}, {"fincstp", 0xf7, false, nil},
		{"fsqrt", 0xfa, false, st0(roundOperand)}, {"frndint", 0xfc, false, st0(roundOperand)},
	} {
		fs.addX87(x87Form{name: o.name, op: 0xd9, modrm: o.m, push: o.push, setup: o.setup})
	}
	rem := func(g *dgen, c *dcase, r *rand.Rand, _ int) {
		a, b := remPair(r)
		g.setST(c, 0, a)
		g.setST(c, 1, b)
	}
	fs.addX87(x87Form{name: "fprem", op: 0xd9, modrm: 0xf8, setup: rem})
	fs.addX87(x87Form{name: "fprem1", op: 0xd9, modrm: 0xf5, setup: rem})
	fs.addX87(x87Form{name: "fscale", op: 0xd9, modrm: 0xfd, setup: func(g *dgen, c *dcase, r *rand.Rand, _ int) {
		g.setST(c, 0, randF80(r))
		g.setST(c, 1, scaleOperand(r))
	}}).fxCmp = fscaleFXCmp
	transM := map[string]byte{"f2xm1": 0xf0, "fyl2x": 0xf1, "fptan": 0xf2, "fpatan": 0xf3, "fyl2xp1": 0xf9, "fsincos": 0xfb, "fsin": 0xfe, "fcos": 0xff}
	for _, o := range transOps {
		fs.addX87(x87Form{name: o.name, op: 0xd9, modrm: transM[o.name], push: o.name == "fsincos" || o.name == "fptan", trans: o.name,
			setup: func(g *dgen, c *dcase, r *rand.Rand, _ int) {
				g.setST(c, 0, o.a(r))
				if o.b != nil {
					g.setST(c, 1, o.b(r))
				}
			}})
	}

	// Control and status words, environment and state images. The
	// stored FIP, FCS/FOP, FDP and FDS fields are not compared.
	fs.addX87(x87Form{name: "fnclex", op: 0xdb, modrm: 0xe2})
	fs.addX87(x87Form{name: "fninit", op: 0xdb, modrm: 0xe3})
	fs.addX87(x87Form{name: "fnstsw ax", op: 0xdf, modrm: 0xe0})
	fs.addX87(x87Form{name: "fnstsw", op: 0xdd, digit: 7, width: 2})
	fs.addX87(x87Form{name: "fnstcw", op: 0xd9, digit: 7, width: 2})
	fs.addX87(x87Form{name: "fldcw", op: 0xd9, digit: 5, width: 2, setup: func(g *dgen, c *dcase, r *rand.Rand, _ int) {
		if r.Intn(2) == 0 {
			c.setM(c.ea, 2, uint64(randFCW(r)))
		}
	}})
	fs.addX87(x87Form{name: "fnstenv", op: 0xd9, digit: 6, width: 28, skip: [2]int{12, 26}})
	fs.addX87(x87Form{name: "fnstenv", op: 0xd9, digit: 6, width: 14, o16: true, skip: [2]int{6, 14}})
	fs.addX87(x87Form{name: "fnsave", op: 0xdd, digit: 6, width: 108, skip: [2]int{12, 26}})
	fs.addX87(x87Form{name: "fnsave", op: 0xdd, digit: 6, width: 94, o16: true, skip: [2]int{6, 14}})
	fs.addX87(x87Form{name: "fldenv", op: 0xd9, digit: 4, width: 28, setup: x87Env(false, false)})
	fs.addX87(x87Form{name: "fldenv", op: 0xd9, digit: 4, width: 14, o16: true, setup: x87Env(true, false)})
	fs.addX87(x87Form{name: "frstor", op: 0xdd, digit: 4, width: 108, setup: x87Env(false, true)})
	fs.addX87(x87Form{name: "frstor", op: 0xdd, digit: 4, width: 94, o16: true, setup: x87Env(true, true)})
	fs.add("fwait 9b", 0, func(g *dgen, c *dcase) { g.x87Start(c, false); c.emit(0x9b) }).vec = true
}
