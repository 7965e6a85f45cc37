package loader

import (
	"fmt"
	"slices"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
)

// Kind says how an image boots.
type Kind int

const (
	Freestanding Kind = iota // docs/boot.md
	Vmlinux                  // Linux ELF vmlinux, entered at its 64-bit entry
	BzImage                  // Linux bzImage, entered at its 64-bit entry
)

func (k Kind) String() string {
	switch k {
	case Vmlinux:
		return "vmlinux"
	case BzImage:
		return "bzImage"
	}
	return "freestanding"
}

// Linux reports whether the kernel boots through the Linux boot protocol.
func (k Kind) Linux() bool { return k != Freestanding }

// Config is what to boot.
type Config struct {
	Kernel   []byte
	Initrd   []byte // nil: none
	Cmdline  string
	MemBytes uint64 // the guest's RAM: [0, MemBytes)
	VCPUs    int
}

// Segment is guest-physical [GPA, GPA+Size): Data at its start, zeros in
// the rest.
type Segment struct {
	What   string // for messages: "kernel segment 1", "initramfs", "page tables"
	GPA    uint64
	Size   uint64
	Data   []byte // len(Data) <= Size
	kernel bool   // part of the kernel image: the entry point may lie here
}

// End is the first address after the segment.
func (s Segment) End() uint64 { return s.GPA + s.Size }

// Plan is how to boot a VM: write each segment, install the hypercall page,
// enter the vCPU with Regs and SRegs.
type Plan struct {
	Kind     Kind
	Segments []Segment // sorted by GPA, inside RAM, pairwise disjoint
	// HypercallPage, if not 0, is a page of Segments that the hypervisor
	// fills with its hypercall instruction (the loader cannot know it: it
	// depends on the engine).
	HypercallPage uint64
	Memmap        []hypercall.MemmapEntry // what the memmap hypercall reports
	InitrdGPA     uint64                  // 0: no initramfs
	FreeGPA       uint64                  // first page after the image and initramfs
	Regs          cpu.Regs
	SRegs         cpu.SRegs
}

func (p *Plan) add(s Segment) { p.Segments = append(p.Segments, s) }

// Load plans the boot of cfg.Kernel, of any Kind.
func Load(cfg Config) (*Plan, error) {
	if cfg.MemBytes < MinMem {
		return nil, fmt.Errorf("%s of guest memory is too little: give at least --mem %dM", sizeStr(cfg.MemBytes), MinMem>>20)
	}
	if cfg.MemBytes > MaxMem {
		return nil, fmt.Errorf("%s of guest memory is more than the loader lays out (%d GiB): give less --mem", sizeStr(cfg.MemBytes), MaxMem>>30)
	}
	if len(cfg.Cmdline) > MaxCmdline {
		return nil, fmt.Errorf("the command line is %d bytes: shorten it to at most %d", len(cfg.Cmdline), MaxCmdline)
	}
	if uint64(len(cfg.Kernel)) > cfg.MemBytes {
		return nil, fmt.Errorf("the kernel is %s, more than the %s of guest memory: give more --mem", sizeStr(uint64(len(cfg.Kernel))), sizeStr(cfg.MemBytes))
	}
	if uint64(len(cfg.Initrd)) > cfg.MemBytes {
		return nil, fmt.Errorf("the initramfs is %s, more than the %s of guest memory: give more --mem", sizeStr(uint64(len(cfg.Initrd))), sizeStr(cfg.MemBytes))
	}
	var p *Plan
	var err error
	switch kind, f, perr := detect(cfg.Kernel); {
	case kind == BzImage:
		p, err = loadBzImage(cfg)
	case perr != nil:
		return nil, perr
	case kind == Vmlinux:
		p, err = loadVmlinux(cfg, f)
	default:
		p, err = loadFreestanding(cfg, f)
	}
	if err != nil {
		return nil, err
	}
	if err := p.check(cfg.MemBytes); err != nil {
		return nil, err
	}
	return p, nil
}

// Detect classifies an image (Freestanding for one that is none of the
// three: Load says what is wrong with it).
func Detect(img []byte) Kind {
	k, _, _ := detect(img)
	return k
}

// detect classifies an image. For an ELF image it also returns the parsed
// file, or why it could not be parsed.
func detect(img []byte) (Kind, *elfFile, error) {
	if len(img) >= hdrHeader+4 && le.Uint32(img[hdrHeader:]) == hdrMagic {
		return BzImage, nil, nil
	}
	if !isELF(img) {
		return Freestanding, nil, fmt.Errorf("the kernel is neither an ELF file nor a bzImage: pass a freestanding ELF64 guest (such as build/testguest.elf), a vmlinux or a bzImage")
	}
	f, err := parseELF(img)
	if err != nil {
		return Freestanding, nil, fmt.Errorf("the kernel is not a valid ELF64 x86-64 executable: %v", err)
	}
	if f.linuxOwned() {
		return Vmlinux, f, nil
	}
	return Freestanding, f, nil
}

// check verifies the plan's invariants (doc.go) and sorts its segments.
func (p *Plan) check(mem uint64) error {
	slices.SortFunc(p.Segments, func(a, b Segment) int {
		switch {
		case a.GPA < b.GPA:
			return -1
		case a.GPA > b.GPA:
			return 1
		}
		return 0
	})
	entryOK := false
	for i, s := range p.Segments {
		if uint64(len(s.Data)) > s.Size {
			panic("loader: segment data larger than its segment") // a broken internal invariant
		}
		if s.End() < s.GPA || s.End() > mem {
			return fmt.Errorf("%s [%#x, %#x) does not fit in %s of guest memory: give more --mem", s.What, s.GPA, s.End(), sizeStr(mem))
		}
		if i > 0 {
			if prev := p.Segments[i-1]; prev.End() > s.GPA {
				hint := "see the layout in docs/boot.md"
				if prev.kernel && s.kernel {
					hint = "the ELF file is malformed"
				}
				return fmt.Errorf("%s [%#x, %#x) overlaps %s [%#x, %#x): %s", prev.What, prev.GPA, prev.End(), s.What, s.GPA, s.End(), hint)
			}
		}
		if s.kernel && p.Regs.RIP >= s.GPA && p.Regs.RIP < s.End() {
			entryOK = true
		}
	}
	if !entryOK {
		return fmt.Errorf("the kernel's entry point %#x is not inside any of its loadable segments: the image is malformed", p.Regs.RIP)
	}
	return nil
}

// loadFreestanding plans a freestanding guest (docs/boot.md).
func loadFreestanding(cfg Config, f *elfFile) (*Plan, error) {
	mem := cfg.MemBytes
	p := &Plan{Kind: Freestanding, HypercallPage: HypercallPageGPA}
	imageEnd, err := f.loadSegments(p, mem)
	if err != nil {
		return nil, err
	}
	free := pageUp(imageEnd)
	if len(cfg.Initrd) > 0 {
		p.InitrdGPA = free
		p.add(Segment{What: "initramfs", GPA: free, Size: uint64(len(cfg.Initrd)), Data: cfg.Initrd})
		free = pageUp(free + uint64(len(cfg.Initrd)))
	}
	p.FreeGPA = free
	ident := p.addLoaderPages(mem)
	p.add(Segment{What: "hypercall page", GPA: HypercallPageGPA, Size: PageSize})
	p.add(Segment{What: "shared-info page", GPA: SharedInfoGPA, Size: PageSize})
	p.add(Segment{What: "command line", GPA: CmdlineGPA, Size: PageSize, Data: []byte(cfg.Cmdline)})
	p.add(Segment{What: "initial stack", GPA: stackBottom, Size: StackTop - stackBottom})
	p.Memmap = []hypercall.MemmapEntry{
		{Addr: 0, Size: ImageMin, Type: hypercall.MemmapReserved},
		{Addr: ImageMin, Size: mem - ImageMin, Type: hypercall.MemmapRAM},
	}
	si := hypercall.StartInfo{
		Magic: hypercall.StartInfoMagic, ABIVersion: hypercall.Version, NrVCPUs: uint32(max(cfg.VCPUs, 1)),
		MemSize: mem, MemmapGPA: MemmapGPA, MemmapEntries: uint32(len(p.Memmap)),
		CmdlineLen: uint32(len(cfg.Cmdline)), CmdlineGPA: CmdlineGPA,
		InitrdGPA: p.InitrdGPA, InitrdSize: uint64(len(cfg.Initrd)),
		HypercallPageGPA: HypercallPageGPA, SharedInfoGPA: SharedInfoGPA,
		PageTableGPA: PML4GPA, IdentityMapSize: ident, FreeGPA: free,
	}
	page := make([]byte, startInfoSlot, PageSize)
	copy(page, hypercall.Encode(si))
	page = append(page, hypercall.Encode(p.Memmap)...)
	p.add(Segment{What: "start info and memory map", GPA: StartInfoGPA, Size: PageSize, Data: page})
	p.Regs, p.SRegs = entryState(f.entry, false)
	return p, nil
}

// addLoaderPages adds the page tables, GDT and TSS that every kind of
// kernel is entered with, and returns the bytes the tables identity-map.
func (p *Plan) addLoaderPages(mem uint64) uint64 {
	tables, ident := pageTables(mem)
	p.add(Segment{What: "page tables", GPA: PML4GPA, Size: uint64(len(tables)), Data: tables})
	p.add(Segment{What: "GDT and TSS", GPA: GDTGPA, Size: PageSize, Data: gdt()})
	return ident
}

// pageTables builds the initial identity map of [0, min(RAM, 4 GiB))
// rounded down to 2 MiB: 2 MiB pages, except the first 2 MiB in 4 KiB
// pages with page 0 not present. The result is placed at PML4GPA.
func pageTables(mem uint64) (tables []byte, ident uint64) {
	const present, writable, large = 1, 2, 0x80
	const big = 2 << 20
	b := make([]byte, pageTabsN*PageSize)
	at := func(gpa uint64) []byte { return b[gpa-PML4GPA:] }
	ident = min(mem, identMax) &^ (big - 1)
	le.PutUint64(at(PML4GPA), PDPTGPA|present|writable)
	for i := uint64(0); i < identPDs; i++ {
		le.PutUint64(at(PDPTGPA+i*8), (PDGPA+i*PageSize)|present|writable)
	}
	for a := uint64(big); a < ident; a += big {
		le.PutUint64(at(PDGPA+(a/big)*8), a|present|writable|large)
	}
	le.PutUint64(at(PDGPA), PT0GPA|present|writable)
	for i := uint64(1); i < big/PageSize; i++ {
		le.PutUint64(at(PT0GPA+i*8), i*PageSize|present|writable)
	}
	return b, ident
}

// gdt returns the GDT page: gdtEntries, then the 64-bit TSS descriptor.
func gdt() []byte {
	b := make([]byte, gdtSlot)
	for i, d := range gdtEntries {
		le.PutUint64(b[i*8:], d)
	}
	const tssBusy64, present = 0xb, 0x80 // busy: as after LTR
	tss := uint64(tssSize-1) | uint64(TSSGPA&0xffffff)<<16 | uint64(tssBusy64|present)<<40 | uint64(TSSGPA>>24&0xff)<<56
	le.PutUint64(b[SelTSS:], tss)
	le.PutUint64(b[SelTSS+8:], TSSGPA>>32)
	return b
}

// entryState is the vCPU state at entry (docs/boot.md): long mode on the
// loader's tables and GDT, interrupts off; the start info in RDI for a
// freestanding guest, boot_params in RSI for Linux.
func entryState(entry uint64, linux bool) (cpu.Regs, cpu.SRegs) {
	code := cpu.Segment{Selector: SelKernelCS, Limit: 0xffffffff, Attr: 0xb | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrL | cpu.SegAttrG}
	data := cpu.Segment{Selector: SelKernelDS, Limit: 0xffffffff, Attr: 0x3 | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrDB | cpu.SegAttrG}
	s := cpu.SRegs{
		CS: code, DS: data, ES: data, SS: data,
		TR:   cpu.Segment{Selector: SelTSS, Base: TSSGPA, Limit: tssSize - 1, Attr: 0xb | cpu.SegAttrP},
		GDT:  cpu.DTable{Base: GDTGPA, Limit: gdtLimit},
		CR0:  cpu.CR0PE | cpu.CR0MP | cpu.CR0ET | cpu.CR0NE | cpu.CR0WP | cpu.CR0PG,
		CR3:  PML4GPA,
		CR4:  cpu.CR4PAE | cpu.CR4PGE | cpu.CR4OSFXSR | cpu.CR4OSXMMEXCPT,
		EFER: cpu.EFERSCE | cpu.EFERLME | cpu.EFERLMA | cpu.EFERNXE,
	}
	var r cpu.Regs
	r.RIP = entry
	r.RFLAGS = cpu.FlagsFixed
	r.GPR[cpu.RSP] = StackTop
	if linux {
		// As firmware and the decompressor leave it: Linux turns on
		// SYSCALL and NX itself.
		s.EFER = cpu.EFERLME | cpu.EFERLMA
		r.GPR[cpu.RSI] = ZeroPageGPA
	} else {
		r.GPR[cpu.RDI] = StartInfoGPA
	}
	return r, s
}

func pageUp(a uint64) uint64 { return (a + PageSize - 1) &^ (PageSize - 1) }

// sizeStr prints a memory size for messages: in MiB when it is whole MiB.
func sizeStr(n uint64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
