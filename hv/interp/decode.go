package interp

import "fmt"

// Inst is one decoded instruction: 24 bytes, no pointers.
type Inst struct {
	op    uint16 // handler index; 0 = invalid opcode (#UD)
	len   uint8
	size  uint8 // operand size in bytes: 1, 2, 4, 8
	reg   uint8 // ModRM.reg|REX.R, or the register in the opcode; 16..19 = AH, CH, DH, BH
	rm    uint8 // ModRM.rm|REX.B for a register operand; 16..19 as reg
	base  uint8 // address base register; 16 = none
	index uint8 // address index register; 16 = none
	scale uint8 // index shift, 0..3
	seg   uint8 // 0 flat, 1 FS, 2 GS
	flags uint8 // iMem, iRIPRel, ...
	ext   uint8 // the last opcode byte (Jcc/SETcc/CMOVcc condition in the low nibble)
	disp  int32
	imm   uint64
}

// Inst.flags
const (
	iMem    = 1 << iota // the r/m operand is memory
	iRIPRel             // address is RIP-relative (base is 16)
	iLock               // F0 prefix
	iRep                // F3 prefix
	iRepne              // F2 prefix
	iAddr32             // 67 prefix: 32-bit address size
	iRex                // a REX prefix was present
	iOpsz               // 66 prefix present (for SSE forms that take it as operand size)
)

const regNone = 16

// handler executes one instruction. Handlers are indexed by Inst.op.
type handler func(*CPU, *Inst)

const maxOps = 2048

var (
	handlers [maxOps]handler
	opNames  [maxOps]string
	opEnds   [maxOps]bool // the instruction ends a block
	nOps     = 1
)

// defOp registers a handler and returns its index. ends marks instructions
// that end a decoded block: control transfers and instructions that change
// translation, privilege or the interrupt flag.
func defOp(name string, ends bool, h handler) uint16 {
	if nOps >= maxOps {
		panic("interp: too many ops")
	}
	n := nOps
	nOps++
	handlers[n], opNames[n], opEnds[n] = h, name, ends
	return uint16(n)
}

func init() {
	handlers[0] = opUD
	opNames[0] = "(bad)"
	opEnds[0] = true
}

// Opcode table flags.
type opFlags uint32

const (
	fModRM    opFlags = 1 << iota // has a ModRM byte
	fByte                         // 8-bit operand size
	fDef64                        // default operand size 64 (66 gives 16)
	fForce64                      // operand size always 64
	fIb                           // 8-bit immediate, sign-extended
	fIbU                          // 8-bit immediate, zero-extended
	fIw                           // 16-bit immediate, zero-extended
	fIz                           // 16/32-bit immediate, sign-extended to the operand size
	fIv                           // 16/32/64-bit immediate by operand size (MOV r, imm)
	fIwIb                         // ENTER: imm16 in imm, imm8 in disp
	fMoffs                        // 64-bit (or 32 with 67) absolute address in imm
	fSSE                          // op chosen by mandatory prefix (none, 66, F3, F2)
	fMemOnly                      // mod=3 is invalid
	fRegOnly                      // mod!=3 is invalid
	fOpReg                        // register in opcode low 3 bits (+REX.B) -> reg
	fInv64                        // invalid in 64-bit mode
	fRMByte                       // the r/m operand is a byte (MOVZX/MOVSX Gv, Eb)
	fImmReg01                     // group 3: Ib/Iz immediate only when ModRM.reg is 0 or 1
)

// Mandatory-prefix slots of opDesc.op.
const (
	pNone = iota
	p66
	pF3
	pF2
)

type opDesc struct {
	flags opFlags
	op    [4]uint16
	grp   [4]*[8]uint16  // by ModRM.reg (and prefix slot when fSSE)
	gfl   [4]*[8]opFlags // flags of group members, merged with flags
	mod3  [4]*[64]uint16 // mod=3 forms by reg<<3|rm, overriding grp/op when non-zero
}

var (
	table1  [256]opDesc // one-byte opcodes
	table2  [256]opDesc // 0F xx
	table38 [256]opDesc // 0F 38 xx
	table3A [256]opDesc // 0F 3A xx
)

// opcode-table builders, used by the files that define instructions.

func set1(b byte, f opFlags, op uint16)                   { table1[b].flags |= f; table1[b].op[0] = op }
func set2(b byte, f opFlags, op uint16)                   { table2[b].flags |= f; table2[b].op[0] = op }
func setTab(t *[256]opDesc, b byte, f opFlags, op uint16) { t[b].flags |= f; t[b].op[0] = op }

// setP sets the form of an SSE opcode under mandatory prefix slot p.
func setP(t *[256]opDesc, b byte, p int, f opFlags, op uint16) {
	t[b].flags |= f | fSSE | fModRM
	t[b].op[p] = op
}

// setG sets group member reg of an opcode (prefix slot p; pNone for
// non-SSE groups).
func setG(t *[256]opDesc, b byte, p int, reg int, f opFlags, op uint16) {
	d := &t[b]
	d.flags |= fModRM
	if d.grp[p] == nil {
		d.grp[p] = new([8]uint16)
		d.gfl[p] = new([8]opFlags)
	}
	d.grp[p][reg] = op
	d.gfl[p][reg] |= f
}

// setM3 sets the mod=3 form reg<<3|rm of an opcode (prefix slot p).
func setM3(t *[256]opDesc, b byte, p int, regrm int, op uint16) {
	d := &t[b]
	d.flags |= fModRM
	if d.mod3[p] == nil {
		d.mod3[p] = new([64]uint16)
	}
	d.mod3[p][regrm] = op
}

// setM3Reg sets the mod=3 forms of group member reg for all rm values.
func setM3Reg(t *[256]opDesc, b byte, p int, reg int, op uint16) {
	for rm := 0; rm < 8; rm++ {
		setM3(t, b, p, reg<<3|rm, op)
	}
}

// errTruncated is returned when the bytes end inside an instruction.
var errTruncated = fmt.Errorf("truncated instruction")

// decode decodes one instruction from code. It returns errTruncated if
// code ends inside the instruction (the caller may supply more bytes). An
// undefined opcode decodes to op 0 with its length as best known (at least
// 1), which raises #UD when executed.
func decode(code []byte) (in Inst, err error) {
	var (
		i        int
		rex      byte
		opsz     bool
		pfxSlot  = pNone
		lastRepF byte
	)
	in.base, in.index = regNone, regNone
	n := len(code)
	if n > 15 {
		n = 15
	}
	// Prefixes.
prefixes:
	for ; i < n; i++ {
		b := code[i]
		switch b {
		case 0x66:
			opsz = true
			in.flags |= iOpsz
		case 0x67:
			in.flags |= iAddr32
		case 0xf0:
			in.flags |= iLock
		case 0xf2:
			in.flags = in.flags&^iRep | iRepne
			lastRepF = b
		case 0xf3:
			in.flags = in.flags&^iRepne | iRep
			lastRepF = b
		case 0x26, 0x2e, 0x36, 0x3e:
			in.seg = 0
		case 0x64:
			in.seg = 1
		case 0x65:
			in.seg = 2
		default:
			if b&0xf0 == 0x40 {
				// REX counts only immediately before the opcode: a
				// later prefix (legacy or REX) cancels it.
				rex = b
				continue
			}
			break prefixes
		}
		rex = 0
	}
	if rex != 0 {
		in.flags |= iRex
	}
	if i >= n {
		return in, truncOr15(len(code))
	}
	t := &table1
	b := code[i]
	i++
	if b == 0x0f {
		if i >= n {
			return in, truncOr15(len(code))
		}
		b = code[i]
		i++
		t = &table2
		if b == 0x38 || b == 0x3a {
			if b == 0x38 {
				t = &table38
			} else {
				t = &table3A
			}
			if i >= n {
				return in, truncOr15(len(code))
			}
			b = code[i]
			i++
		}
	}
	in.ext = b
	d := &t[b]
	f := d.flags
	if f&fSSE != 0 {
		// Mandatory prefix: the last of F2/F3 wins, then 66. A prefix
		// with no form of its own leaves op 0 (#UD).
		switch {
		case lastRepF == 0xf3:
			pfxSlot = pF3
		case lastRepF == 0xf2:
			pfxSlot = pF2
		case opsz:
			pfxSlot = p66
		}
	}
	if f&fModRM != 0 && i < n {
		if gf := d.gfl[pfxSlot]; gf != nil {
			f |= gf[(code[i]>>3)&7]
		}
	}
	// Operand size.
	switch {
	case f&fByte != 0:
		in.size = 1
	case f&fForce64 != 0:
		in.size = 8
	case rex&8 != 0:
		in.size = 8
	case opsz && !(f&fSSE != 0 && pfxSlot == p66):
		in.size = 2
	case f&fDef64 != 0:
		in.size = 8
	default:
		in.size = 4
	}
	op := d.op[pfxSlot]
	if f&fOpReg != 0 {
		in.reg = b&7 | (rex&1)<<3
		if in.size == 1 && rex == 0 && in.reg >= 4 && in.reg < 8 {
			in.reg += 12 // AH..BH
		}
	}
	if f&fModRM != 0 {
		if i >= n {
			return in, truncOr15(len(code))
		}
		m := code[i]
		i++
		mod, reg, rm := m>>6, (m>>3)&7, m&7
		in.reg = reg | (rex&4)<<1
		if g := d.grp[pfxSlot]; g != nil {
			op = g[reg]
		}
		if f&fImmReg01 != 0 && reg < 2 {
			if f&fByte != 0 {
				f |= fIb
			} else {
				f |= fIz
			}
		}
		if mod == 3 {
			if f&fMemOnly != 0 {
				op = 0
			}
			if m3 := d.mod3[pfxSlot]; m3 != nil && m3[reg<<3|rm] != 0 {
				op = m3[reg<<3|rm]
			}
			in.rm = rm | (rex&1)<<3
			if (in.size == 1 || f&fRMByte != 0) && rex == 0 && in.rm >= 4 && in.rm < 8 {
				in.rm += 12
			}
		} else {
			if f&fRegOnly != 0 {
				op = 0
			}
			in.flags |= iMem
			if rm == 4 {
				if i >= n {
					return in, truncOr15(len(code))
				}
				sib := code[i]
				i++
				in.scale = sib >> 6
				idx := (sib>>3)&7 | (rex&2)<<2
				if idx != 4 {
					in.index = idx
				}
				base := sib&7 | (rex&1)<<3
				if sib&7 == 5 && mod == 0 {
					// No base: disp32 follows.
					if i+4 > n {
						return in, truncOr15(len(code))
					}
					in.disp = int32(decLE32(code[i:]))
					i += 4
				} else {
					in.base = base
				}
			} else if rm == 5 && mod == 0 {
				in.flags |= iRIPRel
				if i+4 > n {
					return in, truncOr15(len(code))
				}
				in.disp = int32(decLE32(code[i:]))
				i += 4
			} else {
				in.base = rm | (rex&1)<<3
			}
			switch mod {
			case 1:
				if i >= n {
					return in, truncOr15(len(code))
				}
				in.disp = int32(int8(code[i]))
				i++
			case 2:
				if i+4 > n {
					return in, truncOr15(len(code))
				}
				in.disp = int32(decLE32(code[i:]))
				i += 4
			}
		}
		// Byte-register operands in reg: AH..BH without REX. In a group
		// ModRM.reg is the opcode extension, not a register.
		if in.size == 1 && rex == 0 && in.reg >= 4 && in.reg < 8 && f&fOpReg == 0 && d.grp[pfxSlot] == nil {
			in.reg += 12
		}
	}
	// Immediates.
	need := 0
	switch {
	case f&fIb != 0, f&fIbU != 0:
		need = 1
	case f&fIw != 0:
		need = 2
	case f&fIz != 0:
		need = 4
		if in.size == 2 {
			need = 2
		}
	case f&fIv != 0:
		need = int(in.size)
	case f&fIwIb != 0:
		need = 3
	case f&fMoffs != 0:
		need = 8
		if in.flags&iAddr32 != 0 {
			need = 4
		}
	}
	if i+need > n {
		return in, truncOr15(len(code))
	}
	switch {
	case f&fIb != 0:
		in.imm = uint64(int64(int8(code[i])))
	case f&fIbU != 0:
		in.imm = uint64(code[i])
	case f&fIw != 0:
		in.imm = uint64(code[i]) | uint64(code[i+1])<<8
	case f&fIz != 0:
		if need == 2 {
			in.imm = uint64(int64(int16(uint16(code[i]) | uint16(code[i+1])<<8)))
		} else {
			in.imm = uint64(int64(int32(decLE32(code[i:]))))
		}
	case f&fIv != 0, f&fMoffs != 0:
		for k := need - 1; k >= 0; k-- {
			in.imm = in.imm<<8 | uint64(code[i+k])
		}
	case f&fIwIb != 0:
		in.imm = uint64(code[i]) | uint64(code[i+1])<<8
		in.disp = int32(code[i+2])
	}
	i += need
	if f&fInv64 != 0 {
		op = 0
	}
	if in.flags&iLock != 0 && !lockable(t, b, in.flags, in.reg) {
		op = 0 // LOCK on an instruction that cannot take it: #UD
	}
	in.op = op
	in.len = uint8(i)
	if in.flags&iMem != 0 && (in.flags&iLock != 0 || t == &table1 && (b == 0x86 || b == 0x87)) && lockTwin[op] != 0 {
		// LOCK, or XCHG with memory (locked without the prefix): the
		// locked form, atomic with respect to other vCPUs (lock.go).
		in.op = lockTwin[op]
		return in, nil
	}
	in.op = specialize(&in)
	return in, nil
}

// truncOr15: if the caller gave 15 or more bytes the instruction is too
// long (#UD here; hardware raises #GP), else more bytes may help.
func truncOr15(have int) error {
	if have >= 15 {
		return errTooLong
	}
	return errTruncated
}

var errTooLong = fmt.Errorf("instruction longer than 15 bytes")

func decLE32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// String renders an Inst for traces and test failures.
func (in *Inst) String() string {
	return fmt.Sprintf("%s size=%d reg=%d rm=%d mem=%v base=%d index=%d scale=%d disp=%#x imm=%#x len=%d",
		opNames[in.op], in.size, in.reg, in.rm, in.flags&iMem != 0, in.base, in.index, in.scale, in.disp, in.imm, in.len)
}

// lockable reports whether the LOCK prefix is allowed on the instruction:
// a read-modify-write of a memory destination (SDM Vol. 2, "LOCK").
func lockable(t *[256]opDesc, b byte, flags, modrmReg uint8) bool {
	if flags&iMem == 0 {
		return false
	}
	reg := modrmReg & 7
	if t == &table1 {
		switch {
		case b < 0x40 && b&7 <= 1 && b&0x38 != 0x38: // ADD..XOR Eb/Ev,G (not CMP)
			return true
		case b == 0x80 || b == 0x81 || b == 0x83:
			return reg != 7 // not CMP
		case b == 0x86 || b == 0x87: // XCHG
			return true
		case b == 0xf6 || b == 0xf7:
			return reg == 2 || reg == 3 // NOT, NEG
		case b == 0xfe || b == 0xff:
			return reg <= 1 // INC, DEC
		}
		return false
	}
	if t == &table2 {
		switch b {
		case 0xab, 0xb3, 0xbb, 0xb0, 0xb1, 0xc0, 0xc1: // BTS, BTR, BTC, CMPXCHG, XADD
			return true
		case 0xba:
			return reg >= 5 // BTS, BTR, BTC Ev,Ib
		case 0xc7:
			return reg == 1 // CMPXCHG8B/16B
		}
	}
	return false
}
