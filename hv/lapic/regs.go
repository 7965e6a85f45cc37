package lapic

import "time"

// The register page. Read and Write take the offset of an access in the
// page, the access size in bytes and (for Write) the value.

// register reports whether an access of size bytes at off is a register
// access: 4 bytes at a 16-byte-aligned offset in the page. Other accesses
// read 0 and are ignored; the SDM leaves them undefined.
func register(off uint64, size int) bool {
	return size == 4 && off%16 == 0 && off < PageSize
}

// Read is an MMIO read of the register page at offset off. Write-only
// registers (EOI) read 0; a reserved offset reads 0 and sets ESR bit 7
// (illegal register address); a globally disabled APIC reads 0 everywhere.
//
// Called by the owner vCPU.
func (l *LAPIC) Read(off uint64, size int) uint32 {
	if !register(off, size) {
		return 0
	}
	l.mu.Lock()
	var e effects
	v := l.read(uint32(off), l.clk.Now(), &e)
	l.unlock(e)
	return v
}

// Precondition: mu held.
func (l *LAPIC) read(off uint32, now time.Duration, e *effects) uint32 {
	r := &l.r
	if !r.enabled {
		return 0
	}
	switch {
	case off == RegID:
		return l.id << 24
	case off == RegVersion:
		return Version | MaxLVT<<16
	case off == RegTPR:
		return r.tpr
	case off == RegAPR:
		return l.apr()
	case off == RegPPR:
		return l.ppr()
	case off == RegEOI, off == RegRRD:
		return 0
	case off == RegLDR:
		return r.ldr
	case off == RegDFR:
		return r.dfr
	case off == RegSVR:
		return r.svr
	case off >= RegISR && off < RegISR+0x80:
		return r.isr[(off-RegISR)/0x10]
	case off >= RegTMR && off < RegTMR+0x80:
		return r.tmr[(off-RegTMR)/0x10]
	case off >= RegIRR && off < RegIRR+0x80:
		return r.irr[(off-RegIRR)/0x10]
	case off == RegESR:
		return r.esr
	case off == RegICRLow:
		return r.icrLow // delivery status (bit 12) is 0: an IPI is sent at once
	case off == RegICRHigh:
		return r.icrHigh
	case off == RegLVTCMCI:
		return r.lvt[LVTCMCI]
	case off >= RegLVTTimer && off <= RegLVTError:
		return r.lvt[LVTTimer+int(off-RegLVTTimer)/0x10]
	case off == RegTimerInitial:
		return r.initial
	case off == RegTimerCurrent:
		return r.current(now)
	case off == RegTimerDivide:
		return r.divide
	}
	l.logError(ESRIllegalRegister, e)
	return 0
}

// Write is an MMIO write of v to the register page at offset off. Writes
// to read-only registers (ID, version, APR, PPR, RRD, ISR, TMR, IRR,
// current count) are ignored; a reserved offset sets ESR bit 7; a globally
// disabled APIC ignores every write. Bits a register does not implement
// are dropped. A write to the low ICR sends an IPI on the Bus after the
// LAPIC's lock is released.
//
// Called by the owner vCPU.
func (l *LAPIC) Write(off uint64, size int, v uint32) {
	if !register(off, size) {
		return
	}
	l.mu.Lock()
	var e effects
	l.write(uint32(off), v, l.clk.Now(), &e)
	l.unlock(e)
}

// Precondition: mu held.
func (l *LAPIC) write(off, v uint32, now time.Duration, e *effects) {
	r := &l.r
	if !r.enabled {
		return
	}
	swOff := r.svr&SVREnable == 0
	switch {
	case off == RegID, off == RegVersion, off == RegAPR, off == RegPPR, off == RegRRD,
		off >= RegISR && off < RegIRR+0x80, off == RegTimerCurrent:
		// Read-only. The xAPIC ID is writable on some CPUs; here it is
		// fixed, so that Group's routing by ID never changes.
	case off == RegTPR:
		r.tpr = v & 0xFF
	case off == RegEOI:
		l.eoi(e)
	case off == RegLDR:
		r.ldr = v & ldrWritable
	case off == RegDFR:
		r.dfr = v&dfrWritable | dfrOnes
	case off == RegSVR:
		l.poll(now, e)
		r.svr = v & svrWritable
		if r.svr&SVREnable == 0 {
			// Software disable masks every LVT entry (SDM vol. 3,
			// 11.4.7.2); IRR and ISR are kept.
			for i := range r.lvt {
				r.lvt[i] |= LVTMasked
			}
		}
		e.reprogram = true
	case off == RegESR:
		r.esr, r.esrPending = r.esrPending, 0
	case off == RegICRLow:
		r.icrLow = v & icrLowMask
		ipi := DecodeICR(r.icrLow, r.icrHigh)
		if (ipi.Mode == Fixed || ipi.Mode == LowestPriority) && ipi.Vector < 16 {
			l.logError(ESRSendIllegalVector, e)
			return
		}
		e.send, e.ipi = true, ipi
	case off == RegICRHigh:
		r.icrHigh = v & icrHighMask
	case off == RegLVTCMCI, off >= RegLVTTimer && off <= RegLVTError:
		i := LVTCMCI
		if off != RegLVTCMCI {
			i = LVTTimer + int(off-RegLVTTimer)/0x10
		}
		v &= lvtWritable[i]
		if swOff {
			v |= LVTMasked // cannot be unmasked while software disabled
		}
		if i == LVTTimer {
			l.writeLVTTimer(v, now, e)
		} else {
			r.lvt[i] = v
		}
	case off == RegTimerInitial:
		l.writeInitial(v, now, e)
	case off == RegTimerDivide:
		l.writeDivide(v, now, e)
	default:
		l.logError(ESRIllegalRegister, e)
	}
}
