package cpu

// General-purpose register indexes, in the x86 encoding order.
const (
	RAX = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)

// RFLAGS bits.
const (
	FlagCF   = 1 << 0
	FlagPF   = 1 << 2
	FlagAF   = 1 << 4
	FlagZF   = 1 << 6
	FlagSF   = 1 << 7
	FlagTF   = 1 << 8
	FlagIF   = 1 << 9
	FlagDF   = 1 << 10
	FlagOF   = 1 << 11
	FlagIOPL = 3 << 12
	FlagNT   = 1 << 14
	FlagRF   = 1 << 16
	FlagVM   = 1 << 17
	FlagAC   = 1 << 18
	FlagVIF  = 1 << 19
	FlagVIP  = 1 << 20
	FlagID   = 1 << 21

	// FlagsArith are the six status flags set by arithmetic.
	FlagsArith = FlagCF | FlagPF | FlagAF | FlagZF | FlagSF | FlagOF
	// FlagsFixed is the reserved bit 1, always set.
	FlagsFixed = 1 << 1
	// FlagsLongMode are the RFLAGS bits that can be set in 64-bit mode
	// (besides FlagsFixed); the rest are reserved, and VM is clear.
	FlagsLongMode = FlagsArith | FlagTF | FlagIF | FlagDF | FlagIOPL | FlagNT | FlagRF | FlagAC | FlagVIF | FlagVIP | FlagID
)

// Control register bits used by engines and loaders.
const (
	CR0PE = 1 << 0
	CR0MP = 1 << 1
	CR0EM = 1 << 2
	CR0TS = 1 << 3
	CR0ET = 1 << 4
	CR0NE = 1 << 5
	CR0WP = 1 << 16
	CR0AM = 1 << 18
	CR0NW = 1 << 29
	CR0CD = 1 << 30
	CR0PG = 1 << 31

	CR4VME        = 1 << 0
	CR4PVI        = 1 << 1
	CR4TSD        = 1 << 2
	CR4DE         = 1 << 3
	CR4PSE        = 1 << 4
	CR4PAE        = 1 << 5
	CR4MCE        = 1 << 6
	CR4PGE        = 1 << 7
	CR4PCE        = 1 << 8
	CR4OSFXSR     = 1 << 9
	CR4OSXMMEXCPT = 1 << 10
	CR4UMIP       = 1 << 11
	CR4FSGSBASE   = 1 << 16
	CR4PCIDE      = 1 << 17
	CR4OSXSAVE    = 1 << 18
	CR4SMEP       = 1 << 20
	CR4SMAP       = 1 << 21

	EFERSCE = 1 << 0
	EFERLME = 1 << 8
	EFERLMA = 1 << 10
	EFERNXE = 1 << 11
)

// MSR numbers an engine keeps per vCPU.
const (
	MSRTSC          = 0x10
	MSRAPICBase     = 0x1b
	MSRMiscEnable   = 0x1a0
	MSRPAT          = 0x277
	MSRSysenterCS   = 0x174
	MSRSysenterESP  = 0x175
	MSRSysenterEIP  = 0x176
	MSREFER         = 0xc0000080
	MSRSTAR         = 0xc0000081
	MSRLSTAR        = 0xc0000082
	MSRCSTAR        = 0xc0000083
	MSRSFMASK       = 0xc0000084
	MSRFSBase       = 0xc0000100
	MSRGSBase       = 0xc0000101
	MSRKernelGSBase = 0xc0000102
	MSRTSCAux       = 0xc0000103
)

// Segment is a segment register with its hidden descriptor cache.
type Segment struct {
	Selector uint16
	Base     uint64
	Limit    uint32
	// Attr holds the descriptor's access byte in bits 0-7 (type, S, DPL, P)
	// and flags in bits 12-15 (AVL, L, D/B, G), as VMX's access-rights field.
	Attr uint16
}

// Segment attribute bits.
const (
	SegAttrAccessed = 1 << 0
	SegAttrS        = 1 << 4 // code or data (not system)
	SegAttrP        = 1 << 7
	SegAttrL        = 1 << 13
	SegAttrDB       = 1 << 14
	SegAttrG        = 1 << 15
)

// DPL returns the descriptor privilege level of s.
func (s Segment) DPL() int { return int(s.Attr>>5) & 3 }

// DTable is a descriptor-table register (GDTR, IDTR).
type DTable struct {
	Base  uint64
	Limit uint16
}

// Regs is the user-visible register state.
type Regs struct {
	GPR    [16]uint64
	RIP    uint64
	RFLAGS uint64
}

// SRegs is the system state: segments, descriptor tables, control registers.
type SRegs struct {
	CS, DS, ES, FS, GS, SS Segment
	TR, LDT                Segment
	GDT, IDT               DTable
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	// DR holds DR0-DR7 (DR4 and DR5 alias DR6 and DR7). They are stored;
	// engines implement no hardware breakpoints.
	DR [8]uint64
}

// FPU is the x87, SSE and MXCSR state, laid out as FXSAVE keeps it.
type FPU struct {
	FCW   uint16
	FSW   uint16
	FTW   uint8 // abridged tag word: bit i set = ST physical register i valid
	FOP   uint16
	FIP   uint64
	FDP   uint64
	MXCSR uint32
	// ST holds the eight 80-bit x87 registers by physical index, each in the
	// low ten bytes.
	ST  [8][16]byte
	XMM [16][16]byte
}

// MSRs are the per-vCPU model-specific registers outside SRegs.
type MSRs struct {
	STAR, LSTAR, CSTAR, SFMASK uint64
	KernelGSBase               uint64
	SysenterCS                 uint64
	SysenterESP, SysenterEIP   uint64
	PAT                        uint64
	TSCAux                     uint64
	MiscEnable                 uint64
}
