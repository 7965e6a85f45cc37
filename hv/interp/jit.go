package interp

import (
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/pvisor/pvisor/hv/jit"
)

// The binary translator (Config.JIT): hot decoded blocks are translated
// to host code (hv/jit) that runs the block, or its longest prefix the
// translator handles, straight on the CPU's state, and hands the rest to
// the dispatch loop.
//
// What translated code may touch, and why state stays exact:
//   - Translated code reads and writes the guest registers in CPU.r, the
//     lazy flags in CPU.lf and RIP in CPU.rip, at the instruction that
//     reads or writes them, exactly as the handlers do: after any
//     translated instruction the CPU's state is what the interpreter
//     would hold there. So leaving translated code at any instruction
//     boundary needs no state reconstruction.
//   - It returns the number k of instructions it ran (all of the block's
//     n, or the prefix before the first one it does not handle), with
//     CPU.rip at instruction k; the dispatch loop retires them and runs
//     instructions k..n-1 itself. Retire counts, the budget and the TSC
//     are therefore the dispatch loop's, and exact.
//   - RIP is updated by adding the instruction lengths (and a jump's
//     displacement) to CPU.rip, never by storing an address: a block is
//     cached by physical address and may run at several virtual ones.
//   - A translated block is entered only when the whole block would run
//     (no single-step, no trace, the budget covers it), and only from the
//     block's first instruction.
//   - A translation belongs to its blockRef: a block decoded anew (its
//     page's code changed, the slot was taken by another block, the
//     instruction store was flushed) starts with no translation.
//
// What is translated (the rest of a block runs in the dispatch loop):
// MOV between registers and of immediates, ADD, OR, AND, SUB, XOR, CMP and
// TEST of 32- and 64-bit registers and immediates, LEA without RIP-relative
// or 32-bit addressing, NOP, and a block-ending Jcc or JMP rel. A Jcc is
// translated only when the flags it tests were set by a translated
// instruction of the same block: the host's flags after the same host
// operation are the guest's (for the conditions Jcc tests: CF, ZF, SF, OF,
// PF). Memory operands, LOCK, and every other instruction are left to the
// dispatch loop for now.
//
// Each vCPU has its own Arena, so translation never races with code
// running in it: a vCPU translates between blocks, on its own goroutine.

// jitHot is how many times a block runs in the dispatch loop before it is
// translated: boot code that runs once is never translated.
const jitHot = 8

// jitNone marks a block the translator cannot start (its first
// instruction is not handled).
const jitNone = 1

// jitArenaSize is each vCPU's reservation of address space for code. It
// is only address space until pages are used; when it fills up every
// translation is dropped and translation starts again.
const jitArenaSize = 32 << 20

type jitState struct {
	arena *jit.Arena
	page  int // the page being filled, -1 for none
	used  int // bytes used in it
	asm   jit.Asm
	stubs []jitStub

	Blocks, Insts uint64 // translated blocks and instructions, for tests
	Runs          uint64 // entries into translated code
	// Stops counts, by op, the runs of hot blocks that left translated
	// code before the block's end or could not enter it: what to
	// translate next.
	Stops [maxOps]uint32
}

// Host registers of translated code: the CPU pointer and three scratch
// registers.
const (
	hCPU = jit.RDI
	hA   = jit.RAX
	hB   = jit.RCX
	hR   = jit.RDX
)

// Offsets of the state translated code touches.
var (
	offR      = int32(unsafe.Offsetof(CPU{}.r))
	offRIP    = int32(unsafe.Offsetof(CPU{}.rip))
	offLF     = int32(unsafe.Offsetof(CPU{}.lf))
	offLFOp   = offLF + int32(unsafe.Offsetof(lazyFlags{}.op))
	offLFSize = offLF + int32(unsafe.Offsetof(lazyFlags{}.size))
	offLFA    = offLF + int32(unsafe.Offsetof(lazyFlags{}.a))
	offLFB    = offLF + int32(unsafe.Offsetof(lazyFlags{}.b))
	offLFRes  = offLF + int32(unsafe.Offsetof(lazyFlags{}.res))
	offLFAux  = offLF + int32(unsafe.Offsetof(lazyFlags{}.aux))

	offTLB     = int32(unsafe.Offsetof(CPU{}.tlb))
	offTLBKey  = int32(unsafe.Offsetof(CPU{}.tlbKey))
	offRdMask  = int32(unsafe.Offsetof(CPU{}.rdMask))
	offWrMask  = int32(unsafe.Offsetof(CPU{}.wrMask))
	offRAM     = int32(unsafe.Offsetof(CPU{}.ram)) // the slice's data pointer
	offRAMTop  = int32(unsafe.Offsetof(CPU{}.jitRAMTop))
	offSegBase = int32(unsafe.Offsetof(CPU{}.segBase))
	tlbEntrySz = int32(unsafe.Sizeof(tlbEntry{}))
	offTag     = int32(unsafe.Offsetof(tlbEntry{}.tag))
	offPhys    = int32(unsafe.Offsetof(tlbEntry{}.phys))
	offPerm    = int32(unsafe.Offsetof(tlbEntry{}.perm))
)

// More host registers, for memory operands: the guest address, the TLB
// entry, a scratch register and the host address of the operand.
const (
	hVA   = jit.RSI
	hEnt  = jit.R8
	hT    = jit.R9
	hHost = jit.R10
)

func offReg(r uint8) int32 { return offR + 8*int32(r) }

// jitKind is what the translator knows of an op.
type jitKind uint8

const (
	jkNone   jitKind = iota
	jkALURM          // op E,G: a = E, b = G, result to E
	jkALUReg         // op G,E: a = G, b = E, result to G
	jkALUAcc         // op eAX,imm
	jkALUImm         // op E,imm
	jkTestRM         // test E,G
	jkTestAcc        // test eAX,imm
	jkTestImm        // test E,imm
	jkMovRM          // mov E,G
	jkMovReg         // mov G,E
	jkMovImm         // mov E,imm
	jkMovRegImm      // mov r,imm
	jkLEA
	jkNOP
	jkJcc
	jkJmp
	jkInc
	jkDec
	jkPush  // push r64
	jkPop   // pop r64
	jkCall  // call rel
	jkRet   // ret
)

var (
	jitOnce  sync.Once
	jitKinds [maxOps]jitKind
	jitALU   [maxOps]jit.Alu
)

// jitClassify fills jitKinds from the op names, once every op is defined.
func jitClassify() {
	alu := map[string]jit.Alu{"add": jit.ADD, "or": jit.OR, "and": jit.AND, "sub": jit.SUB, "xor": jit.XOR, "cmp": jit.CMP}
	for op := 1; op < nOps; op++ {
		g := op
		if fastGeneric[op] != 0 {
			g = int(fastGeneric[op])
		}
		name := opNames[g]
		k := jkNone
		if verb, form, ok := strings.Cut(name, " "); ok {
			if a, isALU := alu[verb]; isALU {
				jitALU[op] = a
				switch form {
				case "Ev,Gv":
					k = jkALURM
				case "Gv,Ev":
					k = jkALUReg
				case "eAX,Iz":
					k = jkALUAcc
				case "E,I":
					k = jkALUImm
				}
			}
		}
		switch name {
		case "test E,G":
			k = jkTestRM
		case "test eAX,I":
			k = jkTestAcc
		case "test E,I":
			k = jkTestImm
		case "mov E,G":
			k = jkMovRM
		case "mov G,E":
			k = jkMovReg
		case "mov E,I":
			k = jkMovImm
		case "mov r,I":
			k = jkMovRegImm
		case "lea":
			k = jkLEA
		case "nop":
			k = jkNOP
		case "jcc":
			k = jkJcc
		case "jmp rel":
			k = jkJmp
		case "inc":
			k = jkInc
		case "dec":
			k = jkDec
		case "push r":
			k = jkPush
		case "pop r":
			k = jkPop
		case "call rel":
			k = jkCall
		case "ret":
			k = jkRet
		}
		jitKinds[op] = k
	}
	for _, op := range jccOps {
		jitKinds[op] = jkJcc
	}
}

// enableJIT turns the translator on for c, if the host can run it.
func (c *CPU) enableJIT() {
	if !jit.Available {
		return
	}
	jitOnce.Do(jitClassify)
	c.jit = &jitState{page: -1}
	c.jitRAMTop = uint64(len(c.ram)) - pageSize
}

// runJIT runs the translation of the block at c.pc (the whole block is to
// run), translating it first if it has become hot, and moves c.pc past
// the instructions it ran.
func (c *CPU) runJIT(n int) {
	b := &c.blocks[c.blkSlot]
	code := b.code
	if code == 0 {
		if b.hits < jitHot {
			b.hits++
			return
		}
		code = c.translateBlock(c.pc, n)
		b.code = code
	}
	if code == jitNone {
		c.jit.Stops[c.insts[c.pc].op]++
		return
	}
	c.jit.Runs++
	k := int(jit.Enter(code, unsafe.Pointer(c)))
	c.pc += k
	if k < n {
		c.jit.Stops[c.insts[c.pc].op]++
	}
}

// jitStub is the way out of translated code before instruction k, whose
// start is rip bytes into the block: the dispatch loop runs k itself (a
// soft-TLB miss, a page crossing, a fault to raise).
type jitStub struct {
	fix  [6]jit.Fixup
	nfix int
	k    int
	rip  int64
}

func (st *jitStub) add(f jit.Fixup) {
	st.fix[st.nfix] = f
	st.nfix++
}

// translateBlock translates insts[start:start+n] and returns the code's
// address, or jitNone.
func (c *CPU) translateBlock(start, n int) uintptr {
	j := c.jit
	a := &j.asm
	a.B = a.B[:0]
	j.stubs = j.stubs[:0]
	k, rip := 0, int64(0) // instructions translated, bytes of them
	flagsLive := false    // the host flags are the guest's last result
	done := false
	for k < n && !done {
		in := &c.insts[start+k]
		if !c.jitInst(in, k, n, rip, &flagsLive, &done) {
			break
		}
		rip += int64(in.len)
		k++
	}
	if k == 0 {
		return jitNone
	}
	if !done {
		c.jitAdvance(rip)
		a.MovImm32(hA, uint32(k))
		a.Ret()
	}
	for i := range j.stubs {
		st := &j.stubs[i]
		for _, f := range st.fix[:st.nfix] {
			a.Bind(f)
		}
		if st.rip != 0 {
			c.jitAdvance(st.rip)
		}
		a.MovImm32(hA, uint32(st.k))
		a.Ret()
	}
	code, err := c.jitInstall(a.B)
	if err != nil {
		return jitNone
	}
	j.Blocks++
	j.Insts += uint64(k)
	return code
}

// stub returns a new way out before instruction k.
func (c *CPU) stub(k int, rip int64) *jitStub {
	j := c.jit
	j.stubs = append(j.stubs, jitStub{k: k, rip: rip})
	return &j.stubs[len(j.stubs)-1]
}

// jitInst emits instruction in, the k-th of n, rip bytes into the block,
// and reports whether it could; done is set when it ended the block.
func (c *CPU) jitInst(in *Inst, k, n int, rip int64, flagsLive, done *bool) bool {
	a := &c.jit.asm
	kind := jitKinds[in.op]
	w := in.size == 8
	if in.flags&(iLock|iRep|iRepne) != 0 {
		return false
	}
	switch kind {
	case jkNOP, jkJcc, jkJmp, jkCall, jkRet:
	default:
		if in.size != 4 && in.size != 8 {
			return false
		}
	}
	mem := in.flags&iMem != 0
	if mem && (in.base > 16 || in.index > 16 || in.seg > 2) {
		return false
	}
	if in.reg >= 16 || !mem && in.rm >= 16 {
		return false // AH-BH, or not a register at all
	}
	ripEnd := rip + int64(in.len)
	switch kind {
	case jkALURM, jkALUReg, jkALUAcc, jkALUImm, jkTestRM, jkTestAcc, jkTestImm:
		op := jitALU[in.op]
		if kind >= jkTestRM {
			op = jit.AND
		}
		test := kind >= jkTestRM
		cmp := op == jit.CMP
		var st *jitStub
		if mem {
			st = c.stub(k, rip)
			c.jitEA(in, ripEnd)
		}
		// a in hA, b in hB; the result goes to dst (register) or memory.
		imm, useImm := in.imm&sizeMask[in.size], false
		var dst uint8
		toMem := false
		switch kind {
		case jkALURM, jkTestRM:
			dst = in.rm
			if mem {
				c.jitTLB(in.size, true, !cmp && !test, st)
				a.LoadN(in.size, hA, hHost, 0)
				toMem = true
			} else {
				c.jitLoad(w, hA, dst)
			}
			c.jitLoad(w, hB, in.reg)
		case jkALUReg:
			dst = in.reg
			c.jitLoad(w, hA, dst)
			if mem {
				c.jitTLB(in.size, true, false, st)
				a.LoadN(in.size, hB, hHost, 0)
			} else {
				c.jitLoad(w, hB, in.rm)
			}
		case jkALUAcc, jkTestAcc:
			dst, useImm = 0, true
			c.jitLoad(w, hA, 0)
		case jkALUImm, jkTestImm:
			dst, useImm = in.rm, true
			if mem {
				c.jitTLB(in.size, true, !cmp && !test, st)
				a.LoadN(in.size, hA, hHost, 0)
				toMem = true
			} else {
				c.jitLoad(w, hA, dst)
			}
		}
		if useImm {
			c.jitImm(w, hB, imm)
		}
		hostOp := op
		if cmp {
			hostOp = jit.SUB // CMP's lazy result is a - b
		}
		if w {
			a.MovRR(hR, hA)
			a.AluRR(hostOp, hR, hB)
		} else {
			a.MovRR32(hR, hA)
			a.AluRR32(hostOp, hR, hB)
		}
		*flagsLive = true // plain MOVs from here on: the host flags survive
		if !cmp && !test {
			if toMem {
				a.StoreN(in.size, hHost, 0, hR)
			} else {
				a.Store(hCPU, offReg(dst), hR)
			}
		}
		switch op {
		case jit.ADD:
			c.jitLazy(lfAdd, in.size, true)
		case jit.SUB, jit.CMP:
			c.jitLazy(lfSub, in.size, true)
		default: // OR, AND, XOR, TEST
			c.jitLazy(lfRes, in.size, false)
		}
	case jkMovRM: // mov E,G
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, false, true, st)
			c.jitLoad(w, hA, in.reg)
			a.StoreN(in.size, hHost, 0, hA)
			*flagsLive = false
		} else {
			c.jitLoad(w, hA, in.reg)
			a.Store(hCPU, offReg(in.rm), hA)
		}
	case jkMovReg: // mov G,E
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, true, false, st)
			a.LoadN(in.size, hA, hHost, 0)
			*flagsLive = false
		} else {
			c.jitLoad(w, hA, in.rm)
		}
		a.Store(hCPU, offReg(in.reg), hA)
	case jkMovImm: // mov E,I
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, false, true, st)
			c.jitImm(w, hA, in.imm&sizeMask[in.size])
			a.StoreN(in.size, hHost, 0, hA)
			*flagsLive = false
		} else {
			c.jitImm(w, hA, in.imm&sizeMask[in.size])
			a.Store(hCPU, offReg(in.rm), hA)
		}
	case jkMovRegImm:
		c.jitImm(w, hA, in.imm&sizeMask[in.size])
		a.Store(hCPU, offReg(in.reg), hA)
	case jkLEA:
		if in.flags&iAddr32 != 0 {
			return false
		}
		// LEA computes the effective address without the segment base.
		c.jitAddr(in, ripEnd, hR)
		if !w {
			a.MovRR32(hR, hR)
		}
		a.Store(hCPU, offReg(in.reg), hR)
		if in.flags&iRIPRel != 0 {
			*flagsLive = false
		}
	case jkInc, jkDec:
		// CF is kept: it is the host's CF of the last translated result,
		// so only that one can come before.
		if !*flagsLive {
			return false
		}
		a.MovImm32(hT, 0)
		a.Setcc(jit.CondB, hT)
		var st *jitStub
		if mem {
			st = c.stub(k, rip)
			// The address and the lookup clobber the host flags: CF is
			// in hT already.
			a.Store(hCPU, offLFAux, hT)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, true, true, st)
			a.LoadN(in.size, hA, hHost, 0)
			// Put CF back for nothing: INC and DEC set every flag they
			// define from their own result.
		} else {
			c.jitLoad(w, hA, in.rm)
		}
		if w {
			a.MovRR(hR, hA)
		} else {
			a.MovRR32(hR, hA)
		}
		a.IncDec(w, kind == jkDec, hR)
		if mem {
			a.StoreN(in.size, hHost, 0, hR)
			*flagsLive = false // CF of the host is not the guest's
		} else {
			a.Store(hCPU, offReg(in.rm), hR)
			a.Store(hCPU, offLFAux, hT)
		}
		op := uint8(lfInc)
		if kind == jkDec {
			op = lfDec
		}
		a.Store8Imm(hCPU, offLFOp, op)
		a.Store8Imm(hCPU, offLFSize, in.size)
		a.Store(hCPU, offLFA, hA)
		a.StoreImm(hCPU, offLFB, 1)
		a.Store(hCPU, offLFRes, hR)
	case jkNOP:
	case jkPush, jkPop:
		if in.size != 8 {
			return false
		}
		st := c.stub(k, rip)
		a.Load(hVA, hCPU, offReg(regRSP))
		if kind == jkPush {
			a.AluRI(jit.SUB, hVA, 8)
			c.jitTLB(8, false, true, st)
			a.Load(hA, hCPU, offReg(in.reg))
			a.Store(hHost, 0, hA)
			a.Store(hCPU, offReg(regRSP), hVA)
		} else {
			c.jitTLB(8, true, false, st)
			a.Load(hA, hHost, 0)
			a.AluRI(jit.ADD, hVA, 8)
			a.Store(hCPU, offReg(regRSP), hVA)
			a.Store(hCPU, offReg(in.reg), hA)
		}
		*flagsLive = false
	case jkJcc:
		if !*flagsLive || k != n-1 {
			return false
		}
		// Both ways leave the block: RIP moves past the block, and by
		// the displacement when the jump is taken.
		taken := a.JccFwd(jit.Cond(in.ext & 0xf))
		c.jitAdvance(ripEnd)
		a.MovImm32(hA, uint32(n))
		a.Ret()
		a.Bind(taken)
		c.jitAdvance(ripEnd + int64(in.imm))
		a.MovImm32(hA, uint32(n))
		a.Ret()
		*done = true
	case jkJmp:
		if k != n-1 {
			return false
		}
		c.jitAdvance(ripEnd + int64(in.imm))
		a.MovImm32(hA, uint32(n))
		a.Ret()
		*done = true
	case jkCall:
		if k != n-1 || ripEnd != int64(int32(ripEnd)) {
			return false
		}
		st := c.stub(k, rip)
		a.Load(hVA, hCPU, offReg(regRSP))
		a.AluRI(jit.SUB, hVA, 8)
		c.jitTLB(8, false, true, st)
		a.Load(hA, hCPU, offRIP) // the return address: RIP after the call
		a.AluRI(jit.ADD, hA, int32(ripEnd))
		a.Store(hHost, 0, hA)
		a.Store(hCPU, offReg(regRSP), hVA)
		c.jitAdvance(ripEnd + int64(in.imm))
		a.MovImm32(hA, uint32(n))
		a.Ret()
		*done = true
	case jkRet:
		if k != n-1 {
			return false
		}
		st := c.stub(k, rip)
		a.Load(hVA, hCPU, offReg(regRSP))
		c.jitTLB(8, true, false, st)
		a.Load(hA, hHost, 0)
		// A non-canonical return address raises #GP: the dispatch loop
		// runs the RET again and raises it.
		a.MovRR(hT, hA)
		a.ShlRI(hT, 16)
		a.SarRI(hT, 16)
		a.AluRR(jit.CMP, hT, hA)
		st.add(a.JccFwd(jit.CondNE))
		a.AluRI(jit.ADD, hVA, 8)
		a.Store(hCPU, offReg(regRSP), hVA)
		a.Store(hCPU, offRIP, hA)
		a.MovImm32(hA, uint32(n))
		a.Ret()
		*done = true
	default:
		return false
	}
	return true
}

const regRSP = 4

// jitAddr computes in's effective address, without the segment base, into
// host register h (clobbering hT).
func (c *CPU) jitAddr(in *Inst, ripEnd int64, h jit.Reg) {
	a := &c.jit.asm
	a.Load(h, hCPU, offReg(in.base)) // r[16] is zero: no base
	a.Load(hT, hCPU, offReg(in.index))
	a.Lea(h, h, hT, in.scale, in.disp)
	if in.flags&iRIPRel != 0 {
		// RIP-relative: from the end of the instruction.
		a.AluRM(jit.ADD, h, hCPU, offRIP)
		a.AluRI(jit.ADD, h, int32(ripEnd))
	}
	if in.flags&iAddr32 != 0 {
		a.MovRR32(h, h)
	}
}

// jitEA computes in's linear address (with the segment base) into hVA.
func (c *CPU) jitEA(in *Inst, ripEnd int64) {
	c.jitAddr(in, ripEnd, hVA)
	if in.seg != 0 {
		c.jit.asm.AluRM(jit.ADD, hVA, hCPU, offSegBase+8*int32(in.seg))
	}
}

// jitTLB looks the address in hVA up in the soft TLB for an access of size
// bytes that reads, writes or both, exactly as the handlers' fast paths do
// (access.go): a tag hit, the permissions, within the page, and leaves the
// operand's host address in hHost. Anything else leaves through st. The
// host flags are clobbered.
func (c *CPU) jitTLB(size uint8, read, write bool, st *jitStub) {
	a := &c.jit.asm
	a.MovRR(hEnt, hVA)
	a.ShrRI(hEnt, pageShift)
	a.AluRI32(jit.AND, hEnt, tlbMask)
	a.ImulRRI(hEnt, hEnt, tlbEntrySz)
	a.Lea(hEnt, hCPU, hEnt, 0, offTLB)
	a.MovRR(hT, hVA)
	a.AluRI(jit.AND, hT, ^pageMask)
	a.AluRM(jit.XOR, hT, hCPU, offTLBKey)
	a.AluRM(jit.CMP, hT, hEnt, offTag)
	st.add(a.JccFwd(jit.CondNE))
	if read {
		a.LoadN(1, hT, hCPU, offRdMask)
		a.TestM8(hEnt, offPerm, hT)
		st.add(a.JccFwd(jit.CondE))
	}
	if write {
		a.LoadN(1, hT, hCPU, offWrMask)
		a.TestM8(hEnt, offPerm, hT)
		st.add(a.JccFwd(jit.CondE))
	}
	a.MovRR32(hT, hVA)
	a.AluRI32(jit.AND, hT, pageMask)
	if size > 1 {
		a.AluRI32(jit.CMP, hT, int32(pageSize-int(size)))
		st.add(a.JccFwd(jit.CondA))
	}
	// A TLB entry is always backed RAM; the host address is checked to
	// lie inside guest RAM all the same.
	a.Load(hHost, hEnt, offPhys)
	a.AluRM(jit.CMP, hHost, hCPU, offRAMTop)
	st.add(a.JccFwd(jit.CondA))
	a.AluRR(jit.OR, hHost, hT)
	a.AluRM(jit.ADD, hHost, hCPU, offRAM)
}

// jitLoad loads guest register r into host register h, zero-extended from
// 32 bits unless w.
func (c *CPU) jitLoad(w bool, h jit.Reg, r uint8) {
	if w {
		c.jit.asm.Load(h, hCPU, offReg(r))
	} else {
		c.jit.asm.Load32(h, hCPU, offReg(r))
	}
}

// jitImm puts v in host register h.
func (c *CPU) jitImm(w bool, h jit.Reg, v uint64) {
	if !w || v <= 0xffffffff {
		c.jit.asm.MovImm32(h, uint32(v))
	} else {
		c.jit.asm.MovImm64(h, v)
	}
}

// jitLazy records the lazy flags of the operation just emitted: a, b and
// the result are in hA, hB and hR (a and b only when ab).
func (c *CPU) jitLazy(op uint8, size uint8, ab bool) {
	a := &c.jit.asm
	a.Store8Imm(hCPU, offLFOp, op)
	a.Store8Imm(hCPU, offLFSize, size)
	if ab {
		a.Store(hCPU, offLFA, hA)
		a.Store(hCPU, offLFB, hB)
	} else {
		a.MovImm32(hA, 0)
		a.Store(hCPU, offLFAux, hA)
	}
	a.Store(hCPU, offLFRes, hR)
}

// jitAdvance adds d to CPU.rip. It clobbers the host flags: it is emitted
// after the last use of them.
func (c *CPU) jitAdvance(d int64) {
	a := &c.jit.asm
	if d == int64(int32(d)) {
		a.AddMI(hCPU, offRIP, int32(d))
		return
	}
	a.MovImm64(hA, uint64(d))
	a.AluRM(jit.ADD, hA, hCPU, offRIP)
	a.Store(hCPU, offRIP, hA)
}

// jitInstall copies code into the vCPU's Arena, sealed, and returns its
// address. When the Arena is full, every translation is dropped first.
func (c *CPU) jitInstall(code []byte) (uintptr, error) {
	j := c.jit
	if j.arena == nil {
		ar, err := jit.NewArena(jitArenaSize)
		if err != nil {
			return 0, err
		}
		j.arena = ar
		runtime.AddCleanup(c, func(a *jit.Arena) { a.Close() }, ar)
	}
	if j.page >= 0 && j.used+len(code) <= jit.PageSize {
		b, err := j.arena.Unseal(j.page, 1)
		if err != nil {
			return 0, err
		}
		copy(b[j.used:], code)
		if err := j.arena.Seal(j.page, 1); err != nil {
			return 0, err
		}
		addr := j.arena.Addr(j.page, j.used)
		j.used += len(code)
		return addr, nil
	}
	pages := (len(code) + jit.PageSize - 1) / jit.PageSize
	first, b, err := j.arena.Alloc(pages)
	if err == jit.ErrArenaFull {
		c.jitFlush()
		first, b, err = j.arena.Alloc(pages)
	}
	if err != nil {
		return 0, err
	}
	copy(b, code)
	if err := j.arena.Seal(first, pages); err != nil {
		return 0, err
	}
	j.page, j.used = first+pages-1, len(code)-(pages-1)*jit.PageSize
	if pages > 1 {
		j.page = -1 // do not share the tail of a multi-page block
	}
	return j.arena.Addr(first, 0), nil
}

// jitFlush drops every translation: the blocks forget their code and the
// Arena is emptied. Called between blocks only.
func (c *CPU) jitFlush() {
	j := c.jit
	if j == nil {
		return
	}
	for i := range c.blocks {
		c.blocks[i].code = 0
		c.blocks[i].hits = 0
	}
	if j.arena != nil {
		j.arena.Reset()
	}
	j.page, j.used = -1, 0
}
