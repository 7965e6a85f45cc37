package interp

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// Several vCPUs over one Memory (the rules are in doc.go, "Multiprocessor
// rules"). This file holds what vCPUs ask of each other: requests posted
// to a vCPU and acknowledged at its next block boundary, and exclusive
// execution, in which one vCPU runs while every other is parked.

// MaxVCPUs bounds the vCPUs of one Memory.
const MaxVCPUs = 64

// Kick word bits (CPU.kick).
const (
	kickExit = 1 << 0 // Kick: return ExitKick at the next block boundary
	kickSMP  = 1 << 1 // requests are pending (CPU.req)
)

// Request bits (CPU.req).
const (
	reqFlush       = 1 << iota // drop non-global translations
	reqFlushGlobal             // drop every translation
	reqDropWrite               // drop cached write permission to code and shadowed pages
	reqPark                    // another vCPU wants to run alone
)

// smpShared is the multiprocessor state of a Memory.
type smpShared struct {
	mu    sync.Mutex             // serializes changes to cpus
	cpus  atomic.Pointer[[]*CPU] // the vCPUs of the memory; replaced, never changed
	excl  sync.Mutex             // held by the vCPU that runs alone
	owner atomic.Pointer[CPU]    // that vCPU, nil when none
}

var errTooManyVCPUs = errors.New("interp: too many vCPUs on one memory")

// attach registers c with its memory.
func (m *Memory) attach(c *CPU) error {
	s := &m.smp
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []*CPU
	if p := s.cpus.Load(); p != nil {
		old = *p
	}
	if len(old) >= MaxVCPUs {
		return errTooManyVCPUs
	}
	n := append(append(make([]*CPU, 0, len(old)+1), old...), c)
	s.cpus.Store(&n)
	return nil
}

// Detach removes c from its memory's vCPUs: it no longer takes part in
// shootdowns. Call it when a vCPU is discarded while others of the same
// memory run on (a VM's vCPUs are otherwise dropped with their memory).
func (c *CPU) Detach() {
	s := &c.mem.smp
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.cpus.Load()
	if p == nil {
		return
	}
	var n []*CPU
	for _, o := range *p {
		if o != c {
			n = append(n, o)
		}
	}
	s.cpus.Store(&n)
}

// vcpus returns the vCPUs of the memory.
func (m *Memory) vcpus() []*CPU {
	if p := m.smp.cpus.Load(); p != nil {
		return *p
	}
	return nil
}

// enter marks c active (it may touch guest memory through its TLB) and
// takes the requests posted while it was not.
func (c *CPU) enter() {
	c.active.Store(1) // a locked exchange: a full barrier before the loads below
	c.service()
}

// leave marks c inactive: it touches guest memory no more until enter.
// Its stores are visible before the flag (x86-TSO and the locked store).
func (c *CPU) leave() { c.active.Store(0) }

// post asks t to act on bits and returns the request's generation for
// await. Safe from any goroutine.
func post(t *CPU, bits uint32) uint64 {
	t.req.Or(bits)
	g := t.reqGen.Add(1)
	t.kick.Or(kickSMP)
	return g
}

// await waits until t has taken the request of generation g, or is not
// active (it takes it before it next touches guest memory). self, if not
// nil, is the active vCPU that waits: it keeps taking its own requests so
// that two vCPUs waiting for each other both go on.
func await(self, t *CPU, g uint64) {
	for spins := 0; t.active.Load() != 0 && t.ackGen.Load() < g; spins++ {
		if self != nil && self.kick.Load()&kickSMP != 0 {
			self.service()
		}
		if spins > 64 {
			runtime.Gosched()
		}
	}
}

// service takes c's pending requests. c is at a block boundary (or not
// yet executing): its TLB is consistent and no instruction is in flight.
// While another vCPU runs alone, c parks here, inactive.
func (c *CPU) service() {
	s := &c.mem.smp
	for {
		c.kick.And(^uint32(kickSMP))
		g := c.reqGen.Load()
		bits := c.req.Swap(0)
		if bits&reqFlushGlobal != 0 {
			c.flushTLB(true)
		} else if bits&reqFlush != 0 {
			c.flushTLB(false)
		}
		if bits&reqDropWrite != 0 {
			c.dropSharedWrite()
		}
		c.ackGen.Store(g)
		if o := s.owner.Load(); o == nil || o == c {
			return
		}
		c.stats.Parks++
		c.active.Store(0)
		for s.owner.Load() != nil {
			runtime.Gosched()
		}
		c.active.Store(1)
	}
}

// dropSharedWrite removes cached write permission to every page that is
// now code or a shadowed page table, whoever marked it.
func (c *CPU) dropSharedWrite() {
	m := c.mem
	drop := func(e *tlbEntry) {
		if e.perm&(permWS|permWU) == 0 {
			return
		}
		p := e.phys >> pageShift
		if p < uint64(len(m.code)) && (m.isCode(p) || m.ptabOf(p) != 0) {
			e.perm &^= permWS | permWU
		}
	}
	for i := range c.tlb {
		drop(&c.tlb[i])
	}
	for i := range c.gtlb {
		drop(&c.gtlb[i])
	}
}

// shootWrite makes every other vCPU drop cached write permission to code
// pages and, when wait, waits until the active ones have: after it, a
// write by any vCPU to a page marked before the call takes the slow path
// and invalidates the decoded code.
func (c *CPU) shootWrite(wait bool) {
	cpus := c.mem.vcpus()
	if len(cpus) < 2 {
		return
	}
	var gens [MaxVCPUs]uint64
	for i, t := range cpus {
		if t != c {
			gens[i] = post(t, reqDropWrite)
		}
	}
	if !wait {
		return
	}
	c.stats.Shootdowns++
	for i, t := range cpus {
		if t != c {
			await(c, t, gens[i])
		}
	}
}

// remoteFlush drops c's cached translations (the global ones too if
// global) from any goroutine, as an IPI-driven flush on hardware would:
// when it returns, c uses no translation cached before the call. If c is
// executing, the flush happens at its next block boundary and the caller
// waits for it; self is the calling vCPU when it is executing too
// (nil otherwise), and it keeps taking its own requests while it waits.
func (c *CPU) remoteFlush(self *CPU, global bool) {
	bits := uint32(reqFlush)
	if global {
		bits = reqFlushGlobal
	}
	await(self, c, post(c, bits))
}

// beginExclusive parks every other vCPU of c's memory. c is inside an
// instruction that has committed nothing.
func (c *CPU) beginExclusive() {
	s := &c.mem.smp
	for !s.excl.TryLock() {
		if c.kick.Load()&kickSMP != 0 {
			c.service()
		}
		runtime.Gosched()
	}
	s.owner.Store(c)
	c.stats.Exclusive++
	for _, t := range c.mem.vcpus() {
		if t == c {
			continue
		}
		post(t, reqPark)
		for spins := 0; t.active.Load() != 0; spins++ {
			if c.kick.Load()&kickSMP != 0 {
				c.service()
			}
			if spins > 64 {
				runtime.Gosched()
			}
		}
	}
	// Requests posted before the others parked (a write-permission drop)
	// are taken before the exclusive instruction writes.
	c.service()
}

// endExclusive lets the parked vCPUs go on.
func (c *CPU) endExclusive() {
	s := &c.mem.smp
	s.owner.Store(nil)
	s.excl.Unlock()
}

// hostFence is a full host memory barrier (a locked add), for MFENCE.
func (c *CPU) hostFence() { c.fenceWord.Add(0) }
