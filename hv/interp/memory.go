package interp

import "sync/atomic"

// Memory is the guest-physical memory of one VM as the engine sees it: the
// RAM slice plus the bookkeeping that invalidates decoded code.
type Memory struct {
	ram []byte
	// gen[pfn] is the code generation of a physical page; bumped whenever a
	// page holding decoded code is written.
	gen []uint32
	// code[pfn] is non-zero while blocks decoded from the page may be live.
	// gen and code are accessed only atomically (see Invalidate): a device
	// goroutine clears them while vCPUs run. On amd64 an atomic load is a
	// plain load, so the per-block generation check costs nothing extra.
	code []uint32
	// hole[pfn] is non-zero while the page is not backed (ballooned out):
	// accesses then behave as outside RAM. Only slow paths look at it: a
	// hole never has a valid soft-TLB entry.
	hole []uint8
	// ptab[pfn] is non-zero while the page is a guest page table the
	// shadow-MMU model write-protects (trap mode): 1 after a walk through
	// it, counting trapped writes since (see cpu.ShadowPageTables).
	ptab []uint8

	smp smpShared // the vCPUs over this memory (smp.go)
}

// ptabOf is the shadow-model state of page p (see ptab).
func (m *Memory) ptabOf(p uint64) uint8 { return m.ptab[p] }

// NewMemory wraps ram (guest-physical address 0 upward). The slice's length
// must be a multiple of 4 KiB.
func NewMemory(ram []byte) *Memory {
	n := len(ram) >> pageShift
	return &Memory{ram: ram[:n<<pageShift], gen: make([]uint32, n), code: make([]uint32, n), hole: make([]uint8, n), ptab: make([]uint8, n)}
}

// RAM returns the memory's backing slice.
func (m *Memory) RAM() []byte { return m.ram }

// Invalidate tells the engine that something other than the guest's own
// instructions (a loader, a hypercall, a device) wrote [gpa, gpa+n). It is
// safe to call from any goroutine while vCPUs run, after the write: blocks
// decoded from those pages are not executed again once the vCPU next looks
// up a block (at its next block boundary).
func (m *Memory) Invalidate(gpa, n uint64) {
	if n == 0 {
		return
	}
	first, last := gpa>>pageShift, (gpa+n-1)>>pageShift
	for p := first; p <= last && p < uint64(len(m.code)); p++ {
		m.uncode(p)
	}
}

// uncode drops the decoded code of page p and reports whether there was
// any. The swap is a locked instruction, a full barrier: the caller's
// writes to the page are visible before the new generation is, so a vCPU
// that reads the new generation decodes the new bytes. A vCPU reads the
// generation before it marks the page and decodes (CPU.decodeBlock), so a
// block recorded with the current generation always has its page marked.
func (m *Memory) uncode(p uint64) bool {
	if atomic.LoadUint32(&m.code[p]) == 0 || atomic.SwapUint32(&m.code[p], 0) == 0 {
		return false
	}
	atomic.AddUint32(&m.gen[p], 1)
	return true
}

// isCode reports whether blocks decoded from page p may be live.
func (m *Memory) isCode(p uint64) bool { return atomic.LoadUint32(&m.code[p]) != 0 }

// markCode marks page p as holding decoded code.
func (m *Memory) markCode(p uint64) { atomic.StoreUint32(&m.code[p], 1) }

// generation returns page p's code generation.
func (m *Memory) generation(p uint64) uint32 { return atomic.LoadUint32(&m.gen[p]) }

// SetHoles marks count pages from pfn first as holes (not backed: reads
// return all-ones through the MMIO exit, writes are dropped, instruction
// fetches raise #UD) or as backed again. Decoded code on pages becoming
// holes is dropped; the caller must also flush every vCPU's TLB
// (cpu.VCPU.FlushTLB(true)) before the vCPUs run again, so that no cached
// translation reaches a hole. Pages beyond the memory are ignored.
func (m *Memory) SetHoles(first, count uint64, hole bool) {
	v := uint8(0)
	if hole {
		v = 1
	}
	for p := first; p < first+count && p < uint64(len(m.hole)); p++ {
		m.hole[p] = v
		if hole {
			m.uncode(p)
		}
	}
}
