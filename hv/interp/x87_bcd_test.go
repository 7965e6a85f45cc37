package interp

import (
	"encoding/binary"
	"math/rand"
	"testing"
)

// withSign returns v, negated if neg.
func withSign(neg bool, v f80) f80 {
	if neg {
		return v.neg()
	}
	return v
}

// randBCDF80 returns an FBSTP operand: the edges of the 18-digit range,
// halves (ties at every rounding control), zeros of both signs, denormals,
// values just above and below integers, NaNs, infinities, or any class.
func randBCDF80(r *rand.Rand) f80 {
	neg := r.Intn(2) == 0
	exact := func(n uint64) f80 { return intToF80(int64(n)) }
	// half returns n + 1/2 (exact below 2^62).
	half := func(n uint64) f80 {
		v := exact(2*n + 1)
		v.se--
		return v
	}
	switch k := r.Intn(16); k {
	case 0:
		return withSign(neg, f80{})
	case 1:
		return withSign(neg, f80One)
	case 2:
		return withSign(neg, exact(bcdMax-uint64(r.Intn(3))))
	case 3:
		return withSign(neg, exact(bcdMax+1+uint64(r.Intn(3))))
	case 4:
		return withSign(neg, half(bcdMax-uint64(r.Intn(2))))
	case 5:
		return withSign(neg, half(uint64(r.Intn(4))))
	case 6:
		return withSign(neg, half(uint64(r.Int63n(bcdMax))))
	case 7:
		return withSign(neg, ulpNudge(r, exact(uint64(r.Int63n(1<<uint(1+r.Intn(60)))))))
	case 8:
		return withSign(neg, f80{mant: r.Uint64() >> uint(r.Intn(64)) &^ f80Int}) // denormal
	case 9:
		return withSign(neg, f80{mant: r.Uint64() | f80Int, se: uint16(f80Bias - 1 - r.Intn(70))}) // below 1
	case 10:
		return withSign(neg, f80{mant: r.Uint64() | f80Int, se: uint16(f80Bias + r.Intn(64))})
	case 11:
		return withSign(neg, f80{mant: f80Int, se: 0x7fff})
	case 12:
		return withSign(neg, ulpNudge(r, exact(bcdMax)))
	}
	return randF80(r)
}

// randFCWExc is randFCW with, now and then, the invalid, denormal or
// precision exception unmasked.
func randFCWExc(r *rand.Rand) uint16 {
	cw := randFCW(r)
	if r.Intn(4) == 0 {
		cw &^= []uint16{fswIE, fswDE, fswPE, fswIE | fswPE}[r.Intn(4)]
	}
	return cw
}

// randBCD returns ten bytes of packed BCD: valid digits, nibbles above 9,
// every bit of the sign byte, zeros, or random bytes.
func randBCD(r *rand.Rand, b []byte) {
	for i := 0; i < 9; i++ {
		b[i] = byte(r.Intn(10)<<4 | r.Intn(10))
	}
	b[9] = byte(r.Intn(2)) << 7
	switch r.Intn(8) {
	case 0:
		for i := 0; i < 9; i++ {
			b[i] = 0
		}
	case 1:
		for i := 0; i < 9; i++ {
			b[i] = 0x99
		}
	case 2: // a few invalid nibbles
		for n := r.Intn(3) + 1; n > 0; n-- {
			i := r.Intn(9)
			if r.Intn(2) == 0 {
				b[i] = b[i]&0x0f | byte(10+r.Intn(6))<<4
			} else {
				b[i] = b[i]&0xf0 | byte(10+r.Intn(6))
			}
		}
	case 3:
		b[9] |= byte(r.Intn(128)) // ignored sign-byte bits
	case 4:
		r.Read(b[:10])
	case 5: // short numbers
		for i := 1 + r.Intn(8); i < 9; i++ {
			b[i] = 0
		}
	}
}

func TestX87BCD(t *testing.T) {
	genStore := func(r *rand.Rand, rec []byte) {
		binary.LittleEndian.PutUint16(rec, randFCWExc(r))
		putF80(rec[16:], randBCDF80(r))
	}
	genLoad := func(r *rand.Rand, rec []byte) {
		binary.LittleEndian.PutUint16(rec, randFCWExc(r))
		randBCD(r, rec[64:74])
		putF80(rec[16:], randF80(r))
	}
	fld8 := ""
	for i := 0; i < 8; i++ {
		fld8 += "\tfld tbyte ptr [rdi+16]\n"
	}
	progs := []x87Prog{
		// The second FBSTP finds the stack empty unless the first one
		// raised an unmasked exception.
		{name: "fbstp", n: 6000, gen: genStore, body: "\tfld tbyte ptr [rdi+16]\n\tfbstp tbyte ptr [rdi+48]\n\tfnstsw word ptr [rdi+88]\n\tfnclex\n" +
			"\tfbstp tbyte ptr [rdi+64]\n\tfnstsw word ptr [rdi+90]\n\tfnclex"},
		{name: "fbstp full stack", n: 200, gen: genStore, body: fld8 + "\tfbstp tbyte ptr [rdi+48]"},
		{name: "fbld", n: 3000, gen: genLoad, body: "\tfbld tbyte ptr [rdi+64]\n\tfnstsw word ptr [rdi+88]\n\tfld st(0)\n\tfbstp tbyte ptr [rdi+48]"},
		{name: "fbld overflow", n: 100, gen: genLoad, body: fld8 + "\tfbld tbyte ptr [rdi+64]"},
	}
	runX87Progs(t, 8, progs)
}
