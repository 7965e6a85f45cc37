package interp

import (
	"encoding/binary"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Permission bits of a TLB entry, by access kind and privilege.
const (
	permRS = 1 << iota // supervisor read
	permRU             // user read
	permWS             // supervisor write
	permWU             // user write
	permXS             // supervisor execute
	permXU             // user execute
	permGlobal
)

const tlbInvalid = 1 // never equal to a lookup tag: see tlbKeyFirst

type tlbEntry struct {
	tag  uint64 // virtual page base, or tlbInvalid
	phys uint64 // guest-physical page base
	perm uint8
}

// access kinds for translate.
const (
	accRead = iota
	accWrite
	accFetch
)

const physAddrMask = (1<<cpu.PhysAddrBits - 1) &^ pageMask

// pte bits
const (
	ptP   = 1 << 0
	ptW   = 1 << 1
	ptU   = 1 << 2
	ptPWT = 1 << 3
	ptPCD = 1 << 4
	ptA   = 1 << 5
	ptD   = 1 << 6
	ptPS  = 1 << 7
	ptG   = 1 << 8
	ptNX  = 1 << 63
)

// TLB flushes are O(1): every tag is XORed with tlbKey, a generation
// number kept in the page-offset bits 0-11. A lookup's page base has those
// bits clear, so its low bits are exactly the current key, whatever the
// address: no address, canonical or not, can forge a tag written under an
// older key. (A key in the high bits would not do: a non-canonical lookup
// address carries arbitrary high bits, and va ^ oldKey ^ newKey would hit a
// flushed entry.) Tags are only ever written for canonical addresses
// (translate raises #GP first), so a non-canonical address never hits.
// Live keys run from tlbKeyFirst to pageMask: never 0, the tag of a zeroed
// entry, nor tlbInvalid. When the keys are used up every tag is cleared.
// Global pages survive a non-global flush in gtlb, a small untagged table
// consulted on a miss (its tags are page bases; tlbInvalid never matches).
const (
	tlbKeyFirst = tlbInvalid + 1
	gtlbSize    = 64
)

func (c *CPU) flushTLB(global bool) {
	c.tlbKey++
	if c.tlbKey > pageMask || c.tlbKey < tlbKeyFirst {
		// The keys are used up: old tags could match again, so clear them.
		for i := range c.tlb {
			c.tlb[i].tag = tlbInvalid
		}
		c.tlbKey = tlbKeyFirst
	}
	if global {
		for i := range c.gtlb {
			c.gtlb[i].tag = tlbInvalid
		}
	}
}

func (c *CPU) flushTLBPage(va uint64) {
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag == va&^pageMask^c.tlbKey {
		e.tag = tlbInvalid
	}
	g := &c.gtlb[(va>>pageShift)%gtlbSize]
	if g.tag == va&^pageMask {
		g.tag = tlbInvalid
	}
}

// globalHit refills the TLB from the global side table; it returns nil on
// a miss or when the entry lacks the permission need.
func (c *CPU) globalHit(va uint64, need uint8) *tlbEntry {
	g := &c.gtlb[(va>>pageShift)%gtlbSize]
	if g.tag != va&^pageMask || g.perm&need == 0 {
		return nil
	}
	t := &c.tlb[(va>>pageShift)&tlbMask]
	*t = *g
	t.tag = g.tag ^ c.tlbKey
	return t
}

func (c *CPU) physRead64(pa uint64) (uint64, bool) {
	if !c.backed(pa, 8) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(c.ram[pa:]), true
}

// physWrite64 sets accessed/dirty bits in a page-table entry that
// physRead64 has just read, so pa is backed RAM; only the bounds are
// checked again.
func (c *CPU) physWrite64(pa, v uint64) {
	if pa+8 <= uint64(len(c.ram)) {
		binary.LittleEndian.PutUint64(c.ram[pa:], v)
		c.noteWrite(pa)
	}
}

// noteWrite invalidates decoded code on the physical page of pa.
func (c *CPU) noteWrite(pa uint64) {
	p := pa >> pageShift
	if p < uint64(len(c.mem.code)) && c.mem.uncode(p) {
		c.stats.CodeInvalidations++
		if p == c.curPage {
			c.blockEnd = c.pc // stop after the current instruction
		}
	}
}

// translate walks the page tables for va and fills the TLB. On a violation
// it raises #PF (it does not return).
func (c *CPU) translate(va uint64, acc int) *tlbEntry {
	c.stats.TLBMisses++
	user := c.cpl == 3
	if !cpu.Canonical(va) {
		c.raise(cpu.ExcGP, 0)
	}
	nxe := c.efer&cpu.EFERNXE != 0
	rsvdNX := uint64(0)
	if !nxe {
		rsvdNX = ptNX
	}
	var (
		table            = c.cr3 & physAddrMask
		allowW, allowU   = true, true
		noExec           bool
		entry, entryAddr uint64
		level                 = 4
		pageBits         uint = 39
	)
	errBase := uint32(0)
	if user {
		errBase |= cpu.PFUser
	}
	if acc == accWrite {
		errBase |= cpu.PFWrite
	}
	if acc == accFetch && nxe {
		errBase |= cpu.PFFetch
	}
	for {
		if c.shadowPT {
			c.shadowTable(table)
		}
		idx := (va >> pageBits) & 511
		entryAddr = table + idx*8
		e, ok := c.physRead64(entryAddr)
		if !ok || e&ptP == 0 {
			c.pageFault(va, errBase)
		}
		rsvd := e&rsvdNX != 0 || e&^ptNX&^(1<<cpu.PhysAddrBits-1)&(1<<52-1) != 0
		if level == 4 && e&ptPS != 0 {
			rsvd = true
		}
		if e&ptPS != 0 && (level == 3 || level == 2) {
			// Large page: the frame's low bits (above PAT bit 12) must be zero.
			if e&((1<<pageBits-1)&^(1<<13-1)) != 0 {
				rsvd = true
			}
		}
		if rsvd {
			c.pageFault(va, errBase|cpu.PFPresent|cpu.PFRsvd)
		}
		if e&ptW == 0 {
			allowW = false
		}
		if e&ptU == 0 {
			allowU = false
		}
		if e&ptNX != 0 && nxe {
			noExec = true
		}
		if e&ptA == 0 {
			e |= ptA
			c.physWrite64(entryAddr, e)
		}
		if level == 1 || e&ptPS != 0 {
			entry = e
			break
		}
		table = e & physAddrMask
		level--
		pageBits -= 9
	}
	// Permission check for this access.
	wp := c.cr0&cpu.CR0WP != 0
	switch acc {
	case accRead:
		if user && !allowU {
			c.pageFault(va, errBase|cpu.PFPresent)
		}
	case accWrite:
		if (user && (!allowU || !allowW)) || (!user && !allowW && wp) {
			c.pageFault(va, errBase|cpu.PFPresent)
		}
	case accFetch:
		if (user && !allowU) || noExec {
			c.pageFault(va, errBase|cpu.PFPresent)
		}
	}
	if acc == accWrite && entry&ptD == 0 {
		entry |= ptD
		c.physWrite64(entryAddr, entry)
	}
	// Physical page of va.
	frameMask := uint64(1)<<pageBits - 1
	// (For large pages frameMask also covers the PAT bit 12 of the entry.)
	phys := (entry&physAddrMask&^frameMask | va&frameMask) &^ pageMask
	var perm uint8 = permRS | permXS
	if noExec {
		perm &^= permXS
	}
	if allowU {
		perm |= permRU
		if !noExec {
			perm |= permXU
		}
	}
	if entry&ptD != 0 && phys < uint64(len(c.ram)) && !c.mem.isCode(phys>>pageShift) && c.mem.ptab[phys>>pageShift] == 0 {
		if allowW || !wp {
			perm |= permWS
		}
		if allowW && allowU {
			perm |= permWU
		}
	}
	if entry&ptG != 0 && c.cr4&cpu.CR4PGE != 0 {
		perm |= permGlobal
	}
	t := &c.tlb[(va>>pageShift)&tlbMask]
	t.tag = va&^pageMask ^ c.tlbKey
	if !c.backed(phys, pageSize) {
		// Outside RAM (MMIO) or a hole: the fast paths index RAM directly,
		// so the entry must never hit; each access walks and takes the
		// slow path.
		t.tag = tlbInvalid
	}
	t.phys = phys
	t.perm = perm
	if perm&permGlobal != 0 && t.tag != tlbInvalid {
		g := &c.gtlb[(va>>pageShift)%gtlbSize]
		*g = *t
		g.tag = va &^ pageMask
	}
	return t
}

func (c *CPU) pageFault(va uint64, err uint32) {
	c.pendExc = excInfo{valid: true, vector: cpu.ExcPF, hasErr: true, err: err, cr2: va}
	panic(faultSentinel)
}

// physFor returns the physical address of va for an access of kind acc,
// walking the page tables if needed. It raises a fault on violation.
func (c *CPU) physFor(va uint64, acc int) uint64 {
	var need uint8
	switch acc {
	case accRead:
		need = c.rdMask
	case accWrite:
		need = c.wrMask
	default:
		need = c.xMask
	}
	if c.lk.active {
		need = c.lockNeed(acc)
	}
	e := &c.tlb[(va>>pageShift)&tlbMask]
	if e.tag != va&^pageMask^c.tlbKey || e.perm&need == 0 {
		if g := c.globalHit(va, need); g != nil {
			return g.phys | va&pageMask
		}
		e = c.translate(va, acc)
		if acc == accWrite && e.perm&need == 0 {
			// Writable but the page holds code, or is a page table the
			// shadow-MMU model protects: the slow path handles it.
			pa := e.phys | va&pageMask
			if c.shadowPT {
				c.shadowWrite(pa)
			}
			return pa
		}
	}
	return e.phys | va&pageMask
}

// Translate implements cpu.VCPU: a page walk at the privilege asked for
// that reports a fault instead of raising it.
func (c *CPU) Translate(va uint64, write, user bool) (gpa uint64, vector uint8, errCode uint32, ok bool) {
	saved, as := c.cpl, uint8(0)
	if user {
		as = 3
	}
	if saved != as {
		c.setCPL(as)
	}
	defer func() {
		if saved != as {
			c.setCPL(saved)
		}
		if r := recover(); r != nil {
			if r != faultSentinel {
				panic(r)
			}
			e := c.pendExc
			c.pendExc = excInfo{}
			gpa, vector, errCode, ok = 0, e.vector, e.err, false
		}
	}()
	acc := accRead
	if write {
		acc = accWrite
	}
	e := c.translate(va, acc)
	return e.phys | va&pageMask, 0, 0, true
}
