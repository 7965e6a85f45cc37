package interp

import "github.com/pvisor/pvisor/hv/cpu"

// MSRs the engine implements itself. Anything else is the hypervisor's:
// in modes where MSRs exit it decides; where they execute, it is #GP.

// rdmsr returns the value of a known MSR.
func (c *CPU) rdmsr(idx uint32) (uint64, bool) {
	switch idx {
	case cpu.MSREFER:
		return c.efer, true
	case cpu.MSRSTAR:
		return c.msr.STAR, true
	case cpu.MSRLSTAR:
		return c.msr.LSTAR, true
	case cpu.MSRCSTAR:
		return c.msr.CSTAR, true
	case cpu.MSRSFMASK:
		return c.msr.SFMASK, true
	case cpu.MSRFSBase:
		return c.segBase[1], true
	case cpu.MSRGSBase:
		return c.segBase[2], true
	case cpu.MSRKernelGSBase:
		return c.msr.KernelGSBase, true
	case cpu.MSRTSC:
		return c.tscNow(), true
	case cpu.MSRPAT:
		return c.msr.PAT, true
	case cpu.MSRSysenterCS:
		return c.msr.SysenterCS, true
	case cpu.MSRSysenterESP:
		return c.msr.SysenterESP, true
	case cpu.MSRSysenterEIP:
		return c.msr.SysenterEIP, true
	case cpu.MSRTSCAux:
		return c.msr.TSCAux, true
	}
	return 0, false
}

// wrmsr writes a known MSR; ok is false for an unknown MSR, and a value
// the MSR refuses raises #GP.
func (c *CPU) wrmsr(idx uint32, v uint64) bool {
	canon := func() {
		if !canonical(v) {
			c.raise(cpu.ExcGP, 0)
		}
	}
	switch idx {
	case cpu.MSREFER:
		const allowed = cpu.EFERSCE | cpu.EFERLME | cpu.EFERLMA | cpu.EFERNXE
		if v&^allowed != 0 {
			c.raise(cpu.ExcGP, 0)
		}
		if v&cpu.EFERLME == 0 {
			c.internal("clearing EFER.LME (leaving long mode) is not supported")
		}
		if (v^c.efer)&cpu.EFERNXE != 0 {
			c.flushTLB(true)
		}
		c.efer = v | cpu.EFERLMA
	case cpu.MSRSTAR:
		c.msr.STAR = v
	case cpu.MSRLSTAR:
		canon()
		c.msr.LSTAR = v
	case cpu.MSRCSTAR:
		canon()
		c.msr.CSTAR = v
	case cpu.MSRSFMASK:
		c.msr.SFMASK = v & 0xffffffff
	case cpu.MSRFSBase:
		canon()
		c.segBase[1] = v
	case cpu.MSRGSBase:
		canon()
		c.segBase[2] = v
	case cpu.MSRKernelGSBase:
		canon()
		c.msr.KernelGSBase = v
	case cpu.MSRTSC:
		c.tsc = v - (c.tscNow() - c.tsc)
	case cpu.MSRPAT:
		for i := 0; i < 8; i++ {
			switch (v >> (8 * i)) & 0xff {
			case 0, 1, 4, 5, 6, 7:
			default:
				c.raise(cpu.ExcGP, 0)
			}
		}
		c.msr.PAT = v
	case cpu.MSRSysenterCS:
		c.msr.SysenterCS = v
	case cpu.MSRSysenterESP:
		canon()
		c.msr.SysenterESP = v
	case cpu.MSRSysenterEIP:
		canon()
		c.msr.SysenterEIP = v
	case cpu.MSRTSCAux:
		c.msr.TSCAux = v & 0xffffffff
	default:
		return false
	}
	return true
}

func opRDMSR(c *CPU, in *Inst) {
	c.needCPL0()
	if c.sensitive(cpu.ClassRDMSR) {
		return
	}
	idx := uint32(c.r[cpu.RCX])
	v, ok := c.rdmsr(idx)
	if c.classAction(cpu.ClassRDMSR) == cpu.ActExit {
		c.exit.MSR.Index, c.exit.MSR.Write, c.exit.MSR.Value, c.exit.MSR.Known = idx, false, v, ok
		c.setExit(cpu.ExitMSR, compRDMSR)
		return
	}
	if !ok {
		c.raise(cpu.ExcGP, 0)
	}
	c.r[cpu.RAX], c.r[cpu.RDX] = v&0xffffffff, v>>32
}

func opWRMSR(c *CPU, in *Inst) {
	c.needCPL0()
	if c.sensitive(cpu.ClassWRMSR) {
		return
	}
	idx := uint32(c.r[cpu.RCX])
	v := c.r[cpu.RDX]<<32 | c.r[cpu.RAX]&0xffffffff
	ok := c.wrmsr(idx, v)
	if c.classAction(cpu.ClassWRMSR) == cpu.ActExit {
		c.exit.MSR.Index, c.exit.MSR.Write, c.exit.MSR.Value, c.exit.MSR.Known = idx, true, v, ok
		c.setExit(cpu.ExitMSR, compNone)
		return
	}
	if !ok {
		c.raise(cpu.ExcGP, 0)
	}
}
