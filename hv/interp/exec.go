package interp

import (
	"fmt"
	"runtime"

	"github.com/pvisor/pvisor/hv/cpu"
)

// blockRef is one slot of the direct-mapped block cache.
type blockRef struct {
	phys  uint64 // guest-physical address of the first instruction
	gen   uint32 // page generation at decode time
	start int32  // index of the first Inst in CPU.insts
	n     int32  // number of instructions
	hits  uint16 // runs in the dispatch loop, until translated (jit.go)
	code  uintptr
}

const noPhys = ^uint64(0)

type sentinel struct{ name string }

var (
	faultSentinel = &sentinel{"fault"}
	mmioSentinel  = &sentinel{"mmio"}
)

// Run implements cpu.VCPU.
func (c *CPU) Run(budget uint64) (*cpu.Exit, error) {
	c.exitPending = false
	if c.complete != compNone {
		c.finishExit()
	}
	c.kick.And(^uint32(kickExit))
	c.budget = budget
	c.enter()
	for !c.runSlice() {
	}
	c.leave()
	c.stats.Exits[c.exit.Reason]++
	return &c.exit, nil
}

// finishExit completes the instruction that exited, with the hypervisor's
// answer in c.exit.
func (c *CPU) finishExit() {
	switch c.complete {
	case compIn:
		v := uint64(c.exit.IO.Data)
		switch c.exit.IO.Size {
		case 1:
			c.r[cpu.RAX] = c.r[cpu.RAX]&^0xff | v&0xff
		case 2:
			c.r[cpu.RAX] = c.r[cpu.RAX]&^0xffff | v&0xffff
		default:
			c.r[cpu.RAX] = v & 0xffffffff
		}
	case compMMIORead:
		// The instruction is re-run from its start with the data supplied.
		c.mmio.record(c.exit.MMIO.Addr, c.exit.MMIO.Size, c.exit.MMIO.Data&sizeMask[c.exit.MMIO.Size])
	case compCPUID:
		c.r[cpu.RAX] = uint64(c.exit.CPUID.EAX)
		c.r[cpu.RBX] = uint64(c.exit.CPUID.EBX)
		c.r[cpu.RCX] = uint64(c.exit.CPUID.ECX)
		c.r[cpu.RDX] = uint64(c.exit.CPUID.EDX)
	case compRDMSR:
		c.r[cpu.RAX] = c.exit.MSR.Value & 0xffffffff
		c.r[cpu.RDX] = c.exit.MSR.Value >> 32
	case compHypercall:
		c.r[cpu.RAX] = c.exit.Hypercall.Ret
	case compINS:
		// The INS runs again from its start with the data supplied.
		c.insReady, c.insRIP, c.insPort, c.insData = true, c.exit.RIP, c.exit.IO.Port, c.exit.IO.Data
	}
	c.complete = compNone
}

// setExit prepares an exit taken at the current instruction, which has
// completed (RIP is past it) unless the caller rewinds.
func (c *CPU) setExit(r cpu.ExitReason, comp completion) {
	c.exit.Reason = r
	c.exit.RIP = c.instStart
	c.exitPending = true
	c.complete = comp
	c.blockEnd = c.pc
}

// runSlice runs blocks until an exit; it returns false when it stopped for
// a guest exception that has been delivered and execution should go on.
func (c *CPU) runSlice() (exited bool) {
	defer func() {
		if r := recover(); r != nil {
			exited = c.recovered(r)
		}
	}()
	for {
		// The budget is looked at first so that an exit for it does not
		// consume an interrupt shadow or deliver an event it cannot run.
		if c.budget == 0 {
			c.exit.Reason = cpu.ExitBudget
			c.exit.RIP = c.rip
			return true
		}
		if c.events != 0 || c.kick.Load() != 0 {
			if c.handleEvents() {
				return true
			}
		}
		start, n := c.lookupBlock()
		end := start + n
		whole := !c.stepOne && c.trace == nil
		if !whole {
			end = start + 1
			c.stepOne = false
			if c.trace != nil {
				c.traceStep()
			}
		}
		if uint64(end-start) > c.budget {
			end = start + int(c.budget)
		}
		c.blkStart = start
		c.pc = start
		c.blockEnd = end
		if c.jit != nil && whole && end == start+n && c.blkSlot >= 0 {
			start, n = c.runJIT(start, n)
			end = start + n
			c.blkStart, c.blockEnd = start, end
		}
		insts := c.insts
		for c.pc < c.blockEnd {
			in := &insts[c.pc]
			c.pc++
			c.instStart = c.rip
			c.rip += uint64(in.len)
			handlers[in.op&(maxOps-1)](c, in)
		}
		done := uint64(c.pc - start)
		c.blkStart = c.pc
		c.retired += done
		c.budget -= done
		if c.exitPending {
			return true
		}
	}
}

// recovered handles a panic out of runSlice: a guest exception, an MMIO
// read exit, or an engine bug.
func (c *CPU) recovered(r any) bool {
	c.lockAbort()
	// The interrupted instruction did not retire.
	done := uint64(0)
	if c.pc > c.blkStart {
		done = uint64(c.pc - c.blkStart - 1)
	}
	c.retired += done
	if c.budget >= done {
		c.budget -= done
	}
	// What ran of the block is counted: a fault while delivering the
	// exception, and the TSC between Run calls, must not count it again.
	c.blkStart = c.pc
	switch r {
	case faultSentinel:
		e := c.pendExc
		c.pendExc = excInfo{}
		if e.vector == cpu.ExcPF {
			c.cr2 = e.cr2 // loaded when the #PF is detected, even if it becomes #DF
		}
		if c.delivering != 0 {
			// A fault while delivering an exception.
			first := uint8(c.delivering - 1)
			c.delivering = 0
			c.setCPL(c.deliverCPL)
			c.rip = c.deliverRIP
			if c.deliverExc && first == cpu.ExcDF {
				c.exit.Reason = cpu.ExitTripleFault
				c.exit.RIP = c.rip
				c.exit.Fault.Vector, c.exit.Fault.Error, c.exit.Fault.Addr = e.vector, e.err, e.cr2
				c.exit.Message = fmt.Sprintf("triple fault: vector %d (error %#x) while delivering #DF", e.vector, e.err)
				return true
			}
			if c.deliverExc && (contributory(e.vector) && (contributory(first) || first == cpu.ExcPF) ||
				e.vector == cpu.ExcPF && first == cpu.ExcPF) {
				e = excInfo{valid: true, vector: cpu.ExcDF, hasErr: true}
			}
		} else {
			c.rip = c.instStart
			if e.soft {
				c.rip += uint64(c.insts[c.pc-1].len)
			}
		}
		c.stats.Exceptions[e.vector&31]++
		c.excQueue = e
		c.updateEvents()
		return false
	case mmioSentinel, internalSentinel:
		if c.delivering != 0 && r == mmioSentinel {
			c.undeliver()
			c.exit.RIP = c.rip
			return true
		}
		c.rip = c.instStart
		c.exit.RIP = c.instStart
		return true
	}
	// An engine bug: stop this vCPU with the details, never the process.
	buf := make([]byte, 4096)
	buf = buf[:runtime.Stack(buf, false)]
	c.exit.Reason = cpu.ExitInternal
	c.exit.RIP = c.instStart
	c.exit.Message = fmt.Sprintf("engine panic at rip %#x: %v\n%s", c.instStart, r, buf)
	c.rip = c.instStart
	return true
}

// handleEvents looks at interrupts, injected exceptions, kicks and the
// interrupt shadow before a block. It returns true to exit.
func (c *CPU) handleEvents() bool {
	if k := c.kick.Load(); k != 0 {
		if k&kickSMP != 0 {
			c.service()
		}
		if c.kick.Load()&kickExit == 0 {
			goto events
		}
		c.kick.And(^uint32(kickExit))
		c.exit.Reason = cpu.ExitKick
		c.exit.RIP = c.rip
		return true
	}
events:
	// After an exception is delivered (which ends any interrupt shadow),
	// a pending interrupt is looked at before the handler's first
	// instruction, as on hardware with a trap gate.
	if c.excQueue.valid {
		e := c.excQueue
		c.excQueue = excInfo{}
		c.updateEvents()
		c.deliver(e)
	} else if c.injExc.valid {
		e := c.injExc
		e.inj = true
		c.injExc = excInfo{}
		if e.vector == cpu.ExcPF {
			e.cr2 = c.cr2
		}
		c.updateEvents()
		c.deliver(e)
	}
	if c.shadow {
		// One instruction runs before interrupts are looked at again.
		c.shadow = false
		c.stepOne = true
		c.updateEvents()
		return false
	}
	ifOn := c.flags&cpu.FlagIF != 0
	if c.irqVector >= 0 && ifOn {
		v := uint8(c.irqVector)
		c.irqVector = -1
		c.halted = false
		c.updateEvents()
		c.stats.Interrupts++
		c.deliver(excInfo{valid: true, vector: v, irq: true})
		return false
	}
	if c.wantWindow && ifOn {
		c.exit.Reason = cpu.ExitIRQWindow
		c.exit.RIP = c.rip
		return true
	}
	c.compatFetch()
	c.updateEvents()
	return false
}

// lookupBlock finds or decodes the block at RIP and returns its range in
// c.insts.
func (c *CPU) lookupBlock() (int, int) {
	rip := c.rip
	e := &c.tlb[(rip>>pageShift)&tlbMask]
	var pa uint64
	if e.tag == rip&^pageMask^c.tlbKey && e.perm&c.xMask != 0 {
		pa = e.phys | rip&pageMask
	} else {
		c.instStart = rip
		if g := c.globalHit(rip, c.xMask); g != nil {
			pa = g.phys | rip&pageMask
		} else {
			pa = c.translate(rip, accFetch).phys | rip&pageMask
		}
		if c.tlb[(rip>>pageShift)&tlbMask].perm&c.xMask == 0 {
			c.pageFault(rip, 0) // unreachable: translate faults first
		}
		// A TLB hit is always backed RAM (tlb.go); a miss may not be.
		// Unbacked memory reads as all-ones, and FF FF is no
		// instruction: a fetch from it raises #UD, as running from an
		// empty bus would.
		if !c.backed(pa&^pageMask, pageSize) {
			c.instStart = rip
			c.raise(cpu.ExcUD, noErr)
		}
	}
	page := pa >> pageShift
	c.curPage = page
	slot := (pa ^ pa>>blkBits) & (blkSize - 1)
	b := &c.blocks[slot]
	c.blkSlot = int32(slot)
	if b.phys == pa && b.gen == c.mem.generation(page) {
		return int(b.start), int(b.n)
	}
	start, n := c.decodeBlock(b, rip, pa)
	if b.phys != pa || int(b.start) != start {
		c.blkSlot = -1 // not cached: decoded for this run only
	}
	return start, n
}

// decodeBlock decodes a new block at pa into the instruction store.
func (c *CPU) decodeBlock(b *blockRef, rip, pa uint64) (int, int) {
	if c.nInsts+maxBlockLen+1 > instCap {
		for i := range c.blocks {
			c.blocks[i] = blockRef{phys: noPhys}
		}
		c.nInsts = 0
	}
	page := pa >> pageShift
	// The generation is read before the page is marked and decoded (see
	// Memory.uncode).
	gen := c.mem.generation(page)
	if !c.mem.isCode(page) {
		c.mem.markCode(page)
		// Drop cached write permission to the page so writes see it is
		// code, here and on every other vCPU, before reading its bytes.
		c.dropWrite(pa &^ pageMask)
		c.shootWrite(true)
	}
	c.stats.DecodedBlocks++
	start := c.nInsts
	off := pa & pageMask
	pageEnd := (pa &^ pageMask) + pageSize
	n := 0
	cacheable := true
	for n < maxBlockLen {
		in, err := decode(c.ram[pa:min(pageEnd, pa+15)])
		if err == errTruncated {
			if n > 0 {
				break // the next block starts at the crossing instruction
			}
			// The first instruction crosses the page: decode it from both
			// pages, uncached.
			var buf [15]byte
			for k := range buf {
				bp := c.physFor(rip+uint64(k), accFetch)
				buf[k] = 0xff // unbacked: all-ones, as data reads see it
				if c.backed(bp, 1) {
					buf[k] = c.ram[bp]
				}
			}
			in, err = decode(buf[:])
			cacheable = false
		}
		if err != nil {
			in = Inst{op: 0, len: 1}
		}
		c.insts[start+n] = in
		n++
		pa += uint64(in.len)
		if opEnds[in.op] || pa >= pageEnd || !cacheable {
			break
		}
	}
	c.nInsts += n
	if cacheable {
		*b = blockRef{phys: (pageEnd - pageSize) | off, gen: gen, start: int32(start), n: int32(n)}
	}
	return start, n
}

// opUD raises #UD.
func opUD(c *CPU, in *Inst) { c.raise(cpu.ExcUD, noErr) }

const noErr = ^uint32(0)

// raise raises exception vec at the current instruction. err is the error
// code, or noErr for vectors without one.
func (c *CPU) raise(vec uint8, err uint32) {
	c.pendExc = excInfo{valid: true, vector: vec, hasErr: err != noErr, err: err}
	if err == noErr {
		c.pendExc.err = 0
	}
	panic(faultSentinel)
}
