package interp

// SSE2 packed-integer instructions (66-prefixed 0F 6x, 7x, Dx, Ex, Fx).

const (
	lo7s  = 0x7f7f7f7f7f7f7f7f
	hi1s  = 0x8080808080808080
	ones1 = 0x0101010101010101
)

// eqBytes returns 0xff in each byte where a and b are equal.
func eqBytes(a, b uint64) uint64 {
	x := a ^ b
	nz := ((x & lo7s) + lo7s | x) & hi1s // high bit set where the byte is non-zero
	return (^nz & hi1s >> 7) * 0xff
}

// Per-lane helpers: f is applied to each lane of a and b.
func lanes8(a, b xmmv, f func(x, y uint8) uint8) (r xmmv) {
	for h := 0; h < 2; h++ {
		for s := uint(0); s < 64; s += 8 {
			r[h] |= uint64(f(uint8(a[h]>>s), uint8(b[h]>>s))) << s
		}
	}
	return
}

func lanes16(a, b xmmv, f func(x, y uint16) uint16) (r xmmv) {
	for h := 0; h < 2; h++ {
		for s := uint(0); s < 64; s += 16 {
			r[h] |= uint64(f(uint16(a[h]>>s), uint16(b[h]>>s))) << s
		}
	}
	return
}

func lanes32(a, b xmmv, f func(x, y uint32) uint32) (r xmmv) {
	for h := 0; h < 2; h++ {
		r[h] = uint64(f(uint32(a[h]), uint32(b[h]))) | uint64(f(uint32(a[h]>>32), uint32(b[h]>>32)))<<32
	}
	return
}

func b2m8(c bool) uint8 {
	if c {
		return 0xff
	}
	return 0
}

func b2m16(c bool) uint16 {
	if c {
		return 0xffff
	}
	return 0
}

func b2m32(c bool) uint32 {
	if c {
		return 0xffffffff
	}
	return 0
}

func sat8(v int32) uint8 {
	return uint8(int8(max(-128, min(127, v))))
}

func satU8(v int32) uint8 {
	return uint8(max(0, min(255, v)))
}

func sat16(v int32) uint16 {
	return uint16(int16(max(-32768, min(32767, v))))
}

func satU16(v int32) uint16 {
	return uint16(max(0, min(65535, v)))
}

// byteAt returns byte i (0..15) of v.
func byteAt(v xmmv, i uint) uint64 { return v[i>>3] >> (i & 7 * 8) & 0xff }

// shiftBytes shifts the 128-bit value right (n > 0) or left (n < 0) by |n|
// bytes; |n| >= 16 gives zero.
func shiftBytes(v xmmv, n int) xmmv {
	var r xmmv
	if n >= 0 {
		for i := 0; i+n < 16; i++ {
			r[i>>3] |= byteAt(v, uint(i+n)) << (uint(i) & 7 * 8)
		}
		return r
	}
	for i := -n; i < 16; i++ {
		r[i>>3] |= byteAt(v, uint(i+n)) << (uint(i) & 7 * 8)
	}
	return r
}

// interleave returns the elements of the low (hi false) or high halves of
// a and b interleaved, a first, at element size esz bytes.
func interleave(a, b xmmv, esz uint, hi bool) xmmv {
	var x, y uint64 = a[0], b[0]
	if hi {
		x, y = a[1], b[1]
	}
	var r xmmv
	bitsN := esz * 8
	m := uint64(1)<<bitsN - 1
	if esz == 8 {
		return xmmv{x, y}
	}
	for i, o := uint(0), uint(0); i < 64; i, o = i+bitsN, o+2*bitsN {
		e := (x>>i&m | (y>>i&m)<<bitsN) << (o & 63)
		r[o>>6] |= e
	}
	return r
}

// Packed shifts: count from an XMM register / memory / immediate; counts
// above the element width give zero (logical) or sign fill (arithmetic).
const (
	shKindSrl = iota
	shKindSra
	shKindSll
)

func pshift(v xmmv, esz uint, kind int, count uint64) xmmv {
	bitsN := uint64(esz * 8)
	if esz == 8 {
		if count >= 64 {
			return xmmv{}
		}
		if kind == shKindSrl {
			return xmmv{v[0] >> count, v[1] >> count}
		}
		return xmmv{v[0] << count, v[1] << count}
	}
	if count >= bitsN {
		if kind != shKindSra {
			return xmmv{}
		}
		count = bitsN - 1
	}
	n := uint(count)
	m := uint64(1)<<bitsN - 1
	var r xmmv
	for h := 0; h < 2; h++ {
		for s := uint(0); s < 64; s += uint(bitsN) {
			e := v[h] >> s & m
			switch kind {
			case shKindSrl:
				e >>= n
			case shKindSll:
				e = e << n & m
			default:
				sh := 64 - uint(bitsN)
				e = uint64(int64(e<<sh)>>sh>>n) & m
			}
			r[h] |= e << s
		}
	}
	return r
}

// intOp registers a binary packed-integer operation 66 0F b: xmm(reg) =
// f(xmm(reg), xmm/m128), and its lane-wise MMX form 0F b (mmx.go).
func intOp(b byte, name string, f func(a, b xmmv) xmmv) { intOpMM(b, name, mmLo, f) }

// intOpMM is intOp with the MMX form mapped by shape (mmNone: none).
func intOpMM(b byte, name string, shape int, f func(a, b xmmv) xmmv) {
	sseOp(b, p66, 0, name, func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM(in)
		d := &c.fpu.xmm[in.reg&15]
		*d = f(*d, s)
	})
	mmxOp(b, name, shape, f)
}

func init() {
	// Logic.
	intOp(0xdb, "pand", func(a, b xmmv) xmmv { return xmmv{a[0] & b[0], a[1] & b[1]} })
	intOp(0xdf, "pandn", func(a, b xmmv) xmmv { return xmmv{^a[0] & b[0], ^a[1] & b[1]} })
	intOp(0xeb, "por", func(a, b xmmv) xmmv { return xmmv{a[0] | b[0], a[1] | b[1]} })
	intOp(0xef, "pxor", func(a, b xmmv) xmmv { return xmmv{a[0] ^ b[0], a[1] ^ b[1]} })

	// Compares.
	intOp(0x74, "pcmpeqb", func(a, b xmmv) xmmv { return xmmv{eqBytes(a[0], b[0]), eqBytes(a[1], b[1])} })
	intOp(0x75, "pcmpeqw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return b2m16(x == y) })
	})
	intOp(0x76, "pcmpeqd", func(a, b xmmv) xmmv {
		return lanes32(a, b, func(x, y uint32) uint32 { return b2m32(x == y) })
	})
	intOp(0x64, "pcmpgtb", func(a, b xmmv) xmmv {
		return lanes8(a, b, func(x, y uint8) uint8 { return b2m8(int8(x) > int8(y)) })
	})
	intOp(0x65, "pcmpgtw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return b2m16(int16(x) > int16(y)) })
	})
	intOp(0x66, "pcmpgtd", func(a, b xmmv) xmmv {
		return lanes32(a, b, func(x, y uint32) uint32 { return b2m32(int32(x) > int32(y)) })
	})

	// Min/max.
	intOp(0xda, "pminub", func(a, b xmmv) xmmv { return lanes8(a, b, func(x, y uint8) uint8 { return min(x, y) }) })
	intOp(0xde, "pmaxub", func(a, b xmmv) xmmv { return lanes8(a, b, func(x, y uint8) uint8 { return max(x, y) }) })
	intOp(0xea, "pminsw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return uint16(min(int16(x), int16(y))) })
	})
	intOp(0xee, "pmaxsw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return uint16(max(int16(x), int16(y))) })
	})

	// Add/subtract, wrapping.
	intOp(0xfc, "paddb", func(a, b xmmv) xmmv { return lanes8(a, b, func(x, y uint8) uint8 { return x + y }) })
	intOp(0xfd, "paddw", func(a, b xmmv) xmmv { return lanes16(a, b, func(x, y uint16) uint16 { return x + y }) })
	intOp(0xfe, "paddd", func(a, b xmmv) xmmv { return lanes32(a, b, func(x, y uint32) uint32 { return x + y }) })
	intOp(0xd4, "paddq", func(a, b xmmv) xmmv { return xmmv{a[0] + b[0], a[1] + b[1]} })
	intOp(0xf8, "psubb", func(a, b xmmv) xmmv { return lanes8(a, b, func(x, y uint8) uint8 { return x - y }) })
	intOp(0xf9, "psubw", func(a, b xmmv) xmmv { return lanes16(a, b, func(x, y uint16) uint16 { return x - y }) })
	intOp(0xfa, "psubd", func(a, b xmmv) xmmv { return lanes32(a, b, func(x, y uint32) uint32 { return x - y }) })
	intOp(0xfb, "psubq", func(a, b xmmv) xmmv { return xmmv{a[0] - b[0], a[1] - b[1]} })

	// Saturating add/subtract.
	intOp(0xdc, "paddusb", func(a, b xmmv) xmmv {
		return lanes8(a, b, func(x, y uint8) uint8 { return satU8(int32(x) + int32(y)) })
	})
	intOp(0xdd, "paddusw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return satU16(int32(x) + int32(y)) })
	})
	intOp(0xd8, "psubusb", func(a, b xmmv) xmmv {
		return lanes8(a, b, func(x, y uint8) uint8 { return satU8(int32(x) - int32(y)) })
	})
	intOp(0xd9, "psubusw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return satU16(int32(x) - int32(y)) })
	})
	intOp(0xec, "paddsb", func(a, b xmmv) xmmv {
		return lanes8(a, b, func(x, y uint8) uint8 { return sat8(int32(int8(x)) + int32(int8(y))) })
	})
	intOp(0xed, "paddsw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return sat16(int32(int16(x)) + int32(int16(y))) })
	})
	intOp(0xe8, "psubsb", func(a, b xmmv) xmmv {
		return lanes8(a, b, func(x, y uint8) uint8 { return sat8(int32(int8(x)) - int32(int8(y))) })
	})
	intOp(0xe9, "psubsw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return sat16(int32(int16(x)) - int32(int16(y))) })
	})

	// Multiplies and averages.
	intOp(0xd5, "pmullw", func(a, b xmmv) xmmv { return lanes16(a, b, func(x, y uint16) uint16 { return x * y }) })
	intOp(0xe5, "pmulhw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return uint16(int32(int16(x)) * int32(int16(y)) >> 16) })
	})
	intOp(0xe4, "pmulhuw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return uint16(uint32(x) * uint32(y) >> 16) })
	})
	intOp(0xf4, "pmuludq", func(a, b xmmv) xmmv {
		return xmmv{a[0] & 0xffffffff * (b[0] & 0xffffffff), a[1] & 0xffffffff * (b[1] & 0xffffffff)}
	})
	intOp(0xf5, "pmaddwd", func(a, b xmmv) xmmv {
		var r xmmv
		for h := 0; h < 2; h++ {
			for s := uint(0); s < 64; s += 32 {
				p0 := int32(int16(a[h]>>s)) * int32(int16(b[h]>>s))
				p1 := int32(int16(a[h]>>(s+16))) * int32(int16(b[h]>>(s+16)))
				r[h] |= uint64(uint32(p0+p1)) << s // 0x8000*0x8000*2 wraps to 0x80000000
			}
		}
		return r
	})
	intOp(0xf6, "psadbw", func(a, b xmmv) xmmv {
		var r xmmv
		for h := 0; h < 2; h++ {
			var sum uint64
			for s := uint(0); s < 64; s += 8 {
				x, y := a[h]>>s&0xff, b[h]>>s&0xff
				if x > y {
					sum += x - y
				} else {
					sum += y - x
				}
			}
			r[h] = sum
		}
		return r
	})
	intOp(0xe0, "pavgb", func(a, b xmmv) xmmv {
		return lanes8(a, b, func(x, y uint8) uint8 { return uint8((uint16(x) + uint16(y) + 1) >> 1) })
	})
	intOp(0xe3, "pavgw", func(a, b xmmv) xmmv {
		return lanes16(a, b, func(x, y uint16) uint16 { return uint16((uint32(x) + uint32(y) + 1) >> 1) })
	})

	// Shifts by an XMM register or m128 (the count is the low quadword).
	for _, s := range []struct {
		b    byte
		name string
		esz  uint
		kind int
	}{
		{0xd1, "psrlw", 2, shKindSrl}, {0xd2, "psrld", 4, shKindSrl}, {0xd3, "psrlq", 8, shKindSrl},
		{0xe1, "psraw", 2, shKindSra}, {0xe2, "psrad", 4, shKindSra},
		{0xf1, "psllw", 2, shKindSll}, {0xf2, "pslld", 4, shKindSll}, {0xf3, "psllq", 8, shKindSll},
	} {
		esz, kind := s.esz, s.kind
		intOp(s.b, s.name, func(a, b xmmv) xmmv { return pshift(a, esz, kind, b[0]) })
	}
	// Shifts by an immediate: groups 66 0F 71/72/73, register forms only.
	for _, s := range []struct {
		b    byte
		reg  int
		name string
		esz  uint
		kind int
	}{
		{0x71, 2, "psrlw i", 2, shKindSrl}, {0x71, 4, "psraw i", 2, shKindSra}, {0x71, 6, "psllw i", 2, shKindSll},
		{0x72, 2, "psrld i", 4, shKindSrl}, {0x72, 4, "psrad i", 4, shKindSra}, {0x72, 6, "pslld i", 4, shKindSll},
		{0x73, 2, "psrlq i", 8, shKindSrl}, {0x73, 6, "psllq i", 8, shKindSll},
	} {
		esz, kind := s.esz, s.kind
		setP(&table2, s.b, p66, fIbU, 0) // marks the opcode as prefix-selected
		setG(&table2, s.b, p66, s.reg, fRegOnly, defOp(s.name, false, func(c *CPU, in *Inst) {
			c.sseCheck(in)
			d := &c.fpu.xmm[in.rm&15]
			*d = pshift(*d, esz, kind, in.imm)
		}))
		mmxShiftImm(s.b, s.reg, s.name, esz, kind)
	}
	setG(&table2, 0x73, p66, 3, fRegOnly, defOp("psrldq", false, func(c *CPU, in *Inst) {
		c.sseCheck(in)
		d := &c.fpu.xmm[in.rm&15]
		*d = shiftBytes(*d, int(in.imm))
	}))
	setG(&table2, 0x73, p66, 7, fRegOnly, defOp("pslldq", false, func(c *CPU, in *Inst) {
		c.sseCheck(in)
		d := &c.fpu.xmm[in.rm&15]
		*d = shiftBytes(*d, -int(in.imm))
	}))

	// Unpacks and packs.
	for _, u := range []struct {
		b    byte
		name string
		esz  uint
		hi   bool
	}{
		{0x60, "punpcklbw", 1, false}, {0x61, "punpcklwd", 2, false}, {0x62, "punpckldq", 4, false}, {0x6c, "punpcklqdq", 8, false},
		{0x68, "punpckhbw", 1, true}, {0x69, "punpckhwd", 2, true}, {0x6a, "punpckhdq", 4, true}, {0x6d, "punpckhqdq", 8, true},
	} {
		esz, hi := u.esz, u.hi
		shape := mmLo
		switch {
		case esz == 8:
			shape = mmNone // PUNPCKLQDQ and PUNPCKHQDQ have no MMX form
		case hi:
			shape = mmHi
		}
		intOpMM(u.b, u.name, shape, func(a, b xmmv) xmmv { return interleave(a, b, esz, hi) })
	}
	intOpMM(0x63, "packsswb", mmPack, func(a, b xmmv) xmmv {
		var r xmmv
		for i := uint(0); i < 16; i++ {
			src := a
			if i >= 8 {
				src = b
			}
			w := int32(int16(src[i>>2&1] >> (i & 3 * 16)))
			r[i>>3] |= uint64(sat8(w)) << (i & 7 * 8)
		}
		return r
	})
	intOpMM(0x67, "packuswb", mmPack, func(a, b xmmv) xmmv {
		var r xmmv
		for i := uint(0); i < 16; i++ {
			src := a
			if i >= 8 {
				src = b
			}
			w := int32(int16(src[i>>2&1] >> (i & 3 * 16)))
			r[i>>3] |= uint64(satU8(w)) << (i & 7 * 8)
		}
		return r
	})
	intOpMM(0x6b, "packssdw", mmPack, func(a, b xmmv) xmmv {
		var r xmmv
		for i := uint(0); i < 8; i++ {
			src := a
			if i >= 4 {
				src = b
			}
			d := int32(src[i>>1&1] >> (i & 1 * 32))
			r[i>>2] |= uint64(sat16(d)) << (i & 3 * 16)
		}
		return r
	})

	// Shuffles.
	sseOp(0x70, p66, fIbU, "pshufd", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		s := c.xmmRM(in)
		var r xmmv
		for i := uint(0); i < 4; i++ {
			sel := uint(in.imm) >> (2 * i) & 3
			r[i>>1] |= (s[sel>>1] >> (sel & 1 * 32) & 0xffffffff) << (i & 1 * 32)
		}
		c.fpu.xmm[in.reg&15] = r
	})
	pshufw := func(half int) handler {
		return func(c *CPU, in *Inst) {
			c.sseCheck(in)
			s := c.xmmRM(in)
			s[half] = shuffleWords(s[half], uint(in.imm))
			c.fpu.xmm[in.reg&15] = s
		}
	}
	sseOp(0x70, pF2, fIbU, "pshuflw", pshufw(0))
	sseOp(0x70, pF3, fIbU, "pshufhw", pshufw(1))

	// PINSRW xmm, r32/m16, imm8 and PEXTRW r32, xmm, imm8.
	sseOp(0xc4, p66, fIbU, "pinsrw", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		v := c.readRMSize(in, 2)
		sel := uint(in.imm) & 7
		d := &c.fpu.xmm[in.reg&15]
		d[sel>>2] = withWord(d[sel>>2], sel&3, v)
	})
	sseOp(0xc5, p66, fIbU|fRegOnly, "pextrw", func(c *CPU, in *Inst) {
		c.sseCheck(in)
		sel := uint(in.imm) & 7
		c.setReg(in.reg, gsz(in), c.fpu.xmm[in.rm&15][sel>>2]>>(sel&3*16)&0xffff)
	})
}

// shuffleWords returns the four words of q selected by the 2-bit fields of
// imm (PSHUFW, PSHUFLW, PSHUFHW).
func shuffleWords(q uint64, imm uint) uint64 {
	var w uint64
	for i := uint(0); i < 4; i++ {
		sel := imm >> (2 * i) & 3
		w |= (q >> (sel * 16) & 0xffff) << (i * 16)
	}
	return w
}

// withWord returns q with word i (0..3) replaced by the low 16 bits of v.
func withWord(q uint64, i uint, v uint64) uint64 {
	sh := i * 16
	return q&^(0xffff<<sh) | (v&0xffff)<<sh
}
