package lapic

import "math/bits"

// Interrupt acceptance and priorities (SDM vol. 3, 11.8).

// bitmap is 256 bits, one per vector, as IRR, ISR and TMR hold them:
// word n holds vectors 32n..32n+31.
type bitmap [8]uint32

func (b *bitmap) set(v uint8)      { b[v>>5] |= 1 << (v & 31) }
func (b *bitmap) clear(v uint8)    { b[v>>5] &^= 1 << (v & 31) }
func (b *bitmap) has(v uint8) bool { return b[v>>5]&(1<<(v&31)) != 0 }
func (b *bitmap) assign(v uint8, on bool) {
	if on {
		b.set(v)
	} else {
		b.clear(v)
	}
}

// highest returns the highest vector set, or -1.
func (b *bitmap) highest() int {
	for i := len(b) - 1; i >= 0; i-- {
		if w := b[i]; w != 0 {
			return i*32 + 31 - bits.LeadingZeros32(w)
		}
	}
	return -1
}

// class is a vector's priority class (vector bits 7:4); an empty register
// (-1) has class 0.
func class(v int) uint32 {
	if v < 0 {
		return 0
	}
	return uint32(v) >> 4
}

// Deliver offers a fixed interrupt to the LAPIC, as a message on the APIC
// bus would: an IPI, an I/O APIC's redirection entry, an MSI. level says
// the interrupt is level-triggered: its TMR bit is set, and its EOI calls
// OnLevelEOI. A vector below 16 is refused and sets ESR bit 6 (receive
// illegal vector). A LAPIC globally or software disabled drops it. A
// vector already in IRR is not counted twice (IRR holds one request per
// vector).
//
// Deliver may be called from any goroutine.
func (l *LAPIC) Deliver(vector uint8, level bool) {
	l.mu.Lock()
	var e effects
	l.accept(vector, level, &e)
	l.unlock(e)
}

// accept puts a fixed interrupt into IRR.
// Precondition: mu held.
func (l *LAPIC) accept(v uint8, level bool, e *effects) {
	if !l.r.enabled || l.r.svr&SVREnable == 0 {
		return
	}
	if v < 16 {
		l.logError(ESRReceiveIllegalVector, e)
		return
	}
	l.r.irr.set(v)
	l.r.tmr.assign(v, level)
	e.interrupt = true
}

// local raises LVT entry i's interrupt as a fixed, edge-triggered one,
// unless the entry is masked.
// Precondition: mu held.
func (l *LAPIC) local(i int, e *effects) {
	if v := l.r.lvt[i]; v&LVTMasked == 0 {
		l.accept(uint8(v), false, e)
	}
}

// logError records ESR bits and raises the error LVT entry's interrupt.
// An error raising that interrupt (its vector is illegal) is recorded but
// raises nothing: logError never recurses.
// Precondition: mu held.
func (l *LAPIC) logError(bits uint32, e *effects) {
	l.r.esrPending |= bits
	v := l.r.lvt[LVTError]
	if v&LVTMasked != 0 || !l.r.enabled || l.r.svr&SVREnable == 0 {
		return
	}
	if uint8(v) < 16 {
		l.r.esrPending |= ESRReceiveIllegalVector
		return
	}
	l.r.irr.set(uint8(v))
	l.r.tmr.clear(uint8(v))
	e.interrupt = true
}

// ppr is the processor-priority register: TPR, or the class of the highest
// interrupt in service when that is higher.
// Precondition: mu held.
func (l *LAPIC) ppr() uint32 {
	isrv := l.r.isr.highest()
	if l.r.tpr>>4 >= class(isrv) {
		return l.r.tpr
	}
	return class(isrv) << 4
}

// apr is the arbitration-priority register: TPR when it is at least the
// highest request's class and above the highest in service; else the
// highest of the three classes. (The SDM writes the last term as
// max(TPR AND ISRV, IRRV); no CPU Linux runs on reads APR, and this model
// arbitrates nothing with it.)
// Precondition: mu held.
func (l *LAPIC) apr() uint32 {
	t, s, r := l.r.tpr>>4, class(l.r.isr.highest()), class(l.r.irr.highest())
	if t >= r && t > s {
		return l.r.tpr
	}
	return max(t, s, r) << 4
}

// Pending returns the vector the LAPIC presents to the CPU, or -1: the
// highest vector in IRR whose priority class is above PPR's. A globally
// disabled APIC presents nothing; a software-disabled one still presents
// what it held in IRR before it was disabled (SDM vol. 3, 11.4.7.2).
//
// Called by the owner vCPU, which injects the vector if its RFLAGS.IF and
// interrupt shadow allow and then calls Ack.
func (l *LAPIC) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending()
}

// Precondition: mu held.
func (l *LAPIC) pending() int {
	if !l.r.enabled {
		return -1
	}
	v := l.r.irr.highest()
	if v < 0 || class(v) <= l.ppr()>>4 {
		return -1
	}
	return v
}

// Ack is the CPU taking vector: it moves from IRR to ISR. It succeeds for
// a vector Pending returned, which stays deliverable (in IRR, its class
// above PPR's) whatever arrives meanwhile, and reports whether it did. It
// fails, changing nothing, when the vector is not deliverable: an INIT or
// a reset cleared IRR since Pending. The VM then injects nothing and asks
// Pending again. A higher vector that arrived since Pending is presented
// next, and nests above this one as it would have on hardware had it come
// a moment later.
//
// Called by the owner vCPU.
func (l *LAPIC) Ack(vector uint8) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.r.enabled || vector < 16 || !l.r.irr.has(vector) || class(int(vector)) <= l.ppr()>>4 {
		return false
	}
	l.r.irr.clear(vector)
	l.r.isr.set(vector)
	return true
}

// eoi ends the highest interrupt in service (a write to the EOI register).
// Precondition: mu held.
func (l *LAPIC) eoi(e *effects) {
	v := l.r.isr.highest()
	if v < 0 {
		return
	}
	l.r.isr.clear(uint8(v))
	if l.r.tmr.has(uint8(v)) {
		e.levelEOI, e.eoiVector = true, uint8(v)
	}
}
