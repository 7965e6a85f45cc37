package cpu

// The shaped CPUID of a pvisor vCPU. Every engine and the hypervisor answer
// CPUID from this one table, so a guest sees the same CPU whatever runs it.
//
// Choices (see docs/cpuid.md):
//   - Vendor "PvisorVirtCP": unknown to Linux, so no Intel or AMD quirk path
//     runs (verify_cpu touches no vendor MSR).
//   - Leaf 1 advertises what Linux 6.12 x86-64 requires (FPU, PSE, MSR, PAE,
//     CX8, PGE, FXSR, CMOV, SSE, SSE2) plus TSC, PAT, CLFLUSH, MMX, CX16 and
//     the hypervisor bit. No SSE3+, no XSAVE/OSXSAVE, no AVX, no POPCNT, no
//     APIC: glibc then keeps to its SSE2 baseline and Linux to the 8259.
//   - Extended leaves: SYSCALL, NX, LM, 1 GiB pages, LAHF/SAHF in long mode;
//     40 physical and 48 virtual address bits.
//   - 0x40000000: the hypervisor leaf with the signature "pvisorpvisor";
//     0x40000001 EAX holds the pvisor feature bits (reserved, 0 for now).

// Vendor and hypervisor signatures.
const (
	VendorString        = "PvisorVirtCP"
	HypervisorSignature = "pvisorpvisor"
	PhysAddrBits        = 40
	VirtAddrBits        = 48
)

// Leaf-1 EDX feature bits.
const (
	Feat1EDXFPU     = 1 << 0
	Feat1EDXVME     = 1 << 1 // not advertised
	Feat1EDXDE      = 1 << 2 // not advertised
	Feat1EDXPSE     = 1 << 3
	Feat1EDXTSC     = 1 << 4
	Feat1EDXMSR     = 1 << 5
	Feat1EDXPAE     = 1 << 6
	Feat1EDXMCE     = 1 << 7 // not advertised
	Feat1EDXCX8     = 1 << 8
	Feat1EDXAPIC    = 1 << 9 // only with CPUIDConfig.APIC
	Feat1EDXPGE     = 1 << 13
	Feat1EDXCMOV    = 1 << 15
	Feat1EDXPAT     = 1 << 16
	Feat1EDXCLFLUSH = 1 << 19
	Feat1EDXMMX     = 1 << 23
	Feat1EDXFXSR    = 1 << 24
	Feat1EDXSSE     = 1 << 25
	Feat1EDXSSE2    = 1 << 26

	Feat1ECXCX16        = 1 << 13
	Feat1ECXTSCDeadline = 1 << 24 // only with CPUIDConfig.APIC
	Feat1ECXHypervisor  = 1 << 31

	FeatExtEDXSyscall = 1 << 11
	FeatExtEDXNX      = 1 << 20
	FeatExtEDXPage1G  = 1 << 26
	FeatExtEDXLM      = 1 << 29
	FeatExtECXLAHF    = 1 << 0
)

// FeatureWord names the CPUID register a feature bit lives in.
type FeatureWord uint8

const (
	Leaf1EDX FeatureWord = iota
	Leaf1ECX
	ExtLeafEDX // 0x80000001 EDX
	ExtLeafECX // 0x80000001 ECX
	numFeatureWords
)

var featureWordNames = [numFeatureWords]string{"1 EDX", "1 ECX", "0x80000001 EDX", "0x80000001 ECX"}

func (w FeatureWord) String() string { return featureWordNames[w] }

// Feature is one advertised CPUID feature bit.
type Feature struct {
	Word FeatureWord
	Bit  uint32
	Name string // as Linux's /proc/cpuinfo spells it
}

// Features is every feature bit a pvisor vCPU advertises: the one list
// CPUID answers from, that docs/cpuid.md is checked against, and that the
// engine's tests back with instructions that must not raise #UD
// (hv/interp TestCPUIDFeaturesBacked).
var Features = []Feature{
	{Leaf1EDX, Feat1EDXFPU, "fpu"},
	{Leaf1EDX, Feat1EDXPSE, "pse"},
	{Leaf1EDX, Feat1EDXTSC, "tsc"},
	{Leaf1EDX, Feat1EDXMSR, "msr"},
	{Leaf1EDX, Feat1EDXPAE, "pae"},
	{Leaf1EDX, Feat1EDXCX8, "cx8"},
	{Leaf1EDX, Feat1EDXPGE, "pge"},
	{Leaf1EDX, Feat1EDXCMOV, "cmov"},
	{Leaf1EDX, Feat1EDXPAT, "pat"},
	{Leaf1EDX, Feat1EDXCLFLUSH, "clflush"},
	{Leaf1EDX, Feat1EDXMMX, "mmx"},
	{Leaf1EDX, Feat1EDXFXSR, "fxsr"},
	{Leaf1EDX, Feat1EDXSSE, "sse"},
	{Leaf1EDX, Feat1EDXSSE2, "sse2"},
	{Leaf1ECX, Feat1ECXCX16, "cx16"},
	{Leaf1ECX, Feat1ECXHypervisor, "hypervisor"},
	{ExtLeafEDX, FeatExtEDXSyscall, "syscall"},
	{ExtLeafEDX, FeatExtEDXNX, "nx"},
	{ExtLeafEDX, FeatExtEDXPage1G, "pdpe1gb"},
	{ExtLeafEDX, FeatExtEDXLM, "lm"},
	{ExtLeafECX, FeatExtECXLAHF, "lahf_lm"},
}

// featureWords are the advertised words, built from Features.
var featureWords = func() (w [numFeatureWords]uint32) {
	for _, f := range Features {
		w[f.Word] |= f.Bit
	}
	return w
}()

var (
	leaf1EDX   = featureWords[Leaf1EDX]
	leaf1ECX   = featureWords[Leaf1ECX]
	extLeafEDX = featureWords[ExtLeafEDX]
	extLeafECX = featureWords[ExtLeafECX]
)

func sig(s string) (a, b, c uint32) {
	w := func(i int) uint32 {
		return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
	}
	return w(0), w(4), w(8)
}

// CPUID returns the four registers of leaf and subleaf as pvisor's vCPU
// reports them. vcpuID goes into the initial APIC ID field. Leaves beyond the
// advertised maxima return zeros, as on the reference (AMD) behaviour for
// out-of-range leaves the project chose.
func CPUID(leaf, sub uint32, vcpuID uint32) (eax, ebx, ecx, edx uint32) {
	return CPUIDWith(leaf, sub, vcpuID, CPUIDConfig{})
}

// CPUIDConfig is what a VM adds to the one CPUID table.
type CPUIDConfig struct {
	// APIC: the vCPU has a local APIC (hv/lapic; trap and hwassist mode
	// with several vCPUs). Leaf 1 then also advertises the APIC (EDX bit
	// 9) and its TSC-deadline timer (ECX bit 24). These two are not in
	// Features: a VM of one vCPU has no APIC and runs on the 8259.
	APIC bool
}

// CPUIDWith is CPUID for a VM configured by cfg.
func CPUIDWith(leaf, sub uint32, vcpuID uint32, cfg CPUIDConfig) (eax, ebx, ecx, edx uint32) {
	_ = sub
	switch leaf {
	case 0:
		b, d, c := sig(VendorString) // EBX, EDX, ECX order
		return 1, b, c, d
	case 1:
		// Family 6, model 0, stepping 1; CLFLUSH line 8*8 bytes; 1 logical CPU.
		ecx, edx := leaf1ECX, leaf1EDX
		if cfg.APIC {
			ecx |= Feat1ECXTSCDeadline
			edx |= Feat1EDXAPIC
		}
		return 0x00000601, vcpuID<<24 | 1<<16 | 8<<8, ecx, edx
	case 0x40000000:
		b, c, d := sig(HypervisorSignature)
		return 0x40000001, b, c, d
	case 0x40000001:
		return 0, 0, 0, 0
	case 0x80000000:
		return 0x80000008, 0, 0, 0
	case 0x80000001:
		return 0, 0, extLeafECX, extLeafEDX
	case 0x80000002, 0x80000003, 0x80000004:
		const brand = "pvisor virtual CPU\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
		off := int(leaf-0x80000002) * 16
		a, b, c := sig(brand[off:])
		_, _, d := sig(brand[off+4:])
		return a, b, c, d
	case 0x80000008:
		return VirtAddrBits<<8 | PhysAddrBits, 0, 0, 0
	}
	return 0, 0, 0, 0
}
