package loader

import (
	"fmt"

	"github.com/pvisor/pvisor/hypercall"
)

// The Linux 64-bit boot protocol (Documentation/arch/x86/boot.rst): the
// kernel is entered in long mode with paging on, flat __BOOT_CS (0x10) and
// __BOOT_DS (0x18), interrupts off and RSI pointing at struct boot_params
// (the "zero page"). pvisor boots an uncompressed vmlinux ELF directly (no
// decompressor runs in the guest), or a bzImage through its 64-bit entry.

const (
	// Offsets in struct boot_params.

	// BootParamsACPIRSDP is acpi_rsdp_addr (protocol 2.14): the ACPI
	// tables' RSDP, which Linux takes instead of scanning the BIOS area.
	// The loader leaves it 0; hv sets it for a VM it gives ACPI tables.
	BootParamsACPIRSDP = 0x070
	bpExtRamdiskImage  = 0x0c0
	bpExtRamdiskSize   = 0x0c4
	bpExtCmdLinePtr    = 0x0c8
	bpE820Entries      = 0x1e8
	bpSetupHeader      = 0x1f1
	bpE820Table        = 0x2d0
	bpE820Max          = 128
	e820EntrySize      = 20
	bootParamsSize     = PageSize

	// Offsets of setup-header fields, from the start of boot_params (and
	// of a bzImage).
	hdrSetupSects      = 0x1f1
	hdrBootFlag        = 0x1fe
	hdrJump            = 0x200 // a 2-byte jump; its second byte sizes the header
	hdrHeader          = 0x202
	hdrVersion         = 0x206
	hdrTypeOfLoader    = 0x210
	hdrLoadflags       = 0x211
	hdrCode32Start     = 0x214
	hdrRamdiskImage    = 0x218
	hdrRamdiskSize     = 0x21c
	hdrHeapEndPtr      = 0x224
	hdrCmdLinePtr      = 0x228
	hdrKernelAlignment = 0x230
	hdrXloadflags      = 0x236
	hdrCmdlineSize     = 0x238
	hdrInitSize        = 0x260
	hdrEnd212          = hdrInitSize + 4 // the fields of protocol 2.12 end here

	hdrMagic       = 0x53726448 // "HdrS"
	bootFlag       = 0xaa55
	minProtocol    = 0x020c // 2.12: XLF_KERNEL_64
	vmlinuxVersion = 0x020f // the protocol pvisor speaks for a vmlinux
	loaderUnknown  = 0xff   // type_of_loader: not one with an assigned ID
	loadedHigh     = 0x01
	canUseHeap     = 0x80
	heapEnd        = 0xfe00 // heap_end_ptr: the end of the real-mode heap, as bootloaders set it
	xlfKernel64    = 0x01
	sectorSize     = 512
	defaultSetup   = 4                        // setup_sects 0 means 4
	entry64Offset  = 0x200                    // startup_64 in a bzImage's protected-mode part
	kernelAlign    = 2 << 20                  // a vmlinux's physical alignment
	e820RAM        = hypercall.MemmapRAM      // the memory map speaks E820's types:
	e820Reserved   = hypercall.MemmapReserved // 1 RAM, 2 reserved
)

// linuxMemmap is the memory map Linux gets: conventional memory below the
// EBDA, the EBDA and the BIOS ROM reserved, RAM from 1 MiB.
func linuxMemmap(mem uint64) []hypercall.MemmapEntry {
	return []hypercall.MemmapEntry{
		{Addr: 0, Size: ebdaGPA, Type: e820RAM},
		{Addr: ebdaGPA, Size: ebdaSize, Type: e820Reserved},
		{Addr: biosROMGPA, Size: biosSize, Type: e820Reserved},
		{Addr: ImageMin, Size: mem - ImageMin, Type: e820RAM},
	}
}

// loadVmlinux plans an ELF vmlinux: its PT_LOAD segments at their physical
// addresses, entered at e_entry (a physical address in a vmlinux).
func loadVmlinux(cfg Config, f *elfFile) (*Plan, error) {
	p := &Plan{Kind: Vmlinux}
	imageEnd, err := f.loadSegments(p, cfg.MemBytes)
	if err != nil {
		return nil, err
	}
	var bp [bootParamsSize]byte
	le.PutUint16(bp[hdrBootFlag:], bootFlag)
	le.PutUint32(bp[hdrHeader:], hdrMagic)
	le.PutUint16(bp[hdrVersion:], vmlinuxVersion)
	le.PutUint32(bp[hdrKernelAlignment:], kernelAlign)
	return finishLinux(cfg, p, bp[:], f.entry, imageEnd)
}

// loadBzImage plans a bzImage: its protected-mode part at 16 MiB with room
// for its decompressor (init_size), entered at the 64-bit entry.
func loadBzImage(cfg Config) (*Plan, error) {
	img := cfg.Kernel
	if len(img) < hdrEnd212 {
		return nil, fmt.Errorf("the bzImage is %d bytes, shorter than its setup header (%d): it is truncated", len(img), hdrEnd212)
	}
	version := le.Uint16(img[hdrVersion:])
	if version < minProtocol || le.Uint16(img[hdrXloadflags:])&xlfKernel64 == 0 {
		return nil, fmt.Errorf("the bzImage (boot protocol %d.%02d) has no 64-bit entry point: build a kernel with boot protocol 2.12 or later and XLF_KERNEL_64 (any x86-64 Linux since 3.8), or boot its vmlinux", version>>8, version&0xff)
	}
	hdrEnd := hdrHeader + int(img[hdrJump+1])
	if hdrEnd < hdrEnd212 || hdrEnd > len(img) {
		return nil, fmt.Errorf("the bzImage's setup header ends at %#x: want %#x..%#x (the file's length): the image is malformed", hdrEnd, hdrEnd212, len(img))
	}
	setupSects := int(img[hdrSetupSects])
	if setupSects == 0 {
		setupSects = defaultSetup
	}
	off := (setupSects + 1) * sectorSize
	if off >= len(img) {
		return nil, fmt.Errorf("the bzImage's %d setup sectors leave no protected-mode kernel in its %d bytes: it is truncated", setupSects, len(img))
	}
	pm := img[off:]
	if uint64(len(pm)) <= entry64Offset {
		return nil, fmt.Errorf("the bzImage's protected-mode part is %d bytes, too short to hold its 64-bit entry at %#x: it is truncated", len(pm), entry64Offset)
	}
	// The decompressor needs init_size bytes from the load address.
	need := max(uint64(len(pm)), uint64(le.Uint32(img[hdrInitSize:])))
	p := &Plan{Kind: BzImage}
	p.add(Segment{What: "bzImage kernel and its decompression space (init_size)", GPA: bzLoadGPA, Size: need, Data: pm, kernel: true})
	var bp [bootParamsSize]byte
	copy(bp[bpSetupHeader:hdrEnd], img[bpSetupHeader:hdrEnd])
	le.PutUint32(bp[hdrCode32Start:], bzLoadGPA)
	return finishLinux(cfg, p, bp[:], bzLoadGPA+entry64Offset, bzLoadGPA+need)
}

// finishLinux adds what every Linux kernel gets: boot_params completed
// with the loader's fields, the command line, the initramfs as high as
// possible below min(RAM, 4 GiB), the memory map and the loader's pages.
func finishLinux(cfg Config, p *Plan, bp []byte, entry, imageEnd uint64) (*Plan, error) {
	mem := cfg.MemBytes
	bp[hdrTypeOfLoader] = loaderUnknown
	bp[hdrLoadflags] |= loadedHigh | canUseHeap
	le.PutUint16(bp[hdrHeapEndPtr:], heapEnd)
	le.PutUint32(bp[hdrCmdLinePtr:], LinuxCmdlineGPA)
	le.PutUint32(bp[bpExtCmdLinePtr:], 0)
	le.PutUint32(bp[hdrCmdlineSize:], MaxCmdline)
	p.add(Segment{What: "command line", GPA: LinuxCmdlineGPA, Size: PageSize, Data: []byte(cfg.Cmdline)})
	if n := uint64(len(cfg.Initrd)); n > 0 {
		top := min(mem, 1<<32)
		if n > top-ImageMin {
			return nil, fmt.Errorf("the initramfs (%s) does not fit between 1 MiB and %s: give more --mem or a smaller initramfs", sizeStr(n), sizeStr(top))
		}
		addr := (top - n) &^ (PageSize - 1) // >= ImageMin: ImageMin is page-aligned
		p.add(Segment{What: "initramfs", GPA: addr, Size: n, Data: cfg.Initrd})
		le.PutUint32(bp[hdrRamdiskImage:], uint32(addr))
		le.PutUint32(bp[hdrRamdiskSize:], uint32(n))
		le.PutUint32(bp[bpExtRamdiskImage:], uint32(addr>>32))
		le.PutUint32(bp[bpExtRamdiskSize:], uint32(n>>32))
		p.InitrdGPA = addr
	}
	p.Memmap = linuxMemmap(mem)
	bp[bpE820Entries] = uint8(len(p.Memmap))
	for i, e := range p.Memmap {
		o := bpE820Table + i*e820EntrySize
		le.PutUint64(bp[o:], e.Addr)
		le.PutUint64(bp[o+8:], e.Size)
		le.PutUint32(bp[o+16:], e.Type)
	}
	p.add(Segment{What: "boot_params (zero page)", GPA: ZeroPageGPA, Size: bootParamsSize, Data: bp})
	p.addLoaderPages(mem)
	p.FreeGPA = pageUp(imageEnd)
	p.Regs, p.SRegs = entryState(entry, true)
	return p, nil
}
