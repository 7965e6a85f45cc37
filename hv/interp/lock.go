package interp

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// LOCK-prefixed instructions and XCHG with memory, atomic with respect to
// the other vCPUs of the memory (doc.go, "Multiprocessor rules").
//
// Such an instruction runs its ordinary handler as a transaction: its
// memory operand is read from an atomic snapshot of the naturally aligned
// region that holds it (8 bytes; 16 for CMPXCHG16B), its writes go to a
// copy of the region, and the copy is committed with one host
// compare-and-swap. If another vCPU changed the region meanwhile, the
// registers and flags are put back and the instruction runs again. An
// operand that does not fit in one region (misaligned across it, across a
// page, or in MMIO) takes the slow path: the vCPU parks every other vCPU
// and runs the instruction alone, as a bus lock does. The handlers are
// the same as for the unlocked forms, so the semantics cannot diverge.

// lockTx is the state of the transaction of the executing instruction.
type lockTx struct {
	active bool // reads and writes go through the transaction
	have   bool // the region is loaded
	split  bool // the operand does not fit one region: run alone
	wrote  bool
	wide   bool   // a 16-byte region (CMPXCHG16B)
	pa     uint64 // the region's guest-physical base
	old    [16]byte
	cur    [16]byte
}

// lockTries bounds the compare-and-swap attempts before an instruction
// runs alone, so that a contended location cannot starve a vCPU.
const lockTries = 64

// lockTwin maps an op to its locked form.
var lockTwin [maxOps]uint16

// lockable registers the locked form of op (wide: CMPXCHG8B/16B, whose
// 16-byte form needs a 16-byte region) and returns op.
func lockableOp(op uint16, wide bool) uint16 {
	h := handlers[op]
	lockTwin[op] = defOp(opNames[op]+" (locked)", false, func(c *CPU, in *Inst) { c.locked(h, in, wide) })
	return op
}

// locked runs h as a transaction (see above).
func (c *CPU) locked(h handler, in *Inst, wide bool) {
	if in.flags&iMem == 0 || len(c.mem.vcpus()) < 2 {
		// No other vCPU can see the operand between the read and the
		// write: the plain handler is atomic enough.
		h(c, in)
		return
	}
	var regs [16]uint64
	copy(regs[:], c.r[:16])
	flags, lf := c.flags, c.lf
	for try := 0; ; try++ {
		c.lk = lockTx{active: true, wide: wide && in.size == 8}
		c.rdMask, c.wrMask = 0, 0 // every access takes the slow path, into the transaction
		h(c, in)
		c.setCPL(c.cpl)
		c.lk.active = false
		if !c.lk.split {
			if c.lockCommit() {
				return
			}
			c.stats.LockRetries++
		}
		copy(c.r[:16], regs[:])
		c.flags, c.lf = flags, lf
		if c.lk.split || try >= lockTries {
			if c.lk.split {
				c.stats.SplitLocks++
			}
			c.lk = lockTx{}
			c.runAlone(h, in)
			return
		}
	}
}

// runAlone runs h with every other vCPU parked.
func (c *CPU) runAlone(h handler, in *Inst) {
	c.beginExclusive()
	defer c.endExclusive()
	h(c, in)
}

// lockAbort ends a transaction cut short by a fault or an exit.
func (c *CPU) lockAbort() {
	if c.lk.active {
		c.lk = lockTx{}
		c.setCPL(c.cpl)
	}
}

// lockNeed is the TLB permission an access of kind acc needs at the
// current privilege (the masks are cleared during a transaction).
func (c *CPU) lockNeed(acc int) uint8 {
	switch {
	case acc == accWrite && c.cpl == 3:
		return permWU
	case acc == accWrite:
		return permWS
	case c.cpl == 3:
		return permRU
	}
	return permRS
}

// lockRegion places an access of size bytes at pa in the transaction's
// region, loading the region on the first access. It reports false (and
// marks the transaction split) when the access does not fit.
func (c *CPU) lockRegion(pa uint64, size uint8) (uint64, bool) {
	span := uint64(8)
	if c.lk.wide {
		span = 16
	}
	if !c.lk.have {
		base := pa &^ (span - 1)
		if pa+uint64(size) > base+span || !c.backed(base, span) || span == 16 && !haveCAS128 {
			c.lk.split = true
			return 0, false
		}
		p := unsafe.Pointer(&c.ram[base])
		if uintptr(p)&uintptr(span-1) != 0 {
			c.lk.split = true // host memory not aligned for the host atomic
			return 0, false
		}
		c.lk.have, c.lk.pa = true, base
		binary.LittleEndian.PutUint64(c.lk.old[:], atomic.LoadUint64((*uint64)(p)))
		if span == 16 {
			binary.LittleEndian.PutUint64(c.lk.old[8:], atomic.LoadUint64((*uint64)(unsafe.Add(p, 8))))
		}
		c.lk.cur = c.lk.old
	}
	if pa < c.lk.pa || pa+uint64(size) > c.lk.pa+span {
		c.lk.split = true
		return 0, false
	}
	return pa - c.lk.pa, true
}

// lockRead is readSlow during a transaction.
func (c *CPU) lockRead(va uint64, size uint8) uint64 {
	if c.lk.split {
		return 0
	}
	off, ok := c.lockRegion(c.physFor(va, accRead), size)
	if !ok {
		return 0 // the instruction runs again alone; the value is not used
	}
	var b [8]byte
	copy(b[:size], c.lk.cur[off:])
	return binary.LittleEndian.Uint64(b[:])
}

// lockWrite is writeSlow during a transaction.
func (c *CPU) lockWrite(va uint64, size uint8, v uint64) {
	if c.lk.split {
		return
	}
	off, ok := c.lockRegion(c.physFor(va, accWrite), size)
	if !ok {
		return
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	copy(c.lk.cur[off:off+uint64(size)], b[:size])
	c.lk.wrote = true
}

// lockCommit publishes the transaction's writes with one compare-and-swap
// and reports whether it did.
func (c *CPU) lockCommit() bool {
	if !c.lk.have || !c.lk.wrote {
		return true
	}
	p := unsafe.Pointer(&c.ram[c.lk.pa])
	var ok bool
	if c.lk.wide {
		ok = cas128(p,
			binary.LittleEndian.Uint64(c.lk.old[:]), binary.LittleEndian.Uint64(c.lk.old[8:]),
			binary.LittleEndian.Uint64(c.lk.cur[:]), binary.LittleEndian.Uint64(c.lk.cur[8:]))
	} else {
		ok = atomic.CompareAndSwapUint64((*uint64)(p), binary.LittleEndian.Uint64(c.lk.old[:]), binary.LittleEndian.Uint64(c.lk.cur[:]))
	}
	if ok {
		c.noteWrite(c.lk.pa)
	}
	return ok
}
