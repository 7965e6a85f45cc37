package interp

import (
	"fmt"

	"github.com/pvisor/pvisor/hv/cpu"
)

// ea computes the effective (linear) address of a memory operand.
func (c *CPU) ea(in *Inst) uint64 {
	a := c.r[in.base] + c.r[in.index]<<in.scale + uint64(int64(in.disp))
	if in.flags&(iRIPRel|iAddr32) != 0 {
		if in.flags&iRIPRel != 0 {
			a += c.rip
		}
		if in.flags&iAddr32 != 0 {
			a &= 0xffffffff
		}
	}
	return a + c.segBase[in.seg]
}

// getReg reads register n at size bytes, zero-extended. n in 16..19 names
// AH, CH, DH, BH.
func (c *CPU) getReg(n, size uint8) uint64 {
	switch size {
	case 8:
		return c.r[n]
	case 4:
		return c.r[n] & 0xffffffff
	case 2:
		return c.r[n] & 0xffff
	}
	if n >= 16 {
		return c.r[n-16] >> 8 & 0xff
	}
	return c.r[n] & 0xff
}

// setReg writes register n at size bytes: 32-bit writes zero the upper
// half, 8- and 16-bit writes merge.
func (c *CPU) setReg(n, size uint8, v uint64) {
	switch size {
	case 8:
		c.r[n] = v
	case 4:
		c.r[n] = v & 0xffffffff
	case 2:
		c.r[n] = c.r[n]&^0xffff | v&0xffff
	default:
		if n >= 16 {
			c.r[n-16] = c.r[n-16]&^0xff00 | (v&0xff)<<8
		} else {
			c.r[n] = c.r[n]&^0xff | v&0xff
		}
	}
}

func (c *CPU) readRM(in *Inst) uint64 {
	if in.flags&iMem != 0 {
		return c.readN(c.ea(in), in.size)
	}
	return c.getReg(in.rm, in.size)
}

func (c *CPU) writeRM(in *Inst, v uint64) {
	if in.flags&iMem != 0 {
		c.writeN(c.ea(in), in.size, v)
		return
	}
	c.setReg(in.rm, in.size, v)
}

// readRMSize reads the r/m operand at an explicit size.
func (c *CPU) readRMSize(in *Inst, size uint8) uint64 {
	if in.flags&iMem != 0 {
		return c.readN(c.ea(in), size)
	}
	return c.getReg(in.rm, size)
}

var internalSentinel = &sentinel{"internal"}

// internal stops the vCPU with ExitInternal: the guest did something the
// engine does not implement.
func (c *CPU) internal(format string, args ...any) {
	c.exit.Reason = cpu.ExitInternal
	c.exit.RIP = c.instStart
	c.exit.Message = fmt.Sprintf(format, args...)
	panic(internalSentinel)
}
