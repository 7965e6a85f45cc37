package interp

import "github.com/pvisor/pvisor/hv/cpu"

// RDMSR and WRMSR follow cpu.ReadMSR and cpu.WriteMSR, the one MSR model.
// Anything else is the hypervisor's: in modes where MSRs exit it decides;
// where they execute, it is #GP.

// msrState gathers the state the MSR model covers.
func (c *CPU) msrState() cpu.MSRState {
	return cpu.MSRState{EFER: c.efer, FSBase: c.segBase[1], GSBase: c.segBase[2], TSC: c.tscNow(), MSRs: c.msr}
}

// rdmsr returns the value of a known MSR.
func (c *CPU) rdmsr(idx uint32) (uint64, bool) {
	s := c.msrState()
	return cpu.ReadMSR(&s, idx)
}

// wrmsr writes a known MSR; ok is false for an unknown MSR, and a value
// the MSR refuses raises #GP.
func (c *CPU) wrmsr(idx uint32, v uint64) bool {
	s := c.msrState()
	switch cpu.WriteMSR(&s, idx, v) {
	case cpu.MSRUnknown:
		return false
	case cpu.MSRRefused:
		c.raise(cpu.ExcGP, 0)
	}
	c.setMSRState(idx, &s)
	return true
}

// setMSRState commits the state of a written MSR model back to the vCPU.
func (c *CPU) setMSRState(idx uint32, s *cpu.MSRState) {
	if (s.EFER^c.efer)&cpu.EFERNXE != 0 {
		c.flushTLB(true)
	}
	if idx == cpu.MSRTSC {
		c.SetTSC(s.TSC)
	}
	c.efer, c.segBase[1], c.segBase[2], c.msr = s.EFER, s.FSBase, s.GSBase, s.MSRs
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
