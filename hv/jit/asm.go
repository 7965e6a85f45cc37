package jit

import "encoding/binary"

// Reg is an x86-64 general register, numbered as in the encoding.
type Reg uint8

const (
	RAX Reg = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)

// Alu is the operation of the classic two-operand ALU group, numbered as
// its ModRM reg field (and opcode row).
type Alu uint8

const (
	ADD Alu = iota
	OR
	ADC
	SBB
	AND
	SUB
	XOR
	CMP
)

// Cond is an x86 condition code (the low nibble of Jcc and SETcc).
type Cond uint8

const (
	CondO Cond = iota
	CondNO
	CondB
	CondAE
	CondE
	CondNE
	CondBE
	CondA
	CondS
	CondNS
	CondP
	CondNP
	CondL
	CondGE
	CondLE
	CondG
)

// Asm emits x86-64 machine code into a byte slice. Every method appends
// one instruction; none allocates once the slice has room. Operands are
// 64-bit unless a method says otherwise. Memory operands are [base +
// disp], encoded as GNU as encodes them (the shortest displacement).
type Asm struct {
	B []byte
}

// Label is a position in the code, for jumps.
type Label int

// Fixup is a rel32 field that a jump left for a label bound later.
type Fixup int

func (a *Asm) byte1(b ...byte) { a.B = append(a.B, b...) }

func (a *Asm) u32(v uint32) { a.B = binary.LittleEndian.AppendUint32(a.B, v) }

// rex emits a REX prefix with W set when w, for ModRM reg field r and r/m
// (or base) field b; it is always emitted when w, and otherwise when an
// extended register is named or force is set (a byte operand in SPL, BPL,
// SIL or DIL, which without REX would be AH, CH, DH or BH).
func (a *Asm) rex(w bool, r, b Reg, force bool) {
	p := byte(0x40)
	if w {
		p |= 8
	}
	if r >= 8 {
		p |= 4
	}
	if b >= 8 {
		p |= 1
	}
	if p != 0x40 || force {
		a.byte1(p)
	}
}

// modrmReg emits ModRM for two registers.
func (a *Asm) modrmReg(r, rm Reg) { a.byte1(0xC0 | byte(r&7)<<3 | byte(rm&7)) }

// modrmMem emits ModRM (and SIB) for [base + disp], with the shortest
// displacement: none, 8 or 32 bits (RBP and R13 always take one: without,
// their encoding means RIP-relative).
func (a *Asm) modrmMem(r, base Reg, disp int32) {
	mod := dispMod(base, disp)
	a.byte1(mod | byte(r&7)<<3 | byte(base&7))
	if base&7 == 4 { // RSP, R12: SIB with no index
		a.byte1(0x24)
	}
	a.disp(mod, disp)
}

// dispMod is ModRM's mod field for [base + disp]: no displacement, 8 or 32
// bits.
func dispMod(base Reg, disp int32) byte {
	switch {
	case disp == 0 && base&7 != 5:
		return 0x00
	case disp >= -128 && disp <= 127:
		return 0x40
	}
	return 0x80
}

// disp emits the displacement mod asks for.
func (a *Asm) disp(mod byte, disp int32) {
	switch mod {
	case 0x40:
		a.byte1(byte(disp))
	case 0x80:
		a.u32(uint32(disp))
	}
}

// MovImm64 is MOV r, imm64 (MOVABS).
func (a *Asm) MovImm64(r Reg, v uint64) {
	a.rex(true, 0, r, false)
	a.byte1(0xB8 + byte(r&7))
	a.B = binary.LittleEndian.AppendUint64(a.B, v)
}

// MovImm32 is MOV r32, imm32, which zero-extends into r.
func (a *Asm) MovImm32(r Reg, v uint32) {
	a.rex(false, 0, r, false)
	a.byte1(0xB8 + byte(r&7))
	a.u32(v)
}

// MovRR is MOV dst, src.
func (a *Asm) MovRR(dst, src Reg) {
	a.rex(true, src, dst, false)
	a.byte1(0x89)
	a.modrmReg(src, dst)
}

// Load is MOV r, [base + disp].
func (a *Asm) Load(r, base Reg, disp int32) {
	a.rex(true, r, base, false)
	a.byte1(0x8B)
	a.modrmMem(r, base, disp)
}

// Store is MOV [base + disp], r.
func (a *Asm) Store(base Reg, disp int32, r Reg) {
	a.rex(true, r, base, false)
	a.byte1(0x89)
	a.modrmMem(r, base, disp)
}

// Store8 is MOV byte [base + disp], r8 (the low byte of r).
func (a *Asm) Store8(base Reg, disp int32, r Reg) {
	a.rex(false, r, base, r >= 4 && r < 8)
	a.byte1(0x88)
	a.modrmMem(r, base, disp)
}

// AluRR is op dst, src.
func (a *Asm) AluRR(op Alu, dst, src Reg) {
	a.rex(true, src, dst, false)
	a.byte1(byte(op)<<3 | 0x01)
	a.modrmReg(src, dst)
}

// AluRI is op dst, imm32 (sign-extended to 64 bits).
func (a *Asm) AluRI(op Alu, dst Reg, imm int32) { a.aluRI(true, op, dst, imm) }

// aluRI is op dst, imm on 64 bits when w, else 32, with the short imm8
// form when the immediate fits.
func (a *Asm) aluRI(w bool, op Alu, dst Reg, imm int32) {
	a.rex(w, 0, dst, false)
	if imm >= -128 && imm <= 127 {
		a.byte1(0x83)
		a.modrmReg(Reg(op), dst)
		a.byte1(byte(imm))
		return
	}
	a.byte1(0x81)
	a.modrmReg(Reg(op), dst)
	a.u32(uint32(imm))
}

// AluRM is op r, [base + disp].
func (a *Asm) AluRM(op Alu, r, base Reg, disp int32) {
	a.rex(true, r, base, false)
	a.byte1(byte(op)<<3 | 0x03)
	a.modrmMem(r, base, disp)
}

// AluMI is op qword [base + disp], imm32 (sign-extended).
func (a *Asm) AluMI(op Alu, base Reg, disp int32, imm int32) {
	a.rex(true, 0, base, false)
	if imm >= -128 && imm <= 127 {
		a.byte1(0x83)
		a.modrmMem(Reg(op), base, disp)
		a.byte1(byte(imm))
		return
	}
	a.byte1(0x81)
	a.modrmMem(Reg(op), base, disp)
	a.u32(uint32(imm))
}

// Setcc is SETcc r8 (the low byte of r).
func (a *Asm) Setcc(c Cond, r Reg) {
	a.rex(false, 0, r, r >= 4 && r < 8)
	a.byte1(0x0F, 0x90|byte(c))
	a.modrmReg(0, r)
}

// Pos is the current position, as a Label.
func (a *Asm) Pos() Label { return Label(len(a.B)) }

// Jcc is a conditional jump with a 32-bit displacement to l, a label
// already bound (a backward jump).
func (a *Asm) Jcc(c Cond, l Label) {
	a.byte1(0x0F, 0x80|byte(c))
	a.u32(uint32(int(l) - (len(a.B) + 4)))
}

// JccFwd is a conditional jump to a label bound later with Bind.
func (a *Asm) JccFwd(c Cond) Fixup {
	a.byte1(0x0F, 0x80|byte(c))
	a.u32(0)
	return Fixup(len(a.B) - 4)
}

// Jmp is JMP rel32 to a bound label.
func (a *Asm) Jmp(l Label) {
	a.byte1(0xE9)
	a.u32(uint32(int(l) - (len(a.B) + 4)))
}

// JmpFwd is JMP rel32 to a label bound later.
func (a *Asm) JmpFwd() Fixup {
	a.byte1(0xE9)
	a.u32(0)
	return Fixup(len(a.B) - 4)
}

// Bind makes the jumps f lead to the current position.
func (a *Asm) Bind(f Fixup) {
	binary.LittleEndian.PutUint32(a.B[f:], uint32(len(a.B)-(int(f)+4)))
}

// Ret is RET.
func (a *Asm) Ret() { a.byte1(0xC3) }

// Load32 is MOV r32, [base + disp], which zero-extends into r.
func (a *Asm) Load32(r, base Reg, disp int32) {
	a.rex(false, r, base, false)
	a.byte1(0x8B)
	a.modrmMem(r, base, disp)
}

// MovRR32 is MOV dst32, src32, which zero-extends into dst.
func (a *Asm) MovRR32(dst, src Reg) {
	a.rex(false, src, dst, false)
	a.byte1(0x89)
	a.modrmReg(src, dst)
}

// AluRR32 is op dst32, src32 (a 32-bit result zero-extends into dst).
func (a *Asm) AluRR32(op Alu, dst, src Reg) {
	a.rex(false, src, dst, false)
	a.byte1(byte(op)<<3 | 0x01)
	a.modrmReg(src, dst)
}

// Store8Imm is MOV byte [base + disp], imm8.
func (a *Asm) Store8Imm(base Reg, disp int32, v uint8) {
	a.rex(false, 0, base, false)
	a.byte1(0xC6)
	a.modrmMem(0, base, disp)
	a.byte1(v)
}

// AddMI is ADD qword [base + disp], imm32 (sign-extended).
func (a *Asm) AddMI(base Reg, disp int32, imm int32) { a.AluMI(ADD, base, disp, imm) }

// Lea is LEA dst, [base + index<<scale + disp] (scale 0-3); index must
// not be RSP, which the encoding cannot name as an index.
func (a *Asm) Lea(dst, base, index Reg, scale uint8, disp int32) {
	p := byte(0x48)
	if dst >= 8 {
		p |= 4
	}
	if index >= 8 {
		p |= 2
	}
	if base >= 8 {
		p |= 1
	}
	mod := dispMod(base, disp)
	a.byte1(p, 0x8D, mod|byte(dst&7)<<3|4, scale<<6|byte(index&7)<<3|byte(base&7))
	a.disp(mod, disp)
}

// AluRI32 is op dst32, imm32.
func (a *Asm) AluRI32(op Alu, dst Reg, imm int32) { a.aluRI(false, op, dst, imm) }

// ShrRI is SHR r, imm8.
func (a *Asm) ShrRI(r Reg, n uint8) { a.Shift(SHR, true, r, n) }

// ShlRI is SHL r, imm8.
func (a *Asm) ShlRI(r Reg, n uint8) { a.Shift(SHL, true, r, n) }

// SarRI is SAR r, imm8.
func (a *Asm) SarRI(r Reg, n uint8) { a.Shift(SAR, true, r, n) }

// Shifter is a group-2 operation, numbered as its ModRM reg field.
type Shifter uint8

const (
	ROL Shifter = 0
	ROR Shifter = 1
	SHL Shifter = 4
	SHR Shifter = 5
	SAR Shifter = 7
)

// Shift is op r, imm8, on 64 bits when w, else on 32 (zero-extending).
func (a *Asm) Shift(op Shifter, w bool, r Reg, n uint8) {
	a.rex(w, 0, r, false)
	a.byte1(0xC1)
	a.modrmReg(Reg(op), r)
	a.byte1(n)
}

// Lahf is LAHF: AH = SF:ZF:0:AF:0:PF:1:CF.
func (a *Asm) Lahf() { a.byte1(0x9F) }

// ImulRRI is IMUL dst, src, imm32.
func (a *Asm) ImulRRI(dst, src Reg, imm int32) {
	a.rex(true, dst, src, false)
	if imm >= -128 && imm <= 127 {
		a.byte1(0x6B)
		a.modrmReg(dst, src)
		a.byte1(byte(imm))
		return
	}
	a.byte1(0x69)
	a.modrmReg(dst, src)
	a.u32(uint32(imm))
}

// TestM8 is TEST byte [base + disp], r8 (the low byte of r).
func (a *Asm) TestM8(base Reg, disp int32, r Reg) {
	a.rex(false, r, base, r >= 4 && r < 8)
	a.byte1(0x84)
	a.modrmMem(r, base, disp)
}

// LoadN loads size (1, 2, 4 or 8) bytes at [base + disp] into r,
// zero-extended: MOVZX, MOV r32 or MOV r64.
func (a *Asm) LoadN(size uint8, r, base Reg, disp int32) {
	switch size {
	case 8:
		a.Load(r, base, disp)
	case 4:
		a.Load32(r, base, disp)
	case 2:
		a.rex(false, r, base, false)
		a.byte1(0x0F, 0xB7)
		a.modrmMem(r, base, disp)
	default:
		a.rex(false, r, base, false)
		a.byte1(0x0F, 0xB6)
		a.modrmMem(r, base, disp)
	}
}

// StoreN stores the low size (1, 2, 4 or 8) bytes of r at [base + disp].
func (a *Asm) StoreN(size uint8, base Reg, disp int32, r Reg) {
	switch size {
	case 8:
		a.Store(base, disp, r)
	case 4:
		a.rex(false, r, base, false)
		a.byte1(0x89)
		a.modrmMem(r, base, disp)
	case 2:
		a.byte1(0x66)
		a.rex(false, r, base, false)
		a.byte1(0x89)
		a.modrmMem(r, base, disp)
	default:
		a.Store8(base, disp, r)
	}
}

// IncDec is INC r (DEC when dec), 64-bit when w, else 32-bit.
func (a *Asm) IncDec(w, dec bool, r Reg) {
	a.rex(w, 0, r, false)
	a.byte1(0xFF)
	ext := Reg(0)
	if dec {
		ext = 1
	}
	a.modrmReg(ext, r)
}

// StoreImm is MOV qword [base + disp], imm32 (sign-extended).
func (a *Asm) StoreImm(base Reg, disp int32, imm int32) {
	a.rex(true, 0, base, false)
	a.byte1(0xC7)
	a.modrmMem(0, base, disp)
	a.u32(uint32(imm))
}

// Not is NOT r, 64-bit when w, else 32-bit.
func (a *Asm) Not(w bool, r Reg) {
	a.rex(w, 0, r, false)
	a.byte1(0xF7)
	a.modrmReg(2, r)
}

// Neg is NEG r (64-bit).
func (a *Asm) Neg(r Reg) {
	a.rex(true, 0, r, false)
	a.byte1(0xF7)
	a.modrmReg(3, r)
}

// Sahf is SAHF: SF, ZF, AF, PF, CF = AH bits 7, 6, 4, 2, 0.
func (a *Asm) Sahf() { a.byte1(0x9E) }

// AddAL1 is ADD AL, 1.
func (a *Asm) AddAL1() { a.byte1(0x04, 0x01) }

// AluRRN is op dst, src at size bytes (1, 2, 4 or 8). Byte operations
// take registers RAX-RBX only (AL-BL: no REX needed, none of AH-BH).
func (a *Asm) AluRRN(size uint8, op Alu, dst, src Reg) {
	switch size {
	case 8:
		a.AluRR(op, dst, src)
	case 4:
		a.AluRR32(op, dst, src)
	case 2:
		a.byte1(0x66)
		a.AluRR32(op, dst, src)
	default:
		a.rex(false, src, dst, false)
		a.byte1(byte(op) << 3)
		a.modrmReg(src, dst)
	}
}

// IncDecN is INC r (DEC when dec) at size bytes, as AluRRN.
func (a *Asm) IncDecN(size uint8, dec bool, r Reg) {
	ext := Reg(0)
	if dec {
		ext = 1
	}
	switch size {
	case 8, 4:
		a.IncDec(size == 8, dec, r)
	case 2:
		a.byte1(0x66)
		a.IncDec(false, dec, r)
	default:
		a.rex(false, 0, r, false)
		a.byte1(0xFE)
		a.modrmReg(ext, r)
	}
}

// Movsx sign-extends the low size (1, 2 or 4) bytes of src into dst (64
// bits): MOVSX or MOVSXD.
func (a *Asm) Movsx(size uint8, dst, src Reg) {
	a.rex(true, dst, src, false)
	switch size {
	case 1:
		a.byte1(0x0F, 0xBE)
	case 2:
		a.byte1(0x0F, 0xBF)
	default:
		a.byte1(0x63)
	}
	a.modrmReg(dst, src)
}

// AluRM32 is op r32, dword [base + disp].
func (a *Asm) AluRM32(op Alu, r, base Reg, disp int32) {
	a.rex(false, r, base, false)
	a.byte1(byte(op)<<3 | 0x03)
	a.modrmMem(r, base, disp)
}

// CmpM32Imm8 is CMP dword [base + disp], imm8 (sign-extended).
func (a *Asm) CmpM32Imm8(base Reg, disp int32, imm int8) {
	a.rex(false, 0, base, false)
	a.byte1(0x83)
	a.modrmMem(Reg(CMP), base, disp)
	a.byte1(byte(imm))
}

// JmpR is JMP r (an indirect jump to the address in r).
func (a *Asm) JmpR(r Reg) {
	a.rex(false, 0, r, false)
	a.byte1(0xFF)
	a.modrmReg(4, r)
}

// Cmov is CMOVcc dst, src (64-bit).
func (a *Asm) Cmov(c Cond, dst, src Reg) {
	a.rex(true, dst, src, false)
	a.byte1(0x0F, 0x40|byte(c))
	a.modrmReg(dst, src)
}
