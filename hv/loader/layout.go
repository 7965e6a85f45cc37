package loader

import (
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
)

// PageSize is the guest page size of the loader's layout.
const PageSize = hypercall.PageSize

// The loader's guest-physical layout (docs/boot.md), each address derived
// from the one before it. Everything the loader owns lies below ImageMin.
const (
	PML4GPA = PageSize           // 0x1000
	PDPTGPA = PML4GPA + PageSize // 0x2000
	PDGPA   = PDPTGPA + PageSize // 0x3000: identPDs page directories
	// identPDs page directories of 2 MiB pages map the first 4 GiB
	// (one directory per GiB).
	identPDs  = 4
	identMax  = identPDs << 30
	PT0GPA    = PDGPA + identPDs*PageSize // 0x7000: 4 KiB pages of the first 2 MiB
	pageTabsN = (PT0GPA + PageSize - PML4GPA) / PageSize

	GDTGPA = PT0GPA + PageSize // 0x8000
	// gdtSlot bytes hold the GDT (gdtEntries and the TSS descriptor);
	// the TSS follows in the same page.
	gdtSlot = 0x100
	TSSGPA  = GDTGPA + gdtSlot // 0x8100: vCPU 0's TSS
	tssSize = 104
	// TSSSize is the stride of the TSS area: vCPU i's TSS is at
	// TSSGPA + i*TSSSize, all hypercall.MaxVCPUs of them in the GDT's page.
	TSSSize = tssSize

	StartInfoGPA = GDTGPA + PageSize // 0x9000

	// tssRoom fails to compile if the TSS area overflows the GDT's page.
	tssRoom = uint(PageSize - gdtSlot - hypercall.MaxVCPUs*tssSize)
	// startInfoSlot bytes hold struct pvisor_start_info; the memory map
	// takes the rest of the page.
	startInfoSlot = 0x100
	MemmapGPA     = StartInfoGPA + startInfoSlot // 0x9100
	memmapMax     = (PageSize - startInfoSlot) / 24

	HypercallPageGPA = StartInfoGPA + PageSize     // 0xa000
	SharedInfoGPA    = HypercallPageGPA + PageSize // 0xb000: suggested for shared_info_register
	CmdlineGPA       = SharedInfoGPA + PageSize    // 0xc000

	// The freestanding guest's initial stack: [stackBottom, StackTop).
	stackBottom = 0x10000
	StackTop    = 0x80000

	// ImageMin is the lowest address a kernel segment may use.
	ImageMin = 1 << 20
	// MinMem is the least guest memory the layout needs: the loader's
	// pages, a kernel at ImageMin and room above it.
	MinMem = 4 << 20
	// MaxMem is the most guest memory the loader lays out: what the
	// physical address width the CPUID leaves advertise can reach. It also
	// keeps every address sum below 2^64.
	MaxMem = 1 << cpu.PhysAddrBits
	// MaxCmdline is the longest command line, without its NUL, for every
	// kind of kernel: the command line and its NUL fill at most one page.
	MaxCmdline = PageSize - 1
)

// The Linux layout: boot_params (the "zero page") and the command line in
// the stack's range (Linux switches to its own stack at once), a bzImage's
// protected-mode part at 16 MiB.
const (
	ZeroPageGPA     = 0x20000
	LinuxCmdlineGPA = ZeroPageGPA + PageSize
	bzLoadGPA       = 16 << 20
)

// The PC's legacy areas below 1 MiB, as Linux expects to find them in the
// memory map.
const (
	ebdaSize   = 1 << 10
	lowMemEnd  = 640 << 10            // end of conventional memory
	ebdaGPA    = lowMemEnd - ebdaSize // 0x9fc00: extended BIOS data area
	biosSize   = 64 << 10
	biosROMGPA = ImageMin - biosSize // 0xf0000: the system BIOS
)

// The loader's GDT, in Linux's layout, and its selectors.
var gdtEntries = [...]uint64{
	0, 0,
	0x00af9b000000ffff, // 0x10 kernel CS (64-bit)
	0x00cf93000000ffff, // 0x18 kernel DS
	0x00cffb000000ffff, // 0x20 user32 CS
	0x00cff3000000ffff, // 0x28 user DS
	0x00affb000000ffff, // 0x30 user CS (64-bit)
	0,
}

const (
	SelKernelCS = 0x10
	SelKernelDS = 0x18
	SelTSS      = uint16(len(gdtEntries) * 8) // 0x40: a 16-byte descriptor after the table
	gdtLimit    = SelTSS + 16 - 1
)
