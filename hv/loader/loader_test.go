package loader

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
)

// TestLayout holds the derived layout to the addresses docs/boot.md
// documents and guests rely on, and checks that the structures fit their
// slots.
func TestLayout(t *testing.T) {
	got := map[string]uint64{"PML4": PML4GPA, "PDPT": PDPTGPA, "PD": PDGPA, "PT0": PT0GPA, "GDT": GDTGPA,
		"TSS": TSSGPA, "start info": StartInfoGPA, "memmap": MemmapGPA, "hypercall page": HypercallPageGPA,
		"shared info": SharedInfoGPA, "cmdline": CmdlineGPA, "stack top": StackTop, "image": ImageMin,
		"zero page": ZeroPageGPA, "linux cmdline": LinuxCmdlineGPA, "EBDA": ebdaGPA, "BIOS": biosROMGPA,
		"TSS selector": uint64(SelTSS)}
	want := map[string]uint64{"PML4": 0x1000, "PDPT": 0x2000, "PD": 0x3000, "PT0": 0x7000, "GDT": 0x8000,
		"TSS": 0x8100, "start info": 0x9000, "memmap": 0x9100, "hypercall page": 0xa000,
		"shared info": 0xb000, "cmdline": 0xc000, "stack top": 0x80000, "image": 0x100000,
		"zero page": 0x20000, "linux cmdline": 0x21000, "EBDA": 0x9fc00, "BIOS": 0xf0000,
		"TSS selector": 0x40}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("layout (-documented +derived):\n%s", d)
	}
	if n := len(hypercall.Encode(hypercall.StartInfo{})); n > startInfoSlot {
		t.Errorf("start info is %d bytes, its slot %d", n, startInfoSlot)
	}
	if n := len(hypercall.Encode(hypercall.MemmapEntry{})); memmapMax*n > PageSize-startInfoSlot {
		t.Errorf("%d memory-map entries of %d bytes overflow the start-info page", memmapMax, n)
	}
	if gdtLimit >= gdtSlot || TSSGPA+tssSize > StartInfoGPA {
		t.Errorf("GDT (limit %#x) or TSS overflow their page", gdtLimit)
	}
	if e820RAM != 1 || e820Reserved != 2 {
		t.Errorf("memory-map types %d, %d are not E820's 1, 2", e820RAM, e820Reserved)
	}
}

type region struct {
	What      string
	GPA, Size uint64
}

func regions(p *Plan) []region {
	var r []region
	for _, s := range p.Segments {
		r = append(r, region{s.What, s.GPA, s.Size})
	}
	return r
}

func TestLoadFreestanding(t *testing.T) {
	initrd := bytes.Repeat([]byte{7}, 5000)
	p, err := Load(Config{Kernel: freestandingELF().bytes(), Initrd: initrd, Cmdline: "spin", MemBytes: 16 << 20, VCPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []region{
		{"page tables", PML4GPA, 7 * PageSize},
		{"GDT and TSS", GDTGPA, PageSize},
		{"start info and memory map", StartInfoGPA, PageSize},
		{"hypercall page", HypercallPageGPA, PageSize},
		{"shared-info page", SharedInfoGPA, PageSize},
		{"command line", CmdlineGPA, PageSize},
		{"initial stack", stackBottom, StackTop - stackBottom},
		{"kernel segment 0", ImageMin, 0x2000},
		{"initramfs", ImageMin + 0x2000, 5000},
	}
	if d := cmp.Diff(want, regions(p)); d != "" {
		t.Errorf("segments (-want +got):\n%s", d)
	}
	var si hypercall.StartInfo
	for _, s := range p.Segments {
		if s.GPA == StartInfoGPA {
			binary.Read(bytes.NewReader(s.Data), binary.LittleEndian, &si)
		}
	}
	wantSI := hypercall.StartInfo{Magic: hypercall.StartInfoMagic, ABIVersion: hypercall.Version, NrVCPUs: 1,
		MemSize: 16 << 20, MemmapGPA: MemmapGPA, MemmapEntries: 2, CmdlineLen: 4, CmdlineGPA: CmdlineGPA,
		InitrdGPA: ImageMin + 0x2000, InitrdSize: 5000, HypercallPageGPA: HypercallPageGPA,
		SharedInfoGPA: SharedInfoGPA, PageTableGPA: PML4GPA, IdentityMapSize: 16 << 20,
		FreeGPA: pageUp(ImageMin + 0x2000 + 5000)}
	if d := cmp.Diff(wantSI, si); d != "" {
		t.Errorf("start info (-want +got):\n%s", d)
	}
	if p.Kind != Freestanding || p.HypercallPage != HypercallPageGPA || p.Regs.RIP != ImageMin ||
		p.Regs.GPR[cpu.RDI] != StartInfoGPA || p.Regs.GPR[cpu.RSP] != StackTop || p.SRegs.CR3 != PML4GPA {
		t.Errorf("plan %v, hypercall page %#x, regs %+v", p.Kind, p.HypercallPage, p.Regs)
	}
}

func TestLoadTestGuest(t *testing.T) {
	p, err := Load(Config{Kernel: testGuest(t), MemBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != Freestanding || p.Regs.RIP != ImageMin {
		t.Errorf("kind %v, entry %#x", p.Kind, p.Regs.RIP)
	}
}

func TestLoadLinux(t *testing.T) {
	initrd := bytes.Repeat([]byte{1}, 3*PageSize+1)
	const mem = 64 << 20
	for _, tc := range []struct {
		name   string
		kernel []byte
		kind   Kind
		entry  uint64
		first  region // the kernel's first segment
	}{
		{"vmlinux", vmlinuxELF().bytes(), Vmlinux, 16 << 20, region{"kernel segment 0", 16 << 20, 0x3000}},
		{"bzImage", bzImage(0x1000, 8<<20), BzImage, 16<<20 + entry64Offset,
			region{"bzImage kernel and its decompression space (init_size)", 16 << 20, 8 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(Config{Kernel: tc.kernel, Initrd: initrd, Cmdline: "console=hvc0", MemBytes: mem})
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tc.kind || p.Regs.RIP != tc.entry || p.Regs.GPR[cpu.RSI] != ZeroPageGPA || p.HypercallPage != 0 {
				t.Errorf("kind %v, regs %+v, hypercall page %#x", p.Kind, p.Regs, p.HypercallPage)
			}
			var bp []byte
			found := false
			for _, s := range p.Segments {
				if s.GPA == ZeroPageGPA {
					bp = s.Data
				}
				if r := (region{s.What, s.GPA, s.Size}); r == tc.first {
					found = true
				}
			}
			if !found {
				t.Errorf("no %+v in %+v", tc.first, regions(p))
			}
			le := binary.LittleEndian
			wantInitrd := (mem - uint64(len(initrd))) &^ (PageSize - 1)
			got := map[string]uint64{"magic": uint64(le.Uint32(bp[hdrHeader:])), "cmdline": uint64(le.Uint32(bp[hdrCmdLinePtr:])),
				"ramdisk": uint64(le.Uint32(bp[hdrRamdiskImage:])), "ramdisk size": uint64(le.Uint32(bp[hdrRamdiskSize:])),
				"e820 entries": uint64(bp[bpE820Entries]), "last e820 size": le.Uint64(bp[bpE820Table+3*e820EntrySize+8:]),
				"loader": uint64(bp[hdrTypeOfLoader]), "initrd gpa": p.InitrdGPA}
			want := map[string]uint64{"magic": hdrMagic, "cmdline": LinuxCmdlineGPA, "ramdisk": wantInitrd,
				"ramdisk size": uint64(len(initrd)), "e820 entries": 4, "last e820 size": mem - ImageMin,
				"loader": loaderUnknown, "initrd gpa": wantInitrd}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("boot_params (-want +got):\n%s", d)
			}
		})
	}
}

// TestLoadRefusesHostileImages feeds the loader images broken one field
// at a time: each is refused with a message naming what is wrong, none
// panics.
func TestLoadRefusesHostileImages(t *testing.T) {
	const mem = 32 << 20
	elfWith := func(f func(*testELF)) []byte {
		e := freestandingELF()
		f(&e)
		return e.bytes()
	}
	vmlinuxWith := func(f func(*testELF)) []byte {
		e := vmlinuxELF()
		f(&e)
		return e.bytes()
	}
	patch := func(b []byte, off int, v uint64, n int) []byte {
		b = append([]byte(nil), b...)
		for i := 0; i < n; i++ {
			b[off+i] = byte(v >> (8 * i))
		}
		return b
	}
	wrapNote := make([]byte, 12)
	binary.LittleEndian.PutUint32(wrapNote, 0xfffffffd) // (namesz+3)&^3 wraps in 32 bits
	good := bzImage(0x1000, 0x2000)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"not an image", Config{Kernel: []byte("MZ\x90\x00 a PE file")}, "neither an ELF file nor a bzImage"},
		{"empty", Config{}, "neither an ELF file nor a bzImage"},
		{"ELF header only", Config{Kernel: freestandingELF().bytes()[:40]}, "shorter than an ELF64 header"},
		{"32-bit ELF", Config{Kernel: patch(freestandingELF().bytes(), 4, 1, 1)}, "want ELF64 little-endian"},
		{"shared object", Config{Kernel: patch(freestandingELF().bytes(), 16, 3, 2)}, "want an x86-64 executable"},
		{"program headers past the end", Config{Kernel: freestandingELF().bytes()[:100]}, "it is truncated"},
		{"PN_XNUM", Config{Kernel: patch(freestandingELF().bytes(), 56, pnXnum, 2)}, "program headers"},
		{"section headers past the end", Config{Kernel: patch(patch(freestandingELF().bytes(), 60, 3, 2), 40, 1<<40, 8)}, "section headers"},
		{"note size wraps (section)", Config{Kernel: elfWith(func(e *testELF) { e.noteSection = wrapNote })}, ""},
		{"note size wraps (segment)", Config{Kernel: elfWith(func(e *testELF) {
			e.progs = append(e.progs, testProg{typ: ptNote, filesz: 12, data: wrapNote})
		})}, ""},
		{"filesz > memsz", Config{Kernel: elfWith(func(e *testELF) { e.progs[0].memsz = 8 })}, "file size 0x10 exceeds its memory size 0x8"},
		{"segment data past the end", Config{Kernel: elfWith(func(e *testELF) {
			e.progs[0].filesz, e.progs[0].memsz, e.progs[0].data = 1<<20, 1<<20, make([]byte, 16)
		})}, "run past the end"},
		{"segment below 1 MiB", Config{Kernel: elfWith(func(e *testELF) { e.progs[0].paddr = HypercallPageGPA })}, "below 1 MiB"},
		{"segment beyond RAM", Config{Kernel: elfWith(func(e *testELF) { e.progs[0].memsz = mem })}, "does not fit in 32 MiB"},
		{"segment wraps", Config{Kernel: elfWith(func(e *testELF) { e.progs[0].memsz = 1<<64 - 0x1000 })}, "wraps the address space"},
		{"overlapping segments", Config{Kernel: elfWith(func(e *testELF) {
			e.progs = append(e.progs, testProg{typ: ptLoad, paddr: ImageMin + 0x1000, filesz: 16, memsz: 16})
		})}, "kernel segment 0 [0x100000, 0x102000) overlaps kernel segment 1"},
		{"no loadable segment", Config{Kernel: elfWith(func(e *testELF) { e.progs[0].typ = ptNote })}, "no loadable"},
		{"entry outside", Config{Kernel: elfWith(func(e *testELF) { e.entry = ImageMin + 0x2000 })}, "entry point 0x102000"},
		{"vmlinux segment wraps", Config{Kernel: vmlinuxWith(func(e *testELF) { e.progs[1].memsz = 1<<64 - 0x100 })}, "wraps"},
		{"vmlinux overlapping", Config{Kernel: vmlinuxWith(func(e *testELF) { e.progs[1].paddr = 16 << 20 })}, "overlaps"},
		{"initramfs past RAM", Config{Kernel: freestandingELF().bytes(), Initrd: make([]byte, mem-ImageMin)}, "initramfs"},
		{"Linux initramfs too big", Config{Kernel: vmlinuxELF().bytes(), Initrd: make([]byte, mem-ImageMin+1)}, "does not fit between 1 MiB"},
		{"Linux initramfs over the kernel", Config{Kernel: vmlinuxELF().bytes(), Initrd: make([]byte, mem-(16<<20))}, "overlaps"},
		{"kernel larger than RAM", Config{Kernel: make([]byte, mem+1)}, "more than the 32 MiB of guest memory"},
		{"command line too long", Config{Kernel: freestandingELF().bytes(), Cmdline: strings.Repeat("x", MaxCmdline+1)}, "at most 4095"},
		{"too little memory", Config{Kernel: freestandingELF().bytes(), MemBytes: 1 << 20}, "too little"},
		{"too much memory", Config{Kernel: freestandingELF().bytes(), MemBytes: MaxMem + PageSize}, "more than the loader lays out"},
		{"bzImage: header only", Config{Kernel: good[:0x240]}, "shorter than its setup header"},
		{"bzImage: old protocol", Config{Kernel: patch(good, hdrVersion, 0x020a, 2)}, "no 64-bit entry point"},
		{"bzImage: no 64-bit entry", Config{Kernel: patch(good, hdrXloadflags, 0, 2)}, "no 64-bit entry point"},
		{"bzImage: header past the end", Config{Kernel: patch(good, hdrJump+1, 0xff, 1)[:0x280]}, "setup header ends at 0x301"},
		{"bzImage: short header", Config{Kernel: patch(good, hdrJump+1, 0x10, 1)}, "setup header ends at 0x212"},
		{"bzImage: setup sectors past the end", Config{Kernel: patch(good, hdrSetupSects, 200, 1)}, "setup sectors"},
		{"bzImage: no entry", Config{Kernel: good[:2*sectorSize+entry64Offset]}, "64-bit entry"},
		{"bzImage: init_size beyond RAM", Config{Kernel: patch(good, hdrInitSize, mem, 4)}, "does not fit in 32 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.MemBytes == 0 {
				cfg.MemBytes = mem
			}
			p, err := Load(cfg)
			if tc.want == "" {
				// Not a vmlinux: the malformed note is skipped and the
				// image loads as the freestanding guest it is.
				if err != nil || p.Kind != Freestanding {
					t.Errorf("err %v, want a freestanding plan", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}
