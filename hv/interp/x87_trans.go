package interp

import "math/bits"

// The x87 transcendentals (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, FYL2X,
// FYL2XP1, F2XM1): special operands as the SDM lists them, finite results
// from the working format of x87_xf.go rounded once to 64 bits by FCW.RC.

// logRoundBits is the intermediate precision of FYL2XP1: its results are
// rounded to nearest at this width before the rounding to 64 bits by
// FCW.RC. Measured against the host (docs/engine.md): on three operand
// sets of 20000 this double rounding reproduced about 1/6 of the host's
// near-boundary choices that one correct rounding misses, on each set;
// for FYL2X it gained and lost by turns, and for the other
// transcendentals no width and rule came close to one correct rounding.
const logRoundBits = 69

// piReduceBits is the significand width of the pi/2 that FSIN, FCOS,
// FSINCOS and FPTAN reduce their argument by.
const piReduceBits = 66

// u256 is a 256-bit integer, least significant word first.
type u256 [4]uint64

// reduceHalfPi returns |x| - k*P (possibly negative) and k mod 4, for P
// pi/2 truncated to piReduceBits bits and k the integer nearest |x|/P. x
// is finite, nonzero, |x| < 2^63. The remainder is exact.
func reduceHalfPi(x xf) (xf, uint64) {
	x.neg = false
	if x.e < -1 {
		return x, 0 // |x| < 1/2 < P/2
	}
	t := xfMul(x, xf2Pi) // |x|/(pi/2): >= 1/4, < 2^63
	var k uint64
	switch {
	case t.e < -1:
	case t.e == -1:
		k = 1
	default:
		sh := uint(63 - t.e)
		k = t.hi >> sh
		if sh > 0 && t.hi>>(sh-1)&1 != 0 {
			k++
		}
	}
	const n = piReduceBits
	// P = pi/2 * 2^(n-1), truncated.
	var p u256
	for i := 0; i < 4; i++ {
		p[i] = piWords[3-i]
	}
	p = shr256(p, 256-n)
	// X = |x| * 2^(n-1) = m << (e + n - 64).
	var xv u256
	xv[0] = x.hi
	xv = shl256(xv, uint(x.e+n-64))
	// kP.
	var kp u256
	var carry uint64
	for i := 0; i < 4; i++ {
		h, l := bits.Mul64(k, p[i])
		var c uint64
		kp[i], c = bits.Add64(l, carry, 0)
		carry = h + c
	}
	r := sub256(xv, kp)
	neg := r[3]>>63 != 0 // |x| < 2^63 and kP < 2^64 P: the top bit is a sign
	if neg {
		r = sub256(u256{}, r)
	}
	// k is the integer nearest |x|/(pi/2), or next to it: make it the one
	// nearest |x|/P (|R| <= P/2). The two differ within about k*2^-67 of a
	// midpoint, where the host follows P more often (TestX87TransQuadrant).
	if cmp256(shl256(r, 1), p) > 0 {
		r = sub256(p, r)
		if neg {
			k--
		} else {
			k++
		}
		neg = !neg
	}
	// |R| * 2^-(n-1) as an xf: take the top 128 bits.
	top := 3
	for top > 0 && r[top] == 0 {
		top--
	}
	if r[top] == 0 {
		return xf{}, k & 3
	}
	lz := uint(bits.LeadingZeros64(r[top]))
	b := int32(top*64) + 63 - int32(lz) // bit index of the leading one
	var hi, lo uint64
	if b >= 127 {
		s := shr256(r, uint(b-127))
		hi, lo = s[1], s[0]
	} else {
		s := shl256(r, uint(127-b))
		hi, lo = s[1], s[0]
	}
	return xf{hi: hi, lo: lo, e: b - (n - 1), neg: neg}, k & 3
}

func sub256(a, b u256) u256 {
	var r u256
	var bw uint64
	for i := 0; i < 4; i++ {
		r[i], bw = bits.Sub64(a[i], b[i], bw)
	}
	return r
}

func cmp256(a, b u256) int {
	for i := 3; i >= 0; i-- {
		if a[i] != b[i] {
			return sgnRes(a[i] < b[i])
		}
	}
	return 0
}

func shr256(a u256, n uint) u256 {
	var r u256
	w, s := n/64, n%64
	for i := 0; i < 4; i++ {
		j := i + int(w)
		if j >= 4 {
			break
		}
		r[i] = a[j] >> s
		if s != 0 && j+1 < 4 {
			r[i] |= a[j+1] << (64 - s)
		}
	}
	return r
}

func shl256(a u256, n uint) u256 {
	var r u256
	w, s := n/64, n%64
	for i := 3; i >= 0; i-- {
		j := i - int(w)
		if j < 0 {
			break
		}
		r[i] = a[j] << s
		if s != 0 && j > 0 {
			r[i] |= a[j-1] >> (64 - s)
		}
	}
	return r
}

// sinCos returns sin(x) and cos(x) for a finite nonzero x, |x| < 2^63.
func sinCos(x xf) (s, c xf) {
	r, q := reduceHalfPi(x)
	sr, cr := xfSin(r), xfCos(r)
	switch q {
	case 1:
		sr, cr = cr, sr.negate()
	case 2:
		sr, cr = sr.negate(), cr.negate()
	case 3:
		sr, cr = cr.negate(), sr
	}
	if x.neg {
		sr = sr.negate()
	}
	return sr, cr
}

// Trigonometric operations.
const (
	trigSin = iota
	trigCos
	trigSinCos
	trigTan
)

// trigInRange reports whether a finite a is inside the range of FSIN,
// FCOS, FSINCOS and FPTAN (|a| < 2^63); outside it C2 is set and the
// operand is left unchanged.
func trigInRange(a f80) bool { return a.bexp() < f80Bias+63 }

// f80Trig computes the results of op for a: r0 is the result that replaces
// ST(0) (sine, cosine or tangent) and r1 the one pushed by FSINCOS (the
// cosine) and FPTAN (1.0). ok is false when a is out of range.
func f80Trig(op int, a f80, fcw uint16) (r0, r1 f80, fl uint16, ok bool) {
	r1 = f80One
	switch a.class() {
	case clsUnsupported, clsInf:
		return f80Indefinite, f80Indefinite, fswIE, true
	case clsSNaN:
		return quiet(a), quiet(a), fswIE, true
	case clsQNaN:
		return a, a, 0, true
	case clsZero:
		switch op {
		case trigCos:
			return f80One, r1, 0, true
		case trigSinCos:
			return a, f80One, 0, true
		}
		return a, r1, 0, true
	case clsDenorm:
		fl = fswDE
	}
	if !trigInRange(a) {
		return a, r1, 0, false
	}
	s, c := sinCos(xfOf(a))
	var f2, f3 uint16
	switch op {
	case trigSin:
		r0, f2 = s.round(fcw)
	case trigCos:
		r0, f2 = c.round(fcw)
	case trigSinCos:
		r0, f2 = s.round(fcw)
		r1, f3 = c.round(fcw)
		f2 |= f3 &^ fswC1 // C1 tells how the sine was rounded
	case trigTan:
		r0, f2 = xfDiv(s, c).round(fcw)
	}
	return r0, r1, fl | f2, true
}

// x87Trig implements FSIN, FCOS (ST(0) replaced), FSINCOS and FPTAN (ST(0)
// replaced, then a second result pushed).
func (c *CPU) x87Trig(in *Inst, op int) {
	c.x87Begin(in, true, true)
	f := &c.fpu
	push := op == trigSinCos || op == trigTan
	f.fsw &^= fswC2 // also on a stack fault
	if f.empty(0) {
		if c.stackFault(false) {
			f.set(0, f80Indefinite)
			if push {
				f.pushRaw(f80Indefinite)
			}
		}
		return
	}
	if push && f.ftw>>((f.top-1)&7)&1 != 0 {
		if c.stackFault(true) {
			f.set(0, f80Indefinite)
			f.pushRaw(f80Indefinite)
		}
		return
	}
	r0, r1, fl, ok := f80Trig(op, f.get(0), f.fcw)
	if !ok {
		f.fsw = f.fsw&^fswC1 | fswC2
		return
	}
	if c.x87Exc(fl) {
		f.set(0, r0)
		if push {
			f.pushRaw(r1)
		}
	}
}

// f80Atan2 implements FPATAN: the angle of (x, y) = (ST(0), ST(1)).
func f80Atan2(y, x f80, fcw uint16) (f80, uint16) {
	ky, kx, r, fl, done := screen2(y, x)
	if done {
		return r, fl
	}
	var t xf
	switch {
	case ky == clsZero:
		if x.sign() {
			t = xfPi
		} else {
			return f80{se: y.se & 0x8000}, fl
		}
	case ky == clsInf && kx == clsInf:
		t = xfPi4
		if x.sign() {
			t = xfSub(xfPi, xfPi4)
		}
	case ky == clsInf, kx == clsZero:
		t = xfPiHalf
	case kx == clsInf:
		if !x.sign() {
			return f80{se: y.se & 0x8000}, fl
		}
		t = xfPi
	default:
		t = atan2XF(y, x)
	}
	t.neg = y.sign()
	r, f2 := t.round(fcw)
	return r, fl | f2
}

// atan2XF returns the angle of (x, y) for finite nonzero x and y.
func atan2XF(y, x f80) xf {
	a, b := xfOf(y.abs()), xfOf(x.abs())
	var t xf
	if xfCmpMag(a, b) <= 0 {
		t = xfAtan(xfDiv(a, b))
	} else {
		t = xfSub(xfPiHalf, xfAtan(xfDiv(b, a)))
	}
	if x.sign() {
		t = xfSub(xfPi, t)
	}
	t.neg = y.sign()
	return t
}

// isOne reports whether a is exactly +1.
func isOne(a f80) bool { return a == f80One }

// f80Yl2x implements FYL2X: y * log2(x) for x = ST(0), y = ST(1).
func f80Yl2x(y, x f80, fcw uint16) (f80, uint16) {
	ky, kx, r, fl, done := screen2(y, x)
	if done {
		return r, fl
	}
	ny := y.sign()
	inf := func(neg bool) f80 { return f80{mant: f80Int, se: signOf(neg) | 0x7fff} }
	switch {
	case kx == clsZero:
		switch ky {
		case clsZero:
			return f80Indefinite, fswIE
		case clsInf:
			return inf(!ny), fl
		}
		return inf(!ny), fswZE // a denormal y is not reported
	case x.sign():
		return f80Indefinite, fswIE
	case kx == clsInf:
		if ky == clsZero {
			return f80Indefinite, fswIE
		}
		return inf(ny), fl
	case isOne(x):
		if ky == clsInf {
			return f80Indefinite, fswIE
		}
		return f80{se: signOf(ny)}, fl
	}
	below1 := x.bexp() < f80Bias
	switch ky {
	case clsInf:
		return inf(ny != below1), fl
	case clsZero:
		return f80{se: signOf(ny != below1)}, fl
	}
	r, f2 := xfMul(xfOf(y), xfLog2(xfOf(x))).round(fcw)
	return r, fl | f2
}

// f80Yl2xp1 implements FYL2XP1: y * log2(1+x) for x = ST(0), y = ST(1).
func f80Yl2xp1(y, x f80, fcw uint16) (f80, uint16) {
	ky, kx, r, fl, done := screen2(y, x)
	if done {
		return r, fl
	}
	neg := x.sign() != y.sign()
	switch {
	case kx == clsZero:
		if ky == clsInf {
			return f80Indefinite, fswIE
		}
		return f80{se: signOf(neg)}, fl
	case kx == clsInf && x.sign():
		return f80Indefinite, fswIE
	case kx == clsInf, ky == clsInf:
		if ky == clsZero {
			return f80Indefinite, fswIE
		}
		return f80{mant: f80Int, se: signOf(neg) | 0x7fff}, fl
	case ky == clsZero:
		return f80{se: signOf(neg)}, fl
	}
	xv := xfOf(x)
	if x.sign() && xfCmpMag(xv, xfOne) >= 0 {
		// Outside the domain, below -1: the operand is delivered as is.
		return x, fl | fswPE
	}
	r, f2 := xfMul(xfOf(y), xfLog2p1(xv)).roundBits(logRoundBits).round(fcw)
	return r, fl | f2
}

// f80Exp2m1 implements F2XM1: 2^x - 1.
func f80Exp2m1(a f80, fcw uint16) (f80, uint16) {
	r, fl, done := screen1(a)
	if done {
		return r, fl
	}
	if a.class() == clsInf {
		if a.sign() {
			return f80One.neg(), 0
		}
		return a, 0
	}
	switch e := a.bexp(); {
	case e > f80Bias || e == f80Bias && a.mant != f80Int:
		// Outside the domain (|x| > 1): the operand is delivered as is.
		return a, fswPE
	case e == f80Bias && a.sign():
		return f80{mant: f80Int, se: 0x8000 | (f80Bias - 1)}, fswPE
	case e == f80Bias:
		// 2^1 - 1 comes out just below 1 on the hardware: round 1 - 2^-127.
		return xf{hi: ^uint64(0), lo: ^uint64(0), e: -1}.round(fcw)
	}
	r, f2 := xfExp2m1(xfOf(a)).round(fcw)
	return r, fl | f2
}

// x87Binary2 implements FPATAN, FYL2X and FYL2XP1: ST(1) = op(ST(1),
// ST(0)), then pop.
func (c *CPU) x87Binary2(in *Inst, op func(y, x f80, fcw uint16) (f80, uint16)) {
	c.x87Begin(in, true, true)
	f := &c.fpu
	if f.empty(0) || f.empty(1) {
		if c.stackFault(false) {
			f.set(1, f80Indefinite)
			f.pop()
		}
		return
	}
	r, fl := op(f.get(1), f.get(0), f.fcw)
	if c.x87Exc(fl) {
		f.set(1, r)
		f.pop()
	}
}
