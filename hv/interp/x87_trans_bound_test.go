package interp

import (
	"fmt"
	"math/big"
)

// The documented accuracy of the x87 transcendentals, for hosts whose
// results transTol does not characterise (hostVariant.transMeasured). The
// Intel SDM (8.3.10, "Transcendental Instruction Accuracy") promises an
// error below 1 ulp when rounding to nearest and below 1.5 ulp in the
// other modes, for FSIN, FCOS, FSINCOS and FPTAN "when applied to the
// reduced argument": x - kP with P the 66-bit pi/2 of x87_ref_test.go, k
// nearest x/P (the quadrant nearest x/(pi/2) was not needed on the Intel
// host measured, though it often rounds so: TestX87TransQuadrant). The
// ulp is that of the exact value: 2^(k-63) for 1 <= |f|/2^k < 2, the
// denormal spacing below the normal range. FYL2X and FYL2XP1 are a
// logarithm, to which the bound applies, scaled by y and rounded once
// more: their bound is the logarithm's carried through the product (in ulp
// of log2 times |y|) plus one rounding of the product (1/2 ulp to nearest,
// 1 ulp in the other modes).

// transBoundUlp returns the documented bound, in ulp, under control word
// fcw, and the bound of one rounding.
func transBoundUlp(fcw uint16) (fn, rounding *big.Float) {
	if fcwRC(fcw) == rcNearest {
		return refInt(1), refQuo(refInt(1), refInt(2))
	}
	return refQuo(refInt(3), refInt(2)), refInt(1)
}

// transError returns the error in ulp of d, op's result (on b = ST(1))
// under control word fcw, against the nonzero exact value, and the
// documented bound for it, both at the reference's 300 bits (where an error
// just below the bound can round to it: the callers fail an error above
// the bound). A tiny exact value delivered with UE unmasked (or a huge one
// with OE unmasked) counts with the exponent unwrapped by wrapBias.
func transError(op string, exact *big.Float, d, b f80, fcw uint16) (err, bound *big.Float) {
	k := exact.MantExp(nil) - 1 // 1 <= |exact|/2^k < 2
	dv := refOfF80(d)
	wrapped := false
	switch {
	case k < f80Emin && fcw&fswUE == 0 && d.bexp() != 0:
		dv.SetMantExp(dv, -wrapBias)
		wrapped = true
	case k > f80Emax && fcw&fswOE == 0:
		dv.SetMantExp(dv, wrapBias)
		wrapped = true
	}
	ku := k
	if !wrapped && ku < f80Emin {
		ku = f80Emin
	}
	ulp := refF().SetMantExp(refInt(1), ku-63)
	diff := refSub(dv, exact)
	diff.Abs(diff)
	err = refQuo(diff, ulp)
	fn, rounding := transBoundUlp(fcw)
	bound = fn
	if op == "fyl2x" || op == "fyl2xp1" {
		y := refOfF80(b.abs())
		kl := refQuo(exact, y).MantExp(nil) - 1
		logUlp := refMul(refF().SetMantExp(refInt(1), kl-63), y) // in the result
		bound = refAdd(refMul(fn, refQuo(logUlp, ulp)), rounding)
	}
	return err, bound
}

// transBound is transTolerance on a host without a measured tolerance:
// the host's (h) and the engine's (e) states after op on a and b under fcw,
// which the caller found equal in everything but the status word and the
// registers (the same ones empty), differ only in C1 and in results that
// both lie within the documented bound of the exact value. It returns "" and counts
// the case in st if so, else why not.
func transBound(op string, a, b f80, fcw uint16, h, e *x87Regs, st *transStats) string {
	if h.fsw&^fswC1 != e.fsw&^fswC1 {
		return "  status words differ beyond C1\n"
	}
	refs := transRefIn(op, a, b, refQuadrantByP, true)
	if refs == nil {
		return "  operands outside the accuracy bound's domain\n"
	}
	valueDiffers := false
	worst := 0.0
	for i := 0; i < 8; i++ {
		if !h.valid[i] || h.st[i] == e.st[i] {
			continue
		}
		hv, ev := h.st[i], e.st[i]
		if i >= len(refs) || refs[i].Sign() == 0 || hv.class() > clsNormal || ev.class() > clsNormal {
			return fmt.Sprintf("  ST(%d) differs and is not a computed result\n", i)
		}
		he, bound := transError(op, refs[i], hv, b, fcw)
		ee, _ := transError(op, refs[i], ev, b, fcw)
		if he.Cmp(bound) > 0 || ee.Cmp(bound) > 0 {
			return fmt.Sprintf("  ST(%d): error host %.4g ulp, engine %.4g ulp; the documented bound is %.4g ulp\n", i, he, ee, bound)
		}
		hf, _ := he.Float64()
		ef, _ := ee.Float64()
		worst = max(worst, hf, ef)
		valueDiffers = true
	}
	switch {
	case valueDiffers:
		st.ulp++
	case h.fsw == e.fsw:
		return "  differences outside the status word and the valid registers\n"
	default:
		// Only C1 differs: it tells how the host rounded its own
		// approximation, which the bound leaves free.
		st.c1++
	}
	if fcwRC(fcw) == rcNearest {
		st.maxErrNear = max(st.maxErrNear, worst)
	} else {
		st.maxErrDirected = max(st.maxErrDirected, worst)
	}
	return ""
}
