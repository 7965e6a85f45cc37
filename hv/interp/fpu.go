package interp

import (
	"encoding/binary"

	"github.com/pvisor/pvisor/hv/cpu"
)

// fpuState is the x87, MMX, SSE and MXCSR state of a vCPU.
type fpuState struct {
	xmm   [16][2]uint64 // XMM registers, low quadword first
	mxcsr uint32

	// x87: st holds the eight physical registers as 80-bit values.
	st  [8]f80
	top uint8  // TOP field of FSW
	fsw uint16 // status word without TOP
	fcw uint16
	ftw uint8 // abridged tag: bit i set = physical register i valid
	fop uint16
	fip uint64
	fdp uint64
}

// f80 is an x87 extended-precision value: 64-bit significand with explicit
// integer bit, and sign|exponent in se.
type f80 struct {
	mant uint64
	se   uint16
}

const mxcsrDefault = 0x1f80

func (f *fpuState) reset() {
	*f = fpuState{mxcsr: mxcsrDefault, fcw: 0x037f}
}

func (f *fpuState) export() cpu.FPU {
	var o cpu.FPU
	o.FCW, o.FSW, o.FTW, o.FOP, o.FIP, o.FDP, o.MXCSR = f.fcw, f.fsw|uint16(f.top&7)<<11, f.ftw, f.fop, f.fip, f.fdp, f.mxcsr
	for i := range f.st {
		binary.LittleEndian.PutUint64(o.ST[i][:], f.st[i].mant)
		binary.LittleEndian.PutUint16(o.ST[i][8:], f.st[i].se)
	}
	for i := range f.xmm {
		binary.LittleEndian.PutUint64(o.XMM[i][:], f.xmm[i][0])
		binary.LittleEndian.PutUint64(o.XMM[i][8:], f.xmm[i][1])
	}
	return o
}

func (f *fpuState) load(o cpu.FPU) {
	f.fcw, f.fsw, f.top, f.ftw, f.fop, f.fip, f.fdp, f.mxcsr = o.FCW, o.FSW&^0x3800, uint8(o.FSW>>11)&7, o.FTW, o.FOP, o.FIP, o.FDP, o.MXCSR
	for i := range f.st {
		f.st[i].mant = binary.LittleEndian.Uint64(o.ST[i][:])
		f.st[i].se = binary.LittleEndian.Uint16(o.ST[i][8:])
	}
	for i := range f.xmm {
		f.xmm[i][0] = binary.LittleEndian.Uint64(o.XMM[i][:])
		f.xmm[i][1] = binary.LittleEndian.Uint64(o.XMM[i][8:])
	}
}
