package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The subset of ELF64 the loader reads (the System V gABI). Every offset
// and size in the file is checked against the file before it is used.
const (
	elfHeaderSize = 64
	elfPhentsize  = 56
	elfShentsize  = 64
	etExec        = 2
	emX86_64      = 62
	ptLoad        = 1
	ptNote        = 4
	shtNote       = 7
	pnXnum        = 0xffff // e_phnum escape for more headers than fit
)

var le = binary.LittleEndian

// elfFile is a parsed ELF64 x86-64 executable: slices of img, not copies.
type elfFile struct {
	img      []byte
	entry    uint64
	progs    []elfProg
	sections []elfSection
}

type elfProg struct {
	typ                       uint32
	off, paddr, filesz, memsz uint64
}

type elfSection struct {
	typ       uint32
	off, size uint64
	percpu    bool // named .data..percpu
}

// percpuName is the name of a vmlinux's per-CPU data section, with the
// string table's NUL.
const percpuName = ".data..percpu\x00"

// isELF reports whether img starts with the ELF magic.
func isELF(img []byte) bool {
	return len(img) >= 4 && string(img[:4]) == "\x7fELF"
}

// span returns img[off:off+n] or false when that is not inside img.
func span(img []byte, off, n uint64) ([]byte, bool) {
	if off > uint64(len(img)) || n > uint64(len(img))-off {
		return nil, false
	}
	return img[off : off+n], true
}

// parseELF reads the headers of an ELF64 x86-64 executable.
func parseELF(img []byte) (*elfFile, error) {
	if len(img) < elfHeaderSize {
		return nil, fmt.Errorf("the file is %d bytes, shorter than an ELF64 header (%d)", len(img), elfHeaderSize)
	}
	if img[4] != 2 || img[5] != 1 {
		return nil, fmt.Errorf("ELF class %d, data encoding %d: want ELF64 little-endian (2, 1)", img[4], img[5])
	}
	if typ, mach := le.Uint16(img[16:]), le.Uint16(img[18:]); typ != etExec || mach != emX86_64 {
		return nil, fmt.Errorf("ELF type %d, machine %d: want an x86-64 executable (type %d, machine %d)", typ, mach, etExec, emX86_64)
	}
	f := &elfFile{img: img, entry: le.Uint64(img[24:])}
	phoff, phentsize, phnum := le.Uint64(img[32:]), uint64(le.Uint16(img[54:])), uint64(le.Uint16(img[56:]))
	if phnum == pnXnum {
		return nil, fmt.Errorf("the file has %d or more program headers: more than any kernel has", pnXnum)
	}
	if phnum > 0 && phentsize != elfPhentsize {
		return nil, fmt.Errorf("program header entries are %d bytes: want %d", phentsize, elfPhentsize)
	}
	ph, ok := span(img, phoff, phnum*elfPhentsize)
	if !ok {
		return nil, fmt.Errorf("%d program headers at offset %#x run past the end of the %d-byte file: it is truncated", phnum, phoff, len(img))
	}
	f.progs = make([]elfProg, phnum)
	for i := range f.progs {
		h := ph[i*elfPhentsize:]
		f.progs[i] = elfProg{typ: le.Uint32(h), off: le.Uint64(h[8:]), paddr: le.Uint64(h[24:]),
			filesz: le.Uint64(h[32:]), memsz: le.Uint64(h[40:])}
	}
	// Sections matter only to tell a vmlinux from a freestanding guest;
	// e_shnum 0 (none, or the extended-count escape) reads as none.
	shoff, shentsize, shnum := le.Uint64(img[40:]), uint64(le.Uint16(img[58:])), uint64(le.Uint16(img[60:]))
	if shnum == 0 {
		return f, nil
	}
	if shentsize != elfShentsize {
		return nil, fmt.Errorf("section header entries are %d bytes: want %d", shentsize, elfShentsize)
	}
	sh, ok := span(img, shoff, shnum*elfShentsize)
	if !ok {
		return nil, fmt.Errorf("%d section headers at offset %#x run past the end of the %d-byte file: it is truncated", shnum, shoff, len(img))
	}
	var strtab []byte
	if i := uint64(le.Uint16(img[62:])); i < shnum {
		h := sh[i*elfShentsize:]
		strtab, _ = span(img, le.Uint64(h[24:]), le.Uint64(h[32:]))
	}
	f.sections = make([]elfSection, shnum)
	for i := range f.sections {
		h := sh[i*elfShentsize:]
		s := elfSection{typ: le.Uint32(h[4:]), off: le.Uint64(h[24:]), size: le.Uint64(h[32:])}
		if n := uint64(le.Uint32(h)); n < uint64(len(strtab)) {
			s.percpu = bytes.HasPrefix(strtab[n:], []byte(percpuName))
		}
		f.sections[i] = s
	}
	return f, nil
}

// linuxOwned reports whether the file looks like a Linux vmlinux: an ELF
// note owned by "Linux" (the build salt and others) in a PT_NOTE segment
// or an SHT_NOTE section, or a per-CPU data section. Freestanding guests
// have neither.
func (f *elfFile) linuxOwned() bool {
	for _, p := range f.progs {
		if b, ok := span(f.img, p.off, p.filesz); ok && p.typ == ptNote && hasLinuxNote(b) {
			return true
		}
	}
	for _, s := range f.sections {
		if s.percpu {
			return true
		}
		if b, ok := span(f.img, s.off, s.size); ok && s.typ == shtNote && hasLinuxNote(b) {
			return true
		}
	}
	return false
}

// hasLinuxNote reports whether the notes in b include one owned by
// "Linux". Sizes are read as 32-bit values and rounded in 64 bits, so no
// value wraps.
func hasLinuxNote(b []byte) bool {
	for uint64(len(b)) >= 12 {
		nsz, dsz := uint64(le.Uint32(b)), uint64(le.Uint32(b[4:]))
		b = b[12:]
		n, d := (nsz+3)&^3, (dsz+3)&^3
		if n > uint64(len(b)) || d > uint64(len(b))-n {
			return false
		}
		if nsz >= 5 && string(b[:5]) == "Linux" {
			return true
		}
		b = b[n+d:]
	}
	return false
}

// loadSegments turns the PT_LOAD headers into plan segments, each checked
// against the file and the guest's memory, and returns the end of the
// highest. The plan checks that no two overlap each other or anything else.
func (f *elfFile) loadSegments(p *Plan, mem uint64) (imageEnd uint64, err error) {
	for i, ph := range f.progs {
		if ph.typ != ptLoad {
			continue
		}
		if ph.filesz > ph.memsz {
			return 0, fmt.Errorf("kernel segment %d: its file size %#x exceeds its memory size %#x: the ELF file is malformed", i, ph.filesz, ph.memsz)
		}
		if ph.memsz == 0 {
			continue
		}
		data, ok := span(f.img, ph.off, ph.filesz)
		if !ok {
			return 0, fmt.Errorf("kernel segment %d: its %#x bytes at file offset %#x run past the end of the %d-byte file: it is truncated", i, ph.filesz, ph.off, len(f.img))
		}
		end := ph.paddr + ph.memsz
		if end < ph.paddr {
			return 0, fmt.Errorf("kernel segment %d at %#x: its size %#x wraps the address space: the ELF file is malformed", i, ph.paddr, ph.memsz)
		}
		if ph.paddr < ImageMin {
			return 0, fmt.Errorf("kernel segment %d [%#x, %#x) starts below 1 MiB, where the loader keeps its pages: link the guest at 1 MiB or above", i, ph.paddr, end)
		}
		if end > mem {
			return 0, fmt.Errorf("kernel segment %d [%#x, %#x) does not fit in %s of guest memory: give more --mem", i, ph.paddr, end, sizeStr(mem))
		}
		p.add(Segment{What: fmt.Sprintf("kernel segment %d", i), GPA: ph.paddr, Size: ph.memsz, Data: data, kernel: true})
		imageEnd = max(imageEnd, end)
	}
	if imageEnd == 0 {
		return 0, fmt.Errorf("the kernel has no loadable (PT_LOAD) segment: link it with one")
	}
	return imageEnd, nil
}
