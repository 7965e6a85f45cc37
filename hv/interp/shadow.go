package interp

import "github.com/pvisor/pvisor/hv/cpu"

// The shadow-MMU model of trap mode (cpu.ShadowPageTables): page-table pages
// found by walks lose write permission in the soft TLB, and a guest write
// to one exits with ExitShadowFault before the instruction commits, as a
// write to a write-protected shadowed page faults into a shadow MMU.

// shadowTable marks the page-table page at physical address table,
// met during a walk, as shadowed. A page newly shadowed loses any cached
// write permission; a walk through a page already shadowed resets its
// write-flooding count.
func (c *CPU) shadowTable(table uint64) {
	p := table >> pageShift
	if p >= uint64(len(c.mem.ptab)) {
		return
	}
	if c.mem.ptab[p] == 0 {
		c.dropWrite(table &^ pageMask)
		c.shootWrite(false) // a model of exits: no need to wait for the others
	}
	c.mem.ptab[p] = 1
}

// shadowWrite is called on the slow path of a write to physical address
// pa. If pa is in a shadowed page-table page it exits with
// ExitShadowFault, unless the instruction is the one that exited for it
// last (it is being run again to complete). A page written
// ShadowFloodWrites times with no walk through it stops being shadowed.
func (c *CPU) shadowWrite(pa uint64) {
	p := pa >> pageShift
	if p >= uint64(len(c.mem.ptab)) || c.mem.ptab[p] == 0 || c.delivering != 0 || c.pc <= c.blkStart {
		return
	}
	seq := c.retired + uint64(c.pc-1-c.blkStart)
	if c.shadowOK && c.shadowRIP == c.instStart && c.shadowSeq == seq {
		return
	}
	// ptab is 1 + the trapped writes since the last walk through the page.
	if c.mem.ptab[p] > cpu.ShadowFloodWrites {
		c.mem.ptab[p] = 0
		return
	}
	c.mem.ptab[p]++
	c.shadowOK, c.shadowRIP, c.shadowSeq = true, c.instStart, seq
	c.exit.Reason = cpu.ExitShadowFault
	c.exit.Fault.Vector, c.exit.Fault.Error, c.exit.Fault.Addr = cpu.ExcPF, cpu.PFPresent|cpu.PFWrite, pa
	c.complete = compNone
	c.pendExc = excInfo{} // not a guest exception: an exit
	panic(mmioSentinel)
}

// dropWrite removes cached write permission to the physical page at base
// from every soft-TLB entry, so the next write to it takes the slow path
// (code pages, shadowed page tables).
func (c *CPU) dropWrite(base uint64) {
	for i := range c.tlb {
		if c.tlb[i].phys == base {
			c.tlb[i].perm &^= permWS | permWU
		}
	}
	for i := range c.gtlb {
		if c.gtlb[i].phys == base {
			c.gtlb[i].perm &^= permWS | permWU
		}
	}
}
