package interp

import (
	"runtime"

	"github.com/pvisor/pvisor/hv/cpu"
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
// What is translated (the rest of a block runs in the dispatch loop) is
// listed in docs/jit.md: integer moves and arithmetic of every operand
// size on registers, immediates and memory, MOVZX and MOVSX, LEA, shifts
// and rotates by constants, PUSH, POP, CALL rel, RET, JMP rel, and a
// block-ending Jcc. Memory goes through an inline copy of the soft TLB's
// fast path; flags come from the host's when the block produced them, and
// are folded from CPU.lf at run time otherwise (jitCommitFlags). LOCK, REP,
// SSE, x87 and system instructions are left to the dispatch loop.
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
	Chains        uint64 // entries that chained into further blocks (CPU.jitLinks counts the links)
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
	offFlags  = int32(unsafe.Offsetof(CPU{}.flags))

	offBudget  = int32(unsafe.Offsetof(CPU{}.budget))
	offRetired = int32(unsafe.Offsetof(CPU{}.retired))
	offEvents  = int32(unsafe.Offsetof(CPU{}.events))
	offKick    = int32(unsafe.Offsetof(CPU{}.kick))
	offChain   = int32(unsafe.Offsetof(CPU{}.jitChain))
	offLinks   = int32(unsafe.Offsetof(CPU{}.jitLinks))
	offBPhys   = int32(unsafe.Offsetof(blockRef{}.phys))
	offBGen    = int32(unsafe.Offsetof(blockRef{}.gen))
	offBStart  = int32(unsafe.Offsetof(blockRef{}.start))
	offBN      = int32(unsafe.Offsetof(blockRef{}.n))
	offBCode   = int32(unsafe.Offsetof(blockRef{}.code))

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
// entry, a scratch register and the host address of the operand; and one
// that nothing else touches, to keep a value across jitHostFlags.
const (
	hVA   = jit.RSI
	hEnt  = jit.R8
	hT    = jit.R9
	hHost = jit.R10
	hKeep = jit.R12
)

func offReg(r uint8) int32 { return offR + 8*int32(r) }

// jitKind is what the translator knows of an op.
type jitKind uint8

const (
	jkNone      jitKind = iota
	jkALURM             // op E,G: a = E, b = G, result to E
	jkALUReg            // op G,E: a = G, b = E, result to G
	jkALUAcc            // op eAX,imm
	jkALUImm            // op E,imm
	jkTestRM            // test E,G
	jkTestAcc           // test eAX,imm
	jkTestImm           // test E,imm
	jkMovRM             // mov E,G
	jkMovReg            // mov G,E
	jkMovImm            // mov E,imm
	jkMovRegImm         // mov r,imm
	jkLEA
	jkNOP
	jkJcc
	jkJmp
	jkInc
	jkDec
	jkNot
	jkNeg
	jkMovx // MOVZX, MOVSX, MOVSXD: jitMovx has the source size and signedness
	jkCmov
	jkSetcc
	jkBtImm    // BT, BTS, BTR, BTC with an immediate bit offset
	jkShift1   // group 2 by 1
	jkShiftImm // group 2 by an immediate
	jkPush     // push r64
	jkPop      // pop r64
	jkCall     // call rel
	jkRet      // ret
	jkJmpInd   // jmp Ev
	jkCallInd  // call Ev
)

var (
	jitOnce  sync.Once
	jitKinds [maxOps]jitKind
	jitALU   [maxOps]jit.Alu
	jitMovx  [maxOps]uint8 // source size, | 0x80 when sign-extending
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
				case "eAX,Iz", "AL,Ib":
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
		case "shift E,1":
			k = jkShift1
		case "shift E,Ib":
			k = jkShiftImm
		case "movzx Gv,Eb", "movzx Gv,Ew", "movsx Gv,Eb", "movsx Gv,Ew", "movsxd":
			k = jkMovx
			jitMovx[op] = map[string]uint8{"movzx Gv,Eb": 1, "movzx Gv,Ew": 2, "movsx Gv,Eb": 1 | 0x80, "movsx Gv,Ew": 2 | 0x80, "movsxd": 4 | 0x80}[name]
		case "bt* Ib":
			k = jkBtImm
		case "cmovcc":
			k = jkCmov
		case "setcc":
			k = jkSetcc
		case "not":
			k = jkNot
		case "neg":
			k = jkNeg
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
		case "jmp Ev":
			k = jkJmpInd
		case "call Ev":
			k = jkCallInd
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
// the instructions it ran. Translated code may have chained into further
// blocks (jitLeave), retiring the ones it finished: runJIT then returns
// the last block's start and length, whose c.pc it sets, for the dispatch
// loop to go on with.
func (c *CPU) runJIT(start, n int) (int, int) {
	b := &c.blocks[c.blkSlot]
	code := b.code
	if code == 0 {
		if b.hits < jitHot {
			b.hits++
			return start, n
		}
		code = c.translateBlock(start, n)
		b.code = code
	}
	if code == jitNone {
		c.jit.Stops[c.insts[start].op]++
		return start, n
	}
	c.jit.Runs++
	c.jitChain = jitChain{start: -1}
	k := int(jit.Enter(code, unsafe.Pointer(c)))
	if c.jitChain.start >= 0 {
		start, n = int(c.jitChain.start), int(c.jitChain.n)
		c.blkSlot = c.jitChain.slot
		c.jit.Chains++
	}
	c.pc = start + k
	if k < n {
		c.jit.Stops[c.insts[c.pc].op]++
	}
	return start, n
}

// jitChain is where translated code that chained leaves the last block it
// entered (jitLeave): start -1 when it did not chain.
type jitChain struct {
	start, n, slot int32
}

// flagState is what the translator knows, at a point of the block, of the
// host's flags against the guest's.
type flagState uint8

const (
	flDead  flagState = iota // unrelated
	flExact                  // every status flag is the guest's (after ADD, SUB, CMP, INC, DEC)
	flLogic                  // after AND, OR, XOR, TEST: ZF, SF, PF, CF (0) and OF (0) are the guest's; the guest's AF is 0, the host's undefined
)

// lazyKnown is what the translator knows, at a point of the block, of the
// lazy flags in CPU.lf: set by a translated instruction of the block.
type lazyKnown struct {
	known bool
	op    uint8 // lfNone (the flags are in CPU.flags), lfAdd, lfSub, lfRes, lfInc, lfDec
	size  uint8
	logic bool // lfRes with CF = OF = AF = 0 (AND, OR, XOR, TEST)
}

// jitBlockState is the translator's knowledge while it walks a block.
type jitBlockState struct {
	fl   flagState
	last lazyKnown
	pa   uint64 // the block's guest-physical address
	n    int    // its instructions
}

// jitStub is the way out of translated code before instruction k, whose
// start is rip bytes into the block: the dispatch loop runs k itself (a
// soft-TLB miss, a page crossing, a fault to raise).
type jitStub struct {
	fix  [12]jit.Fixup
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
	bs := jitBlockState{pa: c.blocks[c.blkSlot].phys, n: n}
	done := false
	for k < n && !done {
		in := &c.insts[start+k]
		if !c.jitInst(in, k, n, rip, &bs, &done) {
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
		if k == n {
			c.jitLeave(&bs, rip) // the block ended at its page's end or its length
		} else {
			a.MovImm32(hA, uint32(k))
			a.Ret()
		}
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
func (c *CPU) jitInst(in *Inst, k, n int, rip int64, bs *jitBlockState, done *bool) bool {
	a := &c.jit.asm
	fl := &bs.fl
	kind := jitKinds[in.op]
	w := in.size == 8
	if in.flags&(iLock|iRep|iRepne) != 0 {
		return false
	}
	switch kind {
	case jkNOP, jkJcc, jkJmp, jkCall, jkRet:
	case jkJmpInd, jkCallInd:
		if in.size != 8 || k != n-1 {
			return false
		}
	case jkShift1, jkShiftImm, jkPush, jkPop, jkLEA:
		if in.size != 4 && in.size != 8 {
			return false
		}
	default:
		if in.size != 1 && in.size != 2 && in.size != 4 && in.size != 8 {
			return false
		}
	}
	mem := in.flags&iMem != 0
	if mem && (in.base > 16 || in.index > 16 || in.seg > 2) {
		return false
	}
	rmSize := in.size
	if kind == jkMovx {
		rmSize = jitMovx[in.op] &^ 0x80
	}
	if !jitRegOK(in.reg, in.size) || !mem && !jitRegOK(in.rm, rmSize) {
		return false // not a register this operand size can name
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
				c.jitGet(in.size, hA, dst)
			}
			c.jitGet(in.size, hB, in.reg)
		case jkALUReg:
			dst = in.reg
			c.jitGet(in.size, hA, dst)
			if mem {
				c.jitTLB(in.size, true, false, st)
				a.LoadN(in.size, hB, hHost, 0)
			} else {
				c.jitGet(in.size, hB, in.rm)
			}
		case jkALUAcc, jkTestAcc:
			dst, useImm = 0, true
			c.jitGet(in.size, hA, 0)
		case jkALUImm, jkTestImm:
			dst, useImm = in.rm, true
			if mem {
				c.jitTLB(in.size, true, !cmp && !test, st)
				a.LoadN(in.size, hA, hHost, 0)
				toMem = true
			} else {
				c.jitGet(in.size, hA, dst)
			}
		}
		if useImm {
			c.jitImm(w, hB, imm)
		}
		hostOp := op
		if cmp {
			hostOp = jit.SUB // CMP's lazy result is a - b
		}
		a.MovRR(hR, hA)
		a.AluRRN(in.size, hostOp, hR, hB)
		// Plain MOVs from here on: the host flags survive.
		if op == jit.ADD || op == jit.SUB || op == jit.CMP {
			*fl = flExact
		} else {
			*fl = flLogic
		}
		if !cmp && !test {
			if toMem {
				a.StoreN(in.size, hHost, 0, hR)
			} else {
				c.jitPut(in.size, dst, hR)
			}
		}
		switch op {
		case jit.ADD:
			c.jitLazy(lfAdd, in.size, true)
			bs.last = lazyKnown{known: true, op: lfAdd, size: in.size}
		case jit.SUB, jit.CMP:
			c.jitLazy(lfSub, in.size, true)
			bs.last = lazyKnown{known: true, op: lfSub, size: in.size}
		default: // OR, AND, XOR, TEST
			c.jitLazy(lfRes, in.size, false)
			bs.last = lazyKnown{known: true, op: lfRes, size: in.size, logic: true}
		}
	case jkMovRM: // mov E,G
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, false, true, st)
			c.jitGet(in.size, hA, in.reg)
			a.StoreN(in.size, hHost, 0, hA)
			*fl = flDead
		} else {
			c.jitGet(in.size, hA, in.reg)
			c.jitPut(in.size, in.rm, hA)
		}
	case jkMovReg: // mov G,E
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, true, false, st)
			a.LoadN(in.size, hA, hHost, 0)
			*fl = flDead
		} else {
			c.jitGet(in.size, hA, in.rm)
		}
		c.jitPut(in.size, in.reg, hA)
	case jkMovImm: // mov E,I
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, false, true, st)
			c.jitImm(w, hA, in.imm&sizeMask[in.size])
			a.StoreN(in.size, hHost, 0, hA)
			*fl = flDead
		} else {
			c.jitImm(w, hA, in.imm&sizeMask[in.size])
			c.jitPut(in.size, in.rm, hA)
		}
	case jkMovRegImm:
		c.jitImm(w, hA, in.imm&sizeMask[in.size])
		c.jitPut(in.size, in.reg, hA)
	case jkMovx:
		src := jitMovx[in.op]
		size := src &^ 0x80
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(size, true, false, st)
			a.LoadN(size, hA, hHost, 0)
			*fl = flDead
		} else {
			c.jitGet(size, hA, in.rm)
		}
		if src&0x80 != 0 {
			a.Movsx(size, hA, hA)
		}
		c.jitPut(in.size, in.reg, hA)
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
			*fl = flDead
		}
	case jkInc, jkDec:
		// CF is kept: it is the host's CF of the last translated result,
		// so only that one can come before.
		c.jitHostFlags(bs, k, rip)
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
			c.jitGet(in.size, hA, in.rm)
		}
		a.MovRR(hR, hA)
		a.IncDecN(in.size, kind == jkDec, hR)
		if mem {
			a.StoreN(in.size, hHost, 0, hR)
			*fl = flDead // CF of the host is not the guest's
		} else {
			c.jitPut(in.size, in.rm, hR)
			a.Store(hCPU, offLFAux, hT)
			*fl = flExact // INC's AF is the host's too
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
		bs.last = lazyKnown{known: true, op: op, size: in.size}
	case jkCmov:
		// The source is read whatever the condition (and may fault);
		// it waits in hKeep while the flags are made the host's.
		if in.size == 1 {
			return false
		}
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, true, false, st)
			a.LoadN(in.size, hKeep, hHost, 0)
			*fl = flDead
		} else {
			c.jitGet(in.size, hKeep, in.rm)
		}
		c.jitHostFlags(bs, k, rip)
		c.jitGet(in.size, hA, in.reg)
		a.Cmov(jit.Cond(in.ext&0xf), hA, hKeep)
		c.jitPut(in.size, in.reg, hA) // a 32-bit CMOV zero-extends either way
	case jkSetcc:
		c.jitHostFlags(bs, k, rip)
		a.MovImm32(hA, 0)
		a.Setcc(jit.Cond(in.ext&0xf), hA)
		if mem {
			a.MovRR(hKeep, hA)
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(1, false, true, st)
			a.StoreN(1, hHost, 0, hKeep)
			*fl = flDead
		} else {
			c.jitPut(1, in.rm, hA)
		}
	case jkBtImm:
		if in.size == 1 {
			return false
		}
		off := uint8(in.imm) & (in.size*8 - 1)
		sub := in.reg & 7 // 4 BT, 5 BTS, 6 BTR, 7 BTC
		c.jitFoldFlags(bs, k, rip)
		if mem {
			st := c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, true, sub != 4, st)
			a.LoadN(in.size, hA, hHost, 0)
		} else {
			c.jitGet(in.size, hA, in.rm)
		}
		// CF = the bit; the other flags stay as folded.
		a.MovRR(hB, hA)
		if off > 0 {
			a.ShrRI(hB, off)
		}
		a.AluRI(jit.AND, hB, 1)
		a.Load(hR, hCPU, offFlags)
		a.AluRI(jit.AND, hR, ^int32(cpu.FlagCF))
		a.AluRR(jit.OR, hR, hB)
		a.Store(hCPU, offFlags, hR)
		if sub != 4 {
			a.MovImm64(hB, 1<<off)
			a.MovRR(hR, hA)
			switch sub {
			case 5:
				a.AluRR(jit.OR, hR, hB)
			case 6:
				a.Not(true, hB)
				a.AluRR(jit.AND, hR, hB)
			default:
				a.AluRR(jit.XOR, hR, hB)
			}
			if mem {
				a.StoreN(in.size, hHost, 0, hR)
			} else {
				c.jitPut(in.size, in.rm, hR)
			}
		}
		*fl = flDead
	case jkNot, jkNeg:
		var st *jitStub
		if mem {
			st = c.stub(k, rip)
			c.jitEA(in, ripEnd)
			c.jitTLB(in.size, true, true, st)
			a.LoadN(in.size, hB, hHost, 0)
		} else {
			c.jitGet(in.size, hB, in.rm)
		}
		if kind == jkNot {
			a.MovRR(hR, hB)
			a.Not(true, hR) // the store keeps the operand's bits
			if in.size == 4 {
				a.MovRR32(hR, hR)
			}
		} else { // NEG is 0 - a: the lazy record of a SUB
			a.MovImm32(hA, 0)
			a.MovImm32(hR, 0)
			a.AluRRN(in.size, jit.SUB, hR, hB)
		}
		if mem {
			a.StoreN(in.size, hHost, 0, hR)
		} else {
			c.jitPut(in.size, in.rm, hR)
		}
		if kind == jkNeg {
			c.jitLazy(lfSub, in.size, true)
			bs.last = lazyKnown{known: true, op: lfSub, size: in.size}
			*fl = flExact
		} else if mem {
			*fl = flDead // the lookup's
		}
	case jkShift1, jkShiftImm:
		if !c.jitShift(in, k, rip, ripEnd, bs) {
			return false
		}
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
		*fl = flDead
	case jkJcc:
		if k != n-1 {
			return false
		}
		c.jitHostFlags(bs, k, rip)
		// Both ways leave the block: RIP moves past the block, and by
		// the displacement when the jump is taken.
		taken := a.JccFwd(jit.Cond(in.ext & 0xf))
		c.jitAdvance(ripEnd)
		c.jitLeave(bs, ripEnd)
		a.Bind(taken)
		c.jitAdvance(ripEnd + int64(in.imm))
		c.jitLeave(bs, ripEnd+int64(in.imm))
		*done = true
	case jkJmp:
		if k != n-1 {
			return false
		}
		c.jitAdvance(ripEnd + int64(in.imm))
		c.jitLeave(bs, ripEnd+int64(in.imm))
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
	case jkJmpInd, jkCallInd:
		// The target, read from a register or memory, must be
		// canonical (#GP otherwise: the dispatch loop raises it).
		st := c.stub(k, rip)
		if mem {
			c.jitEA(in, ripEnd)
			c.jitTLB(8, true, false, st)
			a.Load(hKeep, hHost, 0)
		} else {
			a.Load(hKeep, hCPU, offReg(in.rm))
		}
		a.MovRR(hT, hKeep)
		a.ShlRI(hT, 16)
		a.SarRI(hT, 16)
		a.AluRR(jit.CMP, hT, hKeep)
		st.add(a.JccFwd(jit.CondNE))
		if kind == jkCallInd {
			a.Load(hVA, hCPU, offReg(regRSP))
			a.AluRI(jit.SUB, hVA, 8)
			c.jitTLB(8, false, true, st)
			a.Load(hA, hCPU, offRIP) // the return address: RIP after the call
			a.AluRI(jit.ADD, hA, int32(ripEnd))
			a.Store(hHost, 0, hA)
			a.Store(hCPU, offReg(regRSP), hVA)
		}
		a.Store(hCPU, offRIP, hKeep)
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

// jitShift emits a group-2 shift or rotate by a constant count, with the
// flags shift.go computes: SHL, SHR and SAR record a result with CF and OF
// (lazy, as setRes); ROL and ROR fold the flags into CPU.flags, which
// needs the host's flags to be the guest's (fl), and change CF and OF. RCL
// and RCR are left to the dispatch loop, and so are rotates of memory.
func (c *CPU) jitShift(in *Inst, k int, rip, ripEnd int64, bs *jitBlockState) bool {
	a := &c.jit.asm
	fl := &bs.fl
	w := in.size == 8
	bits := uint8(in.size) * 8
	count := uint8(1)
	if jitKinds[in.op] == jkShiftImm {
		count = uint8(in.imm)
	}
	count &= bits - 1 // 63 or 31, as the handler masks it
	op := in.reg & 7
	mem := in.flags&iMem != 0
	switch op {
	case shRCL, shRCR:
		return false
	case shROL, shROR:
		if mem {
			return false
		}
	}
	if count == 0 {
		// Nothing changes but a 32-bit register's upper half (the
		// handler writes the operand back). A memory operand is still
		// read and written, and may fault: the dispatch loop runs it.
		if mem {
			return false
		}
		c.jitLoad(w, hA, in.rm)
		a.Store(hCPU, offReg(in.rm), hA)
		return true
	}
	if op == shROL || op == shROR {
		c.jitFoldFlags(bs, k, rip)
		a.Load(hB, hCPU, offFlags)
	}
	if op == shROL || op == shROR {
		// The rotate; hB holds RFLAGS.
		c.jitLoad(w, hA, in.rm)
		a.MovRR(hR, hA)
		if op == shROL {
			a.Shift(jit.ROL, w, hR, count)
		} else {
			a.Shift(jit.ROR, w, hR, count)
		}
		a.Store(hCPU, offReg(in.rm), hR)
		if op == shROL { // CF = bit 0, OF = MSB ^ CF
			a.MovRR(hEnt, hR)
			a.AluRI(jit.AND, hEnt, 1)
			a.MovRR(hHost, hR)
			a.ShrRI(hHost, bits-1)
		} else { // CF = MSB, OF = MSB ^ the bit below it
			a.MovRR(hEnt, hR)
			a.ShrRI(hEnt, bits-1)
			a.MovRR(hHost, hR)
			a.ShrRI(hHost, bits-2)
			a.AluRI(jit.AND, hHost, 1)
		}
		a.AluRR(jit.XOR, hHost, hEnt)
		a.AluRI(jit.AND, hB, ^int32(cpu.FlagCF|cpu.FlagOF))
		a.AluRR(jit.OR, hB, hEnt)
		a.ShlRI(hHost, 11)
		a.AluRR(jit.OR, hB, hHost)
		a.Store(hCPU, offFlags, hB)
		a.Store8Imm(hCPU, offLFOp, lfNone)
		*fl = flDead
		bs.last = lazyKnown{known: true, op: lfNone}
		return true
	}
	var st *jitStub
	if mem {
		st = c.stub(k, rip)
		c.jitEA(in, ripEnd)
		c.jitTLB(in.size, true, true, st)
		a.LoadN(in.size, hA, hHost, 0)
	} else {
		c.jitLoad(w, hA, in.rm)
	}
	a.MovRR(hR, hA)
	switch op {
	case shSHL, shSAL:
		a.Shift(jit.SHL, w, hR, count)
	case shSHR:
		a.Shift(jit.SHR, w, hR, count)
	case shSAR:
		a.Shift(jit.SAR, w, hR, count)
	}
	if mem {
		a.StoreN(in.size, hHost, 0, hR)
	} else {
		a.Store(hCPU, offReg(in.rm), hR)
	}
	// CF in hB, OF in hT; a is zero-extended, so 64-bit shifts of it
	// are exact for 32-bit operands too.
	switch op {
	case shSHL, shSAL: // CF = a >> (bits-count), OF = MSB(r) ^ CF
		a.MovRR(hB, hA)
		a.ShrRI(hB, bits-count)
		a.AluRI(jit.AND, hB, 1)
		a.MovRR(hT, hR)
		a.ShrRI(hT, bits-1)
		a.AluRR(jit.XOR, hT, hB)
	case shSHR, shSAR: // CF = a >> (count-1); OF = MSB(a) for SHR, 0 for SAR
		a.MovRR(hB, hA)
		if count > 1 {
			a.ShrRI(hB, count-1)
		}
		a.AluRI(jit.AND, hB, 1)
		if op == shSHR {
			a.MovRR(hT, hA)
			a.ShrRI(hT, bits-1)
		} else {
			a.MovImm32(hT, 0)
		}
	}
	a.ShlRI(hT, 1) // auxOF
	a.AluRR(jit.OR, hT, hB)
	a.Store8Imm(hCPU, offLFOp, lfRes)
	a.Store8Imm(hCPU, offLFSize, in.size)
	a.Store(hCPU, offLFRes, hR)
	a.Store(hCPU, offLFAux, hT)
	*fl = flDead
	bs.last = lazyKnown{known: true, op: lfRes, size: in.size}
	return true
}

// jitHostFlags makes the host's flags the guest's before instruction k
// (rip bytes into the block) when they are not already: from what the
// block recorded if it can (jitRecreate), else from CPU.lf at run time
// (jitCommitFlags, then jitLoadFlags).
func (c *CPU) jitHostFlags(bs *jitBlockState, k int, rip int64) {
	if bs.fl != flDead {
		return
	}
	if bs.fl = c.jitRecreate(bs.last); bs.fl != flDead {
		return
	}
	if !bs.last.known || bs.last.op != lfNone {
		c.jitCommitFlags(c.stub(k, rip))
	}
	c.jitLoadFlags()
	bs.fl = flExact
	bs.last = lazyKnown{known: true, op: lfNone}
}

// jitFoldFlags emits commitFlags: afterwards CPU.flags holds every status
// flag and lf.op is lfNone. From the host's flags when they are the
// guest's (LAHF and SETO), else from CPU.lf at run time (jitCommitFlags).
// The host's flags are clobbered.
func (c *CPU) jitFoldFlags(bs *jitBlockState, k int, rip int64) {
	if bs.last.known && bs.last.op == lfNone {
		return
	}
	if bs.fl == flDead {
		bs.fl = c.jitRecreate(bs.last)
	}
	if bs.fl == flDead {
		c.jitCommitFlags(c.stub(k, rip))
	} else {
		a := &c.jit.asm
		a.MovImm32(hT, 0)
		a.Setcc(jit.CondO, hT)
		a.Lahf()
		a.Shift(jit.SHR, false, hA, 8)
		low := int32(cpu.FlagSF | cpu.FlagZF | cpu.FlagAF | cpu.FlagPF | cpu.FlagCF)
		if bs.fl == flLogic {
			low &^= cpu.FlagAF // the guest's AF after a logic op is 0
		}
		a.AluRI32(jit.AND, hA, low)
		a.ShlRI(hT, 11)
		a.AluRR(jit.OR, hA, hT)
		a.Load(hB, hCPU, offFlags)
		a.AluRI(jit.AND, hB, ^int32(cpu.FlagsArith))
		a.AluRR(jit.OR, hB, hA)
		a.Store(hCPU, offFlags, hB)
		a.Store8Imm(hCPU, offLFOp, lfNone)
	}
	bs.fl = flDead
	bs.last = lazyKnown{known: true, op: lfNone}
}

// jitRecreate puts the guest's flags back in the host's from the lazy
// flags a translated instruction of the block recorded, by doing the same
// host operation on the recorded operands: ADD or SUB of a and b give
// every flag (flExact), TEST of a logic op's result gives ZF, SF, PF and
// CF = OF = 0 (flLogic). Anything else stays flDead.
func (c *CPU) jitRecreate(last lazyKnown) flagState {
	if !last.known {
		return flDead
	}
	a := &c.jit.asm
	load := func(h jit.Reg, off int32) { a.LoadN(last.size, h, hCPU, off) }
	alu := func(op jit.Alu, d, s jit.Reg) { a.AluRRN(last.size, op, d, s) }
	switch {
	case last.op == lfAdd || last.op == lfSub:
		load(hA, offLFA)
		load(hB, offLFB)
		if last.op == lfAdd {
			alu(jit.ADD, hA, hB)
		} else {
			alu(jit.SUB, hA, hB)
		}
		return flExact
	case last.op == lfRes && last.logic:
		load(hA, offLFRes)
		alu(jit.AND, hA, hA)
		return flLogic
	}
	return flDead
}

// jitLeave ends a translated block that ran all its instructions and
// continues at guest RIP = block start + d: straight into that block's
// translation when it is on the same page, cached, current and translated,
// the budget covers it and no event waits (block chaining); otherwise back
// to the dispatch loop. Only a target on the block's own page is chained:
// its physical address is then the block's plus d, the page's mapping
// being the one this block was fetched through (a later change of it is
// seen once the TLB is flushed, which ends blocks). The check is made at
// run time on each pass, so nothing is patched and no link can go stale.
// When chaining, the code retires the block (CPU.retired, CPU.budget) and
// leaves the next block's start, length and slot in CPU.jitChain for the
// dispatch loop, since what it returns counts the last block only.
func (c *CPU) jitLeave(bs *jitBlockState, d int64) {
	a := &c.jit.asm
	n := bs.n
	off := int64(bs.pa&pageMask) + d
	if off < 0 || off >= pageSize {
		a.MovImm32(hA, uint32(n))
		a.Ret()
		return
	}
	tpa := bs.pa&^pageMask + uint64(off)
	slot := (tpa ^ tpa>>blkBits) & (blkSize - 1)
	b := &c.blocks[slot]
	gen := &c.mem.gen[tpa>>pageShift]
	var out [7]jit.Fixup
	a.MovImm64(hEnt, uint64(uintptr(unsafe.Pointer(b))))
	a.MovImm64(hA, tpa)
	a.AluRM(jit.CMP, hA, hEnt, offBPhys)
	out[0] = a.JccFwd(jit.CondNE)
	a.MovImm64(hT, uint64(uintptr(unsafe.Pointer(gen))))
	a.Load32(hT, hT, 0)
	a.AluRM32(jit.CMP, hT, hEnt, offBGen)
	out[1] = a.JccFwd(jit.CondNE)
	a.Load(hHost, hEnt, offBCode)
	a.AluRI(jit.CMP, hHost, jitNone)
	out[2] = a.JccFwd(jit.CondBE)
	a.CmpM32Imm8(hCPU, offEvents, 0)
	out[3] = a.JccFwd(jit.CondNE)
	a.CmpM32Imm8(hCPU, offKick, 0)
	out[4] = a.JccFwd(jit.CondNE)
	// The budget left after this block must cover the next one.
	a.Load(hA, hCPU, offBudget)
	a.AluRI(jit.SUB, hA, int32(n))
	out[5] = a.JccFwd(jit.CondB)
	a.Load32(hB, hEnt, offBN)
	a.AluRR(jit.CMP, hA, hB)
	out[6] = a.JccFwd(jit.CondB)
	a.Store(hCPU, offBudget, hA)
	a.AddMI(hCPU, offRetired, int32(n))
	a.AddMI(hCPU, offLinks, 1)
	a.Load32(hB, hEnt, offBStart)
	a.StoreN(4, hCPU, offChain, hB)
	a.Load32(hB, hEnt, offBN)
	a.StoreN(4, hCPU, offChain+4, hB)
	a.MovImm32(hB, uint32(slot))
	a.StoreN(4, hCPU, offChain+8, hB)
	a.JmpR(hHost)
	for _, f := range out {
		a.Bind(f)
	}
	a.MovImm32(hA, uint32(n))
	a.Ret()
}

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

// jitRegOK reports whether n names a register operand of size bytes: 0-15,
// and for bytes also 16-19 (AH, CH, DH, BH).
func jitRegOK(n, size uint8) bool { return n < 16 || size == 1 && n < 20 }

// jitRegOff is the offset in the CPU of register n's operand of size
// bytes: AH-BH are byte 1 of RAX-RBX (little-endian).
func jitRegOff(n, size uint8) int32 {
	if size == 1 && n >= 16 {
		return offReg(n-16) + 1
	}
	return offReg(n)
}

// jitGet loads register n's operand of size bytes into h, zero-extended.
func (c *CPU) jitGet(size uint8, h jit.Reg, n uint8) {
	c.jit.asm.LoadN(size, h, hCPU, jitRegOff(n, size))
}

// jitPut writes h's low size bytes to register n as setReg does: 1- and
// 2-byte writes merge, a 4-byte write zeroes the upper half.
func (c *CPU) jitPut(size uint8, n uint8, h jit.Reg) {
	a := &c.jit.asm
	switch size {
	case 8:
		a.Store(hCPU, offReg(n), h)
	case 4:
		a.MovRR32(h, h)
		a.Store(hCPU, offReg(n), h)
	default:
		a.StoreN(size, hCPU, jitRegOff(n, size), h)
	}
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

// jitCommitFlags emits commitFlags (flags.go): whatever recorded the lazy
// flags, at run time, CPU.flags gets every status flag and lf.op becomes
// lfNone. It computes them as getFlags does, from a, b, res and aux, so
// a record an interpreted ADC or SBB left is folded exactly too. Records
// of 1- or 2-byte operations, and kinds it does not know, leave through
// st. Clobbers every scratch register and the host flags.
func (c *CPU) jitCommitFlags(st *jitStub) {
	a := &c.jit.asm
	const (
		rOp, rSize, rRes, rF = jit.RAX, jit.RCX, jit.RDX, jit.R11
		rA, rB, rT1, rT2     = jit.R8, jit.R9, jit.R10, jit.RSI
	)
	a.LoadN(1, rOp, hCPU, offLFOp)
	a.AluRR32(jit.AND, rOp, rOp)
	none := a.JccFwd(jit.CondE)
	a.LoadN(1, rSize, hCPU, offLFSize)
	a.AluRI32(jit.CMP, rSize, 8)
	is8 := a.JccFwd(jit.CondE)
	a.AluRI32(jit.CMP, rSize, 4)
	st.add(a.JccFwd(jit.CondNE))
	var merge [2]jit.Fixup
	for i, w := range []bool{false, true} {
		if w {
			a.Bind(is8)
		}
		bits := uint8(32)
		if w {
			bits = 64
		}
		ld := func(h jit.Reg, off int32) {
			if w {
				a.Load(h, hCPU, off)
			} else {
				a.Load32(h, hCPU, off)
			}
		}
		// ZF, SF, PF from the result; LAHF keeps the op in AL.
		ld(rRes, offLFRes)
		if w {
			a.AluRR(jit.AND, rRes, rRes)
		} else {
			a.AluRR32(jit.AND, rRes, rRes)
		}
		a.Lahf()
		a.MovRR32(rF, rOp)
		a.Shift(jit.SHR, false, rF, 8)
		a.AluRI32(jit.AND, rF, int32(cpu.FlagZF|cpu.FlagSF|cpu.FlagPF))
		a.AluRI32(jit.AND, rOp, 0xff)
		ld(rA, offLFA)
		ld(rB, offLFB)
		// msb extracts bit bits-1 of h into bit 0.
		msb := func(h jit.Reg) {
			a.ShrRI(h, bits-1)
			a.AluRI32(jit.AND, h, 1)
		}
		// af puts (a^b^res) & 0x10 in rF.
		af := func() {
			a.MovRR(rT1, rA)
			a.AluRR(jit.XOR, rT1, rB)
			a.AluRR(jit.XOR, rT1, rRes)
			a.AluRI32(jit.AND, rT1, 0x10)
			a.AluRR(jit.OR, rF, rT1)
		}
		// ofAdd: ((a^res) & (b^res)) msb; ofSub: ((a^b) & (a^res)) msb.
		of := func(sub bool) {
			a.MovRR(rT1, rA)
			a.AluRR(jit.XOR, rT1, rRes)
			a.MovRR(rT2, rB)
			if sub {
				a.AluRR(jit.XOR, rT2, rA)
			} else {
				a.AluRR(jit.XOR, rT2, rRes)
			}
			a.AluRR(jit.AND, rT1, rT2)
			msb(rT1)
			a.ShlRI(rT1, 11)
			a.AluRR(jit.OR, rF, rT1)
		}
		cfAux := func() {
			a.Load(rT1, hCPU, offLFAux)
			a.AluRI32(jit.AND, rT1, 1)
			a.AluRR(jit.OR, rF, rT1)
		}
		var toMerge []jit.Fixup
		next := func() { toMerge = append(toMerge, a.JmpFwd()) }
		a.AluRI32(jit.CMP, rOp, lfAdd)
		notAdd := a.JccFwd(jit.CondNE)
		{ // CF = ((a&b) | ((a|b) & ^res)) msb
			a.MovRR(rT1, rA)
			a.AluRR(jit.AND, rT1, rB)
			a.MovRR(rT2, rA)
			a.AluRR(jit.OR, rT2, rB)
			a.MovRR(jit.RCX, rRes)
			a.Not(true, jit.RCX)
			a.AluRR(jit.AND, rT2, jit.RCX)
			a.AluRR(jit.OR, rT1, rT2)
			msb(rT1)
			a.AluRR(jit.OR, rF, rT1)
			of(false)
			af()
			next()
		}
		a.Bind(notAdd)
		a.AluRI32(jit.CMP, rOp, lfSub)
		isSub := a.JccFwd(jit.CondE)
		a.AluRI32(jit.CMP, rOp, lfSbb)
		notSub := a.JccFwd(jit.CondNE)
		a.Bind(isSub)
		{ // CF = ((^a&b) | ((^a|b) & res)) msb
			a.MovRR(rT1, rA)
			a.Not(true, rT1)
			a.MovRR(rT2, rT1)
			a.AluRR(jit.AND, rT1, rB)
			a.AluRR(jit.OR, rT2, rB)
			a.AluRR(jit.AND, rT2, rRes)
			a.AluRR(jit.OR, rT1, rT2)
			msb(rT1)
			a.AluRR(jit.OR, rF, rT1)
			of(true)
			af()
			next()
		}
		a.Bind(notSub)
		for _, kind := range []uint8{lfInc, lfDec} { // CF from aux, OF and AF computed
			a.AluRI32(jit.CMP, rOp, int32(kind))
			other := a.JccFwd(jit.CondNE)
			cfAux()
			of(kind == lfDec)
			af()
			next()
			a.Bind(other)
		}
		a.AluRI32(jit.CMP, rOp, lfRes)
		st.add(a.JccFwd(jit.CondNE))
		{ // CF, OF, AF from aux bits 0, 1, 2
			a.Load(rT1, hCPU, offLFAux)
			a.MovRR(rT2, rT1)
			a.AluRI32(jit.AND, rT2, auxCF)
			a.AluRR(jit.OR, rF, rT2)
			a.MovRR(rT2, rT1)
			a.AluRI32(jit.AND, rT2, auxOF)
			a.ShlRI(rT2, 10)
			a.AluRR(jit.OR, rF, rT2)
			a.AluRI32(jit.AND, rT1, auxAF)
			a.ShlRI(rT1, 2)
			a.AluRR(jit.OR, rF, rT1)
		}
		for _, f := range toMerge {
			a.Bind(f)
		}
		merge[i] = a.JmpFwd()
	}
	a.Bind(merge[0])
	a.Bind(merge[1])
	a.Load(rT1, hCPU, offFlags)
	a.AluRI(jit.AND, rT1, ^int32(cpu.FlagsArith))
	a.AluRR(jit.OR, rT1, rF)
	a.Store(hCPU, offFlags, rT1)
	a.Store8Imm(hCPU, offLFOp, lfNone)
	a.Bind(none)
}

// jitLoadFlags puts CPU.flags' status flags in the host's (lf.op must be
// lfNone): AH gets RFLAGS' low byte and AL 0x7f when OF is set, else 0;
// ADD AL, 1 then overflows exactly when OF is set, and SAHF loads SF, ZF,
// AF, PF and CF from AH and leaves OF alone. No stack, no POPF.
func (c *CPU) jitLoadFlags() {
	a := &c.jit.asm
	a.Load(hB, hCPU, offFlags)
	a.MovRR(hA, hB)
	a.ShrRI(hA, 11)
	a.AluRI32(jit.AND, hA, 1)
	a.Neg(hA)                    // 0 or all ones
	a.AluRI32(jit.AND, hA, 0x7f) // AL
	a.AluRI32(jit.AND, hB, 0xff)
	a.Shift(jit.SHL, false, hB, 8)
	a.AluRR32(jit.OR, hA, hB) // AH
	a.AddAL1()
	a.Sahf()
}
