package interp

import (
	"github.com/pvisor/pvisor/hv/cpu"
)

// System instructions. Each sensitive instruction consults cpu.ExitTable
// for the vCPU's mode through classAction; the table, not these handlers,
// decides what exits.

func (c *CPU) classAction(cl cpu.Class) cpu.Action { return cpu.ExitTable[c.mode][cl] }

// needCPL0 raises #GP(0) outside ring 0.
func (c *CPU) needCPL0() {
	if c.cpl != 0 {
		c.raise(cpu.ExcGP, 0)
	}
}

// sensitive applies the exit table to a privileged instruction of class cl.
// It returns true if the instruction has been handed to the hypervisor as
// ExitPrivileged (RIP rewound to it); the handler must then return.
func (c *CPU) sensitive(cl cpu.Class) bool {
	if c.classAction(cl) != cpu.ActPrivileged {
		return false
	}
	c.rip = c.instStart
	n := uint64(c.insts[c.pc-1].len)
	for i := uint64(0); i < n; i++ {
		pa := c.physFor(c.instStart+i, accFetch)
		if c.backed(pa, 1) {
			c.exit.Inst[i] = c.ram[pa]
		}
	}
	c.exit.InstLen = uint8(n)
	c.pc-- // the instruction did not retire: the block's count stops before it
	c.setExit(cpu.ExitPrivileged, compNone)
	return true
}

// tscNow is the virtual TSC: it advances with retired instructions, or
// with the VM's clock (Config.TSCClock).
func (c *CPU) tscNow() uint64 {
	if c.tscClock != nil {
		return c.tsc + uint64(c.tscClock.Now())
	}
	return c.tsc + (c.retired+uint64(c.pc-c.blkStart))*c.tscScale
}

// TSC returns the vCPU's current TSC value.
func (c *CPU) TSC() uint64 { return c.tscNow() }

// SetTSC implements cpu.VCPU.
func (c *CPU) SetTSC(v uint64) { c.tsc = v - (c.tscNow() - c.tsc) }

func init() {
	set1(0xf4, 0, defOp("hlt", true, func(c *CPU, in *Inst) {
		c.needCPL0()
		if c.sensitive(cpu.ClassHLT) {
			return
		}
		c.setExit(cpu.ExitHLT, compNone)
	}))
	set1(0xfa, 0, defOp("cli", false, func(c *CPU, in *Inst) {
		if uint64(c.cpl) > (c.flags&cpu.FlagIOPL)>>12 {
			c.raise(cpu.ExcGP, 0)
		}
		c.flags &^= cpu.FlagIF
	}))
	set1(0xfb, 0, defOp("sti", true, func(c *CPU, in *Inst) {
		if uint64(c.cpl) > (c.flags&cpu.FlagIOPL)>>12 {
			c.raise(cpu.ExcGP, 0)
		}
		if c.flags&cpu.FlagIF == 0 {
			c.flags |= cpu.FlagIF
			c.shadow = true
			c.updateEvents()
		}
	}))
	set2(0xa2, 0, defOp("cpuid", false, func(c *CPU, in *Inst) {
		leaf, sub := uint32(c.r[cpu.RAX]), uint32(c.r[cpu.RCX])
		if c.sensitive(cpu.ClassCPUID) {
			return
		}
		a, b, cc, d := cpu.CPUIDWith(leaf, sub, c.id, c.cpuid)
		if c.classAction(cpu.ClassCPUID) == cpu.ActExit {
			c.exit.CPUID.Leaf, c.exit.CPUID.Sub = leaf, sub
			c.exit.CPUID.EAX, c.exit.CPUID.EBX, c.exit.CPUID.ECX, c.exit.CPUID.EDX = a, b, cc, d
			c.setExit(cpu.ExitCPUID, compCPUID)
			return
		}
		c.r[cpu.RAX], c.r[cpu.RBX], c.r[cpu.RCX], c.r[cpu.RDX] = uint64(a), uint64(b), uint64(cc), uint64(d)
	}))
	set2(0x31, 0, defOp("rdtsc", false, func(c *CPU, in *Inst) {
		if c.cr4&cpu.CR4TSD != 0 && c.cpl != 0 {
			c.raise(cpu.ExcGP, 0)
		}
		if c.sensitive(cpu.ClassRDTSC) {
			return
		}
		t := c.tscNow()
		c.r[cpu.RAX], c.r[cpu.RDX] = t&0xffffffff, t>>32
	}))
	set2(0x33, 0, defOp("rdpmc", false, func(c *CPU, in *Inst) {
		if c.cpl != 0 && c.cr4&cpu.CR4PCE == 0 {
			c.raise(cpu.ExcGP, 0)
		}
		if c.sensitive(cpu.ClassRDPMC) {
			return
		}
		c.raise(cpu.ExcGP, 0) // no performance counters are advertised
	}))
	set2(0x32, 0, defOp("rdmsr", false, opRDMSR))
	set2(0x30, 0, defOp("wrmsr", true, opWRMSR))
	set2(0x20, fModRM|fForce64, defOp("mov r,cr", false, opMovFromCR))
	set2(0x22, fModRM|fForce64, defOp("mov cr,r", true, opMovToCR))
	set2(0x21, fModRM|fForce64, defOp("mov r,dr", false, func(c *CPU, in *Inst) {
		c.needCPL0()
		if c.sensitive(cpu.ClassDRAccess) {
			return
		}
		c.r[in.rm] = c.dr[in.reg&7]
	}))
	set2(0x23, fModRM|fForce64, defOp("mov dr,r", false, func(c *CPU, in *Inst) {
		c.needCPL0()
		if c.sensitive(cpu.ClassDRAccess) {
			return
		}
		c.dr[in.reg&7] = c.r[in.rm]
	}))
	set2(0x06, 0, defOp("clts", false, func(c *CPU, in *Inst) {
		c.needCPL0()
		if c.sensitive(cpu.ClassCR0Write) {
			return
		}
		c.cr0 &^= cpu.CR0TS
		c.cr0WriteExit()
	}))
	cache := defOp("wbinvd", false, func(c *CPU, in *Inst) {
		c.needCPL0()
		c.sensitive(cpu.ClassCacheCtl)
	})
	set2(0x08, 0, cache)
	set2(0x09, 0, cache)

	// Group 7 (0F 01).
	setG(&table2, 0x01, pNone, 0, fMemOnly, defOp("sgdt", false, func(c *CPU, in *Inst) { c.storeDT(in, c.gdt) }))
	setG(&table2, 0x01, pNone, 1, fMemOnly, defOp("sidt", false, func(c *CPU, in *Inst) { c.storeDT(in, c.idt) }))
	setG(&table2, 0x01, pNone, 2, fMemOnly, defOp("lgdt", false, func(c *CPU, in *Inst) { c.loadDT(in, &c.gdt) }))
	setG(&table2, 0x01, pNone, 3, fMemOnly, defOp("lidt", false, func(c *CPU, in *Inst) { c.loadDT(in, &c.idt) }))
	setG(&table2, 0x01, pNone, 4, 0, defOp("smsw", false, func(c *CPU, in *Inst) {
		if c.cr4&cpu.CR4UMIP != 0 && c.cpl != 0 {
			c.raise(cpu.ExcGP, 0)
		}
		if c.cpl == 0 && c.sensitive(cpu.ClassDescStore) {
			return
		}
		if in.flags&iMem != 0 {
			c.write16(c.ea(in), uint16(c.cr0))
		} else {
			c.setReg(in.rm, in.size, c.cr0)
		}
	}))
	setG(&table2, 0x01, pNone, 6, 0, defOp("lmsw", true, func(c *CPU, in *Inst) {
		c.needCPL0()
		v := c.readRMSize(in, 2)
		if c.sensitive(cpu.ClassCR0Write) {
			return
		}
		// LMSW sets PE, MP, EM, TS; it cannot clear PE.
		c.cr0 = c.cr0&^0xe | v&0xf | c.cr0&cpu.CR0PE
		c.cr0WriteExit()
	}))
	setG(&table2, 0x01, pNone, 7, fMemOnly, defOp("invlpg", true, func(c *CPU, in *Inst) {
		c.needCPL0()
		if c.sensitive(cpu.ClassINVLPG) {
			return
		}
		c.flushTLBPage(c.ea(in))
	}))
	vmcall := defOp("vmcall", true, opVMCALL)
	setM3(&table2, 0x01, pNone, 0<<3|1, vmcall) // 0F 01 C1
	setM3(&table2, 0x01, pNone, 3<<3|1, vmcall) // 0F 01 D9 (VMMCALL)
	setM3(&table2, 0x01, pNone, 7<<3|0, defOp("swapgs", false, func(c *CPU, in *Inst) {
		if c.cpl != 0 {
			c.raise(cpu.ExcGP, 0)
		}
		c.segBase[2], c.msr.KernelGSBase = c.msr.KernelGSBase, c.segBase[2]
	}))
	// Forms that exist on real CPUs but are not advertised: #UD.
	for _, regrm := range []int{1<<3 | 0, 1<<3 | 1, 1<<3 | 2, 1<<3 | 3, 2<<3 | 0, 2<<3 | 1, 5<<3 | 0, 5<<3 | 6, 5<<3 | 7, 7<<3 | 1} {
		setM3(&table2, 0x01, pNone, regrm, defOp("0f01 unadvertised", true, opUD))
	}

	// Group 6 (0F 00).
	setG(&table2, 0x00, pNone, 0, 0, defOp("sldt", false, func(c *CPU, in *Inst) { c.storeSel(in, c.sreg[segLDT].Selector) }))
	setG(&table2, 0x00, pNone, 1, 0, defOp("str", false, func(c *CPU, in *Inst) { c.storeSel(in, c.sreg[segTR].Selector) }))
	setG(&table2, 0x00, pNone, 2, 0, defOp("lldt", true, opLLDT))
	setG(&table2, 0x00, pNone, 3, 0, defOp("ltr", true, opLTR))

	set2(0x05, 0, defOp("syscall", true, opSYSCALL))
	set2(0x07, 0, defOp("sysret", true, opSYSRET))

	// Port I/O.
	io := defOp("in/out", true, opIO)
	set1(0xe4, fByte|fIbU, io)
	set1(0xe5, fIbU, io)
	set1(0xe6, fByte|fIbU, io)
	set1(0xe7, fIbU, io)
	set1(0xec, fByte, io)
	set1(0xed, 0, io)
	set1(0xee, fByte, io)
	set1(0xef, 0, io)
	ios := defOp("ins/outs", true, opIOString)
	set1(0x6c, fByte, ios)
	set1(0x6d, 0, ios)
	set1(0x6e, fByte, ios)
	set1(0x6f, 0, ios)

	// Segment registers.
	set1(0x8c, fModRM, defOp("mov E,sreg", false, func(c *CPU, in *Inst) {
		r := int(in.reg & 7)
		if r > segGS {
			c.raise(cpu.ExcUD, noErr)
		}
		sel := uint64(c.sreg[r].Selector)
		if in.flags&iMem != 0 {
			c.write16(c.ea(in), uint16(sel))
			return
		}
		c.setReg(in.rm, in.size, sel)
	}))
	set1(0x8e, fModRM, defOp("mov sreg,E", true, func(c *CPU, in *Inst) {
		r := int(in.reg & 7)
		if r == segCS || r > segGS {
			c.raise(cpu.ExcUD, noErr)
		}
		c.loadDataSegment(r, uint16(c.readRMSize(in, 2)))
		if r == segSS {
			c.shadow = true
			c.updateEvents()
		}
	}))
	pushSeg := func(r int) handler {
		return func(c *CPU, in *Inst) { c.pushSized(in.size, uint64(c.sreg[r].Selector)) }
	}
	popSeg := func(r int) handler {
		return func(c *CPU, in *Inst) {
			v := c.readN(c.r[cpu.RSP], in.size)
			c.loadDataSegment(r, uint16(v))
			c.r[cpu.RSP] += uint64(in.size)
		}
	}
	set2(0xa0, fDef64, defOp("push fs", false, pushSeg(segFS)))
	set2(0xa8, fDef64, defOp("push gs", false, pushSeg(segGS)))
	set2(0xa1, fDef64, defOp("pop fs", false, popSeg(segFS)))
	set2(0xa9, fDef64, defOp("pop gs", false, popSeg(segGS)))

	// Fences and cache-line flush (0F AE). The host keeps x86-TSO for
	// plain accesses, so LFENCE and SFENCE order nothing more; MFENCE
	// also orders a store before a later load, which takes a host fence.
	fence := defOp("fence", false, func(c *CPU, in *Inst) {})
	setM3Reg(&table2, 0xae, pNone, 5, fence)
	setM3Reg(&table2, 0xae, pNone, 6, defOp("mfence", false, func(c *CPU, in *Inst) { c.hostFence() }))
	setM3Reg(&table2, 0xae, pNone, 7, fence)
	setG(&table2, 0xae, pNone, 7, 0, defOp("clflush", false, func(c *CPU, in *Inst) {
		c.readN(c.ea(in), 1) // faults like a read
	}))
}

// cr0WriteExit reports a CR0 write by CLTS or LMSW as ExitCR where the
// exit table asks for it (the write has been applied).
func (c *CPU) cr0WriteExit() {
	if c.classAction(cpu.ClassCR0Write) == cpu.ActExit {
		c.exit.CR.Num, c.exit.CR.Write, c.exit.CR.Value = 0, true, c.cr0
		c.setExit(cpu.ExitCR, compNone)
	}
}

func (c *CPU) storeSel(in *Inst, sel uint16) {
	if c.cr4&cpu.CR4UMIP != 0 && c.cpl != 0 {
		c.raise(cpu.ExcGP, 0)
	}
	if c.cpl == 0 && c.sensitive(cpu.ClassDescStore) {
		return
	}
	if in.flags&iMem != 0 {
		c.write16(c.ea(in), sel)
		return
	}
	c.setReg(in.rm, in.size, uint64(sel))
}

func (c *CPU) storeDT(in *Inst, t cpu.DTable) {
	if c.cr4&cpu.CR4UMIP != 0 && c.cpl != 0 {
		c.raise(cpu.ExcGP, 0)
	}
	if c.cpl == 0 && c.sensitive(cpu.ClassDescStore) {
		return
	}
	a := c.ea(in)
	c.checkWrite(a, 10)
	c.write16(a, t.Limit)
	c.write64(a+2, t.Base)
}

func (c *CPU) loadDT(in *Inst, t *cpu.DTable) {
	c.needCPL0()
	if c.sensitive(cpu.ClassDescLoad) {
		return
	}
	a := c.ea(in)
	limit := c.read16(a)
	base := c.read64(a + 2)
	if !cpu.Canonical(base) {
		c.raise(cpu.ExcGP, 0)
	}
	t.Limit, t.Base = limit, base
}

// systemDescriptor reads a 16-byte system descriptor (LDT, TSS) from the
// GDT; a non-canonical base raises #GP(selector).
func (c *CPU) systemDescriptor(sel uint16) (cpu.Segment, uint64) {
	if sel&4 != 0 {
		c.raise(cpu.ExcGP, uint32(sel&^3))
	}
	idx := uint64(sel &^ 7)
	if idx+15 > uint64(c.gdt.Limit) {
		c.raise(cpu.ExcGP, uint32(sel&^3))
	}
	lo := c.sysRead64(c.gdt.Base + idx)
	hi := c.sysRead64(c.gdt.Base + idx + 8)
	s := segFromDesc(sel, lo)
	s.Base |= (hi & 0xffffffff) << 32
	if !cpu.Canonical(s.Base) {
		c.raise(cpu.ExcGP, uint32(sel&^3)) // the base of a 64-bit system segment must be canonical
	}
	return s, c.gdt.Base + idx
}

func opLLDT(c *CPU, in *Inst) {
	c.needCPL0()
	sel := uint16(c.readRMSize(in, 2))
	if c.sensitive(cpu.ClassDescLoad) {
		return
	}
	if sel&^3 == 0 {
		c.sreg[segLDT] = cpu.Segment{}
		return
	}
	s, _ := c.systemDescriptor(sel)
	if s.Attr&cpu.SegAttrS != 0 || s.Attr&0xf != 2 {
		c.raise(cpu.ExcGP, uint32(sel&^3))
	}
	if s.Attr&cpu.SegAttrP == 0 {
		c.raise(cpu.ExcNP, uint32(sel&^3))
	}
	c.sreg[segLDT] = s
}

func opLTR(c *CPU, in *Inst) {
	c.needCPL0()
	sel := uint16(c.readRMSize(in, 2))
	if c.sensitive(cpu.ClassDescLoad) {
		return
	}
	if sel&^3 == 0 {
		c.raise(cpu.ExcGP, 0)
	}
	s, addr := c.systemDescriptor(sel)
	if s.Attr&cpu.SegAttrS != 0 || s.Attr&0xf != 9 {
		c.raise(cpu.ExcGP, uint32(sel&^3))
	}
	if s.Attr&cpu.SegAttrP == 0 {
		c.raise(cpu.ExcNP, uint32(sel&^3))
	}
	s.Attr |= 2 // busy
	b := c.sysRead64(addr)
	saved := c.cpl
	c.setCPL(0)
	c.write64(addr, b|1<<41)
	c.setCPL(saved)
	c.sreg[segTR] = s
}

func opMovFromCR(c *CPU, in *Inst) {
	c.needCPL0()
	cl := cpu.ClassCRRead
	if in.reg == 2 {
		cl = cpu.ClassCR2Read
	}
	if c.sensitive(cl) {
		return
	}
	var v uint64
	switch in.reg {
	case 0:
		v = c.cr0
	case 2:
		v = c.cr2
	case 3:
		v = c.cr3
	case 4:
		v = c.cr4
	case 8:
		v = c.cr8
	default:
		c.raise(cpu.ExcUD, noErr)
	}
	c.r[in.rm] = v
}

func opMovToCR(c *CPU, in *Inst) {
	c.needCPL0()
	v := c.r[in.rm]
	cl := cpu.ClassCR0Write
	switch in.reg {
	case 0:
	case 3:
		cl = cpu.ClassCR3Write
	case 4:
		cl = cpu.ClassCR4Write
	case 8:
		cl = cpu.ClassCR8Write
	default:
		c.raise(cpu.ExcUD, noErr)
	}
	if c.sensitive(cl) {
		return
	}
	// The checks are cpu's, shared with hv/emul (trap mode).
	var ok bool
	switch in.reg {
	case 0:
		if v, ok = cpu.CR0Write(v); !ok {
			c.raise(cpu.ExcGP, 0)
		}
		if (v^c.cr0)&cpu.CR0WP != 0 {
			c.flushTLB(true)
		}
		c.cr0 = v
	case 3:
		if v, ok = cpu.CR3Write(v); !ok {
			c.raise(cpu.ExcGP, 0)
		}
		c.cr3 = v
		c.flushTLB(false)
	case 4:
		if v, ok = cpu.CR4Write(v); !ok {
			c.raise(cpu.ExcGP, 0)
		}
		if (v^c.cr4)&(cpu.CR4PGE|cpu.CR4PSE|cpu.CR4PAE) != 0 {
			c.flushTLB(true)
		}
		c.cr4 = v
	case 8:
		if v, ok = cpu.CR8Write(v); !ok {
			c.raise(cpu.ExcGP, 0)
		}
		c.cr8 = v
	}
	if c.classAction(cl) == cpu.ActExit {
		c.exit.CR.Num, c.exit.CR.Write, c.exit.CR.Value = in.reg, true, v
		c.setExit(cpu.ExitCR, compNone)
	}
}

func opVMCALL(c *CPU, in *Inst) {
	if c.cpl != 0 {
		c.raise(cpu.ExcUD, noErr)
	}
	c.exit.Hypercall.Nr = c.r[cpu.RAX]
	c.exit.Hypercall.Args = [6]uint64{c.r[cpu.RDI], c.r[cpu.RSI], c.r[cpu.RDX], c.r[cpu.R10], c.r[cpu.R8], c.r[cpu.R9]}
	c.exit.Hypercall.Ret = 0
	c.setExit(cpu.ExitHypercall, compHypercall)
}

func opSYSCALL(c *CPU, in *Inst) {
	if c.efer&cpu.EFERSCE == 0 {
		c.raise(cpu.ExcUD, noErr)
	}
	c.commitFlags()
	c.r[cpu.RCX] = c.rip
	c.r[cpu.R11] = c.flags &^ cpu.FlagRF
	sel := uint16(c.msr.STAR >> 32 & 0xffff)
	c.sreg[segCS] = cpu.Segment{Selector: sel &^ 3, Limit: 0xffffffff,
		Attr: 0xb | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrL | cpu.SegAttrG}
	c.sreg[segSS] = cpu.Segment{Selector: sel&^3 + 8, Limit: 0xffffffff,
		Attr: 0x3 | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrDB | cpu.SegAttrG}
	c.flags = (c.flags &^ c.msr.SFMASK &^ cpu.FlagRF) | cpu.FlagsFixed
	c.setCPL(0)
	c.rip = c.msr.LSTAR
	c.updateEvents()
}

func opSYSRET(c *CPU, in *Inst) {
	if c.efer&cpu.EFERSCE == 0 {
		c.raise(cpu.ExcUD, noErr)
	}
	if c.cpl != 0 {
		c.raise(cpu.ExcGP, 0)
	}
	sel := uint16(c.msr.STAR >> 48 & 0xffff)
	ss := cpu.Segment{Selector: (sel + 8) | 3, Limit: 0xffffffff,
		Attr: 0x3 | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrDB | cpu.SegAttrG | 3<<5}
	rip := c.r[cpu.RCX]
	if in.size == 8 {
		if !cpu.Canonical(rip) {
			c.raise(cpu.ExcGP, 0)
		}
		c.sreg[segCS] = cpu.Segment{Selector: (sel + 16) | 3, Limit: 0xffffffff,
			Attr: 0xb | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrL | cpu.SegAttrG | 3<<5}
	} else {
		// SYSRET without REX.W returns to compatibility mode (CS from
		// STAR[63:48], D=1) at ECX; its first instruction raises #UD
		// (far.go).
		rip &= 0xffffffff
		c.sreg[segCS] = cpu.Segment{Selector: sel | 3, Limit: 0xffffffff,
			Attr: 0xb | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrDB | cpu.SegAttrG | 3<<5}
	}
	c.sreg[segSS] = ss
	c.setFlagsAll(c.r[cpu.R11]&0x3c7fd7 | cpu.FlagsFixed)
	c.rip = rip
	c.setCPL(3)
	c.updateEvents()
}

// ioAllowed checks IOPL (no I/O bitmap: a port access above IOPL faults).
func (c *CPU) ioAllowed() {
	if uint64(c.cpl) > (c.flags&cpu.FlagIOPL)>>12 {
		c.raise(cpu.ExcGP, 0)
	}
}

func opIO(c *CPU, in *Inst) {
	c.ioAllowed()
	if c.sensitive(cpu.ClassIO) {
		return
	}
	port := uint16(c.r[cpu.RDX])
	if in.ext&0x08 == 0 { // E4-E7: immediate port
		port = uint16(in.imm)
	}
	size := in.size
	if size == 8 {
		size = 4
	}
	c.exit.IO.Port, c.exit.IO.Size = port, size
	if in.ext&0x02 == 0 { // IN
		c.exit.IO.In, c.exit.IO.Data = true, 0
		c.setExit(cpu.ExitIO, compIn)
		return
	}
	c.exit.IO.In = false
	c.exit.IO.Data = uint32(c.getReg(cpu.RAX, size))
	c.setExit(cpu.ExitIO, compNone)
}

// opIOString does one element of INS/OUTS per exit; with REP the
// instruction re-runs until RCX is zero. INS exits for the port read with
// RIP at the instruction, which runs again with the data (insData) and
// stores it; the destination is checked for a fault before the port is
// read.
func opIOString(c *CPU, in *Inst) {
	c.ioAllowed()
	if c.sensitive(cpu.ClassIO) {
		return
	}
	size := in.size
	if size == 8 {
		size = 4
	}
	rep := in.flags&(iRep|iRepne) != 0
	if rep && c.strCount(in) == 0 {
		return
	}
	step := c.strStep(size)
	port := uint16(c.r[cpu.RDX])
	if in.ext&0x02 == 0 { // INS: ES:RDI (no segment override)
		dst := c.strAddr(in, cpu.RDI)
		if !c.insReady || c.insRIP != c.instStart || c.insPort != port {
			c.checkWrite(dst, uint64(size))
			c.exit.IO.Port, c.exit.IO.Size = port, size
			c.exit.IO.In, c.exit.IO.Data = true, 0
			c.rip = c.instStart
			c.pc-- // it retires when it runs again with the data
			c.setExit(cpu.ExitIO, compINS)
			return
		}
		c.insReady = false
		c.writeN(dst, size, uint64(c.insData))
		c.strAdvance(in, cpu.RDI, step)
		c.repStep(in, rep)
		return
	}
	v := c.readN(c.strAddr(in, cpu.RSI)+c.segBase[in.seg], size)
	c.exit.IO.Port, c.exit.IO.Size = port, size
	c.exit.IO.In, c.exit.IO.Data = false, uint32(v)
	c.strAdvance(in, cpu.RSI, step)
	c.repStep(in, rep)
	c.setExit(cpu.ExitIO, compNone)
}

// repStep counts one element of a REP INS/OUTS and makes the instruction
// run again while RCX is not zero.
func (c *CPU) repStep(in *Inst, rep bool) {
	if !rep {
		return
	}
	n := c.strCount(in) - 1
	c.strSetCount(in, n)
	if n != 0 {
		c.rip = c.instStart
	}
}
