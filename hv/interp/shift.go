package interp

import (
	"math/bits"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Group 2 shifts and rotates. Flags follow the SDM; where the SDM leaves OF
// undefined (counts above 1) the engine computes it as for a count of 1 on
// the last step, and the differential tests mask it.

const (
	shROL = iota
	shROR
	shRCL
	shRCR
	shSHL
	shSHR
	shSAL
	shSAR
)

// shift computes the group-2 operation kind on a with count (already masked)
// and sets the flags. A zero count changes nothing.
func (c *CPU) shift(kind int, size uint8, a uint64, count uint) uint64 {
	if count == 0 {
		return a
	}
	bitsN := uint(size) * 8
	m := sizeMask[size]
	a &= m
	var r, cf, of uint64
	msb := func(v uint64) uint64 { return v >> (bitsN - 1) & 1 }
	switch kind {
	case shROL:
		n := count % bitsN
		r = (a<<n | a>>((bitsN-n)%bitsN)) & m
		if n == 0 {
			r = a
		}
		cf = r & 1
		of = msb(r) ^ cf
		c.commitFlags()
		c.flags = c.flags&^(cpu.FlagCF|cpu.FlagOF) | cf | of<<11
		return r
	case shROR:
		n := count % bitsN
		r = (a>>n | a<<((bitsN-n)%bitsN)) & m
		if n == 0 {
			r = a
		}
		cf = msb(r)
		of = msb(r) ^ (r >> (bitsN - 2) & 1)
		c.commitFlags()
		c.flags = c.flags&^(cpu.FlagCF|cpu.FlagOF) | cf | of<<11
		return r
	case shRCL, shRCR:
		// Rotate through carry: a (size+1)-bit rotation.
		n := count
		if size == 1 {
			n %= 9
		} else if size == 2 {
			n %= 17
		}
		c.commitFlags()
		carry := c.flags & cpu.FlagCF
		r = a
		for i := uint(0); i < n; i++ {
			if kind == shRCL {
				out := msb(r)
				r = (r<<1 | carry) & m
				carry = out
			} else {
				out := r & 1
				r = r>>1 | carry<<(bitsN-1)
				carry = out
			}
		}
		if kind == shRCL {
			of = msb(r) ^ carry
		} else {
			of = msb(r) ^ (r >> (bitsN - 2) & 1)
		}
		c.flags = c.flags&^(cpu.FlagCF|cpu.FlagOF) | carry | of<<11
		return r
	case shSHL, shSAL:
		if count > bitsN {
			r, cf = 0, 0
		} else {
			r = a << count & m
			cf = a >> (bitsN - count) & 1
		}
		of = msb(r) ^ cf
	case shSHR:
		if count > bitsN {
			r, cf = 0, 0
		} else {
			r = a >> count
			cf = a >> (count - 1) & 1
		}
		of = msb(a)
	case shSAR:
		s := int64(a<<(64-bitsN)) >> (64 - bitsN)
		if count >= bitsN {
			r = uint64(s>>63) & m
			cf = uint64(s>>63) & 1
		} else {
			r = uint64(s>>count) & m
			cf = uint64(s>>(count-1)) & 1
		}
		of = 0
	}
	aux := cf
	if of != 0 {
		aux |= auxOF
	}
	c.setRes(size, r, aux)
	return r
}

func shiftOp(src int) handler {
	return func(c *CPU, in *Inst) {
		var count uint
		switch src {
		case 0:
			count = 1
		case 1:
			count = uint(c.r[cpu.RCX] & 0xff)
		default:
			count = uint(in.imm & 0xff)
		}
		if in.size == 8 {
			count &= 63
		} else {
			count &= 31
		}
		kind := int(in.reg & 7)
		if in.flags&iMem != 0 {
			addr := c.ea(in)
			a := c.readN(addr, in.size)
			c.writeN(addr, in.size, c.shift(kind, in.size, a, count))
			return
		}
		c.setReg(in.rm, in.size, c.shift(kind, in.size, c.getReg(in.rm, in.size), count))
	}
}

func init() {
	one, cl, imm := defOp("shift E,1", false, shiftOp(0)), defOp("shift E,CL", false, shiftOp(1)), defOp("shift E,Ib", false, shiftOp(2))
	for reg := 0; reg < 8; reg++ {
		setG(&table1, 0xd0, pNone, reg, fByte, one)
		setG(&table1, 0xd1, pNone, reg, 0, one)
		setG(&table1, 0xd2, pNone, reg, fByte, cl)
		setG(&table1, 0xd3, pNone, reg, 0, cl)
		setG(&table1, 0xc0, pNone, reg, fByte|fIbU, imm)
		setG(&table1, 0xc1, pNone, reg, fIbU, imm)
	}
	// SHLD/SHRD
	shd := func(left, useCL bool) handler {
		return func(c *CPU, in *Inst) {
			count := uint(in.imm & 0xff)
			if useCL {
				count = uint(c.r[cpu.RCX] & 0xff)
			}
			if in.size == 8 {
				count &= 63
			} else {
				count &= 31
			}
			var addr, a uint64
			if in.flags&iMem != 0 {
				addr = c.ea(in)
				a = c.readN(addr, in.size)
			} else {
				a = c.getReg(in.rm, in.size)
			}
			if count == 0 {
				if in.flags&iMem == 0 {
					c.setReg(in.rm, in.size, a) // a 32-bit destination is still zero-extended
				}
				return
			}
			b := c.getReg(in.reg, in.size)
			bitsN := uint(in.size) * 8
			var r, cf uint64
			if in.size == 2 && count > 16 {
				// Undefined result; compute through a 48-bit concatenation as AMD does.
				count16 := count
				wide := a<<32 | b<<16 | a
				if left {
					r = (wide << count16 >> 32) & 0xffff
					cf = (wide << (count16 - 1) >> 47) & 1
				} else {
					wide = a | b<<16 | a<<32
					r = (wide >> count16) & 0xffff
					cf = (wide >> (count16 - 1)) & 1
				}
			} else if left {
				r = (a<<count | b>>(bitsN-count)) & sizeMask[in.size]
				cf = a >> (bitsN - count) & 1
			} else {
				r = (a>>count | b<<(bitsN-count)) & sizeMask[in.size]
				cf = a >> (count - 1) & 1
			}
			of := (r ^ a) >> (bitsN - 1) & 1
			aux := cf
			if of != 0 {
				aux |= auxOF
			}
			c.setRes(in.size, r, aux)
			if in.flags&iMem != 0 {
				c.writeN(addr, in.size, r)
			} else {
				c.setReg(in.rm, in.size, r)
			}
		}
	}
	set2(0xa4, fModRM|fIbU, defOp("shld Ib", false, shd(true, false)))
	set2(0xa5, fModRM, defOp("shld CL", false, shd(true, true)))
	set2(0xac, fModRM|fIbU, defOp("shrd Ib", false, shd(false, false)))
	set2(0xad, fModRM, defOp("shrd CL", false, shd(false, true)))

	// Bit tests.
	bt := func(kind int, immForm bool) handler {
		return func(c *CPU, in *Inst) {
			bitsN := uint64(in.size) * 8
			var off uint64
			if immForm {
				off = in.imm & (bitsN - 1)
			} else {
				off = c.getReg(in.reg, in.size)
			}
			var addr, v uint64
			if in.flags&iMem != 0 {
				addr = c.ea(in)
				if !immForm {
					// A register bit offset is signed and may address beyond
					// the operand.
					soff := sext(off, in.size)
					addr += uint64(soff>>(3+bits.TrailingZeros64(bitsN/8))) * (bitsN / 8)
				}
				off &= bitsN - 1
				v = c.readN(addr, in.size)
			} else {
				off &= bitsN - 1
				v = c.getReg(in.rm, in.size)
			}
			c.commitFlags()
			cf := v >> off & 1
			c.flags = c.flags&^cpu.FlagCF | cf
			var r uint64
			switch kind {
			case 0:
				return
			case 1: // BTS
				r = v | 1<<off
			case 2: // BTR
				r = v &^ (1 << off)
			default: // BTC
				r = v ^ 1<<off
			}
			if in.flags&iMem != 0 {
				c.writeN(addr, in.size, r)
			} else {
				c.setReg(in.rm, in.size, r)
			}
		}
	}
	set2(0xa3, fModRM, defOp("bt", false, bt(0, false)))
	set2(0xab, fModRM, lockableOp(defOp("bts", false, bt(1, false)), false))
	set2(0xb3, fModRM, lockableOp(defOp("btr", false, bt(2, false)), false))
	set2(0xbb, fModRM, lockableOp(defOp("btc", false, bt(3, false)), false))
	for k := 0; k < 4; k++ {
		setG(&table2, 0xba, pNone, 4+k, fIbU, lockableOp(defOp("bt* Ib", false, bt(k, true)), false))
	}

	// BSF/BSR. Without BMI1/ABM advertised, F3 0F BC/BD execute as BSF/BSR.
	bsf := defOp("bsf", false, func(c *CPU, in *Inst) {
		v := c.readRM(in)
		c.commitFlags()
		if v == 0 {
			c.flags |= cpu.FlagZF
			return // destination unchanged (AMD documents it, Intel does it)
		}
		c.flags &^= cpu.FlagZF
		c.setReg(in.reg, in.size, uint64(bits.TrailingZeros64(v)))
	})
	bsr := defOp("bsr", false, func(c *CPU, in *Inst) {
		v := c.readRM(in)
		c.commitFlags()
		if v == 0 {
			c.flags |= cpu.FlagZF
			return
		}
		c.flags &^= cpu.FlagZF
		c.setReg(in.reg, in.size, uint64(63-bits.LeadingZeros64(v)))
	})
	set2(0xbc, fModRM, bsf)
	set2(0xbd, fModRM, bsr)

	// IMUL two- and three-operand forms.
	set2(0xaf, fModRM, defOp("imul Gv,Ev", false, func(c *CPU, in *Inst) {
		imulTrunc(c, in, sext(c.getReg(in.reg, in.size), in.size), sext(c.readRM(in), in.size))
	}))
	imul3 := defOp("imul Gv,Ev,I", false, func(c *CPU, in *Inst) {
		imulTrunc(c, in, sext(c.readRM(in), in.size), sext(in.imm, in.size))
	})
	set1(0x69, fModRM|fIz, imul3)
	set1(0x6b, fModRM|fIb, imul3)

	// CMPXCHG, XADD, CMPXCHG8B/16B.
	cmpxchg := lockableOp(defOp("cmpxchg", false, func(c *CPU, in *Inst) {
		acc := c.getReg(cpu.RAX, in.size)
		var addr, v uint64
		if in.flags&iMem != 0 {
			addr = c.ea(in)
			v = c.readN(addr, in.size)
		} else {
			v = c.getReg(in.rm, in.size)
		}
		c.alu(aluCMP, in.size, acc, v)
		if acc == v {
			src := c.getReg(in.reg, in.size)
			if in.flags&iMem != 0 {
				c.writeN(addr, in.size, src)
			} else {
				c.setReg(in.rm, in.size, src)
			}
			return
		}
		if in.flags&iMem != 0 {
			c.writeN(addr, in.size, v) // the processor always writes back
		}
		c.setReg(cpu.RAX, in.size, v)
	}), false)
	set2(0xb0, fModRM|fByte, cmpxchg)
	set2(0xb1, fModRM, cmpxchg)
	xadd := lockableOp(defOp("xadd", false, func(c *CPU, in *Inst) {
		src := c.getReg(in.reg, in.size)
		var addr, v uint64
		if in.flags&iMem != 0 {
			addr = c.ea(in)
			v = c.readN(addr, in.size)
		} else {
			v = c.getReg(in.rm, in.size)
		}
		r := c.alu(aluADD, in.size, v, src)
		if in.flags&iMem != 0 {
			c.writeN(addr, in.size, r)
			c.setReg(in.reg, in.size, v)
		} else {
			c.setReg(in.reg, in.size, v)
			c.setReg(in.rm, in.size, r)
		}
	}), false)
	set2(0xc0, fModRM|fByte, xadd)
	set2(0xc1, fModRM, xadd)
	setG(&table2, 0xc7, pNone, 1, fMemOnly, lockableOp(defOp("cmpxchg8b/16b", false, func(c *CPU, in *Inst) {
		addr := c.ea(in)
		c.commitFlags()
		if in.size == 8 {
			if addr&15 != 0 {
				c.raise(cpu.ExcGP, 0)
			}
			lo, hi := c.read64(addr), c.read64(addr+8)
			if lo == c.r[cpu.RAX] && hi == c.r[cpu.RDX] {
				c.checkWrite(addr, 16)
				c.write64(addr, c.r[cpu.RBX])
				c.write64(addr+8, c.r[cpu.RCX])
				c.flags |= cpu.FlagZF
			} else {
				c.checkWrite(addr, 16)
				c.write64(addr, lo)
				c.write64(addr+8, hi)
				c.r[cpu.RAX], c.r[cpu.RDX] = lo, hi
				c.flags &^= cpu.FlagZF
			}
			return
		}
		v := c.read64(addr)
		cmp := c.r[cpu.RDX]&0xffffffff<<32 | c.r[cpu.RAX]&0xffffffff
		if v == cmp {
			c.write64(addr, c.r[cpu.RCX]&0xffffffff<<32|c.r[cpu.RBX]&0xffffffff)
			c.flags |= cpu.FlagZF
		} else {
			c.write64(addr, v)
			c.r[cpu.RAX], c.r[cpu.RDX] = v&0xffffffff, v>>32
			c.flags &^= cpu.FlagZF
		}
	}), true))
}
