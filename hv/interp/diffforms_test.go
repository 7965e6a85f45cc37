//go:build linux && amd64

package interp

// The differential test's table of integer instruction forms. Undefined
// flags are quoted from the SDM's "Flags Affected" sections.

import "fmt"

const (
	// MUL/IMUL: "The OF and CF flags are set to 0 if the upper half of the
	// result is 0 (MUL) / the result fits (IMUL); otherwise, they are set
	// to 1. The SF, ZF, AF, and PF flags are undefined."
	uMul = dSF | dZF | dAF | dPF
	// DIV/IDIV: "The CF, OF, SF, ZF, AF, and PF flags are undefined."
	uDiv = dArith
	// AND/OR/XOR/TEST: "The OF and CF flags are cleared; the SF, ZF, and PF
	// flags are set according to the result. The state of the AF flag is
	// undefined."
	uLogic = dAF
	// BT/BTS/BTR/BTC: "The CF flag contains the value of the selected bit.
	// The ZF flag is unaffected. The OF, SF, AF, and PF flags are undefined."
	uBT = dOF | dSF | dAF | dPF
	// BSF/BSR: "The ZF flag is set to 1 if the source operand is 0;
	// otherwise, the ZF flag is cleared. The CF, OF, SF, AF, and PF flags
	// are undefined."
	uBS = dCF | dOF | dSF | dAF | dPF
)

// opsz emits the operand-size prefixes of a non-ModRM instruction (and now
// and then a redundant REX).
func (g *dgen) opsz(c *dcase, size int) {
	if size == 2 {
		c.emit(0x66)
	}
	if size == 8 {
		c.emit(0x48)
	} else if g.r.IntN(8) == 0 {
		c.emit(0x40)
	}
}

// marker emits "lea r, [r+1]" (flags untouched): the fall-through path of a
// branch records itself in register r.
func (g *dgen) marker(c *dcase, r int) {
	rex := byte(0x48)
	if r >= 8 {
		rex |= 5
	}
	c.emit(rex, 0x8d, 0x40|byte(r&7)<<3|byte(r&7), 1)
}

func markerReg(g *dgen, excl uint32) int { return g.pick(false, excl|1<<4|1<<12) }

func dForms() []*dform {
	fs := &dformSet{keys: map[string]bool{}}
	shiftFix := func(digit int, useCL, one bool) func(g *dgen, c *dcase, s *ms) {
		return func(g *dgen, c *dcase, s *ms) {
			var cnt uint8 = 1
			if !one {
				cnt = g.setCount(c, useCL)
			}
			c.undef |= shiftUndef(digit, s.size, cnt)
		}
	}
	lockable := func(name string, s ms, undef uint64, fix func(g *dgen, c *dcase, s *ms)) {
		fs.addMS(name, s, "rm", undef, fix)
		s.pfx = []byte{0xf0}
		fs.addMS("lock "+name, s, "m", undef, fix)
	}

	// ALU: the six classic encodings and group 1.
	for k := 0; k < 8; k++ {
		name, base := aluNames[k], byte(k<<3)
		var u uint64
		if k == 1 || k == 4 || k == 6 {
			u = uLogic
		}
		add := fs.addMS
		if k != 7 {
			add = func(n string, s ms, kinds string, undef uint64, fix func(*dgen, *dcase, *ms)) {
				lockable(n, s, undef, fix)
			}
		}
		add(name, ms{op: []byte{base}, digit: -1, size: 1}, "rm", u, nil)
		fs.addMS(name, ms{op: []byte{base + 2}, digit: -1, size: 1}, "rm", u, nil)
		add(name, ms{op: []byte{0x80}, digit: k, size: 1, imm: 1}, "rm", u, nil)
		fs.add(fmt.Sprintf("%s %x/1/acc", name, base+4), u, func(g *dgen, c *dcase) {
			c.emit(base + 4)
			c.emitN(g.val(1), 1)
		})
		sizesV(func(sz int) {
			add(name, ms{op: []byte{base + 1}, digit: -1, size: sz}, "rm", u, nil)
			fs.addMS(name, ms{op: []byte{base + 3}, digit: -1, size: sz}, "rm", u, nil)
			add(name, ms{op: []byte{0x81}, digit: k, size: sz, imm: izLen(sz)}, "rm", u, nil)
			add(name, ms{op: []byte{0x83}, digit: k, size: sz, imm: 1}, "rm", u, nil)
			fs.add(fmt.Sprintf("%s %x/%d/acc", name, base+5, sz), u, func(g *dgen, c *dcase) {
				g.opsz(c, sz)
				c.emit(base + 5)
				c.emitN(g.val(izLen(sz)), izLen(sz))
			})
		})
	}

	// TEST.
	fs.addMS("test", ms{op: []byte{0x84}, digit: -1, size: 1}, "rm", uLogic, nil)
	fs.add("test a8/1/acc", uLogic, func(g *dgen, c *dcase) { c.emit(0xa8); c.emitN(g.val(1), 1) })
	fs.addMS("test", ms{op: []byte{0xf6}, digit: 0, size: 1, imm: 1}, "rm", uLogic, nil)
	fs.addMS("test(/1)", ms{op: []byte{0xf6}, digit: 1, size: 1, imm: 1}, "rm", uLogic, nil)
	sizesV(func(sz int) {
		fs.addMS("test", ms{op: []byte{0x85}, digit: -1, size: sz}, "rm", uLogic, nil)
		fs.addMS("test", ms{op: []byte{0xf7}, digit: 0, size: sz, imm: izLen(sz)}, "rm", uLogic, nil)
		fs.addMS("test(/1)", ms{op: []byte{0xf7}, digit: 1, size: sz, imm: izLen(sz)}, "rm", uLogic, nil)
		fs.add(fmt.Sprintf("test a9/%d/acc", sz), uLogic, func(g *dgen, c *dcase) {
			g.opsz(c, sz)
			c.emit(0xa9)
			c.emitN(g.val(izLen(sz)), izLen(sz))
		})
	})

	// INC/DEC/NOT/NEG, MUL/IMUL/DIV/IDIV.
	unary := func(sz int, op byte) {
		lockable("inc", ms{op: []byte{op + 8}, digit: 0, size: sz}, 0, nil)
		lockable("dec", ms{op: []byte{op + 8}, digit: 1, size: sz}, 0, nil)
		lockable("not", ms{op: []byte{op}, digit: 2, size: sz}, 0, nil)
		lockable("neg", ms{op: []byte{op}, digit: 3, size: sz}, 0, nil)
		fs.addMS("mul", ms{op: []byte{op}, digit: 4, size: sz, implicit: 1 | 1<<2}, "rm", uMul, nil)
		fs.addMS("imul", ms{op: []byte{op}, digit: 5, size: sz, implicit: 1 | 1<<2}, "rm", uMul, nil)
		ex := uint32(1 | 1<<2)
		if sz == 1 {
			ex = 1 | 1<<4
		}
		for d, name := range []string{"div", "idiv"} {
			signed := d == 1
			fs.addMS(name, ms{op: []byte{op}, digit: 6 + d, size: sz, implicit: 1 | 1<<2, rmEx: ex}, "rm", uDiv,
				func(g *dgen, c *dcase, s *ms) { g.divSetup(c, s.size, signed) })
		}
	}
	unary(1, 0xf6)
	sizesV(func(sz int) { unary(sz, 0xf7) })
	sizesV(func(sz int) {
		fs.addMS("imul", ms{op: []byte{0x0f, 0xaf}, digit: -1, size: sz}, "rm", uMul, nil)
		fs.addMS("imul", ms{op: []byte{0x69}, digit: -1, size: sz, imm: izLen(sz)}, "rm", uMul, nil)
		fs.addMS("imul", ms{op: []byte{0x6b}, digit: -1, size: sz, imm: 1}, "rm", uMul, nil)
	})

	// Shifts and rotates.
	shiftNames := [8]string{"rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"}
	for d := 0; d < 8; d++ {
		n := shiftNames[d]
		fs.addMS(n+",1", ms{op: []byte{0xd0}, digit: d, size: 1}, "rm", 0, shiftFix(d, false, true))
		fs.addMS(n+",cl", ms{op: []byte{0xd2}, digit: d, size: 1, implicit: 1 << 1}, "rm", 0, shiftFix(d, true, false))
		fs.addMS(n+",ib", ms{op: []byte{0xc0}, digit: d, size: 1, imm: 1}, "rm", 0, shiftFix(d, false, false))
		sizesV(func(sz int) {
			fs.addMS(n+",1", ms{op: []byte{0xd1}, digit: d, size: sz}, "rm", 0, shiftFix(d, false, true))
			fs.addMS(n+",cl", ms{op: []byte{0xd3}, digit: d, size: sz, implicit: 1 << 1}, "rm", 0, shiftFix(d, true, false))
			fs.addMS(n+",ib", ms{op: []byte{0xc1}, digit: d, size: sz, imm: 1}, "rm", 0, shiftFix(d, false, false))
		})
	}
	// SHLD/SHRD: "If the count is 1 or greater, the CF flag is filled with
	// the last bit shifted out ... For a 1-bit shift, the OF flag is set if
	// a sign change occurred; otherwise, it is cleared. For shifts greater
	// than 1 bit, the OF flag is undefined. If a shift occurs, the AF flag is
	// undefined. If the count operand is 0, the flags are not affected. If
	// the count is greater than the operand size, the flags are undefined."
	// and "If a count is greater than the operand size, the result is
	// undefined."
	shdFix := func(useCL bool) func(g *dgen, c *dcase, s *ms) {
		return func(g *dgen, c *dcase, s *ms) {
			cnt := g.setCount(c, useCL)
			if useCL && c.reg == 1 {
				cnt = uint8(c.in[1])
			}
			m := int(cnt & 31)
			if s.size == 8 {
				m = int(cnt & 63)
			}
			switch {
			case m == 0:
			case m > s.size*8:
				c.undef |= dArith
				if c.ea != 0 {
					c.undefM = true
				} else {
					c.undefR |= 1 << c.rm
				}
			default:
				c.undef |= dAF
				if m != 1 {
					c.undef |= dOF
				}
			}
		}
	}
	sizesV(func(sz int) {
		fs.addMS("shld,ib", ms{op: []byte{0x0f, 0xa4}, digit: -1, size: sz, imm: 1}, "rm", 0, shdFix(false))
		fs.addMS("shld,cl", ms{op: []byte{0x0f, 0xa5}, digit: -1, size: sz, implicit: 1 << 1}, "rm", 0, shdFix(true))
		fs.addMS("shrd,ib", ms{op: []byte{0x0f, 0xac}, digit: -1, size: sz, imm: 1}, "rm", 0, shdFix(false))
		fs.addMS("shrd,cl", ms{op: []byte{0x0f, 0xad}, digit: -1, size: sz, implicit: 1 << 1}, "rm", 0, shdFix(true))
	})

	// Bit tests and scans.
	btOff := func(g *dgen, c *dcase, s *ms) {
		if c.ea != 0 {
			off := int64(g.r.IntN(3000)) - 1500
			if g.r.IntN(2) == 0 {
				off = int64(g.r.IntN(s.size*8*2)) - int64(s.size*8)
			}
			c.setR(c.reg, s.size, uint64(off))
		}
	}
	for k, n := range []string{"bt", "bts", "btr", "btc"} {
		sizesV(func(sz int) {
			s := ms{op: []byte{0x0f, 0xa3 + byte(k)<<3}, digit: -1, size: sz}
			si := ms{op: []byte{0x0f, 0xba}, digit: 4 + k, size: sz, imm: 1}
			if k == 0 {
				fs.addMS(n, s, "rm", uBT, btOff)
				fs.addMS(n+",ib", si, "rm", uBT, nil)
			} else {
				lockable(n, s, uBT, btOff)
				lockable(n+",ib", si, uBT, nil)
			}
		})
	}
	bsZero := func(g *dgen, c *dcase, s *ms) {
		if g.r.IntN(4) == 0 {
			c.setRM(s.size, 0)
		}
	}
	sizesV(func(sz int) {
		fs.addMS("bsf", ms{op: []byte{0x0f, 0xbc}, digit: -1, size: sz}, "rm", uBS, bsZero)
		fs.addMS("bsr", ms{op: []byte{0x0f, 0xbd}, digit: -1, size: sz}, "rm", uBS, bsZero)
	})

	// Moves and extensions.
	fs.addMS("mov", ms{op: []byte{0x88}, digit: -1, size: 1}, "rm", 0, nil)
	fs.addMS("mov", ms{op: []byte{0x8a}, digit: -1, size: 1}, "rm", 0, nil)
	fs.addMS("mov", ms{op: []byte{0xc6}, digit: 0, size: 1, imm: 1}, "rm", 0, nil)
	sizesV(func(sz int) {
		fs.addMS("mov", ms{op: []byte{0x89}, digit: -1, size: sz}, "rm", 0, nil)
		fs.addMS("mov", ms{op: []byte{0x8b}, digit: -1, size: sz}, "rm", 0, nil)
		fs.addMS("mov", ms{op: []byte{0xc7}, digit: 0, size: sz, imm: izLen(sz)}, "rm", 0, nil)
		fs.addMS("movzx", ms{op: []byte{0x0f, 0xb6}, digit: -1, size: sz, rmSize: 1}, "rm", 0, nil)
		fs.addMS("movsx", ms{op: []byte{0x0f, 0xbe}, digit: -1, size: sz, rmSize: 1}, "rm", 0, nil)
		fs.addMS("movzx", ms{op: []byte{0x0f, 0xb7}, digit: -1, size: sz, rmSize: 2}, "rm", 0, nil)
		fs.addMS("movsx", ms{op: []byte{0x0f, 0xbf}, digit: -1, size: sz, rmSize: 2}, "rm", 0, nil)
		fs.addMS("cmovcc", ms{op: []byte{0x0f, 0x40}, digit: -1, size: sz, cc: true}, "rm", 0, nil)
		fs.addMS("xchg", ms{op: []byte{0x87}, digit: -1, size: sz}, "rm", 0, nil)
		lockable("xadd", ms{op: []byte{0x0f, 0xc1}, digit: -1, size: sz}, 0, nil)
		lockable("cmpxchg", ms{op: []byte{0x0f, 0xb1}, digit: -1, size: sz, implicit: 1}, 0, cmpxchgFix)
		fs.addMS("lea", ms{op: []byte{0x8d}, digit: -1, size: sz, lea: true}, "m", 0, nil)
		fs.addMS("lea a32", ms{pfx: []byte{0x67}, op: []byte{0x8d}, digit: -1, size: sz, lea: true}, "m", 0, nil)
		fs.addMS("mov a32", ms{pfx: []byte{0x67}, op: []byte{0x8b}, digit: -1, size: sz}, "m", 0, nil)
		fs.addMS("nop", ms{op: []byte{0x0f, 0x1f}, digit: 0, size: sz, lea: true}, "m", 0, nil)
	})
	fs.addMS("movsxd", ms{op: []byte{0x63}, digit: -1, size: 8, rmSize: 4}, "rm", 0, nil)
	fs.addMS("movsxd", ms{op: []byte{0x63}, digit: -1, size: 4}, "rm", 0, nil)
	fs.addMS("xchg", ms{op: []byte{0x86}, digit: -1, size: 1}, "rm", 0, nil)
	lockable("xadd", ms{op: []byte{0x0f, 0xc0}, digit: -1, size: 1}, 0, nil)
	lockable("cmpxchg", ms{op: []byte{0x0f, 0xb0}, digit: -1, size: 1, implicit: 1}, 0, cmpxchgFix)
	fs.addMS("setcc", ms{op: []byte{0x0f, 0x90}, digit: 0, size: 1, cc: true}, "rm", 0, nil)
	// CMPXCHG8B/16B: "The ZF flag is set if the destination operand and
	// EDX:EAX are equal; otherwise it is cleared. The CF, PF, AF, SF, and OF
	// flags are unaffected."
	for _, p := range [][]byte{nil, {0xf0}} {
		pre := ""
		if p != nil {
			pre = "lock "
		}
		fs.addMS(pre+"cmpxchg8b", ms{pfx: p, op: []byte{0x0f, 0xc7}, digit: 1, size: 4, rmSize: 8, implicit: 0xf}, "m", 0, cmpxchgBFix)
		fs.addMS(pre+"cmpxchg16b", ms{pfx: p, op: []byte{0x0f, 0xc7}, digit: 1, size: 8, rmSize: 16, align: 16, implicit: 0xf}, "m", 0, cmpxchgBFix)
	}

	dOtherForms(fs)
	dVectorForms(fs)
	dX87Forms(fs)
	return fs.forms
}

func cmpxchgFix(g *dgen, c *dcase, s *ms) {
	if g.r.IntN(2) == 0 {
		c.setR(0, s.size, c.getRM(s.size))
	}
}

func cmpxchgBFix(g *dgen, c *dcase, s *ms) {
	half := s.size
	if g.r.IntN(2) == 0 {
		c.setR(0, half, c.getM(c.ea, half))
		c.setR(2, half, c.getM(c.ea+uint64(half), half))
	}
}
