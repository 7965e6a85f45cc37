package interp

import (
	"math"

	"github.com/pvisor/pvisor/hv/cpu"
)

// SSE/SSE2 floating point.
//
// Arithmetic is done with Go float64 (round to nearest even, as the host's
// default MXCSR) on values converted exactly from their guest bit patterns.
// For single precision, rounding the double result once more to float32 is
// correctly rounded for +, -, *, / and sqrt (the double format has more
// than 2p+2 bits). The sign of the rounding error is found exactly (TwoSum
// for add/subtract, FMA residuals for multiply, divide and square root); it
// gives the precision flag and lets the directed rounding modes of MXCSR.RC
// step the nearest result by one ulp.
//
// Residuals that would fall below the denormal range are computed on
// operands rescaled by powers of two. Tininess (UE, and FZ flushing) is
// detected after rounding with an unbounded exponent, as x86 does. DE is
// reported only for lanes without a NaN operand, IE or ZE (as the host
// AMD EPYC does). DAZ and FZ are honoured.
//
// Approximations: when an unmasked exception occurs, the flags of all
// lanes are recorded (hardware may omit post-computation flags of other
// lanes), the destination is left unchanged, and #XM (CR4.OSXMMEXCPT set)
// or #UD is raised. RCPPS/RSQRTPS return the exact value rounded to 12
// significand bits; vendors' tables differ within the SDM's 1.5*2^-12.

// fpEnv collects the exception flags of one instruction.
type fpEnv struct {
	mx uint32 // MXCSR when the instruction started
	ex uint32 // exception flags raised
}

func (e *fpEnv) rc() uint32 { return e.mx >> mxRCShift & 3 }

// finish records the flags in MXCSR and raises #XM/#UD for an unmasked one.
func (c *CPU) sseFinish(e *fpEnv) {
	if e.ex == 0 {
		return
	}
	c.fpu.mxcsr |= e.ex
	if e.ex&^(e.mx>>mxMaskShift)&0x3f != 0 {
		if c.cr4&cpu.CR4OSXMMEXCPT != 0 {
			c.raise(cpu.ExcXM, noErr)
		}
		c.raise(cpu.ExcUD, noErr)
	}
}

// Bit-pattern predicates. dbl selects binary64, else binary32 (low 32 bits).
func fpIsNaN(v uint64, dbl bool) bool {
	if dbl {
		return v&^(1<<63) > 0x7ff0000000000000
	}
	return uint32(v)&^(1<<31) > 0x7f800000
}

func fpIsSNaN(v uint64, dbl bool) bool {
	if dbl {
		return fpIsNaN(v, true) && v&(1<<51) == 0
	}
	return fpIsNaN(v, false) && v&(1<<22) == 0
}

func fpQuiet(v uint64, dbl bool) uint64 {
	if dbl {
		return v | 1<<51
	}
	return uint64(uint32(v) | 1<<22)
}

func fpDefaultNaN(dbl bool) uint64 {
	if dbl {
		return 0xfff8000000000000
	}
	return 0xffc00000
}

func fpIsDenormal(v uint64, dbl bool) bool {
	if dbl {
		return v&0x7ff0000000000000 == 0 && v&0x000fffffffffffff != 0
	}
	return v&0x7f800000 == 0 && v&0x007fffff != 0
}

// daz replaces a denormal by a zero of the same sign when MXCSR.DAZ is set.
func (e *fpEnv) daz(v uint64, dbl bool) uint64 {
	if e.mx&mxDAZ != 0 && fpIsDenormal(v, dbl) {
		if dbl {
			return v & (1 << 63)
		}
		return v & (1 << 31)
	}
	return v
}

func fpToF(v uint64, dbl bool) float64 {
	if dbl {
		return math.Float64frombits(v)
	}
	return float64(math.Float32frombits(uint32(v)))
}

func sgn(f float64) int {
	switch {
	case f > 0:
		return 1
	case f < 0:
		return -1
	}
	return 0
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// Arithmetic kinds.
const (
	fpAdd = iota
	fpSub
	fpMul
	fpDiv
	fpMin
	fpMax
	fpSqrt
	fpRcp
	fpRsqrt
)

// arith computes a OP b (b alone for the unary kinds) on one lane.
func (e *fpEnv) arith(k int, a, b uint64, dbl bool) uint64 {
	a, b = e.daz(a, dbl), e.daz(b, dbl)
	switch k {
	case fpMin, fpMax:
		if fpIsNaN(a, dbl) || fpIsNaN(b, dbl) {
			e.ex |= mxIE
			return b
		}
		if fpIsDenormal(a, dbl) || fpIsDenormal(b, dbl) {
			e.ex |= mxDE
		}
		fa, fb := fpToF(a, dbl), fpToF(b, dbl)
		if k == fpMin && fa < fb || k == fpMax && fa > fb {
			return a
		}
		return b
	case fpSqrt, fpRcp, fpRsqrt:
		a = 0
	}
	if fpIsNaN(a, dbl) || fpIsNaN(b, dbl) {
		if fpIsSNaN(a, dbl) || fpIsSNaN(b, dbl) {
			e.ex |= mxIE
		}
		if fpIsNaN(a, dbl) {
			return fpQuiet(a, dbl)
		}
		return fpQuiet(b, dbl)
	}
	if k == fpRcp || k == fpRsqrt {
		return e.approx(k, b)
	}
	// DE is reported only for lanes that raise neither IE nor ZE.
	den := fpIsDenormal(a, dbl) || fpIsDenormal(b, dbl)
	fa, fb := fpToF(a, dbl), fpToF(b, dbl)
	var t float64
	dir := 0   // sign of (exact result - t)
	tiny := -1 // double results: 1 if tiny after rounding to 53 bits with unbounded exponent, 0 if not, -1 judge from t
	switch k {
	case fpSub:
		fb = -fb
		fallthrough
	case fpAdd:
		t = fa + fb
		if finite(t) {
			bb := t - fa
			dir = sgn((fa - (t - bb)) + (fb - bb))
			if t == 0 && dir == 0 && e.rc() == 1 && (math.Signbit(fa) || math.Signbit(fb)) {
				t = math.Copysign(0, -1) // exact zero sum rounds to -0 toward -inf
			}
		}
	case fpMul:
		// The residual a*b - t is exact unless it falls below the
		// denormal range; then it is computed on tiny operands scaled by 2^600.
		t = fa * fb
		if finite(t) && fa != 0 && fb != 0 {
			if math.Abs(t) >= 0x1p-900 {
				dir = sgn(math.FMA(fa, fb, -t))
			} else {
				x, y, sc := fa, fb, 0
				if math.Abs(x) < 0x1p-400 {
					x, sc = x*0x1p600, sc+600
				}
				if math.Abs(y) < 0x1p-400 {
					y, sc = y*0x1p600, sc+600
				}
				dir = sgn(math.FMA(x, y, -math.Ldexp(t, sc)))
				ts := x * y
				tiny = e.tinyScaled(ts, sgn(math.FMA(x, y, -ts)), sc)
			}
		}
	case fpDiv:
		if fb == 0 && fa != 0 && finite(fa) {
			e.ex |= mxZE
			den = false
		}
		t = fa / fb
		if finite(t) && finite(fa) && finite(fb) && fa != 0 && fb != 0 {
			if math.Abs(fa) >= 0x1p-900 && math.Abs(t) >= 0x1p-900 {
				dir = sgn(math.FMA(-t, fb, fa)) * sgn(fb)
			} else {
				dir = sgn(math.FMA(-t*0x1p600, fb, fa*0x1p600)) * sgn(fb)
				ts := fa * 0x1p600 / fb
				tiny = e.tinyScaled(ts, sgn(math.FMA(-ts, fb, fa*0x1p600))*sgn(fb), 600)
			}
		}
	case fpSqrt:
		if fb < 0 {
			t = math.NaN()
		} else {
			t = math.Sqrt(fb)
			if finite(t) && t != 0 {
				if fb >= 0x1p-900 {
					dir = sgn(math.FMA(-t, t, fb))
				} else {
					dir = sgn(math.FMA(-t*0x1p300, t*0x1p300, fb*0x1p600))
				}
			}
		}
	}
	if math.IsNaN(t) {
		e.ex |= mxIE
		return fpDefaultNaN(dbl)
	}
	if den {
		e.ex |= mxDE
	}
	huge := false // double result: |exact| >= 2^1024
	if math.IsInf(t, 0) && finite(fa) && finite(fb) && !(k == fpDiv && fb == 0) {
		dir = -sgn(t) // overflow: the exact result is finite
		// Recompute at half scale to tell whether the exact result reaches
		// 2^1024 (an overflow in every rounding mode).
		var h float64
		var hd int
		switch k {
		case fpAdd, fpSub:
			x, y := fa*0.5, fb*0.5
			h = x + y
			bb := h - x
			hd = sgn((x - (h - bb)) + (y - bb))
		case fpMul:
			h = fa * 0.5 * fb
			hd = sgn(math.FMA(fa*0.5, fb, -h))
		case fpDiv:
			h = fa * 0.5 / fb
			hd = sgn(math.FMA(-h, fb, fa*0.5)) * sgn(fb)
		}
		huge = math.Abs(h) > 0x1p1023 || math.Abs(h) == 0x1p1023 && sgn(h)*hd >= 0
	}
	return e.round(t, dir, dbl, huge, tiny)
}

// approx computes RCPPS/RSQRTPS-style approximations on a non-NaN
// single-precision lane. They are computed exactly and rounded to 12 bits
// of significand (hardware tables differ between vendors; the SDM only
// bounds the relative error by 1.5*2^-12).
func (e *fpEnv) approx(k int, b uint64) uint64 {
	f := float64(math.Float32frombits(uint32(b)))
	var r float64
	if k == fpRcp {
		r = 1 / f
	} else {
		if f < 0 {
			return fpDefaultNaN(false)
		}
		r = 1 / math.Sqrt(f)
	}
	r32 := math.Float32bits(float32(r))
	if r32&0x7f800000 != 0x7f800000 && r32&0x7f800000 != 0 {
		r32 = (r32 + 0x400) &^ 0x7ff
	}
	return uint64(r32)
}

// step64 / step32 apply MXCSR.RC to a nearest-rounded r, where d is the
// sign of (exact - r): directed modes move one ulp when r is on the wrong
// side of the exact value.
func step64(r float64, d int, rc uint32) float64 {
	switch {
	case rc == 1 && d < 0:
		return math.Nextafter(r, math.Inf(-1))
	case rc == 2 && d > 0:
		return math.Nextafter(r, math.Inf(1))
	case rc == 3 && (d < 0 && r > 0 || d > 0 && r < 0):
		return math.Nextafter(r, 0)
	}
	return r
}

func step32(r float32, d int, rc uint32) float32 {
	switch {
	case rc == 1 && d < 0:
		return math.Nextafter32(r, float32(math.Inf(-1)))
	case rc == 2 && d > 0:
		return math.Nextafter32(r, float32(math.Inf(1)))
	case rc == 3 && (d < 0 && r > 0 || d > 0 && r < 0):
		return math.Nextafter32(r, 0)
	}
	return r
}

// tinyScaled decides tininess of a double result from its value scaled by
// 2^sc (ts nearest-rounded at full precision, d the sign of its error):
// x86 detects tininess after rounding with an unbounded exponent.
func (e *fpEnv) tinyScaled(ts float64, d int, sc int) int {
	if math.Abs(step64(ts, d, e.rc())) < math.Ldexp(0x1p-1022, sc) {
		return 1
	}
	return 0
}

// round rounds t (with dir the sign of exact - t) to the destination
// precision under MXCSR.RC and FZ, setting PE, OE and UE.
//
// huge (double results only) says the exact result is at least 2^1024 in
// magnitude: an overflow even when directed rounding yields the largest
// finite value. tiny (double results only) is the tininess found by the
// caller, or -1 to judge it from t. Single results find both from t, which
// holds the exact result to 53 bits.
func (e *fpEnv) round(t float64, dir int, dbl, huge bool, tiny int) uint64 {
	rc := e.rc()
	exactZero := t == 0 && dir == 0
	if dbl {
		r := step64(t, dir, rc)
		if dir != 0 {
			e.ex |= mxPE
			if huge || math.IsInf(r, 0) {
				e.ex |= mxOE
			}
		}
		if tiny < 0 {
			tiny = 0
			if math.Abs(r) < 0x1p-1022 && !exactZero {
				tiny = 1
			}
		}
		if tiny == 1 && e.mx&mxFZ != 0 && e.mx&(mxUE<<mxMaskShift) != 0 {
			e.ex |= mxUE | mxPE
			return math.Float64bits(r) & (1 << 63)
		}
		if tiny == 1 && dir != 0 {
			e.ex |= mxUE
		}
		return math.Float64bits(r)
	}
	r := float32(t)
	d := sgn(t - float64(r))
	if d == 0 {
		d = dir
	}
	huge = math.Abs(t) > 0x1p128 || math.Abs(t) == 0x1p128 && sgn(t)*dir >= 0
	r = step32(r, d, rc)
	if d != 0 {
		e.ex |= mxPE
		if huge || math.IsInf(float64(r), 0) {
			e.ex |= mxOE
		}
	}
	isTiny := false
	if math.Abs(t) < 0x1p-125 && !exactZero {
		// Round to 24 bits with the exponent range out of the way.
		ts := t * 0x1p64
		rs := float32(ts)
		ds := sgn(ts - float64(rs))
		if ds == 0 {
			ds = dir
		}
		isTiny = math.Abs(float64(step32(rs, ds, rc))) < 0x1p-62
	}
	if isTiny && e.mx&mxFZ != 0 && e.mx&(mxUE<<mxMaskShift) != 0 {
		e.ex |= mxUE | mxPE
		return uint64(math.Float32bits(r) & (1 << 31))
	}
	if isTiny && d != 0 {
		e.ex |= mxUE
	}
	return uint64(math.Float32bits(r))
}

// compare evaluates CMPPS predicate p (0..7) on a lane.
func (e *fpEnv) compare(p uint8, a, b uint64, dbl bool) bool {
	a, b = e.daz(a, dbl), e.daz(b, dbl)
	un := fpIsNaN(a, dbl) || fpIsNaN(b, dbl)
	if fpIsSNaN(a, dbl) || fpIsSNaN(b, dbl) || un && (p == 1 || p == 2 || p == 5 || p == 6) {
		e.ex |= mxIE
	}
	if !un && (fpIsDenormal(a, dbl) || fpIsDenormal(b, dbl)) {
		e.ex |= mxDE
	}
	fa, fb := fpToF(a, dbl), fpToF(b, dbl)
	switch p & 7 {
	case 0:
		return fa == fb
	case 1:
		return fa < fb
	case 2:
		return fa <= fb
	case 3:
		return un
	case 4:
		return fa != fb
	case 5:
		return !(fa < fb)
	case 6:
		return !(fa <= fb)
	}
	return !un
}

// toInt converts a lane to a 32- or 64-bit integer, truncating or rounding
// per MXCSR.RC; NaN and out-of-range values give the integer indefinite.
func (e *fpEnv) toInt(a uint64, dbl, trunc, is64 bool) uint64 {
	a = e.daz(a, dbl)
	indef := uint64(0x80000000)
	lim := 0x1p31
	if is64 {
		indef, lim = 1<<63, 0x1p63
	}
	if fpIsNaN(a, dbl) {
		e.ex |= mxIE
		return indef
	}
	f := fpToF(a, dbl)
	var r float64
	switch {
	case trunc || e.rc() == 3:
		r = math.Trunc(f)
	case e.rc() == 0:
		r = math.RoundToEven(f)
	case e.rc() == 1:
		r = math.Floor(f)
	default:
		r = math.Ceil(f)
	}
	if !(r >= -lim && r < lim) {
		e.ex |= mxIE
		return indef
	}
	if r != f {
		e.ex |= mxPE
	}
	if is64 {
		return uint64(int64(r))
	}
	return uint64(uint32(int32(r)))
}

// fromInt converts an integer to a lane, rounding per MXCSR.RC.
func (e *fpEnv) fromInt(x int64, dbl bool) uint64 {
	if dbl {
		t := float64(x)
		return e.round(t, cmpIntF(x, t), true, false, -1)
	}
	r := float32(x) // correctly rounded, unlike going through float64
	return e.round(float64(r), cmpIntF(x, float64(r)), false, false, -1)
}

// cmpIntF returns the sign of x - t for an integer-valued t.
func cmpIntF(x int64, t float64) int {
	if t >= 0x1p63 {
		return -1
	}
	y := int64(t)
	switch {
	case x > y:
		return 1
	case x < y:
		return -1
	}
	return 0
}

// cvtWiden converts a single to a double (exact).
func (e *fpEnv) cvtWiden(a uint64) uint64 {
	a = e.daz(a, false)
	if fpIsNaN(a, false) {
		if fpIsSNaN(a, false) {
			e.ex |= mxIE
		}
		a = fpQuiet(a, false)
		return a>>31<<63 | 0x7ff0000000000000 | (a&0x7fffff)<<29
	}
	if fpIsDenormal(a, false) {
		e.ex |= mxDE
	}
	return math.Float64bits(fpToF(a, false))
}

// cvtNarrow converts a double to a single, rounding per MXCSR.RC.
func (e *fpEnv) cvtNarrow(a uint64) uint64 {
	a = e.daz(a, true)
	if fpIsNaN(a, true) {
		if fpIsSNaN(a, true) {
			e.ex |= mxIE
		}
		return a>>63<<31 | 0x7fc00000 | (a>>29)&0x3fffff
	}
	if fpIsDenormal(a, true) {
		e.ex |= mxDE
	}
	return e.round(math.Float64frombits(a), 0, false, false, -1)
}

// Conversions of two 32-bit lanes packed in a quadword, shared by the
// XMM forms (CVTDQ2PS, CVT(T)PS2DQ, CVT(T)PD2DQ, CVTDQ2PD) and the mm
// forms (CVTPI2PS, CVT(T)PS2PI, CVT(T)PD2PI, CVTPI2PD).

// i32x2ToF32 converts two int32 to two singles, rounding per MXCSR.RC.
func (e *fpEnv) i32x2ToF32(s uint64) uint64 {
	return e.fromInt(int64(int32(s)), false) | e.fromInt(int64(int32(s>>32)), false)<<32
}

// f32x2ToI32 converts two singles to two int32 (trunc: toward zero).
func (e *fpEnv) f32x2ToI32(s uint64, trunc bool) uint64 {
	return e.toInt(s&0xffffffff, false, trunc, false) | e.toInt(s>>32, false, trunc, false)<<32
}

// f64x2ToI32 converts two doubles to two int32 packed in a quadword.
func (e *fpEnv) f64x2ToI32(s xmmv, trunc bool) uint64 {
	return e.toInt(s[0], true, trunc, false) | e.toInt(s[1], true, trunc, false)<<32
}

// i32x2ToF64 converts two int32 to two doubles (exact).
func i32x2ToF64(s uint64) xmmv {
	return xmmv{math.Float64bits(float64(int32(s))), math.Float64bits(float64(int32(s >> 32)))}
}

// lane32 / setLane32 access dword i (0..3) of v.
func lane32(v xmmv, i uint) uint64 { return v[i>>1] >> (i & 1 * 32) & 0xffffffff }

func setLane32(v *xmmv, i uint, x uint64) {
	sh := i & 1 * 32
	v[i>>1] = v[i>>1]&^(0xffffffff<<sh) | (x&0xffffffff)<<sh
}

func init() {
	// Arithmetic: 0F 51, 58-5F in the four prefix forms.
	for _, o := range []struct {
		b    byte
		name string
		k    int
	}{
		{0x58, "add", fpAdd}, {0x59, "mul", fpMul}, {0x5c, "sub", fpSub}, {0x5d, "min", fpMin},
		{0x5e, "div", fpDiv}, {0x5f, "max", fpMax}, {0x51, "sqrt", fpSqrt},
		{0x52, "rsqrt", fpRsqrt}, {0x53, "rcp", fpRcp},
	} {
		k := o.k
		sseOp(o.b, pNone, 0, o.name+"ps", func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := c.xmmRM(in)
			d := c.fpu.xmm[in.reg&15]
			e := fpEnv{mx: c.fpu.mxcsr}
			var r xmmv
			for i := uint(0); i < 4; i++ {
				setLane32(&r, i, e.arith(k, lane32(d, i), lane32(s, i), false))
			}
			c.sseFinish(&e)
			c.fpu.xmm[in.reg&15] = r
		})
		sseOp(o.b, pF3, 0, o.name+"ss", func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := uint64(c.xmmRM32(in))
			d := &c.fpu.xmm[in.reg&15]
			e := fpEnv{mx: c.fpu.mxcsr}
			r := e.arith(k, d[0]&0xffffffff, s, false)
			c.sseFinish(&e)
			d[0] = d[0]&^0xffffffff | r
		})
		if k == fpRcp || k == fpRsqrt {
			continue
		}
		sseOp(o.b, p66, 0, o.name+"pd", func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := c.xmmRM(in)
			d := c.fpu.xmm[in.reg&15]
			e := fpEnv{mx: c.fpu.mxcsr}
			r := xmmv{e.arith(k, d[0], s[0], true), e.arith(k, d[1], s[1], true)}
			c.sseFinish(&e)
			c.fpu.xmm[in.reg&15] = r
		})
		sseOp(o.b, pF2, 0, o.name+"sd", func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := c.xmmRM64(in)
			d := &c.fpu.xmm[in.reg&15]
			e := fpEnv{mx: c.fpu.mxcsr}
			r := e.arith(k, d[0], s, true)
			c.sseFinish(&e)
			d[0] = r
		})
	}

	// Bitwise logic on packed floats: 0F 54-57, ps and pd alike.
	for _, o := range []struct {
		b    byte
		name string
		f    func(a, b uint64) uint64
	}{
		{0x54, "and", func(a, b uint64) uint64 { return a & b }},
		{0x55, "andn", func(a, b uint64) uint64 { return ^a & b }},
		{0x56, "or", func(a, b uint64) uint64 { return a | b }},
		{0x57, "xor", func(a, b uint64) uint64 { return a ^ b }},
	} {
		f := o.f
		h := func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := c.xmmRM(in)
			d := &c.fpu.xmm[in.reg&15]
			d[0], d[1] = f(d[0], s[0]), f(d[1], s[1])
		}
		sseOp(o.b, pNone, 0, o.name+"ps", h)
		sseOp(o.b, p66, 0, o.name+"pd", h)
	}

	// Compares: 0F C2 ib.
	sseOp(0xc2, pNone, fIbU, "cmpps", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM(in)
		d := c.fpu.xmm[in.reg&15]
		e := fpEnv{mx: c.fpu.mxcsr}
		var r xmmv
		for i := uint(0); i < 4; i++ {
			if e.compare(uint8(in.imm&7), lane32(d, i), lane32(s, i), false) {
				setLane32(&r, i, 0xffffffff)
			}
		}
		c.sseFinish(&e)
		c.fpu.xmm[in.reg&15] = r
	})
	sseOp(0xc2, p66, fIbU, "cmppd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM(in)
		d := c.fpu.xmm[in.reg&15]
		e := fpEnv{mx: c.fpu.mxcsr}
		var r xmmv
		for i := 0; i < 2; i++ {
			if e.compare(uint8(in.imm&7), d[i], s[i], true) {
				r[i] = ^uint64(0)
			}
		}
		c.sseFinish(&e)
		c.fpu.xmm[in.reg&15] = r
	})
	sseOp(0xc2, pF3, fIbU, "cmpss", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := uint64(c.xmmRM32(in))
		d := &c.fpu.xmm[in.reg&15]
		e := fpEnv{mx: c.fpu.mxcsr}
		var r uint64
		if e.compare(uint8(in.imm&7), d[0]&0xffffffff, s, false) {
			r = 0xffffffff
		}
		c.sseFinish(&e)
		d[0] = d[0]&^0xffffffff | r
	})
	sseOp(0xc2, pF2, fIbU, "cmpsd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM64(in)
		d := &c.fpu.xmm[in.reg&15]
		e := fpEnv{mx: c.fpu.mxcsr}
		var r uint64
		if e.compare(uint8(in.imm&7), d[0], s, true) {
			r = ^uint64(0)
		}
		c.sseFinish(&e)
		d[0] = r
	})

	// COMISS/UCOMISS/COMISD/UCOMISD: ZF, PF, CF from the comparison; OF,
	// SF, AF cleared.
	comi := func(dbl, signalQNaN bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			var a, b uint64
			if dbl {
				a, b = c.fpu.xmm[in.reg&15][0], c.xmmRM64(in)
			} else {
				a, b = c.fpu.xmm[in.reg&15][0]&0xffffffff, uint64(c.xmmRM32(in))
			}
			e := fpEnv{mx: c.fpu.mxcsr}
			a, b = e.daz(a, dbl), e.daz(b, dbl)
			var f uint64
			switch {
			case fpIsNaN(a, dbl) || fpIsNaN(b, dbl):
				if signalQNaN || fpIsSNaN(a, dbl) || fpIsSNaN(b, dbl) {
					e.ex |= mxIE
				}
				f = cpu.FlagZF | cpu.FlagPF | cpu.FlagCF
			default:
				if fpIsDenormal(a, dbl) || fpIsDenormal(b, dbl) {
					e.ex |= mxDE
				}
				fa, fb := fpToF(a, dbl), fpToF(b, dbl)
				if fa < fb {
					f = cpu.FlagCF
				} else if fa == fb {
					f = cpu.FlagZF
				}
			}
			c.sseFinish(&e)
			c.commitFlags()
			c.flags = c.flags&^cpu.FlagsArith | f
		}
	}
	sseOp(0x2e, pNone, 0, "ucomiss", comi(false, false))
	sseOp(0x2f, pNone, 0, "comiss", comi(false, true))
	sseOp(0x2e, p66, 0, "ucomisd", comi(true, false))
	sseOp(0x2f, p66, 0, "comisd", comi(true, true))

	// Integer to float: CVTSI2SS/CVTSI2SD xmm, r/m32/64.
	cvtsi := func(dbl bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			x := int64(c.readRMSize(in, gsz(in)))
			if gsz(in) == 4 {
				x = int64(int32(x))
			}
			d := &c.fpu.xmm[in.reg&15]
			e := fpEnv{mx: c.fpu.mxcsr}
			r := e.fromInt(x, dbl)
			c.sseFinish(&e)
			if dbl {
				d[0] = r
			} else {
				d[0] = d[0]&^0xffffffff | r
			}
		}
	}
	sseOp(0x2a, pF3, 0, "cvtsi2ss", cvtsi(false))
	sseOp(0x2a, pF2, 0, "cvtsi2sd", cvtsi(true))

	// Float to integer: CVT(T)SS2SI / CVT(T)SD2SI r32/64, xmm/m.
	cvt2si := func(dbl, trunc bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			var a uint64
			if dbl {
				a = c.xmmRM64(in)
			} else {
				a = uint64(c.xmmRM32(in))
			}
			e := fpEnv{mx: c.fpu.mxcsr}
			r := e.toInt(a, dbl, trunc, in.size == 8)
			c.sseFinish(&e)
			c.setReg(in.reg, gsz(in), r)
		}
	}
	sseOp(0x2c, pF3, 0, "cvttss2si", cvt2si(false, true))
	sseOp(0x2c, pF2, 0, "cvttsd2si", cvt2si(true, true))
	sseOp(0x2d, pF3, 0, "cvtss2si", cvt2si(false, false))
	sseOp(0x2d, pF2, 0, "cvtsd2si", cvt2si(true, false))

	// 0F 5A: CVTPS2PD, CVTPD2PS, CVTSS2SD, CVTSD2SS.
	sseOp(0x5a, pNone, 0, "cvtps2pd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM64(in)
		e := fpEnv{mx: c.fpu.mxcsr}
		r := xmmv{e.cvtWiden(s & 0xffffffff), e.cvtWiden(s >> 32)}
		c.sseFinish(&e)
		c.fpu.xmm[in.reg&15] = r
	})
	sseOp(0x5a, p66, 0, "cvtpd2ps", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM(in)
		e := fpEnv{mx: c.fpu.mxcsr}
		r := xmmv{e.cvtNarrow(s[0]) | e.cvtNarrow(s[1])<<32, 0}
		c.sseFinish(&e)
		c.fpu.xmm[in.reg&15] = r
	})
	sseOp(0x5a, pF3, 0, "cvtss2sd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := uint64(c.xmmRM32(in))
		e := fpEnv{mx: c.fpu.mxcsr}
		r := e.cvtWiden(s)
		c.sseFinish(&e)
		c.fpu.xmm[in.reg&15][0] = r
	})
	sseOp(0x5a, pF2, 0, "cvtsd2ss", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM64(in)
		e := fpEnv{mx: c.fpu.mxcsr}
		r := e.cvtNarrow(s)
		c.sseFinish(&e)
		d := &c.fpu.xmm[in.reg&15]
		d[0] = d[0]&^0xffffffff | r
	})

	// 0F 5B: CVTDQ2PS, CVTPS2DQ (66), CVTTPS2DQ (F3).
	sseOp(0x5b, pNone, 0, "cvtdq2ps", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM(in)
		e := fpEnv{mx: c.fpu.mxcsr}
		r := xmmv{e.i32x2ToF32(s[0]), e.i32x2ToF32(s[1])}
		c.sseFinish(&e)
		c.fpu.xmm[in.reg&15] = r
	})
	ps2dq := func(trunc bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := c.xmmRM(in)
			e := fpEnv{mx: c.fpu.mxcsr}
			r := xmmv{e.f32x2ToI32(s[0], trunc), e.f32x2ToI32(s[1], trunc)}
			c.sseFinish(&e)
			c.fpu.xmm[in.reg&15] = r
		}
	}
	sseOp(0x5b, p66, 0, "cvtps2dq", ps2dq(false))
	sseOp(0x5b, pF3, 0, "cvttps2dq", ps2dq(true))

	// 0F E6: CVTTPD2DQ (66), CVTDQ2PD (F3), CVTPD2DQ (F2).
	pd2dq := func(trunc bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := c.xmmRM(in)
			e := fpEnv{mx: c.fpu.mxcsr}
			r := xmmv{e.f64x2ToI32(s, trunc), 0}
			c.sseFinish(&e)
			c.fpu.xmm[in.reg&15] = r
		}
	}
	sseOp(0xe6, p66, 0, "cvttpd2dq", pd2dq(true))
	sseOp(0xe6, pF2, 0, "cvtpd2dq", pd2dq(false))
	sseOp(0xe6, pF3, 0, "cvtdq2pd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		c.fpu.xmm[in.reg&15] = i32x2ToF64(c.xmmRM64(in))
	})

	// Shuffles and unpacks of packed floats.
	sseOp(0xc6, pNone, fIbU, "shufps", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM(in)
		d := c.fpu.xmm[in.reg&15]
		imm := uint(in.imm)
		var r xmmv
		setLane32(&r, 0, lane32(d, imm&3))
		setLane32(&r, 1, lane32(d, imm>>2&3))
		setLane32(&r, 2, lane32(s, imm>>4&3))
		setLane32(&r, 3, lane32(s, imm>>6&3))
		c.fpu.xmm[in.reg&15] = r
	})
	sseOp(0xc6, p66, fIbU, "shufpd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM(in)
		d := c.fpu.xmm[in.reg&15]
		c.fpu.xmm[in.reg&15] = xmmv{d[in.imm&1], s[in.imm>>1&1]}
	})
	unpck := func(esz uint, hi bool) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := c.xmmRM(in)
			d := &c.fpu.xmm[in.reg&15]
			*d = interleave(*d, s, esz, hi)
		}
	}
	sseOp(0x14, pNone, 0, "unpcklps", unpck(4, false))
	sseOp(0x15, pNone, 0, "unpckhps", unpck(4, true))
	sseOp(0x14, p66, 0, "unpcklpd", unpck(8, false))
	sseOp(0x15, p66, 0, "unpckhpd", unpck(8, true))
}
