package interp

import "math/bits"

// xf is the working format of the x87 transcendentals: a 128-bit
// significand (bit 127 set unless the value is zero) and an unbounded
// exponent, value = (hi:lo / 2^127) * 2^e. Operations truncate at 128 bits,
// so a few steps keep an error of a few units of 2^-127 relative, far
// below the half unit of 2^-64 that decides the final rounding. Values are
// passed by copy; nothing here allocates.
type xf struct {
	hi, lo uint64
	e      int32
	neg    bool
}

func (a xf) isZero() bool { return a.hi == 0 }

// xfOf converts a finite f80 (normal or denormal, not zero) exactly.
func xfOf(v f80) xf {
	e, m := v.unpack()
	return xf{hi: m, e: e, neg: v.sign()}
}

// xfNorm builds an xf from an unnormalized significand.
func xfNorm(neg bool, e int32, hi, lo uint64) xf {
	if hi|lo == 0 {
		return xf{}
	}
	e, hi, lo = normalize128(e, hi, lo)
	return xf{hi: hi, lo: lo, e: e, neg: neg}
}

// xfInt converts an integer exactly.
func xfInt(n int64) xf {
	m := uint64(n)
	if n < 0 {
		m = -m
	}
	return xfNorm(n < 0, 127, 0, m)
}

func (a xf) negate() xf { a.neg = !a.neg; return a }

// xfMul returns a*b.
func xfMul(a, b xf) xf {
	if a.isZero() || b.isZero() {
		return xf{}
	}
	t1, t0 := bits.Mul64(a.lo, b.lo)
	u1, u0 := bits.Mul64(a.hi, b.lo)
	v1, v0 := bits.Mul64(a.lo, b.hi)
	w1, w0 := bits.Mul64(a.hi, b.hi)
	// Words 1..3 of the 256-bit product; bits below the 128 kept ones
	// become a sticky bit.
	p1, ca := bits.Add64(t1, u0, 0)
	p1, cb := bits.Add64(p1, v0, 0)
	p2, cc := bits.Add64(u1, v1, 0)
	p2, cd := bits.Add64(p2, w0, 0)
	p2, ce := bits.Add64(p2, ca+cb, 0)
	p3 := w1 + cc + cd + ce
	// The product of two significands in [1,2) is in [1,4): bits 255..254.
	e := a.e + b.e + 1
	if p3>>63 == 0 {
		p3, p2 = p3<<1|p2>>63, p2<<1|p1>>63
		p1 <<= 1
		e--
	}
	p2 |= b2u(p1|t0 != 0)
	return xf{hi: p3, lo: p2, e: e, neg: a.neg != b.neg}
}

// xfCmpMag compares |a| and |b|.
func xfCmpMag(a, b xf) int {
	switch {
	case a.isZero() && b.isZero():
		return 0
	case a.isZero():
		return -1
	case b.isZero():
		return 1
	case a.e != b.e:
		return sgnRes(a.e < b.e)
	case a.hi != b.hi:
		return sgnRes(a.hi < b.hi)
	case a.lo != b.lo:
		return sgnRes(a.lo < b.lo)
	}
	return 0
}

// xfAdd returns a+b.
func xfAdd(a, b xf) xf {
	if b.isZero() {
		return a
	}
	if a.isZero() {
		return b
	}
	if xfCmpMag(a, b) < 0 {
		a, b = b, a
	}
	d := a.e - b.e
	// Bits of b shifted out are kept as a sticky bit: a nonzero b always
	// moves a, so the direction of a tiny correction survives rounding.
	bh, bl := shr128Sticky(b.hi, b.lo, uint(min(d, 128)))
	if a.neg == b.neg {
		lo, c := bits.Add64(a.lo, bl, 0)
		hi, c2 := bits.Add64(a.hi, bh, c)
		if c2 != 0 {
			return xf{hi: 1<<63 | hi>>1, lo: hi<<63 | lo>>1, e: a.e + 1, neg: a.neg}
		}
		return xf{hi: hi, lo: lo, e: a.e, neg: a.neg}
	}
	lo, bw := bits.Sub64(a.lo, bl, 0)
	hi, _ := bits.Sub64(a.hi, bh, bw)
	return xfNorm(a.neg, a.e, hi, lo)
}

func xfSub(a, b xf) xf { return xfAdd(a, b.negate()) }

// xfDiv returns a/b (b nonzero).
func xfDiv(a, b xf) xf {
	if a.isZero() {
		return xf{}
	}
	e := a.e - b.e
	rh, rl := a.hi, a.lo
	var over uint64
	if rh < b.hi || rh == b.hi && rl < b.lo {
		e--
		over, rh, rl = rh>>63, rh<<1|rl>>63, rl<<1
	}
	// Invariant: b <= over:rh:rl < 2b, so each step yields one quotient bit.
	var qh, ql uint64
	for i := 0; i < 128; i++ {
		var bit uint64
		if over != 0 || rh > b.hi || rh == b.hi && rl >= b.lo {
			var bw uint64
			rl, bw = bits.Sub64(rl, b.lo, 0)
			rh, _ = bits.Sub64(rh, b.hi, bw)
			bit = 1
		}
		qh, ql = qh<<1|ql>>63, ql<<1|bit
		over, rh, rl = rh>>63, rh<<1|rl>>63, rl<<1
	}
	ql |= b2u(over|rh|rl != 0) // sticky: the quotient is inexact
	return xf{hi: qh, lo: ql, e: e, neg: a.neg != b.neg}
}

// xfDivSmall returns a/n for 0 < n < 2^32.
func xfDivSmall(a xf, n uint64) xf {
	if a.isZero() {
		return a
	}
	qh, r := bits.Div64(0, a.hi, n)
	ql, r := bits.Div64(r, a.lo, n)
	qx, r := bits.Div64(r, 0, n)
	st := b2u(r != 0)
	lz := uint(bits.LeadingZeros64(qh))
	if lz == 0 {
		return xf{hi: qh, lo: ql | b2u(qx != 0) | st, e: a.e, neg: a.neg}
	}
	return xf{hi: qh<<lz | ql>>(64-lz), lo: ql<<lz | qx>>(64-lz) | b2u(qx<<lz != 0) | st, e: a.e - int32(lz), neg: a.neg}
}

// round rounds a to extended precision (64 significand bits) by the
// rounding control of fcw. The precision control does not apply to the
// transcendentals, and they report PE even when the result happens to be
// exact (as the hardware does).
func (a xf) round(fcw uint16) (f80, uint16) {
	if a.isZero() {
		return f80{se: signOf(a.neg)}, fswPE
	}
	r, fl := roundReg(a.neg, a.e, a.hi, a.lo, 64, fcw)
	fl |= fswPE
	if a.e < f80Emin {
		fl |= fswUE // tiny, and reported inexact
	}
	return r, fl
}

// roundBits rounds a to n significant bits (64 < n < 128), to nearest
// with ties to even.
func (a xf) roundBits(n uint) xf {
	if a.isZero() {
		return a
	}
	s := 128 - n // dropped bits, all in lo
	half := uint64(1) << (s - 1)
	rest := a.lo & (half<<1 - 1)
	lo := a.lo &^ (half<<1 - 1)
	if rest > half || rest == half && lo&(half<<1) != 0 {
		var c uint64
		lo, c = bits.Add64(lo, half<<1, 0)
		hi, c2 := bits.Add64(a.hi, 0, c)
		if c2 != 0 {
			return xf{hi: 1 << 63, e: a.e + 1, neg: a.neg}
		}
		return xf{hi: hi, lo: lo, e: a.e, neg: a.neg}
	}
	return xf{hi: a.hi, lo: lo, e: a.e, neg: a.neg}
}

// Constants of the working format. piWords is pi/2 * 2^255 truncated to
// 256 bits (most significant word first), checked against an independent
// computation in x87_trans_test.go.
var piWords = [4]uint64{0xc90fdaa22168c234, 0xc4c6628b80dc1cd1, 0x29024e088a67cc74, 0x020bbea63b139b22}

var (
	xfPi     = xf{hi: piWords[0], lo: piWords[1], e: 1}
	xfPiHalf = xf{hi: piWords[0], lo: piWords[1], e: 0}
	xfPi4    = xf{hi: piWords[0], lo: piWords[1], e: -1}
	xfLn2    = xf{hi: cLN2Hi, lo: cLN2Lo, e: -1}
	xfOne    = xf{hi: 1 << 63, e: 0}
	xfTwo    = xf{hi: 1 << 63, e: 1}
	xf2Pi    = xfDiv(xfOne, xfPiHalf) // 2/pi
)

// xfSin returns sin(r) for |r| <= 1 by its Taylor series.
func xfSin(r xf) xf {
	r2 := xfMul(r, r)
	sum, term := r, r
	for k := uint64(1); k < 40; k++ {
		term = xfDivSmall(xfMul(term, r2), 2*k*(2*k+1)).negate()
		sum = xfAdd(sum, term)
		if term.isZero() || term.e < sum.e-120 {
			break
		}
	}
	return sum
}

// xfCos returns cos(r) for |r| <= 1 by its Taylor series.
func xfCos(r xf) xf {
	r2 := xfMul(r, r)
	sum, term := xfOne, xfOne
	for k := uint64(1); k < 40; k++ {
		term = xfDivSmall(xfMul(term, r2), (2*k-1)*(2*k)).negate()
		sum = xfAdd(sum, term)
		if term.isZero() || term.e < -120 {
			break
		}
	}
	return sum
}

// xfAtan returns atan(z) for 0 <= z <= 1.
func xfAtan(z xf) xf {
	base := xf{}
	// atan(z) = pi/4 + atan((z-1)/(z+1)) moves z > sqrt(2)-1 to |t| < 0.18.
	if z.e > -2 || z.e == -2 && z.hi > 0xd413cccfe7799211 {
		base = xfPi4
		z = xfDiv(xfSub(z, xfOne), xfAdd(z, xfOne))
	}
	if z.isZero() {
		return base
	}
	z2 := xfMul(z, z)
	sum, pow := z, z
	for k := uint64(1); k < 100; k++ {
		pow = xfMul(pow, z2).negate()
		term := xfDivSmall(pow, 2*k+1)
		sum = xfAdd(sum, term)
		if term.e < sum.e-120 {
			break
		}
	}
	return xfAdd(base, sum)
}

// xfAtanh2 returns 2*atanh(s) = ln((1+s)/(1-s)) for |s| <= 0.2.
func xfAtanh2(s xf) xf {
	if s.isZero() {
		return s
	}
	s2 := xfMul(s, s)
	sum, pow := s, s
	for k := uint64(1); k < 100; k++ {
		pow = xfMul(pow, s2)
		term := xfDivSmall(pow, 2*k+1)
		sum = xfAdd(sum, term)
		if term.e < sum.e-120 {
			break
		}
	}
	sum.e++
	return sum
}

// xfLog2 returns log2(x) for a finite x > 0.
func xfLog2(x xf) xf {
	// x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
	e := x.e
	m := x
	m.e = 0
	if m.hi > 0xb504f333f9de6484 {
		m.e = -1
		e++
	}
	s := xfDiv(xfSub(m, xfOne), xfAdd(m, xfOne))
	return xfAdd(xfInt(int64(e)), xfDiv(xfAtanh2(s), xfLn2))
}

// xfLog2p1 returns log2(1+x) for |x| < 1/2 (x > -1 in general).
func xfLog2p1(x xf) xf {
	if x.e >= -2 {
		return xfLog2(xfAdd(xfOne, x))
	}
	// ln(1+x) = 2 atanh(x/(2+x)) keeps the relative precision of tiny x.
	return xfDiv(xfAtanh2(xfDiv(x, xfAdd(xfTwo, x))), xfLn2)
}

// xfExp2m1 returns 2^x - 1 for |x| <= 1 (larger x are computed the same
// way, with more terms).
func xfExp2m1(x xf) xf {
	u := xfMul(x, xfLn2)
	sum, term := u, u
	for n := uint64(2); n < 200; n++ {
		term = xfDivSmall(xfMul(term, u), n)
		sum = xfAdd(sum, term)
		if term.isZero() || term.e < sum.e-120 {
			break
		}
	}
	return sum
}
