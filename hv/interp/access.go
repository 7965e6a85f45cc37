package interp

import (
	"encoding/binary"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Guest virtual memory access. Fast paths hit the TLB and touch RAM
// directly; everything else (misses, page crossings, MMIO, writes to code
// pages) goes through the slow paths.

func (c *CPU) read8(va uint64) uint8 {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.rdMask != 0 {
		return c.ram[e.phys|va&pageMask]
	}
	return uint8(c.readSlow(va, 1))
}

func (c *CPU) read16(va uint64) uint16 {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.rdMask != 0 && va&pageMask <= pageSize-2 {
		return binary.LittleEndian.Uint16(c.ram[e.phys|va&pageMask:])
	}
	return uint16(c.readSlow(va, 2))
}

func (c *CPU) read32(va uint64) uint32 {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.rdMask != 0 && va&pageMask <= pageSize-4 {
		return binary.LittleEndian.Uint32(c.ram[e.phys|va&pageMask:])
	}
	return uint32(c.readSlow(va, 4))
}

func (c *CPU) read64(va uint64) uint64 {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.rdMask != 0 && va&pageMask <= pageSize-8 {
		return binary.LittleEndian.Uint64(c.ram[e.phys|va&pageMask:])
	}
	return c.readSlow(va, 8)
}

// readN reads size (1, 2, 4 or 8) bytes, zero-extended.
func (c *CPU) readN(va uint64, size uint8) uint64 {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.rdMask != 0 && va&pageMask <= pageSize-uint64(size) {
		p := c.ram[e.phys|va&pageMask:]
		switch size {
		case 8:
			return binary.LittleEndian.Uint64(p)
		case 4:
			return uint64(binary.LittleEndian.Uint32(p))
		case 2:
			return uint64(binary.LittleEndian.Uint16(p))
		default:
			return uint64(p[0])
		}
	}
	return c.readSlow(va, size)
}

func (c *CPU) write8(va uint64, v uint8) {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.wrMask != 0 {
		c.ram[e.phys|va&pageMask] = v
		return
	}
	c.writeSlow(va, 1, uint64(v))
}

func (c *CPU) write16(va uint64, v uint16) {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.wrMask != 0 && va&pageMask <= pageSize-2 {
		binary.LittleEndian.PutUint16(c.ram[e.phys|va&pageMask:], v)
		return
	}
	c.writeSlow(va, 2, uint64(v))
}

func (c *CPU) write32(va uint64, v uint32) {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.wrMask != 0 && va&pageMask <= pageSize-4 {
		binary.LittleEndian.PutUint32(c.ram[e.phys|va&pageMask:], v)
		return
	}
	c.writeSlow(va, 4, uint64(v))
}

func (c *CPU) write64(va uint64, v uint64) {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.wrMask != 0 && va&pageMask <= pageSize-8 {
		binary.LittleEndian.PutUint64(c.ram[e.phys|va&pageMask:], v)
		return
	}
	c.writeSlow(va, 8, v)
}

// writeN writes the low size bytes of v.
func (c *CPU) writeN(va uint64, size uint8, v uint64) {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey && e.perm&c.wrMask != 0 && va&pageMask <= pageSize-uint64(size) {
		p := c.ram[e.phys|va&pageMask:]
		switch size {
		case 8:
			binary.LittleEndian.PutUint64(p, v)
		case 4:
			binary.LittleEndian.PutUint32(p, uint32(v))
		case 2:
			binary.LittleEndian.PutUint16(p, uint16(v))
		default:
			p[0] = uint8(v)
		}
		return
	}
	c.writeSlow(va, size, v)
}

// checkWrite verifies that [va, va+size) is writable, raising the fault a
// write would, without writing. Instructions that write several locations
// call it first so that they commit all or nothing.
func (c *CPU) checkWrite(va uint64, size uint64) {
	c.physFor(va, accWrite)
	if (va&pageMask)+size > pageSize {
		c.physFor((va+size-1)&^pageMask, accWrite)
	}
}

func (c *CPU) readSlow(va uint64, size uint8) uint64 {
	if c.lk.active {
		return c.lockRead(va, size)
	}
	pa := c.physFor(va, accRead)
	n := uint64(size)
	if va&pageMask+n <= pageSize {
		return c.physReadN(pa, size)
	}
	// Crossing a page: translate both halves before reading either.
	first := pageSize - va&pageMask
	pa2 := c.physFor(va+first, accRead)
	var v uint64
	for i := uint64(0); i < n; i++ {
		var b uint64
		if i < first {
			b = c.physReadN(pa+i, 1)
		} else {
			b = c.physReadN(pa2+i-first, 1)
		}
		v |= b << (8 * i)
	}
	return v
}

func (c *CPU) writeSlow(va uint64, size uint8, v uint64) {
	if c.lk.active {
		c.lockWrite(va, size, v)
		return
	}
	pa := c.physFor(va, accWrite)
	n := uint64(size)
	if va&pageMask+n <= pageSize {
		c.physWriteN(pa, size, v)
		return
	}
	first := pageSize - va&pageMask
	pa2 := c.physFor(va+first, accWrite)
	for i := uint64(0); i < n; i++ {
		b := v >> (8 * i)
		if i < first {
			c.physWriteN(pa+i, 1, b)
		} else {
			c.physWriteN(pa2+i-first, 1, b)
		}
	}
}

// physReadN reads guest-physical memory; outside RAM it is an MMIO read,
// which exits and re-runs the instruction with the hypervisor's data.
func (c *CPU) physReadN(pa uint64, size uint8) uint64 {
	if c.backed(pa, uint64(size)) {
		p := c.ram[pa:]
		switch size {
		case 8:
			return binary.LittleEndian.Uint64(p)
		case 4:
			return uint64(binary.LittleEndian.Uint32(p))
		case 2:
			return uint64(binary.LittleEndian.Uint16(p))
		default:
			return uint64(p[0])
		}
	}
	if v, ok := c.mmio.replay(pa, size, c.instStart, c.attempt()); ok {
		return v
	}
	c.exit.Reason = cpu.ExitMMIO
	c.exit.MMIO.Addr = pa
	c.exit.MMIO.Size = size
	c.exit.MMIO.Write = false
	c.exit.MMIO.Data = 0
	c.complete = compMMIORead
	c.pendExc = excInfo{} // not a guest exception: an exit
	panic(mmioSentinel)
}

// mmioLogMax bounds the MMIO reads one instruction may exit for; any
// further unbacked read of that instruction reads all-ones at once, as
// memory with no device behind it does. FXRSTOR from MMIO is the largest
// (512 bytes in 8-byte parts).
const mmioLogMax = 64

// mmioLog holds the hypervisor's answers to the MMIO reads of the
// instruction being re-run. An instruction that reads several unbacked
// locations (a page-crossing access, an SSE or FXRSTOR operand, a string
// instruction) exits once per location and is re-run from its start each
// time; its earlier reads take their recorded answers in order.
type mmioLog struct {
	n, pos   int    // answers recorded; answers taken by this run
	rip, seq uint64 // the instruction they belong to: its address and attempt
	ent      [mmioLogMax]struct {
		addr uint64
		size uint8
		data uint64
	}
}

// attempt identifies one execution of the current instruction: the retire
// count it starts at.
func (c *CPU) attempt() uint64 {
	if c.pc > c.blkStart {
		return c.retired + uint64(c.pc-c.blkStart-1)
	}
	return c.retired
}

// record adds the answer to the exit just completed. The instruction that
// exited is the next one to run, at the attempt the exit recorded.
func (l *mmioLog) record(addr uint64, size uint8, data uint64) {
	if l.n < mmioLogMax {
		e := &l.ent[l.n]
		e.addr, e.size, e.data = addr, size, data
		l.n++
	}
	l.pos = 0
}

// replay returns the recorded answer for the next MMIO read of the
// instruction at rip, attempt seq; ok is false when a new exit is needed.
// The log is kept only for the instruction that exited: another
// instruction, or the same one run again later, starts afresh.
func (l *mmioLog) replay(pa uint64, size uint8, rip, seq uint64) (uint64, bool) {
	if l.rip != rip || l.seq != seq {
		l.n, l.pos, l.rip, l.seq = 0, 0, rip, seq
	}
	if l.pos < l.n {
		e := &l.ent[l.pos]
		if e.addr == pa && e.size == size {
			l.pos++
			return e.data, true
		}
		// The instruction went another way this run (its memory
		// changed): its answers no longer apply.
		l.n, l.pos = 0, 0
	}
	if l.n == mmioLogMax {
		return sizeMask[size], true
	}
	return 0, false
}

func (c *CPU) physWriteN(pa uint64, size uint8, v uint64) {
	if c.backed(pa, uint64(size)) {
		p := c.ram[pa:]
		switch size {
		case 8:
			binary.LittleEndian.PutUint64(p, v)
		case 4:
			binary.LittleEndian.PutUint32(p, uint32(v))
		case 2:
			binary.LittleEndian.PutUint16(p, uint16(v))
		default:
			p[0] = uint8(v)
		}
		c.noteWrite(pa)
		return
	}
	// MMIO write: the instruction completes; the exit is taken after it.
	c.exit.Reason = cpu.ExitMMIO
	c.exit.MMIO.Addr = pa
	c.exit.MMIO.Size = size
	c.exit.MMIO.Write = true
	c.exit.MMIO.Data = v & sizeMask[size]
	c.exit.RIP = c.instStart
	c.exitPending = true
	c.blockEnd = c.pc
}

// Stack helpers (64-bit stack; 16-bit pushes with the 66 prefix).
func (c *CPU) push64(v uint64) {
	sp := c.r[cpu.RSP] - 8
	c.write64(sp, v)
	c.r[cpu.RSP] = sp
}

func (c *CPU) pop64() uint64 {
	v := c.read64(c.r[cpu.RSP])
	c.r[cpu.RSP] += 8
	return v
}

var sizeMask = [9]uint64{1: 0xff, 2: 0xffff, 4: 0xffffffff, 8: ^uint64(0)}

// backed reports whether [pa, pa+n), within one page, is RAM the VM has:
// inside its memory and not a hole (Memory.SetHoles).
func (c *CPU) backed(pa, n uint64) bool {
	return pa+n <= uint64(len(c.ram)) && c.mem.hole[pa>>pageShift] == 0
}
