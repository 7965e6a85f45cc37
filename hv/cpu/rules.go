package cpu

// Architectural rules that more than one component applies: the engines,
// the trap-mode emulator (hv/emul) and the hypercall handlers (hv). Each rule
// is one function here, so the modes cannot drift apart. A function
// returning ok == false means the CPU raises #GP(0).

// Canonical reports whether va is a canonical address for VirtAddrBits (48)
// bits of linear address: bits 63:47 all equal.
func Canonical(va uint64) bool { return uint64(int64(va<<16)>>16) == va }

// Bits a guest may set in CR0 on a pvisor vCPU; the rest (63:32 and the
// reserved low bits) are reserved.
const CR0Valid = CR0PE | CR0MP | CR0EM | CR0TS | CR0ET | CR0NE | CR0WP | CR0AM | CR0NW | CR0CD | CR0PG

// cr4Valid holds the CR4 bits the advertised CPUID backs (see CR4Valid).
var cr4Valid = cr4Backed()

// cr4Backed derives the CR4 bits a guest may set from the CPUID table:
// a bit whose feature is not advertised is reserved, as on a CPU without
// the feature. PCE needs no feature bit.
func cr4Backed() uint64 {
	_, _, _, edx := CPUID(1, 0, 0)
	v := uint64(CR4PCE)
	for _, b := range []struct {
		feat uint32
		cr4  uint64
	}{
		{Feat1EDXVME, CR4VME | CR4PVI},
		{Feat1EDXDE, CR4DE},
		{Feat1EDXTSC, CR4TSD},
		{Feat1EDXPSE, CR4PSE},
		{Feat1EDXPAE, CR4PAE},
		{Feat1EDXMCE, CR4MCE},
		{Feat1EDXPGE, CR4PGE},
		{Feat1EDXFXSR, CR4OSFXSR},
		{Feat1EDXSSE, CR4OSXMMEXCPT},
	} {
		if edx&b.feat != 0 {
			v |= b.cr4
		}
	}
	// Leaf 7 (UMIP, FSGSBASE, SMEP, SMAP) and XSAVE are not advertised.
	return v
}

// CR4Valid returns the CR4 bits a guest may set.
func CR4Valid() uint64 { return cr4Valid }

// CR0Write checks a MOV to CR0 (also CLTS and LMSW, which build the value
// themselves) in long mode and returns the value CR0 takes (ET reads as 1).
// Reserved bits, NW without CD, PG without PE, and clearing PG (leaving long
// mode, which needs compatibility-mode code the engine does not run) raise
// #GP(0).
func CR0Write(v uint64) (uint64, bool) {
	if v&^CR0Valid != 0 || v&(CR0NW|CR0CD) == CR0NW || v&(CR0PG|CR0PE) != CR0PG|CR0PE {
		return 0, false
	}
	return v | CR0ET, true
}

// CR3Write checks a MOV to CR3 and returns the value CR3 takes. Bits above
// PhysAddrBits other than bit 63 are reserved; bit 63 (the PCID no-flush
// hint) is not stored, and PCIDs are not advertised.
func CR3Write(v uint64) (uint64, bool) {
	v &^= 1 << 63
	if v>>PhysAddrBits != 0 {
		return 0, false
	}
	return v, true
}

// CR4Write checks a MOV to CR4 in long mode: a bit the CPUID does not back
// and clearing PAE raise #GP(0).
func CR4Write(v uint64) (uint64, bool) {
	if v&^cr4Valid != 0 || v&CR4PAE == 0 {
		return 0, false
	}
	return v, true
}

// CR8Write checks a MOV to CR8 (the task-priority register): bits 63:4 are
// reserved.
func CR8Write(v uint64) (uint64, bool) {
	if v>>4 != 0 {
		return 0, false
	}
	return v, true
}
