package interp

// Memory is the guest-physical memory of one VM as the engine sees it: the
// RAM slice plus the bookkeeping that invalidates decoded code.
type Memory struct {
	ram []byte
	// gen[pfn] is the code generation of a physical page; bumped whenever a
	// page holding decoded code is written.
	gen []uint32
	// code[pfn] is non-zero while blocks decoded from the page may be live.
	code []uint8
	// hole[pfn] is non-zero while the page is not backed (ballooned out):
	// accesses then behave as outside RAM. Only slow paths look at it: a
	// hole never has a valid soft-TLB entry.
	hole []uint8
	// ptab[pfn] is non-zero while the page is a guest page table the
	// shadow-MMU model write-protects (trap mode): 1 after a walk through
	// it, counting trapped writes since (see cpu.ShadowPageTables).
	ptab []uint8
}

// NewMemory wraps ram (guest-physical address 0 upward). The slice's length
// must be a multiple of 4 KiB.
func NewMemory(ram []byte) *Memory {
	n := len(ram) >> pageShift
	return &Memory{ram: ram[:n<<pageShift], gen: make([]uint32, n), code: make([]uint8, n), hole: make([]uint8, n), ptab: make([]uint8, n)}
}

// RAM returns the memory's backing slice.
func (m *Memory) RAM() []byte { return m.ram }

// Invalidate tells the engine that something other than the guest's own
// instructions (a loader, a hypercall, a device) wrote [gpa, gpa+n).
func (m *Memory) Invalidate(gpa, n uint64) {
	if n == 0 {
		return
	}
	first, last := gpa>>pageShift, (gpa+n-1)>>pageShift
	for p := first; p <= last && p < uint64(len(m.code)); p++ {
		if m.code[p] != 0 {
			m.code[p] = 0
			m.gen[p]++
		}
	}
}

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
		if hole && m.code[p] != 0 {
			m.code[p] = 0
			m.gen[p]++
		}
	}
}
