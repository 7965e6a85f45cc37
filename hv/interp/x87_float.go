package interp

import "math/bits"

// Extended-precision (80-bit) arithmetic for the x87 unit, in integer
// arithmetic: exact results are formed in 128 bits (plus a sticky bit) and
// rounded once, to nearest-even or by the rounding control, at the
// precision control's width. Nothing here allocates.
//
// Approximations (the rest follows the SDM and is checked against the host
// CPU in x87_test.go):
//   - Unmasked overflow/underflow do not scale the result by 2^±24576; the
//     masked result is delivered and ES/B are set.
//   - An unmasked underflow is reported like a masked one (tiny and inexact).
//   - FPREM/FPREM1 with an exponent difference of 64 or more develop
//     32 | (d & 31) quotient bits (the SDM leaves 32..63 to the
//     implementation); this matched the host in the tests.
//   - Transcendentals (x87_trans.go) are exact to about 2^-120 before the
//     final rounding, where the hardware is not (docs/engine.md).

// FSW bits.
const (
	fswIE = 1 << 0
	fswDE = 1 << 1
	fswZE = 1 << 2
	fswOE = 1 << 3
	fswUE = 1 << 4
	fswPE = 1 << 5
	fswSF = 1 << 6
	fswES = 1 << 7
	fswC0 = 1 << 8
	fswC1 = 1 << 9
	fswC2 = 1 << 10
	fswC3 = 1 << 14
	fswB  = 1 << 15

	fswExc = 0x3f
	fswCC  = fswC0 | fswC1 | fswC2 | fswC3
)

// Rounding control values (FCW bits 10-11, MXCSR bits 13-14).
const (
	rcNearest = 0
	rcDown    = 1
	rcUp      = 2
	rcZero    = 3
)

// Operand classes.
const (
	clsZero = iota
	clsDenorm
	clsNormal
	clsInf
	clsQNaN
	clsSNaN
	clsUnsupported
)

const (
	f80Bias = 16383
	f80Emin = -16382
	f80Emax = 16383
	f80Int  = uint64(1) << 63
	f80QBit = uint64(1) << 62
)

var (
	f80Indefinite = f80{mant: 0xc000000000000000, se: 0xffff}
	f80One        = f80{mant: f80Int, se: f80Bias}
	f80PosZero    = f80{}
)

func (a f80) sign() bool     { return a.se&0x8000 != 0 }
func (a f80) bexp() int32    { return int32(a.se & 0x7fff) }
func (a f80) neg() f80       { a.se ^= 0x8000; return a }
func (a f80) abs() f80       { a.se &^= 0x8000; return a }
func signOf(neg bool) uint16 { return uint16(b2u(neg)) << 15 }

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (a f80) class() int {
	e := a.se & 0x7fff
	switch {
	case e == 0:
		if a.mant == 0 {
			return clsZero
		}
		return clsDenorm // includes pseudo-denormals (integer bit set)
	case e == 0x7fff:
		if a.mant&f80Int == 0 {
			return clsUnsupported // pseudo-infinity, pseudo-NaN
		}
		if a.mant<<1 == 0 {
			return clsInf
		}
		if a.mant&f80QBit != 0 {
			return clsQNaN
		}
		return clsSNaN
	case a.mant&f80Int == 0:
		return clsUnsupported // unnormal
	}
	return clsNormal
}

func isNaNClass(k int) bool { return k == clsQNaN || k == clsSNaN }

// unpack returns the unbiased exponent and a normalized significand (bit 63
// set) of a finite nonzero value.
func (a f80) unpack() (int32, uint64) {
	e := a.bexp()
	if e == 0 {
		e = 1 // denormals and pseudo-denormals
	}
	m := a.mant
	lz := bits.LeadingZeros64(m)
	return e - f80Bias - int32(lz), m << lz
}

// quiet returns a NaN with the quiet bit set.
func quiet(a f80) f80 { a.mant |= f80QBit; return a }

// pickNaN applies the x87 rule for two operands at least one of which is a
// NaN: a NaN and a number give the (quieted) NaN; an SNaN and a QNaN give
// the QNaN; two NaNs of one kind give the larger significand (quieted);
// IE is raised if either is an SNaN.
func pickNaN(a, b f80, ka, kb int) (f80, uint16) {
	var fl uint16
	if ka == clsSNaN || kb == clsSNaN {
		fl = fswIE
	}
	switch {
	case !isNaNClass(kb):
		return quiet(a), fl
	case !isNaNClass(ka):
		return quiet(b), fl
	}
	if ka != kb {
		// An SNaN and a QNaN: the QNaN is delivered.
		if ka == clsQNaN {
			return a, fl
		}
		return b, fl
	}
	ma, mb := a.mant, b.mant
	if mb > ma {
		return quiet(b), fl
	}
	if ma == mb && a.sign() && !b.sign() {
		return quiet(b), fl
	}
	return quiet(a), fl
}

// precBits maps FCW.PC to the significand width.
func precBits(fcw uint16) uint {
	switch (fcw >> 8) & 3 {
	case 0:
		return 24
	case 2:
		return 53
	}
	return 64
}

func fcwRC(fcw uint16) uint8 { return uint8(fcw>>10) & 3 }

// fmtSpec describes a destination format: significand width w (with the
// integer bit), minimum and maximum unbiased exponents, bias.
type fmtSpec struct {
	w          uint
	emin, emax int32
}

var (
	fmtExt    = fmtSpec{64, f80Emin, f80Emax}
	fmtDouble = fmtSpec{53, -1022, 1023}
	fmtSingle = fmtSpec{24, -126, 127}
)

// roundAt rounds the 128-bit significand hi:lo (bit 127 set, value
// hi:lo/2^127 * 2^exp) at bit position pos (bits below pos are dropped) and
// returns the rounded value as m/2^63 * 2^e (m has bit 63 set unless it is
// zero), whether it is inexact and whether the magnitude was incremented.
func roundAt(neg bool, exp int32, hi, lo uint64, pos uint, rc uint8) (m uint64, e int32, inexact, inc bool) {
	var kept uint64
	var rbit, sticky bool
	switch {
	case pos > 128:
		sticky = hi|lo != 0
	case pos == 128:
		rbit = hi>>63 != 0
		sticky = hi<<1|lo != 0
	case pos == 64:
		kept = hi
		rbit = lo>>63 != 0
		sticky = lo<<1 != 0
	default: // 64 < pos < 128
		s := pos - 64
		kept = hi >> s
		rbit = (hi>>(s-1))&1 != 0
		sticky = hi&(uint64(1)<<(s-1)-1) != 0 || lo != 0
	}
	inexact = rbit || sticky
	switch rc {
	case rcNearest:
		inc = rbit && (sticky || kept&1 != 0)
	case rcDown:
		inc = inexact && neg
	case rcUp:
		inc = inexact && !neg
	}
	if pos >= 128 {
		if inc {
			return f80Int, exp + int32(pos) - 127, inexact, inc
		}
		return 0, exp, inexact, inc
	}
	s := pos - 64
	m = kept << s
	e = exp
	if inc {
		var carry uint64
		m, carry = bits.Add64(m, uint64(1)<<s, 0)
		if carry != 0 {
			m = f80Int
			e++
		}
	}
	return m, e, inexact, inc
}

// roundPack rounds the exact value (-1)^neg * hi:lo/2^127 * 2^exp (hi bit
// 63 set) to prec significand bits in format f, returning the significand
// aligned so that a normal number has bit 63 set and a denormal is shifted
// right (exponent f.emin), the unbiased exponent, and FSW flags (PE, UE,
// OE, C1 when rounded up). ovf reports overflow; the returned value is
// then already infinity (e = f.emax+1, m = f80Int) or the largest finite.
func roundPack(neg bool, exp int32, hi, lo uint64, prec uint, f fmtSpec, rc uint8) (m uint64, e int32, fl uint16) {
	pos := 128 - prec
	tiny := isTiny(neg, exp, hi, lo, prec, f, rc)
	if exp < f.emin {
		// Denormals keep the rounding position of the precision control
		// relative to the smallest normal exponent.
		if p := 128 - prec + uint(f.emin-exp); p > pos {
			pos = p
		}
	}
	var inexact, inc bool
	m, e, inexact, inc = roundAt(neg, exp, hi, lo, pos, rc)
	if inexact {
		fl |= fswPE
		if tiny {
			fl |= fswUE
		}
	}
	if inc {
		fl |= fswC1
	}
	if m != 0 && e > f.emax {
		fl |= fswOE | fswPE
		toInf := rc == rcNearest || rc == rcUp && !neg || rc == rcDown && neg
		if toInf {
			return f80Int, f.emax + 1, fl | fswC1
		}
		return ^uint64(0) << (64 - prec), f.emax, fl &^ fswC1
	}
	if m != 0 && e < f.emin {
		sh := uint(f.emin - e)
		if sh >= 64 {
			m = 0
		} else {
			m >>= sh
		}
		e = f.emin
	}
	return m, e, fl
}

// isTiny reports whether the exact value (as for roundPack) is tiny in
// format f: below the smallest normal after rounding to prec bits with an
// unbounded exponent range, as the hardware detects tininess.
func isTiny(neg bool, exp int32, hi, lo uint64, prec uint, f fmtSpec, rc uint8) bool {
	if exp >= f.emin {
		return false
	}
	_, e2, _, _ := roundAt(neg, exp, hi, lo, 128-prec, rc)
	return e2 < f.emin
}

// packExt builds an f80 from roundPack's result.
func packExt(neg bool, m uint64, e int32) f80 {
	s := signOf(neg)
	if m == 0 {
		return f80{se: s}
	}
	if e > f80Emax {
		return f80{mant: f80Int, se: s | 0x7fff}
	}
	if m&f80Int == 0 {
		return f80{mant: m, se: s}
	}
	return f80{mant: m, se: s | uint16(e+f80Bias)}
}

// roundExt rounds an exact result to the extended format at the precision
// control's width.
func roundExt(neg bool, exp int32, hi, lo uint64, fcw uint16) (f80, uint16) {
	return roundReg(neg, exp, hi, lo, precBits(fcw), fcw)
}

// wrapBias is the exponent adjustment of the unmasked overflow and
// underflow responses (3/4 of the extended exponent range).
const wrapBias = 24576

// roundReg rounds an exact result for a register destination to prec
// bits by the rounding control of fcw. With overflow (underflow) unmasked,
// an overflowing (tiny, exact or not) result is delivered with its exponent
// reduced (raised) by wrapBias, OE (UE) set; if it is still out of range,
// as a scale by a huge FSCALE operand leaves it, the host delivers an
// infinity with C1 (a zero without C1) and PE.
func roundReg(neg bool, exp int32, hi, lo uint64, prec uint, fcw uint16) (f80, uint16) {
	rc := fcwRC(fcw)
	m, e, fl := roundPack(neg, exp, hi, lo, prec, fmtExt, rc)
	switch {
	case fl&fswOE != 0 && fcw&fswOE == 0:
		exp -= wrapBias
		if _, e2, _, _ := roundAt(neg, exp, hi, lo, 128-prec, rc); e2 > f80Emax {
			return f80{mant: f80Int, se: signOf(neg) | 0x7fff}, fswOE | fswPE | fswC1
		}
		m, e, fl = roundPack(neg, exp, hi, lo, prec, fmtExt, rc)
		fl |= fswOE
	case fcw&fswUE == 0 && isTiny(neg, exp, hi, lo, prec, fmtExt, rc):
		exp += wrapBias
		if isTiny(neg, exp, hi, lo, prec, fmtExt, rc) {
			return f80{se: signOf(neg)}, fswUE | fswPE
		}
		m, e, fl = roundPack(neg, exp, hi, lo, prec, fmtExt, rc)
		fl |= fswUE
	}
	return packExt(neg, m, e), fl
}

// normalize128 shifts hi:lo left so that bit 127 is set, adjusting exp.
// hi:lo must be nonzero.
func normalize128(exp int32, hi, lo uint64) (int32, uint64, uint64) {
	if hi == 0 {
		hi, lo = lo, 0
		exp -= 64
	}
	if lz := uint(bits.LeadingZeros64(hi)); lz != 0 {
		hi = hi<<lz | lo>>(64-lz)
		lo <<= lz
		exp -= int32(lz)
	}
	return exp, hi, lo
}

// shr128Sticky shifts hi:lo right by n, or-ing every bit shifted out into
// bit 0.
func shr128Sticky(hi, lo uint64, n uint) (uint64, uint64) {
	switch {
	case n == 0:
		return hi, lo
	case n < 64:
		st := b2u(lo<<(64-n) != 0)
		return hi >> n, (lo >> n) | hi<<(64-n) | st
	case n < 128:
		st := b2u(lo != 0 || hi<<(128-n) != 0)
		return 0, hi>>(n-64) | st
	}
	return 0, b2u(hi|lo != 0)
}

// operand screening shared by the binary operations: NaNs, unsupported
// encodings. It reports done with the result when one applies.
func screen2(a, b f80) (ka, kb int, r f80, fl uint16, done bool) {
	ka, kb = a.class(), b.class()
	if ka == clsUnsupported || kb == clsUnsupported {
		return ka, kb, f80Indefinite, fswIE, true
	}
	if isNaNClass(ka) || isNaNClass(kb) {
		r, fl = pickNaN(a, b, ka, kb)
		return ka, kb, r, fl, true
	}
	if ka == clsDenorm || kb == clsDenorm {
		fl = fswDE
	}
	return ka, kb, r, fl, false
}

// f80Add returns a+b (sub: a-b) rounded by fcw.
func f80Add(a, b f80, sub bool, fcw uint16) (f80, uint16) {
	ka, kb, r, fl, done := screen2(a, b)
	if done {
		return r, fl
	}
	if sub {
		b = b.neg()
	}
	rc := fcwRC(fcw)
	switch {
	case ka == clsInf && kb == clsInf:
		if a.sign() != b.sign() {
			return f80Indefinite, fl | fswIE
		}
		return a, fl
	case ka == clsInf:
		return a, fl
	case kb == clsInf:
		return b, fl
	case ka == clsZero && kb == clsZero:
		if a.sign() == b.sign() {
			return a, fl
		}
		return f80{se: signOf(rc == rcDown)}, fl
	case ka == clsZero:
		a, b = b, a
		fallthrough
	case kb == clsZero:
		e, m := a.unpack()
		r, f2 := roundExt(a.sign(), e, m, 0, fcw)
		return r, fl | f2
	}
	ea, ma := a.unpack()
	eb, mb := b.unpack()
	na, nb := a.sign(), b.sign()
	if eb > ea || eb == ea && mb > ma {
		ea, eb, ma, mb, na, nb = eb, ea, mb, ma, nb, na
	}
	// Integer bits at bit 126 leave room for a carry.
	ahi, alo := ma>>1, ma<<63
	bhi, blo := shr128Sticky(mb>>1, mb<<63, uint(ea-eb))
	var hi, lo uint64
	if na == nb {
		var c uint64
		lo, c = bits.Add64(alo, blo, 0)
		hi, _ = bits.Add64(ahi, bhi, c)
	} else {
		var bw uint64
		lo, bw = bits.Sub64(alo, blo, 0)
		hi, _ = bits.Sub64(ahi, bhi, bw)
		if hi|lo == 0 {
			return f80{se: signOf(rc == rcDown)}, fl
		}
	}
	e, hi, lo := normalize128(ea+1, hi, lo)
	r, f2 := roundExt(na, e, hi, lo, fcw)
	return r, fl | f2
}

// f80Mul returns a*b rounded by fcw.
func f80Mul(a, b f80, fcw uint16) (f80, uint16) {
	ka, kb, r, fl, done := screen2(a, b)
	if done {
		return r, fl
	}
	neg := a.sign() != b.sign()
	switch {
	case ka == clsInf || kb == clsInf:
		if ka == clsZero || kb == clsZero {
			return f80Indefinite, fswIE
		}
		return f80{mant: f80Int, se: signOf(neg) | 0x7fff}, fl
	case ka == clsZero || kb == clsZero:
		return f80{se: signOf(neg)}, fl
	}
	ea, ma := a.unpack()
	eb, mb := b.unpack()
	hi, lo := bits.Mul64(ma, mb)
	e, hi, lo := normalize128(ea+eb+1, hi, lo)
	r, f2 := roundExt(neg, e, hi, lo, fcw)
	return r, fl | f2
}

// div128 returns the 128-bit quotient of ma/mb (both normalized) with the
// binary point after bit 127, its exponent adjustment and a sticky bit.
func div128(ma, mb uint64) (e int32, hi, lo uint64) {
	var r uint64
	if ma >= mb {
		hi, r = bits.Div64(ma>>1, ma<<63, mb)
	} else {
		hi, r = bits.Div64(ma, 0, mb)
		e = -1
	}
	var r2 uint64
	lo, r2 = bits.Div64(r, 0, mb)
	lo |= b2u(r2 != 0)
	return e, hi, lo
}

// f80Div returns a/b rounded by fcw.
func f80Div(a, b f80, fcw uint16) (f80, uint16) {
	ka, kb, r, fl, done := screen2(a, b)
	if done {
		return r, fl
	}
	neg := a.sign() != b.sign()
	inf := f80{mant: f80Int, se: signOf(neg) | 0x7fff}
	zero := f80{se: signOf(neg)}
	switch {
	case ka == clsInf && kb == clsInf, ka == clsZero && kb == clsZero:
		return f80Indefinite, fswIE
	case ka == clsInf:
		return inf, fl
	case kb == clsInf:
		return zero, fl
	case kb == clsZero:
		return inf, fswZE
	case ka == clsZero:
		return zero, fl
	}
	ea, ma := a.unpack()
	eb, mb := b.unpack()
	e, hi, lo := div128(ma, mb)
	r, f2 := roundExt(neg, ea-eb+e, hi, lo, fcw)
	return r, fl | f2
}

// screen1 screens the operand of a unary operation that returns QNaNs and
// zeros unchanged: unsupported encodings give the indefinite and SNaNs the
// quieted NaN, with IE. done reports such a result; otherwise fl is DE for
// a denormal.
func screen1(a f80) (r f80, fl uint16, done bool) {
	switch a.class() {
	case clsUnsupported:
		return f80Indefinite, fswIE, true
	case clsSNaN:
		return quiet(a), fswIE, true
	case clsQNaN, clsZero:
		return a, 0, true
	case clsDenorm:
		return a, fswDE, false
	}
	return a, 0, false
}

// f80Sqrt returns the square root of a rounded by fcw.
func f80Sqrt(a f80, fcw uint16) (f80, uint16) {
	r, fl, done := screen1(a)
	if done {
		return r, fl
	}
	if a.sign() {
		return f80Indefinite, fswIE
	}
	if a.class() == clsInf {
		return a, 0
	}
	e, m := a.unpack()
	// value = m * 2^(e-63). Make the exponent of the radicand even by
	// taking one bit of m into it, then extract 66 root bits, two
	// radicand bits at a time: the radicand is the 64 (or 65) bits of m
	// followed by zeros.
	var rhi, rlo uint64 // radicand bits still to feed, top-aligned in 128 bits
	ex := e - 63
	if ex&1 != 0 {
		// m*2^ex = (2m) * 2^(ex-1): radicand 2m occupies 65 bits.
		rhi, rlo = m>>63, m<<1 // 2m, as a 65-bit number with top at bit 64
		ex--
		// Align so that the first pair read is bits 65..64 of 2m (= 0, top bit).
		rhi, rlo = rhi<<62|rlo>>2, rlo<<62
	} else {
		rhi, rlo = m, 0
	}
	// Each step consumes two bits from the top of rhi:rlo.
	var qhi, qlo, remhi, remlo uint64
	const steps = 66
	for i := 0; i < steps; i++ {
		two := rhi >> 62
		rhi, rlo = rhi<<2|rlo>>62, rlo<<2
		// rem = rem<<2 | two
		remhi, remlo = remhi<<2|remlo>>62, remlo<<2|two
		// t = q<<2 | 1
		thi, tlo := qhi<<2|qlo>>62, qlo<<2|1
		qhi, qlo = qhi<<1|qlo>>63, qlo<<1
		if remhi > thi || remhi == thi && remlo >= tlo {
			var bw uint64
			remlo, bw = bits.Sub64(remlo, tlo, 0)
			remhi, _ = bits.Sub64(remhi, thi, bw)
			qlo |= 1
		}
	}
	// The radicand consumed was R = (radicand integer) * 2^(2*steps-64 or -66 bits...):
	// with even ex, R = m * 2^(2*steps-64); with odd ex, R = 2m * 2^(2*steps-66).
	// q = floor(sqrt(R)); value = sqrt(m*2^ex) = q * 2^((ex - (2*steps-64))/2)
	// in both cases since ex was decremented with the shift.
	var scale int32
	if e-63 == ex {
		scale = (ex - (2*steps - 64)) / 2
	} else {
		scale = (ex - (2*steps - 66)) / 2
	}
	sticky := b2u(remhi|remlo != 0)
	ne, hi, lo := normalize128(127+scale, qhi, qlo)
	lo |= sticky
	r, f2 := roundExt(false, ne, hi, lo, fcw)
	return r, fl | f2
}

// f80Cmp compares a and b: it returns -1, 0, 1, or 2 when unordered, and IE
// (for any NaN when quietOK is false, for SNaNs and unsupported operands
// always) and DE.
func f80Cmp(a, b f80, quietOK bool) (int, uint16) {
	ka, kb := a.class(), b.class()
	if ka == clsUnsupported || kb == clsUnsupported || ka == clsSNaN || kb == clsSNaN {
		return 2, fswIE
	}
	if isNaNClass(ka) || isNaNClass(kb) {
		if quietOK {
			return 2, 0
		}
		return 2, fswIE
	}
	var fl uint16
	if ka == clsDenorm || kb == clsDenorm {
		fl = fswDE
	}
	if ka == clsZero && kb == clsZero {
		return 0, fl
	}
	na, nb := a.sign(), b.sign()
	if ka == clsZero {
		return sgnRes(!nb), fl
	}
	if kb == clsZero {
		return sgnRes(na), fl
	}
	if na != nb {
		return sgnRes(na), fl
	}
	var ea, eb int32
	var ma, mb uint64
	if ka == clsInf {
		ea, ma = 1<<20, f80Int
	} else {
		ea, ma = a.unpack()
	}
	if kb == clsInf {
		eb, mb = 1<<20, f80Int
	} else {
		eb, mb = b.unpack()
	}
	c := 0
	switch {
	case ea != eb:
		c = sgnRes(ea < eb)
	case ma != mb:
		c = sgnRes(ma < mb)
	}
	if na {
		c = -c
	}
	return c, fl
}

// sgnRes returns -1 if lt, else 1.
func sgnRes(lt bool) int {
	if lt {
		return -1
	}
	return 1
}

// f80ToInt rounds a to an integer by rc: the magnitude (valid if ok),
// sign, and flags (PE, C1 when rounded up). ok is false for NaNs,
// infinities, unsupported encodings and magnitudes of 2^64 or more.
func f80ToInt(a f80, rc uint8) (mag uint64, neg bool, fl uint16, ok bool) {
	neg = a.sign()
	switch a.class() {
	case clsZero:
		return 0, neg, 0, true
	case clsDenorm, clsNormal:
		// A denormal operand flags DE here too (fist, frndint).
		if a.class() == clsDenorm {
			fl = fswDE
		}
	default:
		return 0, neg, fl, false
	}
	e, m := a.unpack()
	if e >= 64 {
		return 0, neg, fl, false
	}
	if e == 63 {
		return m, neg, fl, true
	}
	// value = m * 2^(e-63): integer part = m >> (63-e).
	var ip, frac uint64 // frac: remaining bits top-aligned
	if e < 0 {
		sh := uint(-e - 1) // frac = m / 2^sh, top-aligned
		ip = 0
		if sh >= 64 {
			frac = b2u(m != 0) // tiny, sticky only (below half)
		} else {
			frac = m>>sh | b2u(m<<(64-sh) != 0)
		}
	} else {
		ip = m >> (63 - uint(e))
		frac = m << (uint(e) + 1)
	}
	half := frac >> 63
	sticky := frac<<1 != 0
	inexact := frac != 0
	inc := false
	switch rc {
	case rcNearest:
		inc = half != 0 && (sticky || ip&1 != 0)
	case rcDown:
		inc = inexact && neg
	case rcUp:
		inc = inexact && !neg
	}
	if inexact {
		fl |= fswPE
	}
	if inc {
		fl |= fswC1
		ip++
		if ip == 0 {
			return 0, neg, fl, false
		}
	}
	return ip, neg, fl, true
}

// intToF80 converts a signed 64-bit integer exactly.
func intToF80(v int64) f80 {
	if v == 0 {
		return f80{}
	}
	neg := v < 0
	m := uint64(v)
	if neg {
		m = -m
	}
	lz := bits.LeadingZeros64(m)
	return f80{mant: m << lz, se: signOf(neg) | uint16(63-lz+f80Bias)}
}

// f80RoundInt implements FRNDINT.
func f80RoundInt(a f80, rc uint8) (f80, uint16) {
	switch a.class() {
	case clsUnsupported:
		return f80Indefinite, fswIE
	case clsSNaN:
		return quiet(a), fswIE
	case clsQNaN, clsZero, clsInf:
		return a, 0
	}
	e, _ := a.unpack()
	if e >= 63 {
		return a, 0
	}
	mag, neg, fl, _ := f80ToInt(a, rc)
	if mag == 0 {
		return f80{se: signOf(neg)}, fl
	}
	lz := bits.LeadingZeros64(mag)
	return f80{mant: mag << lz, se: signOf(neg) | uint16(63-lz+f80Bias)}, fl
}

// fromFloat converts an IEEE single (w=24) or double (w=53) bit pattern to
// extended, exactly; SNaNs are quieted with IE, denormals flag DE.
func fromFloat(v uint64, w uint) (f80, uint16) {
	var ebits uint
	var bias int32
	if w == 24 {
		ebits, bias = 8, 127
	} else {
		ebits, bias = 11, 1023
	}
	fbits := w - 1
	neg := v>>(fbits+ebits)&1 != 0
	s := signOf(neg)
	emax := uint64(1)<<ebits - 1
	be := (v >> fbits) & emax
	frac := v & (uint64(1)<<fbits - 1)
	switch {
	case be == 0 && frac == 0:
		return f80{se: s}, 0
	case be == 0:
		lz := bits.LeadingZeros64(frac)
		m := frac << lz
		e := 64 - int32(fbits) - int32(lz) - bias
		return f80{mant: m, se: s | uint16(e+f80Bias)}, fswDE
	case be == emax:
		m := f80Int | frac<<(64-fbits-1)
		if frac == 0 {
			return f80{mant: m, se: s | 0x7fff}, 0
		}
		if m&f80QBit == 0 {
			return f80{mant: m | f80QBit, se: s | 0x7fff}, fswIE
		}
		return f80{mant: m, se: s | 0x7fff}, 0
	}
	return f80{mant: f80Int | frac<<(64-fbits-1), se: s | uint16(int32(be)-bias+f80Bias)}, 0
}

// toFloat converts a to IEEE single (f = fmtSingle) or double, rounding by
// the rounding control of fcw. It returns the bit pattern and flags. With
// overflow (underflow) unmasked, an overflowing (tiny, exact or not) value
// has no result to store: the flags are then OE (UE) alone, and the caller
// stores nothing.
func toFloat(a f80, f fmtSpec, fcw uint16) (uint64, uint16) {
	rc := fcwRC(fcw)
	fbits := f.w - 1
	ebits := uint(8)
	if f.w == 53 {
		ebits = 11
	}
	bias := f.emax
	neg := a.sign()
	s := b2u(neg) << (fbits + ebits)
	expAll := (uint64(1)<<ebits - 1) << fbits
	var fl uint16
	switch a.class() {
	case clsZero:
		return s, 0
	case clsInf:
		return s | expAll, 0
	case clsUnsupported:
		a, fl = f80Indefinite, fswIE
		s = uint64(1) << (fbits + ebits)
		fallthrough
	case clsQNaN, clsSNaN:
		if a.class() == clsSNaN {
			fl = fswIE
		}
		frac := (a.mant | f80QBit) << 1 >> (64 - fbits)
		return s | expAll | frac, fl
	case clsDenorm:
		fl = fswDE
	}
	e, m := a.unpack()
	if fcw&fswUE == 0 && isTiny(neg, e, m, 0, f.w, f, rc) {
		return 0, fl | fswUE
	}
	rm, re, f2 := roundPack(neg, e, m, 0, f.w, f, rc)
	if f2&fswOE != 0 && fcw&fswOE == 0 {
		return 0, fl | fswOE
	}
	fl |= f2
	if re > f.emax {
		return s | expAll, fl
	}
	if rm == 0 {
		return s, fl
	}
	frac := (rm >> (64 - f.w)) & (uint64(1)<<fbits - 1)
	be := uint64(0)
	if rm&f80Int != 0 {
		be = uint64(re + bias)
	}
	return s | be<<fbits | frac, fl
}

// f80Scale implements FSCALE: a * 2^trunc(b).
func f80Scale(a, b f80, fcw uint16) (f80, uint16) {
	ka, kb, r, fl, done := screen2(a, b)
	if done {
		return r, fl
	}
	switch {
	case kb == clsInf:
		if b.sign() {
			if ka == clsInf {
				return f80Indefinite, fswIE
			}
			return f80{se: a.se & 0x8000}, fl
		}
		if ka == clsZero {
			return f80Indefinite, fswIE
		}
		return f80{mant: f80Int, se: a.se | 0x7fff}, fl
	case ka == clsInf, ka == clsZero:
		return a, fl
	}
	var n int64
	if kb != clsZero {
		eb, mb := b.unpack()
		switch {
		case eb < 0:
			n = 0
		case eb > 30:
			n = 1 << 31
		default:
			n = int64(mb >> (63 - uint(eb)))
		}
		if b.sign() {
			n = -n
		}
	}
	ea, ma := a.unpack()
	ne := int64(ea) + n
	if ne > 1<<20 {
		ne = 1 << 20
	} else if ne < -(1 << 20) {
		ne = -(1 << 20)
	}
	r, f2 := roundReg(a.sign(), int32(ne), ma, 0, 64, fcw) // the precision control does not apply
	return r, fl | f2
}

// f80Xtract implements FXTRACT: it returns the exponent (as a value) and
// the significand (exponent 0).
func f80Xtract(a f80) (exp, sig f80, fl uint16) {
	switch a.class() {
	case clsUnsupported:
		return f80Indefinite, f80Indefinite, fswIE
	case clsSNaN:
		return quiet(a), quiet(a), fswIE
	case clsQNaN:
		return a, a, 0
	case clsInf:
		return f80{mant: f80Int, se: 0x7fff}, a, 0
	case clsZero:
		return f80{mant: f80Int, se: 0xffff}, a, fswZE
	case clsDenorm:
		fl = fswDE
	}
	e, m := a.unpack()
	return intToF80(int64(e)), f80{mant: m, se: a.se&0x8000 | f80Bias}, fl
}

// f80Rem implements FPREM (nearest=false, truncating quotient) and FPREM1
// (nearest=true). It returns the (partial) remainder, the low three
// quotient bits, whether they are reported (not for NaN, unsupported and
// invalid operands: C0, C3 and C1 then stay), whether the reduction is
// incomplete, and flags. The remainder is always exact; fcw's underflow
// mask decides the tiny results' response.
func f80Rem(a, b f80, nearest bool, fcw uint16) (r f80, q uint64, quot, partial bool, fl uint16) {
	// Exact results, delivered as extended numbers: only the underflow
	// mask of fcw applies (a tiny remainder with UE unmasked is wrapped).
	rfcw := 0x37f&^fswUE | fcw&fswUE
	ka, kb, r, fl, done := screen2(a, b)
	if done {
		return r, 0, false, false, fl
	}
	switch {
	case ka == clsInf || kb == clsZero:
		return f80Indefinite, 0, false, false, fswIE
	case ka == clsZero:
		return a, 0, true, false, fl
	}
	ea, ma := a.unpack()
	neg := a.sign()
	if kb == clsInf {
		// The dividend, re-encoded (a pseudo-denormal comes out normal).
		r, rfl := roundExt(neg, ea, ma, 0, rfcw)
		return r, 0, true, false, fl | rfl
	}
	eb, mb := b.unpack()
	d := ea - eb
	if d < 0 {
		if !nearest || d < -1 || ma <= mb {
			// |a| < |b|/2 (or truncating): the quotient is 0.
			r, rfl := roundExt(neg, ea, ma, 0, rfcw)
			return r, 0, true, false, fl | rfl
		}
		// |b|/2 < |a| < |b|: quotient 1, remainder |b|-|a| = (2mb-ma)*2^(eb-64).
		x := mb - (ma - mb)
		e2, h2, l2 := normalize128(eb-1, x, 0)
		r, rfl := roundExt(!neg, e2, h2, l2, rfcw)
		return r, 1, true, false, fl | rfl
	}
	// n quotient bits are developed: all of them when d < 64, else an
	// implementation-dependent 32..63 (this model takes 32 | d&31).
	n := d
	if d >= 64 {
		n = d&31 | 32
		partial = true
	}
	rem, qq := ma%mb, ma/mb
	for i := int32(0); i < n; i++ {
		top := rem >> 63
		rem <<= 1
		qq <<= 1
		if top != 0 || rem >= mb {
			rem -= mb
			qq |= 1
		}
	}
	// a - qq*b*2^(d-n) = rem * 2^(eb-63+d-n).
	if nearest && !partial {
		top := rem >> 63
		twice := rem << 1
		if top != 0 || twice > mb || twice == mb && qq&1 != 0 {
			rem = mb - rem
			neg = !neg
			qq++
		}
	}
	if rem == 0 {
		return f80{se: a.se & 0x8000}, qq & 7, true, partial, fl
	}
	e2, h2, l2 := normalize128(eb+d-n, rem, 0)
	r, rfl := roundExt(neg, e2, h2, l2, rfcw)
	return r, qq & 7, true, partial, fl | rfl
}

// bcdMax is the largest magnitude of an 18-digit packed BCD integer.
const bcdMax = 999_999_999_999_999_999

// bcdToF80 converts the packed BCD integer in the ten bytes of raw (mant:
// bytes 0..7, se: bytes 8..9; digit k in nibble k, sign in bit 7 of byte 9,
// the other bits of byte 9 ignored). Like the hardware, a nibble above 9
// still counts with its weight (0xa in the units digit reads as 10), so
// every bit pattern has a value, below 2^61 and exactly representable.
func bcdToF80(raw f80) f80 {
	var v int64
	for k := 8; k >= 0; k-- {
		var b uint64
		if k == 8 {
			b = uint64(raw.se & 0xff)
		} else {
			b = raw.mant >> (8 * uint(k)) & 0xff
		}
		v = v*100 + int64(b>>4)*10 + int64(b&15)
	}
	neg := raw.se&0x8000 != 0
	if v == 0 {
		return f80{se: signOf(neg)}
	}
	r := intToF80(v)
	r.se |= signOf(neg)
	return r
}

// uint64ToBCD returns the packed BCD bytes (in the layout of bcdToF80) of
// mag <= bcdMax with the given sign (a negative zero keeps its sign).
func uint64ToBCD(mag uint64, neg bool) f80 {
	var r f80
	for k := uint(0); k < 18; k++ {
		d := mag % 10
		mag /= 10
		if k < 16 {
			r.mant |= d << (4 * k)
		} else {
			r.se |= uint16(d) << (4 * (k - 16))
		}
	}
	r.se |= signOf(neg)
	return r
}
