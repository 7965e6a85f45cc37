package loader

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// Test images, built field by field so that each test can break one.

type testProg struct {
	typ                  uint32
	paddr, filesz, memsz uint64
	data                 []byte // file contents of the segment (filesz bytes; zeros if nil)
}

type testELF struct {
	entry uint64
	progs []testProg
	// noteSection, if set, is the contents of an SHT_NOTE section (after
	// the null section; no section names).
	noteSection []byte
}

// bytes lays the file out: header, program headers, then each segment's
// data in order, page-aligned.
func (e testELF) bytes() []byte {
	le := binary.LittleEndian
	var b bytes.Buffer
	hdr := make([]byte, elfHeaderSize)
	copy(hdr, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(hdr[16:], etExec)
	le.PutUint16(hdr[18:], emX86_64)
	le.PutUint32(hdr[20:], 1)
	le.PutUint64(hdr[24:], e.entry)
	le.PutUint64(hdr[32:], elfHeaderSize)
	le.PutUint16(hdr[52:], elfHeaderSize)
	le.PutUint16(hdr[54:], elfPhentsize)
	le.PutUint16(hdr[56:], uint16(len(e.progs)))
	le.PutUint16(hdr[58:], elfShentsize)
	b.Write(hdr)
	off := uint64(PageSize)
	var body bytes.Buffer
	for _, p := range e.progs {
		ph := make([]byte, elfPhentsize)
		le.PutUint32(ph[0:], p.typ)
		le.PutUint64(ph[8:], off)
		le.PutUint64(ph[16:], p.paddr)
		le.PutUint64(ph[24:], p.paddr)
		le.PutUint64(ph[32:], p.filesz)
		le.PutUint64(ph[40:], p.memsz)
		le.PutUint64(ph[48:], PageSize)
		b.Write(ph)
		d := p.data
		if d == nil {
			d = make([]byte, p.filesz)
		}
		body.Write(d)
		body.Write(make([]byte, pageUp(uint64(len(d)))-uint64(len(d))))
		off += pageUp(uint64(len(d)))
	}
	b.Write(make([]byte, PageSize-b.Len()))
	b.Write(body.Bytes())
	if e.noteSection != nil {
		out := b.Bytes()
		noteOff := uint64(len(out))
		out = append(out, e.noteSection...)
		shoff := uint64(len(out))
		out = append(out, make([]byte, 2*elfShentsize)...)
		sh := out[shoff+elfShentsize:]
		le.PutUint32(sh[4:], shtNote)
		le.PutUint64(sh[24:], noteOff)
		le.PutUint64(sh[32:], uint64(len(e.noteSection)))
		le.PutUint64(out[40:], shoff)
		le.PutUint16(out[60:], 2)
		return out
	}
	return b.Bytes()
}

// note encodes one ELF note.
func note(owner string, typ uint32, desc []byte) []byte {
	le := binary.LittleEndian
	var b bytes.Buffer
	h := make([]byte, 12)
	le.PutUint32(h, uint32(len(owner)+1))
	le.PutUint32(h[4:], uint32(len(desc)))
	le.PutUint32(h[8:], typ)
	b.Write(h)
	b.WriteString(owner + "\x00")
	b.Write(make([]byte, pageUp4(len(owner)+1)-(len(owner)+1)))
	b.Write(desc)
	b.Write(make([]byte, pageUp4(len(desc))-len(desc)))
	return b.Bytes()
}

func pageUp4(n int) int { return (n + 3) &^ 3 }

// freestandingELF is a minimal freestanding guest: one segment at 1 MiB.
func freestandingELF() testELF {
	return testELF{entry: ImageMin, progs: []testProg{{typ: ptLoad, paddr: ImageMin, filesz: 16, memsz: 0x2000}}}
}

// vmlinuxELF is shaped like a vmlinux: text at 16 MiB, bss after it, and
// a PT_NOTE holding a note owned by "Linux".
func vmlinuxELF() testELF {
	n := note("Linux", 0x100, []byte("salt"))
	return testELF{entry: 16 << 20, progs: []testProg{
		{typ: ptLoad, paddr: 16 << 20, filesz: 0x3000, memsz: 0x3000},
		{typ: ptLoad, paddr: 16<<20 + 0x3000, filesz: 0x1000, memsz: 0x10000},
		{typ: ptNote, filesz: uint64(len(n)), data: n},
	}}
}

// bzImage is a minimal bzImage: one setup sector, protocol 2.15, a 64-bit
// entry, pmSize bytes of protected-mode kernel.
func bzImage(pmSize int, initSize uint32) []byte {
	le := binary.LittleEndian
	const setupSects = 1
	b := make([]byte, (setupSects+1)*sectorSize+pmSize)
	b[hdrSetupSects] = setupSects
	le.PutUint16(b[hdrBootFlag:], bootFlag)
	b[hdrJump], b[hdrJump+1] = 0xeb, 0x6a // header up to 0x26c, as Linux 6.12's
	le.PutUint32(b[hdrHeader:], hdrMagic)
	le.PutUint16(b[hdrVersion:], 0x020f)
	le.PutUint16(b[hdrXloadflags:], xlfKernel64)
	le.PutUint32(b[hdrInitSize:], initSize)
	return b
}

// testGuest returns build/testguest.elf (make testguest).
func testGuest(tb testing.TB) []byte {
	b, err := os.ReadFile("../../build/testguest.elf")
	if err != nil {
		tb.Fatalf("the test guest is missing: run `make testguest` (%v)", err)
	}
	return b
}
