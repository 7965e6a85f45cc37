//go:build linux && amd64

package interp

import "fmt"

// dStackOff is where RSP points in a case's window.
const dStackOff = 0x380

// dOtherForms adds the forms that are not plain ModRM instructions.
func dOtherForms(fs *dformSet) {
	// MOV r, imm (B0+r, B8+r).
	fs.add("mov b0+r/1/imm", 0, func(g *dgen, c *dcase) {
		if g.r.IntN(2) == 0 {
			c.emit(0xb0 + byte(g.r.IntN(8))) // AL..BH
		} else {
			r := g.r.IntN(16)
			c.emit(0x40|byte(r>>3), 0xb0+byte(r&7))
		}
		c.emitN(g.val(1), 1)
	})
	sizesV(func(sz int) {
		fs.add(fmt.Sprintf("mov b8+r/%d/imm", sz), 0, func(g *dgen, c *dcase) {
			r := g.r.IntN(16)
			if sz == 2 {
				c.emit(0x66)
			}
			if sz == 8 || r >= 8 {
				rex := byte(0x40 | r>>3)
				if sz == 8 {
					rex |= 8
				}
				c.emit(rex)
			}
			c.emit(0xb8 + byte(r&7))
			c.emitN(g.val(sz), sz)
		})
	})
	// MOV AL/eAX <-> moffs.
	for _, sz := range []int{1, 2, 4, 8} {
		for _, store := range []bool{false, true} {
			op := byte(0xa0)
			if store {
				op = 0xa2
			}
			if sz > 1 {
				op++
			}
			fs.add(fmt.Sprintf("mov %x/%d/moffs", op, sz), 0, func(g *dgen, c *dcase) {
				if sz > 1 {
					g.opsz(c, sz)
				}
				c.emit(op)
				c.emitN(c.win+512+uint64(g.r.IntN(128))-64, 8)
			})
		}
	}
	// XCHG rAX, r; NOP.
	sizesV(func(sz int) {
		fs.add(fmt.Sprintf("xchg 90+r/%d/reg", sz), 0, func(g *dgen, c *dcase) {
			r := g.r.IntN(16)
			if sz == 2 {
				c.emit(0x66)
			}
			if sz == 8 || r >= 8 {
				rex := byte(0x40 | r>>3)
				if sz == 8 {
					rex |= 8
				}
				c.emit(rex)
			}
			c.emit(0x90 + byte(r&7))
		})
	})
	// CBW/CWDE/CDQE, CWD/CDQ/CQO, sign extensions of rAX.
	sizesV(func(sz int) {
		for _, op := range []byte{0x98, 0x99} {
			fs.add(fmt.Sprintf("cbw-cwd %x/%d/none", op, sz), 0, func(g *dgen, c *dcase) {
				g.opsz(c, sz)
				c.emit(op)
			})
		}
	})
	// BSWAP (the 16-bit form is undefined).
	for _, sz := range []int{4, 8} {
		fs.add(fmt.Sprintf("bswap 0fc8+r/%d/reg", sz), 0, func(g *dgen, c *dcase) {
			r := g.r.IntN(16)
			if sz == 8 || r >= 8 {
				rex := byte(0x40 | r>>3)
				if sz == 8 {
					rex |= 8
				}
				c.emit(rex)
			}
			c.emit(0x0f, 0xc8+byte(r&7))
		})
	}
	// Flag instructions.
	for _, op := range []byte{0x9e, 0x9f, 0xf5, 0xf8, 0xf9, 0xfc, 0xfd} {
		fs.add(fmt.Sprintf("flag %x/0/none", op), 0, func(g *dgen, c *dcase) { c.emit(op) })
	}
	fs.add("xlat d7/1/mem", 0, func(g *dgen, c *dcase) {
		c.emit(0xd7)
		c.in[3] = c.win + 256
	})

	// Stack.
	for _, sz := range []int{2, 8} {
		pfx := func(c *dcase) {
			if sz == 2 {
				c.emit(0x66)
			}
		}
		for _, op := range []byte{0x50, 0x58} {
			fs.add(fmt.Sprintf("push-pop %x+r/%d/reg", op, sz), 0, func(g *dgen, c *dcase) {
				r := g.r.IntN(16)
				pfx(c)
				if r >= 8 {
					c.emit(0x41)
				}
				c.emit(op + byte(r&7))
			})
		}
		fs.add(fmt.Sprintf("push 68/%d/imm", sz), 0, func(g *dgen, c *dcase) {
			pfx(c)
			c.emit(0x68)
			c.emitN(g.val(izLen(sz)), izLen(sz))
		})
		fs.add(fmt.Sprintf("push 6a/%d/imm", sz), 0, func(g *dgen, c *dcase) {
			pfx(c)
			c.emit(0x6a)
			c.emitN(g.val(1), 1)
		})
		fs.addMS("push", ms{op: []byte{0xff}, digit: 6, size: sz, noW: true, implicit: 1 << 4}, "rm", 0, nil)
		fs.addMS("pop", ms{op: []byte{0x8f}, digit: 0, size: sz, noW: true, implicit: 1 << 4}, "rm", 0, nil)
		fs.add(fmt.Sprintf("pushf 9c/%d/none", sz), 0, func(g *dgen, c *dcase) {
			pfx(c)
			c.emit(0x9c)
		})
		// POPF: "all flags affected" (the arithmetic ones from the stack).
		fs.add(fmt.Sprintf("popf 9d/%d/none", sz), 0, func(g *dgen, c *dcase) {
			pfx(c)
			c.emit(0x9d)
			c.setM(c.in[4], 8, g.popfVal())
		})
		fs.add(fmt.Sprintf("leave c9/%d/none", sz), 0, func(g *dgen, c *dcase) {
			pfx(c)
			c.emit(0xc9)
			c.in[5] = c.win + 0x300 + uint64(g.r.IntN(16))*8
		})
		fs.add(fmt.Sprintf("enter c8/%d/imm", sz), 0, func(g *dgen, c *dcase) {
			pfx(c)
			c.emit(0xc8)
			c.emitN(uint64(g.r.IntN(64)), 2)
			c.emitN(uint64(g.r.IntN(4)), 1)
			c.in[5] = c.win + 0x300 + uint64(g.r.IntN(16))*8
		})
	}

	// String instructions: with and without REP, DF 0 and 1.
	strNames := map[byte]string{0xa4: "movs", 0xa6: "cmps", 0xaa: "stos", 0xac: "lods", 0xae: "scas"}
	for _, op := range []byte{0xa4, 0xa6, 0xaa, 0xac, 0xae} {
		reps := []byte{0, 0xf3}
		if op == 0xa6 || op == 0xae {
			reps = append(reps, 0xf2)
		}
		for _, sz := range []int{1, 2, 4, 8} {
			for _, rep := range reps {
				for _, a32 := range []bool{false, true} {
					key := fmt.Sprintf("%s %x/%d/str", strNames[op], op, sz)
					if rep != 0 {
						key = fmt.Sprintf("%x ", rep) + key
					}
					if a32 {
						key = "a32 " + key
					}
					fs.add(key, 0, func(g *dgen, c *dcase) {
						if a32 {
							c.emit(0x67)
						}
						if rep != 0 {
							c.emit(rep)
						}
						if sz == 2 {
							c.emit(0x66)
						}
						o := op
						if sz > 1 {
							o++
						}
						if sz == 8 {
							c.emit(0x48)
						}
						c.emit(o)
						g.strSetup(c, sz, rep != 0, a32)
						if a32 && rep != 0 && uint32(c.in[1]) == 0 {
							// No iteration: the count and pointer registers
							// keep their values, upper halves included, in
							// the engine; see hostVariant.repA32ZeroCountZext.
							c.zextR = 1 << 1
							if op != 0xaa && op != 0xae {
								c.zextR |= 1 << 6 // RSI: MOVS, CMPS, LODS
							}
							if op != 0xac {
								c.zextR |= 1 << 7 // RDI: MOVS, CMPS, STOS, SCAS
							}
						}
					})
				}
			}
		}
	}

	// Branches: the fall-through path runs a marker LEA.
	fs.add("jcc 70+cc/1/rel", 0, func(g *dgen, c *dcase) {
		c.emit(0x70+byte(g.r.IntN(16)), 4)
		g.marker(c, markerReg(g, 0))
	})
	fs.add("jcc 0f80+cc/4/rel", 0, func(g *dgen, c *dcase) {
		c.emit(0x0f, 0x80+byte(g.r.IntN(16)), 4, 0, 0, 0)
		g.marker(c, markerReg(g, 0))
	})
	for _, op := range []byte{0xe0, 0xe1, 0xe2, 0xe3} {
		for _, a32 := range []bool{false, true} {
			key := fmt.Sprintf("loop %x/8/rel", op)
			if a32 {
				key = "a32 " + key
			}
			fs.add(key, 0, func(g *dgen, c *dcase) {
				if a32 {
					c.emit(0x67)
				}
				c.emit(op, 4)
				g.marker(c, markerReg(g, 1<<1))
				switch g.r.IntN(3) {
				case 0:
					c.in[1] = c.in[1]&^0xffffffff | uint64(g.r.IntN(3))
				case 1:
					c.in[1] = uint64(g.r.IntN(3))
				}
			})
		}
	}
	fs.add("jmp eb/8/rel", 0, func(g *dgen, c *dcase) {
		c.emit(0xeb, 4)
		g.marker(c, markerReg(g, 0))
	})
	fs.add("jmp e9/8/rel", 0, func(g *dgen, c *dcase) {
		c.emit(0xe9, 4, 0, 0, 0)
		g.marker(c, markerReg(g, 0))
	})
	fs.add("call e8+pop/8/rel", 0, func(g *dgen, c *dcase) {
		r := g.r.IntN(16)
		c.emit(0xe8, 0, 0, 0, 0)
		if r >= 8 {
			c.emit(0x41)
		}
		c.emit(0x58 + byte(r&7))
	})
	fs.add("jmp ff/4/8/reg", 0, func(g *dgen, c *dcase) {
		r := g.pick(false, 1<<4)
		m := markerReg(g, 1<<r)
		if r >= 8 {
			c.emit(0x41)
		}
		c.emit(0xff, 0xe0|byte(r&7))
		g.marker(c, m)
		c.in[r] = c.addr + uint64(c.n)
	})
	fs.add("call ff/2/8/reg", 0, func(g *dgen, c *dcase) {
		r := g.pick(false, 1<<4)
		m := markerReg(g, 1<<r)
		if r >= 8 {
			c.emit(0x41)
		}
		c.emit(0xff, 0xd0|byte(r&7))
		g.marker(c, m)
		c.in[r] = c.addr + uint64(c.n)
	})
	fs.add("ret c3/8/none", 0, func(g *dgen, c *dcase) {
		c.emit(0x48, 0x8d, 0x05, 2, 0, 0, 0) // lea rax, [rip+2]
		c.emit(0x50, 0xc3)                   // push rax; ret
	})
	fs.add("ret c2/8/imm", 0, func(g *dgen, c *dcase) {
		c.emit(0x48, 0x8d, 0x05, 4, 0, 0, 0) // lea rax, [rip+4]
		c.emit(0x50, 0xc2)                   // push rax; ret imm16
		c.emitN(uint64(g.r.IntN(8)*8), 2)
	})

	// Flag producer followed by a flag consumer (lazy flags).
	type prod struct {
		name  string
		undef uint64
		build func(g *dgen, c *dcase, sz int)
	}
	var prods []prod
	for k := 0; k < 8; k++ {
		var u uint64
		if k == 1 || k == 4 || k == 6 {
			u = uLogic
		}
		prods = append(prods, prod{aluNames[k], u, func(g *dgen, c *dcase, sz int) {
			op := byte(k<<3) + 1
			if sz == 1 {
				op--
			}
			g.modrm(c, &ms{op: []byte{op}, digit: -1, size: sz})
		}})
	}
	grp := func(name string, op byte, digit int, u uint64) {
		prods = append(prods, prod{name, u, func(g *dgen, c *dcase, sz int) {
			o := op
			if sz == 1 {
				o--
			}
			g.modrm(c, &ms{op: []byte{o}, digit: digit, size: sz})
		}})
	}
	grp("test", 0x85, -1, uLogic)
	grp("inc", 0xff, 0, 0)
	grp("dec", 0xff, 1, 0)
	grp("neg", 0xf7, 3, 0)
	grp("shl1", 0xd1, 4, dAF)
	grp("shr1", 0xd1, 5, dAF)
	grp("sar1", 0xd1, 7, dAF)
	grp("rol1", 0xd1, 0, 0)
	grp("rcr1", 0xd1, 3, 0)
	prods = append(prods, prod{"popf", 0, func(g *dgen, c *dcase, sz int) {
		c.emit(0x9d)
		c.setM(c.in[4], 8, g.popfVal())
	}})
	type cons struct {
		name  string
		build func(g *dgen, c *dcase)
	}
	conss := []cons{
		{"setcc", func(g *dgen, c *dcase) {
			g.modrm(c, &ms{op: []byte{0x0f, 0x90}, digit: 0, size: 1, cc: true})
		}},
		{"cmovcc", func(g *dgen, c *dcase) {
			g.modrm(c, &ms{op: []byte{0x0f, 0x40}, digit: -1, size: 2 << g.r.IntN(3), cc: true})
		}},
		{"jcc", func(g *dgen, c *dcase) {
			c.emit(0x70+byte(g.r.IntN(16)), 4)
			g.marker(c, markerReg(g, 0))
		}},
		{"adc", func(g *dgen, c *dcase) { g.modrm(c, &ms{op: []byte{0x11}, digit: -1, size: 2 << g.r.IntN(3)}) }},
		{"sbb", func(g *dgen, c *dcase) { g.modrm(c, &ms{op: []byte{0x19}, digit: -1, size: 2 << g.r.IntN(3)}) }},
	}
	for _, p := range prods {
		for _, cn := range conss {
			fs.add("pair "+p.name+"+"+cn.name, p.undef, func(g *dgen, c *dcase) {
				sizes := [4]int{1, 2, 4, 8}
				p.build(g, c, sizes[g.r.IntN(4)])
				cn.build(g, c)
			})
		}
	}
}

// strSetup points RSI and RDI into the window, keeps RCX small for REP and
// makes the compared strings partly equal.
func (g *dgen) strSetup(c *dcase, sz int, rep, a32 bool) {
	si := c.win + 256 + uint64(g.r.IntN(128))
	di := c.win + 640 + uint64(g.r.IntN(128))
	if a32 {
		c.in[6] = c.in[6]&^0xffffffff | si
		c.in[7] = c.in[7]&^0xffffffff | di
	} else {
		c.in[6], c.in[7] = si, di
	}
	if rep {
		n := uint64(g.r.IntN(17))
		if a32 {
			c.in[1] = c.in[1]&^0xffffffff | n
		} else {
			c.in[1] = n
		}
	}
	if g.r.IntN(2) == 0 {
		c.flags |= dDF
	}
	// Make the strings equal for a random prefix, with AL..RAX matching.
	eq := g.r.IntN(20) * sz
	lo := si
	ld := di
	if c.flags&dDF != 0 {
		lo -= uint64(eq)
		ld -= uint64(eq)
	}
	copy(c.mem[ld-c.win:ld-c.win+uint64(eq)+uint64(sz)], c.mem[lo-c.win:lo-c.win+uint64(eq)+uint64(sz)])
	if g.r.IntN(2) == 0 {
		c.setR(0, sz, c.getM(di, sz))
	}
}
