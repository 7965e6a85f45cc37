package interp

import (
	"github.com/pvisor/pvisor/hv/cpu"
)

// String instructions. REP forms run in bulk: for MOVS and STOS each chunk
// that stays inside one page of source and destination is done with a
// single copy on the host slice; every chunk boundary is a point where a
// fault leaves RSI/RDI/RCX exactly as the SDM's iteration would.

func (c *CPU) strAddr(in *Inst, reg int) uint64 {
	a := c.r[reg]
	if in.flags&iAddr32 != 0 {
		a &= 0xffffffff
	}
	return a
}

func (c *CPU) strAdvance(in *Inst, reg int, delta uint64) {
	if in.flags&iAddr32 != 0 {
		c.r[reg] = (c.r[reg] + delta) & 0xffffffff
		return
	}
	c.r[reg] += delta
}

func (c *CPU) strCount(in *Inst) uint64 {
	if in.flags&iAddr32 != 0 {
		return c.r[cpu.RCX] & 0xffffffff
	}
	return c.r[cpu.RCX]
}

func (c *CPU) strSetCount(in *Inst, n uint64) {
	if in.flags&iAddr32 != 0 {
		c.r[cpu.RCX] = n & 0xffffffff
		return
	}
	c.r[cpu.RCX] = n
}

func (c *CPU) strStep(size uint8) uint64 {
	if c.flags&cpu.FlagDF != 0 {
		return -uint64(size)
	}
	return uint64(size)
}

// repLimit caps the iterations done in one go so that the scheduler's
// budget and pending interrupts are looked at: a long REP is restartable.
const repLimit = 1 << 16

func opMOVS(c *CPU, in *Inst) {
	size := in.size
	step := c.strStep(size)
	if in.flags&(iRep|iRepne) == 0 {
		v := c.readN(c.strAddr(in, cpu.RSI)+c.segBase[in.seg], size)
		c.writeN(c.strAddr(in, cpu.RDI), size, v)
		c.strAdvance(in, cpu.RSI, step)
		c.strAdvance(in, cpu.RDI, step)
		return
	}
	n := c.strCount(in)
	done := 0
	for n > 0 {
		src := c.strAddr(in, cpu.RSI) + c.segBase[in.seg]
		dst := c.strAddr(in, cpu.RDI)
		// Bulk: forward, same page for the whole chunk on both sides.
		if c.flags&cpu.FlagDF == 0 && in.flags&iAddr32 == 0 {
			room := min(pageSize-src&pageMask, pageSize-dst&pageMask) / uint64(size)
			if k := min(room, n); k > 1 {
				ps := c.physFor(src, accRead)
				pd := c.physFor(dst, accWrite)
				bytes := k * uint64(size)
				if c.backed(ps, bytes) && c.backed(pd, bytes) {
					if pd > ps && pd < ps+bytes {
						// Overlapping forward copy: element by element below.
						goto single
					}
					if c.tlbWritable(dst) {
						copy(c.ram[pd:pd+bytes], c.ram[ps:ps+bytes])
					} else {
						for i := uint64(0); i < bytes; i++ {
							c.physWriteN(pd+i, 1, uint64(c.ram[ps+i]))
						}
					}
					c.r[cpu.RSI] += bytes
					c.r[cpu.RDI] += bytes
					n -= k
					c.strSetCount(in, n)
					done += int(k)
					if done >= repLimit || c.exitPending {
						break
					}
					continue
				}
			}
		}
	single:
		v := c.readN(src, size)
		c.writeN(dst, size, v)
		c.strAdvance(in, cpu.RSI, step)
		c.strAdvance(in, cpu.RDI, step)
		n--
		c.strSetCount(in, n)
		done++
		if done >= repLimit || c.exitPending {
			break
		}
	}
	if n > 0 {
		c.rip = c.instStart // resume later
	}
}

// tlbWritable reports whether the TLB holds a plain write permission for va
// (a page without decoded code).
func (c *CPU) tlbWritable(va uint64) bool {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	return e.tag == va&^pageMask^c.tlbKey && e.perm&c.wrMask != 0
}

func opSTOS(c *CPU, in *Inst) {
	size := in.size
	step := c.strStep(size)
	v := c.getReg(cpu.RAX, size)
	if in.flags&(iRep|iRepne) == 0 {
		c.writeN(c.strAddr(in, cpu.RDI), size, v)
		c.strAdvance(in, cpu.RDI, step)
		return
	}
	n := c.strCount(in)
	done := 0
	for n > 0 {
		dst := c.strAddr(in, cpu.RDI)
		if c.flags&cpu.FlagDF == 0 && in.flags&iAddr32 == 0 && dst&uint64(size-1) == 0 {
			room := (pageSize - dst&pageMask) / uint64(size)
			if k := min(room, n); k > 1 {
				pd := c.physFor(dst, accWrite)
				bytes := k * uint64(size)
				if c.backed(pd, bytes) && c.tlbWritable(dst) {
					p := c.ram[pd : pd+bytes]
					if v == 0 {
						clear(p)
					} else {
						for i := uint64(0); i < bytes; i += uint64(size) {
							putN(p[i:], size, v)
						}
					}
					c.r[cpu.RDI] += bytes
					n -= k
					c.strSetCount(in, n)
					done += int(k)
					if done >= repLimit {
						break
					}
					continue
				}
			}
		}
		c.writeN(dst, size, v)
		c.strAdvance(in, cpu.RDI, step)
		n--
		c.strSetCount(in, n)
		done++
		if done >= repLimit || c.exitPending {
			break
		}
	}
	if n > 0 {
		c.rip = c.instStart
	}
}

func putN(p []byte, size uint8, v uint64) {
	for i := uint8(0); i < size; i++ {
		p[i] = byte(v >> (8 * i))
	}
}

func opLODS(c *CPU, in *Inst) {
	size := in.size
	step := c.strStep(size)
	if in.flags&(iRep|iRepne) == 0 {
		c.setReg(cpu.RAX, size, c.readN(c.strAddr(in, cpu.RSI)+c.segBase[in.seg], size))
		c.strAdvance(in, cpu.RSI, step)
		return
	}
	n := c.strCount(in)
	for done := 0; n > 0 && done < repLimit; done++ {
		c.setReg(cpu.RAX, size, c.readN(c.strAddr(in, cpu.RSI)+c.segBase[in.seg], size))
		c.strAdvance(in, cpu.RSI, step)
		n--
		c.strSetCount(in, n)
	}
	if n > 0 {
		c.rip = c.instStart
	}
}

// opCMPS and opSCAS: REPE/REPNE stop on the ZF condition.
func opCMPS(c *CPU, in *Inst) {
	size := in.size
	step := c.strStep(size)
	rep := in.flags & (iRep | iRepne)
	if rep == 0 {
		a := c.readN(c.strAddr(in, cpu.RSI)+c.segBase[in.seg], size)
		b := c.readN(c.strAddr(in, cpu.RDI), size)
		c.alu(aluCMP, size, a, b)
		c.strAdvance(in, cpu.RSI, step)
		c.strAdvance(in, cpu.RDI, step)
		return
	}
	n := c.strCount(in)
	for done := 0; n > 0; done++ {
		if done >= repLimit {
			c.rip = c.instStart
			return
		}
		a := c.readN(c.strAddr(in, cpu.RSI)+c.segBase[in.seg], size)
		b := c.readN(c.strAddr(in, cpu.RDI), size)
		c.alu(aluCMP, size, a, b)
		c.strAdvance(in, cpu.RSI, step)
		c.strAdvance(in, cpu.RDI, step)
		n--
		c.strSetCount(in, n)
		if (rep == iRep) != (a == b) {
			return
		}
	}
}

func opSCAS(c *CPU, in *Inst) {
	size := in.size
	step := c.strStep(size)
	rep := in.flags & (iRep | iRepne)
	acc := c.getReg(cpu.RAX, size)
	if rep == 0 {
		b := c.readN(c.strAddr(in, cpu.RDI), size)
		c.alu(aluCMP, size, acc, b)
		c.strAdvance(in, cpu.RDI, step)
		return
	}
	n := c.strCount(in)
	for done := 0; n > 0; done++ {
		if done >= repLimit {
			c.rip = c.instStart
			return
		}
		b := c.readN(c.strAddr(in, cpu.RDI), size)
		c.alu(aluCMP, size, acc, b)
		c.strAdvance(in, cpu.RDI, step)
		n--
		c.strSetCount(in, n)
		if (rep == iRep) != (acc == b) {
			return
		}
	}
}

func init() {
	// String ops end a block: a REP may stop part-way and resume.
	movs, stos, lods := defOp("movs", true, opMOVS), defOp("stos", true, opSTOS), defOp("lods", true, opLODS)
	cmps, scas := defOp("cmps", true, opCMPS), defOp("scas", true, opSCAS)
	set1(0xa4, fByte, movs)
	set1(0xa5, 0, movs)
	set1(0xa6, fByte, cmps)
	set1(0xa7, 0, cmps)
	set1(0xaa, fByte, stos)
	set1(0xab, 0, stos)
	set1(0xac, fByte, lods)
	set1(0xad, 0, lods)
	set1(0xae, fByte, scas)
	set1(0xaf, 0, scas)
}
