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
}

// NewMemory wraps ram (guest-physical address 0 upward). The slice's length
// must be a multiple of 4 KiB.
func NewMemory(ram []byte) *Memory {
	n := len(ram) >> pageShift
	return &Memory{ram: ram[:n<<pageShift], gen: make([]uint32, n), code: make([]uint8, n)}
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
