package mm

import (
	"math/bits"
	"sync/atomic"
)

// p2m maps a VM's guest frames to host frames. The reservation's frames are
// one contiguous mapping, so the host frame of gfn is always base+gfn; what
// the p2m records is whether gfn is populated (mapped for the guest) or a
// hole (ballooned out). The bitmap is read without locks on the access
// path; it changes only with budget.mu held (so Budget.Check sees it
// consistent with the counters) and the reservation's mu held (so balloon
// operations on one VM are serialised).
type p2m struct {
	bits []atomic.Uint64 // bit gfn%64 of word gfn/64: gfn is populated
}

func (p *p2m) init(frames uint64) {
	p.bits = make([]atomic.Uint64, (frames+63)/64)
	for w := range p.bits {
		m := ^uint64(0)
		if rem := frames - uint64(w)*64; rem < 64 {
			m = 1<<rem - 1
		}
		p.bits[w].Store(m)
	}
}

// mask returns the bits of word w that lie in [first, last].
func mask(w, first, last uint64) uint64 {
	m := ^uint64(0)
	if w == first/64 {
		m &= ^uint64(0) << (first % 64)
	}
	if w == last/64 {
		m &= ^uint64(0) >> (63 - last%64)
	}
	return m
}

// populated reports whether gfn is populated. Precondition: gfn < frames.
func (p *p2m) populated(gfn uint64) bool {
	return p.bits[gfn/64].Load()&(1<<(gfn%64)) != 0
}

// populatedRange reports whether every gfn in [first, last] is populated.
// Precondition: first <= last < frames.
func (p *p2m) populatedRange(first, last uint64) bool {
	if first == last {
		return p.populated(first)
	}
	for w := first / 64; w <= last/64; w++ {
		m := mask(w, first, last)
		if p.bits[w].Load()&m != m {
			return false
		}
	}
	return true
}

// clearRange unmaps [first, last] and returns how many frames were
// populated. Precondition: budget.mu held; first <= last < frames.
func (p *p2m) clearRange(first, last uint64) uint64 {
	var n int
	for w := first / 64; w <= last/64; w++ {
		m := mask(w, first, last)
		n += bits.OnesCount64(p.bits[w].And(^m) & m)
	}
	return uint64(n)
}

// setRange maps [first, last] and returns how many frames were not
// populated before. Precondition: budget.mu held; first <= last < frames.
func (p *p2m) setRange(first, last uint64) uint64 {
	var n int
	for w := first / 64; w <= last/64; w++ {
		m := mask(w, first, last)
		n += bits.OnesCount64(^p.bits[w].Or(m) & m)
	}
	return uint64(n)
}

// count returns the number of populated frames.
func (p *p2m) count() uint64 {
	var n int
	for w := range p.bits {
		n += bits.OnesCount64(p.bits[w].Load())
	}
	return uint64(n)
}

// Translate returns the host frame backing guest frame gfn, or false if gfn
// is beyond the reservation or ballooned out.
func (r *Reservation) Translate(gfn uint64) (HFN, bool) {
	if gfn >= r.frames || !r.p2m.populated(gfn) {
		return 0, false
	}
	return r.base + HFN(gfn), true
}

// Populated reports whether guest frame gfn is inside the reservation and
// populated.
func (r *Reservation) Populated(gfn uint64) bool {
	return gfn < r.frames && r.p2m.populated(gfn)
}

// Frames returns the reservation's size in guest frames.
func (r *Reservation) Frames() uint64 { return r.frames }
