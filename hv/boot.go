package hv

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
)

// The loader's guest-physical layout (docs/boot.md).
const (
	bootPML4      = 0x1000
	bootPDPT      = 0x2000
	bootPD        = 0x3000 // four page directories: 0x3000-0x6fff
	bootPT0       = 0x7000 // 4 KiB page table for the first 2 MiB
	bootGDT       = 0x8000
	bootTSS       = 0x8100
	bootStartInfo = 0x9000
	bootMemmap    = 0x9100
	bootHcallPage = 0xa000
	bootShared    = 0xb000
	bootCmdline   = 0xc000
	bootStackTop  = 0x80000
	bootImageMin  = 0x100000
	minMem        = 4 << 20
	maxCmdline    = 4095
)

// hypercallInsn is what the hypercall page holds on the interpreter:
// vmcall; ret.
var hypercallInsn = []byte{0x0f, 0x01, 0xc1, 0xc3}

type bootLayout struct {
	freeGPA    uint64
	initrdGPA  uint64
	identBytes uint64
}

// gdtEntries is the loader's GDT, in Linux's layout.
var gdtEntries = []uint64{
	0, 0,
	0x00af9b000000ffff, // 0x10 kernel CS (64-bit)
	0x00cf93000000ffff, // 0x18 kernel DS
	0x00cffb000000ffff, // 0x20 user32 CS
	0x00cff3000000ffff, // 0x28 user DS
	0x00affb000000ffff, // 0x30 user CS (64-bit)
	0,
}

const (
	selKernelCS = 0x10
	selKernelDS = 0x18
	selTSS      = 0x40
)

// load checks and places the guest image and everything docs/boot.md (or,
// for Linux, the boot protocol) promises, and returns the entry point.
func (vm *VM) load() (uint64, error) {
	if k := detectKernel(vm.cfg.Kernel); k != kindFreestanding {
		vm.linux = true
		return vm.loadLinux(k)
	}
	f, err := elf.NewFile(bytes.NewReader(vm.cfg.Kernel))
	if err != nil {
		return 0, fmt.Errorf("kernel is not an ELF file (%v): pass a freestanding ELF64 guest such as build/testguest.elf", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return 0, fmt.Errorf("kernel is %v %v %v: want an ELF64 x86-64 executable", f.Class, f.Machine, f.Type)
	}
	size := vm.res.Size()
	imageEnd := uint64(bootImageMin)
	loaded := 0
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		end := p.Paddr + p.Memsz
		if p.Paddr < bootImageMin || end < p.Paddr || end > size || p.Filesz > p.Memsz {
			return 0, fmt.Errorf("kernel segment [%#x, %#x) is outside [1 MiB, %d MiB): link the guest at 1 MiB or give it more --mem", p.Paddr, end, size>>20)
		}
		dst, _ := vm.guest(p.Paddr, p.Memsz)
		n, err := p.ReadAt(dst[:p.Filesz], 0)
		if uint64(n) != p.Filesz {
			return 0, fmt.Errorf("kernel segment at %#x is truncated: %v", p.Paddr, err)
		}
		clear(dst[p.Filesz:])
		if end > imageEnd {
			imageEnd = end
		}
		loaded++
	}
	if loaded == 0 {
		return 0, fmt.Errorf("kernel has no loadable segment")
	}
	if f.Entry < bootImageMin || f.Entry >= imageEnd {
		return 0, fmt.Errorf("kernel entry %#x is outside its image", f.Entry)
	}
	if len(vm.cfg.Cmdline) > maxCmdline {
		return 0, fmt.Errorf("command line is %d bytes: at most %d", len(vm.cfg.Cmdline), maxCmdline)
	}
	free := pageUp(imageEnd)
	var initrdGPA uint64
	if vm.cfg.Initrd != nil {
		initrdGPA = free
		if initrdGPA+uint64(len(vm.cfg.Initrd)) > size {
			return 0, fmt.Errorf("initrd (%d MiB) does not fit after the kernel in %d MiB: give more --mem", len(vm.cfg.Initrd)>>20, size>>20)
		}
		vm.guestWrite(initrdGPA, vm.cfg.Initrd)
		free = pageUp(initrdGPA + uint64(len(vm.cfg.Initrd)))
	}
	vm.layout = bootLayout{freeGPA: free, initrdGPA: initrdGPA}
	vm.buildPageTables()
	vm.buildGDT()
	vm.guestWrite(bootHcallPage, hypercallInsn)
	vm.guestWrite(bootCmdline, append([]byte(vm.cfg.Cmdline), 0))
	vm.memmap = []hypercall.MemmapEntry{
		{Addr: 0, Size: bootImageMin, Type: hypercall.MemmapReserved},
		{Addr: bootImageMin, Size: size - bootImageMin, Type: hypercall.MemmapRAM},
	}
	mm := encode(vm.memmap)
	vm.guestWrite(bootMemmap, mm)
	si := hypercall.StartInfo{
		Magic: hypercall.StartInfoMagic, ABIVersion: hypercall.Version, NrVCPUs: uint32(vm.cfg.VCPUs),
		MemSize: size, MemmapGPA: bootMemmap, MemmapEntries: uint32(len(vm.memmap)),
		CmdlineLen: uint32(len(vm.cfg.Cmdline)), CmdlineGPA: bootCmdline,
		InitrdGPA: initrdGPA, InitrdSize: uint64(len(vm.cfg.Initrd)),
		HypercallPageGPA: bootHcallPage, SharedInfoGPA: bootShared,
		PageTableGPA: bootPML4, IdentityMapSize: vm.layout.identBytes, FreeGPA: free,
	}
	vm.guestWrite(bootStartInfo, encode(si))
	return f.Entry, nil
}

func pageUp(a uint64) uint64 { return (a + 4095) &^ 4095 }

func memmapEntry(addr, size uint64, typ uint32) hypercall.MemmapEntry {
	return hypercall.MemmapEntry{Addr: addr, Size: size, Type: typ}
}

// encode serializes a fixed-layout ABI value in little-endian order.
func encode(v any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		panic("hv: encoding ABI struct: " + err.Error()) // a broken internal invariant
	}
	return b.Bytes()
}

// buildPageTables identity-maps [0, min(RAM, 4 GiB)): 2 MiB pages, except
// the first 2 MiB in 4 KiB pages with page 0 not present.
func (vm *VM) buildPageTables() {
	const p, w = 1, 2
	le := binary.LittleEndian
	ram := vm.res.RAM()
	ident := min(vm.res.Size(), 4<<30) &^ (2<<20 - 1)
	if ident == 0 {
		ident = 2 << 20
	}
	vm.layout.identBytes = ident
	le.PutUint64(ram[bootPML4:], bootPDPT|p|w)
	for i := uint64(0); i < 4; i++ {
		le.PutUint64(ram[bootPDPT+i*8:], (bootPD+i*0x1000)|p|w)
	}
	for a := uint64(0); a < ident; a += 2 << 20 {
		le.PutUint64(ram[bootPD+(a>>21)*8:], a|p|w|0x80)
	}
	le.PutUint64(ram[bootPD:], bootPT0|p|w)
	for i := uint64(1); i < 512; i++ {
		le.PutUint64(ram[bootPT0+i*8:], i<<12|p|w)
	}
}

func (vm *VM) buildGDT() {
	ram := vm.res.RAM()
	le := binary.LittleEndian
	for i, d := range gdtEntries {
		le.PutUint64(ram[bootGDT+i*8:], d)
	}
	tss := uint64(0x67) | uint64(bootTSS&0xffffff)<<16 | uint64(0x8b)<<40 | uint64(bootTSS>>24&0xff)<<56
	le.PutUint64(ram[bootGDT+selTSS:], tss)
	le.PutUint64(ram[bootGDT+selTSS+8:], 0)
}

// initCPU sets the entry state of docs/boot.md.
func (vm *VM) initCPU(c cpu.VCPU, entry uint64) error {
	code := cpu.Segment{Selector: selKernelCS, Limit: 0xffffffff, Attr: 0xb | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrL | cpu.SegAttrG}
	data := cpu.Segment{Selector: selKernelDS, Limit: 0xffffffff, Attr: 0x3 | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrDB | cpu.SegAttrG}
	s := cpu.SRegs{
		CS: code, DS: data, ES: data, SS: data,
		TR:   cpu.Segment{Selector: selTSS, Base: bootTSS, Limit: 0x67, Attr: 0xb | cpu.SegAttrP},
		GDT:  cpu.DTable{Base: bootGDT, Limit: uint16(len(gdtEntries)*8 + 16 - 1)},
		CR0:  cpu.CR0PE | cpu.CR0MP | cpu.CR0ET | cpu.CR0NE | cpu.CR0WP | cpu.CR0PG,
		CR3:  bootPML4,
		CR4:  cpu.CR4PAE | cpu.CR4PGE | cpu.CR4OSFXSR | cpu.CR4OSXMMEXCPT,
		EFER: cpu.EFERSCE | cpu.EFERLME | cpu.EFERLMA | cpu.EFERNXE,
	}
	if vm.linux {
		// As firmware and the decompressor leave it: Linux turns on
		// SYSCALL and NX itself.
		s.EFER = cpu.EFERLME | cpu.EFERLMA
	}
	if err := c.SetSRegs(s); err != nil {
		return err
	}
	var r cpu.Regs
	r.RIP = entry
	r.RFLAGS = cpu.FlagsFixed
	r.GPR[cpu.RSP] = bootStackTop
	if vm.linux {
		r.GPR[cpu.RSI] = linuxZeroPage
	} else {
		r.GPR[cpu.RDI] = bootStartInfo
	}
	c.SetRegs(r)
	return nil
}
