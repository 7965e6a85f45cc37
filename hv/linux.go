package hv

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
)

// The Linux 64-bit boot protocol (Documentation/arch/x86/boot.rst): the
// kernel is entered in long mode with paging on, flat __BOOT_CS (0x10) and
// __BOOT_DS (0x18), interrupts off and RSI pointing at struct boot_params
// (the "zero page"). pvisor boots an uncompressed vmlinux ELF directly (no
// decompressor runs in the guest), or a bzImage through its 64-bit entry.

const (
	linuxZeroPage = 0x20000 // struct boot_params
	linuxCmdline  = 0x21000
	linuxCmdMax   = 4095

	// Offsets in struct boot_params.
	bpExtRamdiskImage = 0x0c0
	bpExtRamdiskSize  = 0x0c4
	bpExtCmdLinePtr   = 0x0c8
	bpE820Entries     = 0x1e8
	bpSetupHeader     = 0x1f1
	bpE820Table       = 0x2d0
	bpE820Max         = 128

	// Offsets of setup-header fields, from the start of boot_params.
	hdrSetupSects      = 0x1f1
	hdrBootFlag        = 0x1fe
	hdrHeader          = 0x202
	hdrVersion         = 0x206
	hdrTypeOfLoader    = 0x210
	hdrLoadflags       = 0x211
	hdrCode32Start     = 0x214
	hdrRamdiskImage    = 0x218
	hdrRamdiskSize     = 0x21c
	hdrHeapEndPtr      = 0x224
	hdrCmdLinePtr      = 0x228
	hdrInitrdAddrMax   = 0x22c
	hdrKernelAlignment = 0x230
	hdrRelocatable     = 0x234
	hdrXloadflags      = 0x236
	hdrCmdlineSize     = 0x238
	hdrPrefAddress     = 0x258

	loadedHigh    = 0x01
	canUseHeap    = 0x80
	xlfKernel64   = 0x01
	e820RAM       = 1
	e820Reserved  = 2
	linuxLoadAddr = 0x1000000 // where a bzImage's protected-mode part goes (16 MiB)
)

// kernelKind says how an image boots.
type kernelKind int

const (
	kindFreestanding kernelKind = iota // docs/boot.md
	kindVmlinux                        // Linux ELF vmlinux
	kindBzImage                        // Linux bzImage
)

// detectKernel classifies an image.
func detectKernel(img []byte) kernelKind {
	if len(img) > 0x210 && binary.LittleEndian.Uint32(img[hdrHeader:]) == 0x53726448 { // "HdrS"
		return kindBzImage
	}
	if f, err := elf.NewFile(bytes.NewReader(img)); err == nil {
		// A vmlinux carries ELF notes owned by "Linux" (the build salt and
		// others) and a per-CPU data section; freestanding guests have neither.
		if hasLinuxNote(f) || f.Section(".data..percpu") != nil {
			return kindVmlinux
		}
	}
	return kindFreestanding
}

// loadLinux places a Linux kernel, initrd, command line and boot_params and
// returns the entry point.
func (vm *VM) loadLinux(kind kernelKind) (uint64, error) {
	size := vm.res.Size()
	if len(vm.cfg.Cmdline) > linuxCmdMax {
		return 0, fmt.Errorf("command line is %d bytes: at most %d", len(vm.cfg.Cmdline), linuxCmdMax)
	}
	var bp [4096]byte
	var entry, imageEnd uint64
	switch kind {
	case kindVmlinux:
		f, err := elf.NewFile(bytes.NewReader(vm.cfg.Kernel))
		if err != nil {
			return 0, fmt.Errorf("vmlinux: %v", err)
		}
		for _, p := range f.Progs {
			if p.Type != elf.PT_LOAD {
				continue
			}
			end := p.Paddr + p.Memsz
			if p.Paddr < bootImageMin || end < p.Paddr || end > size || p.Filesz > p.Memsz {
				return 0, fmt.Errorf("vmlinux segment [%#x, %#x) does not fit in %d MiB of guest memory: give more --mem", p.Paddr, end, size>>20)
			}
			dst, _ := vm.guest(p.Paddr, p.Memsz)
			if n, err := p.ReadAt(dst[:p.Filesz], 0); uint64(n) != p.Filesz {
				return 0, fmt.Errorf("vmlinux segment at %#x is truncated: %v", p.Paddr, err)
			}
			clear(dst[p.Filesz:])
			imageEnd = max(imageEnd, end)
		}
		entry = f.Entry
		if entry < bootImageMin || entry >= imageEnd {
			return 0, fmt.Errorf("vmlinux entry %#x is outside its image", entry)
		}
		binary.LittleEndian.PutUint16(bp[hdrBootFlag:], 0xaa55)
		binary.LittleEndian.PutUint32(bp[hdrHeader:], 0x53726448)
		binary.LittleEndian.PutUint16(bp[hdrVersion:], 0x020f)
		binary.LittleEndian.PutUint32(bp[hdrKernelAlignment:], 0x200000)
	case kindBzImage:
		img := vm.cfg.Kernel
		setupSects := int(img[hdrSetupSects])
		if setupSects == 0 {
			setupSects = 4
		}
		version := binary.LittleEndian.Uint16(img[hdrVersion:])
		if version < 0x020c || len(img) < 0x240 || binary.LittleEndian.Uint16(img[hdrXloadflags:])&xlfKernel64 == 0 {
			return 0, fmt.Errorf("bzImage (boot protocol %#x) has no 64-bit entry point: need protocol 2.12+ with XLF_KERNEL_64", version)
		}
		off := (setupSects + 1) * 512
		if off >= len(img) {
			return 0, fmt.Errorf("bzImage is truncated")
		}
		pm := img[off:]
		load := uint64(linuxLoadAddr)
		if load+uint64(len(pm)) > size {
			return 0, fmt.Errorf("bzImage does not fit in %d MiB: give more --mem", size>>20)
		}
		vm.guestWrite(load, pm)
		// The setup header is copied from the image, its length given by the
		// byte at 0x201 (end of the header = 0x202 + that byte).
		hdrEnd := 0x202 + int(img[0x201])
		copy(bp[bpSetupHeader:hdrEnd], img[bpSetupHeader:hdrEnd])
		binary.LittleEndian.PutUint32(bp[hdrCode32Start:], uint32(load))
		entry = load + 0x200
		imageEnd = load + uint64(len(pm))
		// The decompressor needs init_size bytes from the load address.
		if initSize := uint64(binary.LittleEndian.Uint32(img[0x260:])); load+initSize > size {
			return 0, fmt.Errorf("bzImage needs %d MiB from 16 MiB: give more --mem", (load+initSize)>>20)
		}
	default:
		return 0, fmt.Errorf("not a Linux kernel")
	}
	bp[hdrTypeOfLoader] = 0xff
	bp[hdrLoadflags] |= loadedHigh | canUseHeap
	binary.LittleEndian.PutUint16(bp[hdrHeapEndPtr:], 0xfe00)
	binary.LittleEndian.PutUint32(bp[hdrCmdLinePtr:], linuxCmdline)
	binary.LittleEndian.PutUint32(bp[bpExtCmdLinePtr:], 0)
	binary.LittleEndian.PutUint32(bp[hdrCmdlineSize:], linuxCmdMax)
	vm.guestWrite(linuxCmdline, append([]byte(vm.cfg.Cmdline), 0))
	// Initrd: as high as possible below min(RAM, 4 GiB), page-aligned,
	// above the kernel.
	if n := uint64(len(vm.cfg.Initrd)); n > 0 {
		top := min(size, 1<<32)
		addr := (top - n) &^ 0xfff
		if addr < pageUp(imageEnd) || addr > top {
			return 0, fmt.Errorf("initrd (%d MiB) does not fit above the kernel in %d MiB: give more --mem", n>>20, size>>20)
		}
		vm.guestWrite(addr, vm.cfg.Initrd)
		binary.LittleEndian.PutUint32(bp[hdrRamdiskImage:], uint32(addr))
		binary.LittleEndian.PutUint32(bp[hdrRamdiskSize:], uint32(n))
		binary.LittleEndian.PutUint32(bp[bpExtRamdiskImage:], uint32(addr>>32))
		binary.LittleEndian.PutUint32(bp[bpExtRamdiskSize:], uint32(n>>32))
		vm.layout.initrdGPA = addr
	}
	// The memory map: low RAM below the EBDA, the legacy hole, RAM above.
	e820 := []struct{ addr, size, typ uint64 }{
		{0, 0x9fc00, e820RAM},
		{0x9fc00, 0x400, e820Reserved},
		{0xf0000, 0x10000, e820Reserved},
		{0x100000, size - 0x100000, e820RAM},
	}
	bp[bpE820Entries] = uint8(len(e820))
	for i, e := range e820 {
		o := bpE820Table + i*20
		binary.LittleEndian.PutUint64(bp[o:], e.addr)
		binary.LittleEndian.PutUint64(bp[o+8:], e.size)
		binary.LittleEndian.PutUint32(bp[o+16:], uint32(e.typ))
	}
	vm.guestWrite(linuxZeroPage, bp[:])
	vm.memmap = nil
	for _, e := range e820 {
		t := uint32(1)
		if e.typ != e820RAM {
			t = 2
		}
		vm.memmap = append(vm.memmap, memmapEntry(e.addr, e.size, t))
	}
	vm.layout.freeGPA = pageUp(imageEnd)
	vm.buildPageTables()
	vm.buildGDT()
	return entry, nil
}

// hasLinuxNote reports whether the ELF file has a note owned by "Linux".
func hasLinuxNote(f *elf.File) bool {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		b, err := s.Data()
		if err != nil {
			continue
		}
		for len(b) >= 12 {
			nsz, dsz := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
			b = b[12:]
			n := int((nsz + 3) &^ 3)
			d := int((dsz + 3) &^ 3)
			if n > len(b) || d > len(b)-n {
				break
			}
			if nsz >= 5 && string(b[:5]) == "Linux" {
				return true
			}
			b = b[n+d:]
		}
	}
	return false
}
