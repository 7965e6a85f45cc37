package interp

import (
	"math/bits"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Lazy arithmetic flags. An instruction that sets the six status flags
// records what it computed; the flags themselves are derived only when read.
const (
	lfNone = iota // status flags are in CPU.flags
	lfAdd         // res = a + b (+ carry in)
	lfSub         // res = a - b (- borrow); also CMP, NEG (a = 0)
	lfInc         // res = a + 1; aux = CF before the instruction
	lfDec         // res = a - 1; aux = CF before the instruction
	lfRes         // aux bit 0 = CF, bit 1 = OF, bit 2 = AF; PF, ZF, SF from res
	lfSbb         // res = a - b - borrow in: as lfSub, but CF is not simply a < b
)

const (
	auxCF = 1
	auxOF = 2
	auxAF = 4
)

type lazyFlags struct {
	op   uint8
	size uint8 // operand size in bytes
	a, b uint64
	res  uint64
	aux  uint64
}

var parityTable = func() (t [256]bool) {
	for i := range t {
		t[i] = bits.OnesCount8(uint8(i))%2 == 0
	}
	return
}()

func signShift(size uint8) uint { return uint(size)*8 - 1 }

// The setters store field by field: a composite literal would be built on
// the stack and copied.

func (c *CPU) setAdd(size uint8, a, b, res uint64) {
	l := &c.lf
	l.op, l.size, l.a, l.b, l.res = lfAdd, size, a, b, res
}

func (c *CPU) setSub(size uint8, a, b, res uint64) {
	l := &c.lf
	l.op, l.size, l.a, l.b, l.res = lfSub, size, a, b, res
}

// setLogic records a result with CF = OF = 0 (AND, OR, XOR, TEST).
func (c *CPU) setLogic(size uint8, res uint64) {
	l := &c.lf
	l.op, l.size, l.res, l.aux = lfRes, size, res, 0
}

// setRes records a result with explicit CF/OF/AF bits.
func (c *CPU) setRes(size uint8, res uint64, aux uint64) {
	l := &c.lf
	l.op, l.size, l.res, l.aux = lfRes, size, res, aux
}

func (c *CPU) getCF() bool {
	l := &c.lf
	switch l.op {
	case lfNone:
		return c.flags&cpu.FlagCF != 0
	case lfAdd:
		return ((l.a&l.b)|((l.a|l.b)&^l.res))>>signShift(l.size)&1 != 0
	case lfSub, lfSbb:
		return ((^l.a&l.b)|((^l.a|l.b)&l.res))>>signShift(l.size)&1 != 0
	default:
		return l.aux&auxCF != 0
	}
}

func (c *CPU) getZF() bool {
	if c.lf.op == lfNone {
		return c.flags&cpu.FlagZF != 0
	}
	return c.lf.res&sizeMask[c.lf.size] == 0
}

func (c *CPU) getSF() bool {
	if c.lf.op == lfNone {
		return c.flags&cpu.FlagSF != 0
	}
	return c.lf.res>>signShift(c.lf.size)&1 != 0
}

func (c *CPU) getOF() bool {
	l := &c.lf
	switch l.op {
	case lfNone:
		return c.flags&cpu.FlagOF != 0
	case lfAdd, lfInc:
		return ((l.a^l.res)&(l.b^l.res))>>signShift(l.size)&1 != 0
	case lfSub, lfDec, lfSbb:
		return ((l.a^l.b)&(l.a^l.res))>>signShift(l.size)&1 != 0
	default:
		return l.aux&auxOF != 0
	}
}

func (c *CPU) getPF() bool {
	if c.lf.op == lfNone {
		return c.flags&cpu.FlagPF != 0
	}
	return parityTable[uint8(c.lf.res)]
}

func (c *CPU) getAF() bool {
	l := &c.lf
	switch l.op {
	case lfNone:
		return c.flags&cpu.FlagAF != 0
	case lfAdd, lfSub, lfInc, lfDec, lfSbb:
		return (l.a^l.b^l.res)&0x10 != 0
	default:
		return l.aux&auxAF != 0
	}
}

// getFlags returns RFLAGS with the status flags computed.
func (c *CPU) getFlags() uint64 {
	if c.lf.op == lfNone {
		return c.flags
	}
	f := c.flags &^ cpu.FlagsArith
	if c.getCF() {
		f |= cpu.FlagCF
	}
	if c.getPF() {
		f |= cpu.FlagPF
	}
	if c.getAF() {
		f |= cpu.FlagAF
	}
	if c.getZF() {
		f |= cpu.FlagZF
	}
	if c.getSF() {
		f |= cpu.FlagSF
	}
	if c.getOF() {
		f |= cpu.FlagOF
	}
	return f
}

// commitFlags folds the lazy flags into CPU.flags.
func (c *CPU) commitFlags() {
	if c.lf.op != lfNone {
		c.flags = c.getFlags()
		c.lf.op = lfNone
	}
}

// rflagsWritable are the bits software can ever set in RFLAGS (in 64-bit mode).
const rflagsWritable = cpu.FlagsLongMode

// setFlagsAll replaces RFLAGS (the caller applies privilege masking).
func (c *CPU) setFlagsAll(v uint64) {
	c.flags = v&rflagsWritable | cpu.FlagsFixed
	c.lf.op = lfNone
}

// cond evaluates condition code cc (the low nibble of Jcc/SETcc/CMOVcc).
func (c *CPU) cond(cc uint8) bool {
	var r bool
	switch cc >> 1 {
	case 0: // O
		r = c.getOF()
	case 1: // B
		r = c.getCF()
	case 2: // Z
		r = c.getZF()
	case 3: // BE
		r = c.getCF() || c.getZF()
	case 4: // S
		r = c.getSF()
	case 5: // P
		r = c.getPF()
	case 6: // L
		r = c.getSF() != c.getOF()
	default: // LE
		r = c.getZF() || c.getSF() != c.getOF()
	}
	return r != (cc&1 != 0)
}
