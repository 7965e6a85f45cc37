//go:build linux && amd64

package interp

// Native side of the differential test: a batch of cases becomes one block
// of machine code in an RWX mapping at the same addresses the guest uses
// (see hv/interp/internal/native for why a trampoline and not ptrace).
//
//	entry:  save RSP, RBP, RBX, R12-R15 at dSave, FXSAVE64 at dSaveFX; jmp slot 0
//	slot i: FXRSTOR64 fx[i]; RSP = private stack; RAX = &in[i]; POPF in[i].flags;
//	        load RCX..R15, RSP, then RAX from in[i]
//	        <test bytes>                         (at c.addr)
//	        FXSAVE64 fx[i]
//	        store RAX, then RCX..R15, RSP to out[i] (MOVABS, MOV: no flags)
//	        RSP = private stack; PUSHF; POP RCX; store; CLD; jmp slot i+1
//	exit:   restore the saved registers and x87/SSE state; RET
//
// Only the test bytes run with guest register values; the rest only moves
// data, so flags reach the test bytes and come back untouched. The engine
// runs the same FXRSTOR64, test bytes and FXSAVE64 (dEngine).

import (
	"encoding/binary"

	"github.com/pvisor/pvisor/hv/interp/internal/native"
)

const dPrologueLen = 8 + 7 + 10 + 6 + 1 + 15*7 + 7

type dasm struct {
	b   []byte // the region
	pc  uint64 // current address
	org uint64 // address of b[0]
}

func (a *dasm) put(bs ...byte) {
	copy(a.b[a.pc-a.org:], bs)
	a.pc += uint64(len(bs))
}

func (a *dasm) u32(v uint64) { a.put(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
func (a *dasm) u64(v uint64) { a.u32(v); a.u32(v >> 32) }

// movRegMem: mov r64, [rax+d32] (load) or mov [rax+d32], r64 (store).
func (a *dasm) movRAX(r int, d uint32, store bool) {
	rex := byte(0x48)
	if r >= 8 {
		rex |= 4
	}
	op := byte(0x8b)
	if store {
		op = 0x89
	}
	a.put(rex, op, 0x80|byte(r&7)<<3)
	a.u32(uint64(d))
}

func (a *dasm) movabsRAX(v uint64) { a.put(0x48, 0xb8); a.u64(v) }

// fx emits FXSAVE64 (reg 0) or FXRSTOR64 (reg 1) of the image at target,
// RIP-relative: 8 bytes.
func (a *dasm) fx(reg byte, target uint64) { a.put(dFXInsn(reg, a.pc, target)...) }
func (a *dasm) jmp(to uint64)              { a.put(0xe9); a.u32(to - (a.pc + 4)) }

var dSaved = [...]int{4, 5, 3, 12, 13, 14, 15} // RSP, RBP, RBX, R12-R15

// dNative runs cases natively. Windows must already hold the initial memory.
type dNative struct {
	reg *native.Region
}

func (n *dNative) stubs() {
	a := &dasm{b: n.reg.Mem, org: dRegion, pc: dEntry}
	a.movabsRAX(dSave)
	for i, r := range dSaved {
		a.movRAX(r, uint32(i*8), true)
	}
	a.fx(0, dSaveFX)
	a.jmp(dCodeBase)
	a.pc = dExit
	a.movabsRAX(dSave)
	for i, r := range dSaved {
		a.movRAX(r, uint32(i*8), false)
	}
	a.fx(1, dSaveFX)
	a.put(0xc3)
}

func dCtxIn(i int) uint64  { return dCtxBase + uint64(i)*dCtxSlot }
func dCtxOut(i int) uint64 { return dCtxIn(i) + 256 }

// run executes the batch and fills out[i] (16 GPRs then RFLAGS).
func (n *dNative) run(cases []*dcase, out [][17]uint64) {
	mem := n.reg.Mem
	le := binary.LittleEndian
	for i, c := range cases {
		in := dCtxIn(i) - dRegion
		for r := 0; r < 16; r++ {
			le.PutUint64(mem[in+uint64(r)*8:], c.in[r])
		}
		le.PutUint64(mem[in+128:], c.flags|2)
		copy(mem[c.win-dRegion:], c.mem)
		copy(mem[c.fxa-dRegion:], c.fx)

		a := &dasm{b: mem, org: dRegion, pc: dCodeBase + uint64(i)*dSlot}
		a.fx(1, c.fxa)
		a.put(0x48, 0xc7, 0xc4) // mov rsp, imm32
		a.u32(dPrivTop)
		a.movabsRAX(dCtxIn(i))
		a.put(0xff, 0xb0) // push qword [rax+128]
		a.u32(128)
		a.put(0x9d) // popfq
		for r := 1; r < 16; r++ {
			a.movRAX(r, uint32(r*8), false)
		}
		a.movRAX(0, 0, false)
		if a.pc != c.addr {
			panic("differential: prologue length")
		}
		a.put(c.code[:c.n]...)
		a.fx(0, c.fxa)
		a.put(0x48, 0xa3) // movabs [out], rax
		a.u64(dCtxOut(i))
		a.movabsRAX(dCtxOut(i))
		for r := 1; r < 16; r++ {
			a.movRAX(r, uint32(r*8), true)
		}
		a.put(0x48, 0xc7, 0xc4)
		a.u32(dPrivTop)
		a.put(0x9c, 0x59) // pushfq; pop rcx
		a.movRAX(1, 128, true)
		a.put(0xfc) // cld
		if i == len(cases)-1 {
			a.jmp(dExit)
		} else {
			a.jmp(dCodeBase + uint64(i+1)*dSlot)
		}
	}
	native.Call(dEntry)
	for i := range cases {
		o := dCtxOut(i) - dRegion
		for r := 0; r < 17; r++ {
			out[i][r] = le.Uint64(mem[o+uint64(r)*8:])
		}
	}
}
