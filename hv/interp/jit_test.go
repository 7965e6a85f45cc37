package interp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/jit"
)

// jitRegs are the registers random programs compute in (RSP holds the
// stack, R14 and R15 count loops).
var jitRegs64 = []string{"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13"}
var jitRegs32 = []string{"eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d"}

var jitRegs16 = []string{"ax", "bx", "cx", "dx", "si", "di", "bp", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w"}
var jitRegs8 = []string{"al", "bl", "cl", "dl", "sil", "dil", "bpl", "r8b", "r9b", "r10b", "r11b", "r12b", "r13b"}
var jitRegs8H = []string{"al", "bl", "cl", "dl", "ah", "bh", "ch", "dh"}

var jitConds = []string{"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"}

// jitProgram is a random loop body of instructions the translator handles
// and of some it leaves to the dispatch loop (memory operands, INC, ADC,
// shifts, CMOV), with forward conditional jumps that end blocks.
func jitProgram(r *rand.Rand, n int) string {
	var b strings.Builder
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	alu := []string{"add", "sub", "and", "or", "xor", "cmp"}
	imm := func() int64 {
		switch r.IntN(3) {
		case 0:
			return int64(r.IntN(256)) - 128
		case 1:
			return int64(int32(r.Uint32()))
		}
		return int64(r.IntN(4))
	}
	fmt.Fprintf(&b, "mov r15, %d\nmov r14, 0x200000\ntop:\n", 20+r.IntN(30))
	mem := func() string {
		sz := "qword"
		switch r.IntN(4) {
		case 0:
			return fmt.Sprintf("%s ptr [rip + data%d]", sz, r.IntN(2))
		case 1:
			return fmt.Sprintf("%s ptr [rsp - %d]", sz, 8*(1+r.IntN(8)))
		}
		// Near the end of a page now and then: an access that crosses
		// it leaves translated code.
		off := r.IntN(3 * 4096)
		if r.IntN(4) == 0 {
			off = 4096*(1+r.IntN(2)) - r.IntN(12)
		}
		return fmt.Sprintf("%s ptr [r14 + %d]", sz, off)
	}
	mem32 := func() string { return strings.Replace(mem(), "qword", "dword", 1) }
	// consume makes the flags of what came before visible now and then:
	// all of them (PUSHF), CF (ADC), or one condition (Jcc, CMOVcc), so
	// that wrong intermediate flags show in the final state.
	consume := func() {
		switch r.IntN(8) {
		case 0:
			fmt.Fprintf(&b, "pushfq\npop %s\n", pick(jitRegs64))
		case 1:
			fmt.Fprintf(&b, "adc %s, %s\n", pick(jitRegs64), pick(jitRegs64))
		case 2:
			fmt.Fprintf(&b, "j%s 2f\nxor %s, %d\n2:\n", pick(jitConds), pick(jitRegs64), imm())
		case 3:
			fmt.Fprintf(&b, "cmov%s %s, %s\n", pick(jitConds), pick(jitRegs64), pick(jitRegs64))
		case 4:
			fmt.Fprintf(&b, "cmov%s %s, %s\n", pick(jitConds), pick(jitRegs32), pick([]string{pick(jitRegs32), mem32()}))
		case 5:
			fmt.Fprintf(&b, "set%s %s\n", pick(jitConds), pick([]string{pick(jitRegs8H), pick(jitRegs8), strings.Replace(mem(), "qword", "byte", 1)}))
		}
	}
	calls := 0
	for i := 0; i < n; i++ {
		consume()
		switch r.IntN(38) {
		case 30, 31: // 8- and 16-bit operations
			regs := jitRegs8
			switch r.IntN(3) {
			case 0:
				regs = jitRegs8H
			case 1:
				regs = jitRegs16
			}
			switch r.IntN(5) {
			case 0:
				fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), pick(regs), pick(regs))
			case 1:
				fmt.Fprintf(&b, "%s %s, %d\n", pick(alu), pick(regs), imm()&0x7f)
			case 2:
				fmt.Fprintf(&b, "mov %s, %s\n", pick(regs), pick(regs))
			case 3:
				fmt.Fprintf(&b, "test %s, %s\n", pick(regs), pick(regs))
			default:
				fmt.Fprintf(&b, "%s %s\n", pick([]string{"inc", "dec", "neg", "not"}), pick(regs))
			}
		case 32: // 8- and 16-bit memory
			m := mem()
			if r.IntN(2) == 0 {
				m = strings.Replace(m, "qword", "byte", 1)
				fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), m, pick(jitRegs8))
			} else {
				m = strings.Replace(m, "qword", "word", 1)
				fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), pick(jitRegs16), m)
			}
		case 33: // sign and zero extension
			switch r.IntN(5) {
			case 0:
				fmt.Fprintf(&b, "movzx %s, %s\n", pick(jitRegs32), pick(jitRegs8H[:4]))
			case 1:
				fmt.Fprintf(&b, "movsx %s, %s\n", pick(jitRegs64), pick(jitRegs8))
			case 2:
				fmt.Fprintf(&b, "movzx %s, %s\n", pick(jitRegs64), strings.Replace(mem(), "qword", "word", 1))
			case 3:
				fmt.Fprintf(&b, "movsx %s, %s\n", pick(jitRegs16), strings.Replace(mem(), "qword", "byte", 1))
			default:
				fmt.Fprintf(&b, "movsxd %s, %s\n", pick(jitRegs64), pick(jitRegs32))
			}
		case 34:
			fmt.Fprintf(&b, "movsxd %s, %s\n", pick(jitRegs64), mem32())
		case 37: // indirect calls and jumps, through a register and memory
			switch r.IntN(3) {
			case 0:
				fmt.Fprintf(&b, "lea r11, [rip + fn%d]\ncall r11\n", r.IntN(3))
			case 1:
				fmt.Fprintf(&b, "lea r11, [rip + fn%d]\nmov qword ptr [rsp - 64], r11\ncall qword ptr [rsp - 64]\n", r.IntN(3))
			default:
				fmt.Fprintf(&b, "lea r11, [rip + 3f]\njmp r11\nxor rax, rax\n3:\n")
			}
		case 36:
			bt := pick([]string{"bt", "bts", "btr", "btc"})
			switch r.IntN(3) {
			case 0:
				fmt.Fprintf(&b, "%s %s, %d\n", bt, pick(jitRegs64), r.IntN(64))
			case 1:
				fmt.Fprintf(&b, "%s %s, %d\n", bt, pick(jitRegs16), r.IntN(16))
			default:
				fmt.Fprintf(&b, "%s %s, %d\n", bt, mem32(), r.IntN(32))
			}
		case 35:
			fmt.Fprintf(&b, "mov %s, %d\n", pick(jitRegs8H), r.IntN(256))
			fmt.Fprintf(&b, "%s al, %d\n", pick(alu), r.IntN(256)-128)
		case 27, 28: // shifts and rotates by constants
			sh := []string{"shl", "shr", "sar", "rol", "ror", "sal"}
			if r.IntN(2) == 0 {
				fmt.Fprintf(&b, "%s %s, %d\n", pick(sh), pick(jitRegs64), r.IntN(70))
			} else {
				fmt.Fprintf(&b, "%s %s, %d\n", pick(sh), pick(jitRegs32), r.IntN(40))
			}
		case 29:
			sh := []string{"shl", "shr", "sar"}
			if r.IntN(2) == 0 {
				fmt.Fprintf(&b, "%s %s, 1\n", pick(sh), mem())
			} else {
				fmt.Fprintf(&b, "%s %s, %d\n", pick(sh), mem32(), r.IntN(33))
			}
		case 20:
			fmt.Fprintf(&b, "mov %s, %s\n", pick(jitRegs64), mem())
		case 21:
			fmt.Fprintf(&b, "mov %s, %s\n", mem(), pick(jitRegs64))
		case 22:
			fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), pick(jitRegs32), mem32())
		case 23:
			fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), mem(), pick(jitRegs64))
		case 24:
			fmt.Fprintf(&b, "%s %s, %d\n", pick(alu), mem32(), imm())
		case 25:
			fmt.Fprintf(&b, "push %s\n%s %s, %s\npop %s\n", pick(jitRegs64), pick(alu), pick(jitRegs64), pick(jitRegs64), pick(jitRegs64))
		case 26:
			fmt.Fprintf(&b, "call fn%d\n", calls%3)
			calls++
		case 0, 1, 2:
			fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), pick(jitRegs64), pick(jitRegs64))
		case 3, 4:
			fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), pick(jitRegs32), pick(jitRegs32))
		case 5:
			fmt.Fprintf(&b, "%s %s, %d\n", pick(alu), pick(jitRegs64), imm())
		case 6:
			fmt.Fprintf(&b, "%s %s, %d\n", pick(alu), pick(jitRegs32), imm())
		case 7:
			fmt.Fprintf(&b, "test %s, %s\n", pick(jitRegs64), pick(jitRegs64))
		case 8:
			fmt.Fprintf(&b, "test %s, %d\n", pick(jitRegs32), imm())
		case 9:
			fmt.Fprintf(&b, "mov %s, %s\n", pick(jitRegs64), pick(jitRegs64))
		case 10:
			fmt.Fprintf(&b, "mov %s, %s\n", pick(jitRegs32), pick(jitRegs32))
		case 11:
			if r.IntN(2) == 0 {
				fmt.Fprintf(&b, "movabs %s, %d\n", pick(jitRegs64), int64(r.Uint64()))
			} else {
				fmt.Fprintf(&b, "mov %s, %d\n", pick(jitRegs32), r.Uint32())
			}
		case 12:
			regs := jitRegs64
			if r.IntN(3) == 0 {
				fmt.Fprintf(&b, "lea %s, [%s + %s*%d + %d]\n", pick(jitRegs32), pick(regs), pick(regs), 1<<r.IntN(4), imm())
			} else {
				fmt.Fprintf(&b, "lea %s, [%s + %s*%d + %d]\n", pick(regs), pick(regs), pick(regs), 1<<r.IntN(4), imm())
			}
		case 13:
			fmt.Fprintf(&b, "j%s 1f\n%s %s, %s\n1:\n", pick(jitConds), pick(alu), pick(jitRegs64), pick(jitRegs64))
		case 14: // left to the dispatch loop
			switch r.IntN(9) {
			case 0:
				fmt.Fprintf(&b, "inc %s\n", pick(jitRegs64))
			case 1:
				fmt.Fprintf(&b, "adc %s, %s\n", pick(jitRegs64), pick(jitRegs64))
			case 2:
				fmt.Fprintf(&b, "shl %s, %d\n", pick(jitRegs64), r.IntN(64))
			case 3:
				fmt.Fprintf(&b, "cmovz %s, %s\n", pick(jitRegs64), pick(jitRegs64))
			case 6:
				fmt.Fprintf(&b, "not %s\n", pick(append(jitRegs64, jitRegs32...)))
			case 7:
				fmt.Fprintf(&b, "neg %s\n", pick(append(jitRegs64, jitRegs32...)))
			case 8:
				fmt.Fprintf(&b, "neg %s\nnot %s\n", mem(), mem32())
			case 4:
				fmt.Fprintf(&b, "mov qword ptr [rsp - 16], %s\n", pick(jitRegs64))
			default:
				fmt.Fprintf(&b, "add %s, qword ptr [rsp - 16]\n", pick(jitRegs64))
			}
		case 15:
			fmt.Fprintf(&b, "nop\n")
		default:
			fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), pick(jitRegs64), pick(jitRegs64))
		}
	}
	// The loop's own test is translated (SUB sets the flags JNZ reads) or
	// not (DEC is left to the dispatch loop).
	if r.IntN(2) == 0 {
		b.WriteString("sub r15, 1\njnz top\n")
	} else {
		b.WriteString("dec r15\njnz top\n")
	}
	b.WriteString("hlt\n")
	for f := 0; f < 3; f++ {
		fmt.Fprintf(&b, "fn%d:\n", f)
		for i := 0; i < 1+r.IntN(4); i++ {
			fmt.Fprintf(&b, "%s %s, %s\n", pick(alu), pick(jitRegs64), pick(jitRegs64))
		}
		if r.IntN(2) == 0 {
			fmt.Fprintf(&b, "mov %s, %s\n", mem(), pick(jitRegs64))
		}
		b.WriteString("ret\n")
	}
	// Data next to the code: stores to it are writes to a code page,
	// which invalidate the page's decoded and translated blocks.
	fmt.Fprintf(&b, ".balign 8\ndata0: .quad %d\ndata1: .quad %d\n", int64(r.Uint64()), int64(r.Uint64()))
	return b.String()
}

// runJITProgram runs src to HLT on a fresh machine with the translator on
// or off, from the same random registers, and returns the final state.
func runJITProgram(t *testing.T, src string, seed uint64, on bool) (cpu.Regs, uint64, *jitState, []byte) {
	// (The jitState's Runs count entries from the dispatch loop; chained
	// ones are added from the CPU's link counter.)
	t.Helper()
	p := assemble(t, tmCode, src)
	m := newTestMachine(t, p.code)
	if on {
		m.cpu.enableJIT()
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for _, reg := range []int{cpu.RAX, cpu.RBX, cpu.RCX, cpu.RDX, cpu.RSI, cpu.RDI, cpu.RBP, cpu.R8, cpu.R9, cpu.R10, cpu.R11, cpu.R12, cpu.R13, cpu.R14} {
		m.setReg(reg, r.Uint64())
	}
	m.runToHLT(1 << 30)
	// The memory the programs write: the data pages, the stack's top and
	// the code page with its data words.
	var mem []byte
	mem = append(mem, m.ram[tmData:tmData+4*4096]...)
	mem = append(mem, m.ram[tmKStack-256:tmKStack]...)
	mem = append(mem, m.ram[tmCode:tmCode+8192]...)
	if js := m.cpu.jit; js != nil {
		js.Runs += m.cpu.jitLinks
	}
	return m.cpu.Regs(), m.cpu.Stats().Instructions, m.cpu.jit, mem
}

// TestJITDifferential runs random programs with the translator and
// without, from the same state, and requires the same registers, RIP,
// RFLAGS and retired count; the translator must have run translated code
// for most of them.
func TestJITDifferential(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	const programs = 300
	r := rand.New(rand.NewPCG(7, 11))
	var blocks, insts, runs uint64
	for i := 0; i < programs; i++ {
		src := jitProgram(r, 8+r.IntN(40))
		seed := r.Uint64()
		want, wantN, _, wantMem := runJITProgram(t, src, seed, false)
		got, gotN, js, gotMem := runJITProgram(t, src, seed, true)
		blocks, insts, runs = blocks+js.Blocks, insts+js.Insts, runs+js.Runs
		if !bytes.Equal(gotMem, wantMem) {
			t.Fatalf("program %d leaves different memory with the translator:\n%s", i, src)
		}
		if got != want || gotN != wantN {
			t.Fatalf("program %d differs with the translator:\n%s\ngot  %+v (%d retired)\nwant %+v (%d retired)", i, src, got, gotN, want, wantN)
		}
	}
	t.Logf("%d programs: %d blocks translated (%d instructions), %d runs of translated code", programs, blocks, insts, runs)
	if blocks < programs || runs < 10*programs {
		t.Errorf("the translator ran too little to test it: %d blocks, %d runs", blocks, runs)
	}
}

// TestJITLoop: a register loop is translated after jitHot runs, chained
// into itself, and ends with the interpreter's registers and count.
func TestJITLoop(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	src := `
		mov ecx, 1000
		xor eax, eax
	top:
		add rax, rcx
		lea rdx, [rax + rcx*2 + 5]
		xor rdx, rax
		sub ecx, 1
		jnz top
		hlt
	`
	want, wantN, _, _ := runJITProgram(t, src, 1, false)
	got, gotN, js, _ := runJITProgram(t, src, 1, true)
	if got != want || gotN != wantN {
		t.Fatalf("got %+v (%d), want %+v (%d)", got, gotN, want, wantN)
	}
	if js.Blocks == 0 || js.Runs == 0 || js.Chains == 0 {
		t.Errorf("translated %d blocks, %d runs, %d chained: want the loop translated after %d runs, and chained", js.Blocks, js.Runs, js.Chains, jitHot)
	}
	if want.GPR[cpu.RAX] != 500500 {
		t.Errorf("rax %d, want 500500", want.GPR[cpu.RAX])
	}
}

// TestJITSelfModifying: translated stores to a code page go through the
// dispatch loop's slow path, which invalidates the page's blocks: a
// translated loop that rewrites the immediate of an instruction on the
// next page, which it then calls, sees each new value, as without the
// translator.
func TestJITSelfModifying(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	src := `
		mov ecx, 200
		xor ebx, ebx
	top:
		mov dword ptr [rip + patch + 1], ecx
		add rbx, rcx
		call patch
		add rbx, rax
		sub ecx, 1
		jnz top
		hlt
		.balign 4096
	patch:
		mov eax, 0
		ret
	`
	want, wantN, _, _ := runJITProgram(t, src, 1, false)
	got, gotN, js, _ := runJITProgram(t, src, 1, true)
	if got != want || gotN != wantN {
		t.Fatalf("got %+v (%d), want %+v (%d)", got, gotN, want, wantN)
	}
	if want.GPR[cpu.RBX] != 200*201 {
		t.Errorf("rbx %d, want %d", want.GPR[cpu.RBX], 200*201)
	}
	if js.Runs < 150 {
		t.Errorf("%d runs of translated code: the loop was not translated", js.Runs)
	}
}

// BenchmarkMIPSJIT is BenchmarkMIPS with the translator on.
func BenchmarkMIPSJIT(b *testing.B) {
	if !jit.Available {
		b.Skip("no translator on this host architecture")
	}
	benchMIPS(b, true)
}

// BenchmarkLoopJIT is BenchmarkLoop with the translator on.
func BenchmarkLoopJIT(b *testing.B) {
	if !jit.Available {
		b.Skip("no translator on this host architecture")
	}
	benchLoop(b, true)
}

// TestJITBudget: with small instruction budgets, Run stops at the same
// RIP after the same number of retired instructions with the translator
// (chained blocks included) as without: each chained block is retired
// exactly, and a chain never runs past the budget.
func TestJITBudget(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	src := `
		mov ecx, 3000
		xor eax, eax
	top:
		add rax, rcx
		test al, 1
		jz 1f
		xor rax, 0x55
	1:
		sub ecx, 1
		jnz top
		hlt
	`
	type stop struct {
		rip, retired uint64
	}
	run := func(on bool) ([]stop, *CPU) {
		p := assemble(t, tmCode, src)
		m := newTestMachine(t, p.code)
		if on {
			m.cpu.enableJIT()
		}
		var stops []stop
		for budget := uint64(1); ; budget = budget%97 + 13 {
			e, err := m.cpu.Run(budget)
			if err != nil {
				t.Fatal(err)
			}
			stops = append(stops, stop{m.cpu.rip, m.cpu.Stats().Instructions})
			if e.Reason == cpu.ExitHLT {
				return stops, m.cpu
			}
			if e.Reason != cpu.ExitBudget {
				t.Fatalf("exit %v", e.Reason)
			}
		}
	}
	want, _ := run(false)
	got, c := run(true)
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("stop %d: rip %#x after %d instructions, want rip %#x after %d", i, got[i].rip, got[i].retired, want[i].rip, want[i].retired)
			}
		}
		t.Fatalf("%d stops, want %d", len(got), len(want))
	}
	if c.jitLinks == 0 {
		t.Error("no block was chained")
	}
}

// TestJITConditions: SETcc and CMOVcc of every condition, after a
// translated CMP and after one in an earlier block (the flags folded at
// run time), give the interpreter's results.
func TestJITConditions(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	var b strings.Builder
	b.WriteString("mov ecx, 300\nxor edx, edx\nxor esi, esi\ntop:\nmov rax, rcx\nshl rax, 27\nxor rax, rcx\ncmp rax, 0x40000000\n")
	for i, cc := range jitConds {
		if i == 8 {
			// A block boundary: the rest read flags from CPU.lf.
			b.WriteString("jmp 1f\n1:\n")
		}
		// LEA and MOV keep the CMP's flags for every condition.
		fmt.Fprintf(&b, "set%s bl\nmovzx ebx, bl\nlea rdx, [rdx + rdx*2]\nlea rdx, [rdx + rbx]\n", cc)
		fmt.Fprintf(&b, "mov esi, %d\ncmov%s rsi, rcx\nlea rdi, [rdi + rdi*4]\nlea rdi, [rdi + rsi]\n", i+1, cc)
	}
	b.WriteString("sub ecx, 1\njnz top\nhlt\n")
	want, wantN, _, _ := runJITProgram(t, b.String(), 1, false)
	got, gotN, js, _ := runJITProgram(t, b.String(), 1, true)
	if got != want || gotN != wantN {
		t.Fatalf("got %+v (%d), want %+v (%d)", got, gotN, want, wantN)
	}
	if js.Insts < 50 {
		t.Errorf("%d instructions translated: the conditions were not", js.Insts)
	}
}

// TestJITBitTests: BT, BTS, BTR and BTC with immediates, on registers and
// memory, each followed by a reader of its CF, give the interpreter's
// results.
func TestJITBitTests(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	var b strings.Builder
	b.WriteString("mov ecx, 200\nxor edx, edx\nmov r14, 0x200000\ntop:\nmov rax, rcx\nshl rax, 29\nxor rax, rcx\nmov qword ptr [r14], rax\n")
	for i, bt := range []string{"bt", "bts", "btr", "btc", "bt", "btc"} {
		for _, off := range []int{0, 3, 31, 33 + i, 63} {
			op := "rax"
			if off < 32 && i%2 == 1 {
				op = "dword ptr [r14]"
			}
			fmt.Fprintf(&b, "%s %s, %d\nsetc bl\nmovzx ebx, bl\nlea rdx, [rdx + rdx*2]\nlea rdx, [rdx + rbx]\n", bt, op, off)
		}
	}
	b.WriteString("add rdx, qword ptr [r14]\nsub ecx, 1\njnz top\nhlt\n")
	want, wantN, _, wantMem := runJITProgram(t, b.String(), 1, false)
	got, gotN, js, gotMem := runJITProgram(t, b.String(), 1, true)
	if got != want || gotN != wantN || !bytes.Equal(gotMem, wantMem) {
		t.Fatalf("got %+v (%d), want %+v (%d)", got, gotN, want, wantN)
	}
	if js.Insts < 100 {
		t.Errorf("%d instructions translated: the bit tests were not", js.Insts)
	}
}

// TestJITIndirectNonCanonical: an indirect JMP or CALL to a non-canonical
// address from translated code raises #GP at the instruction, as the
// interpreter does (here, with no IDT, as the same triple fault at the
// same RIP with the same registers): the hot block that jumps reads the
// bad pointer on the last pass.
func TestJITIndirectNonCanonical(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	for _, insn := range []string{"jmp rbx", "call rbx", "call qword ptr [rsp - 64]"} {
		src := `
			mov ecx, 50
			lea rbx, [rip + ok]
		top:
			mov qword ptr [rsp - 64], rbx
			cmp ecx, 1
			jne 1f
			movabs rbx, 0x0000900000000000
			mov qword ptr [rsp - 64], rbx
			jmp 1f
		1:
			add rdx, rcx
			mov rbx, qword ptr [rsp - 64]
			` + insn + `
		ok:
			sub ecx, 1
			jnz top
			hlt
		`
		// CALL pushes: the loop pops its return address back.
		src = strings.Replace(src, "ok:\n", "ok:\n\t\t\tcmp rsp, 0x70000\n\t\t\tje 2f\n\t\t\tadd rsp, 8\n\t\t2:\n", 1)
		run := func(on bool) (*cpu.Exit, cpu.Regs, *CPU) {
			p := assemble(t, tmCode, src)
			m := newTestMachine(t, p.code)
			if on {
				m.cpu.enableJIT()
			}
			e, err := m.cpu.Run(1 << 20)
			if err != nil {
				t.Fatal(err)
			}
			return e, m.cpu.Regs(), m.cpu
		}
		we, wr, _ := run(false)
		wantReason, wantRIP := we.Reason, we.RIP
		ge, gr, c := run(true)
		if ge.Reason != wantReason || ge.RIP != wantRIP || gr != wr {
			t.Errorf("%s: exit %v at %#x, regs %+v; want %v at %#x, %+v", insn, ge.Reason, ge.RIP, gr, wantReason, wantRIP, wr)
		}
		if wantReason != cpu.ExitTripleFault {
			t.Errorf("%s: exit %v, want a triple fault from the #GP", insn, wantReason)
		}
		if c.jit.Runs+c.jitLinks < 20 {
			t.Errorf("%s: the loop hardly ran translated", insn)
		}
	}
}

// TestJITLockstep runs random programs on two machines at once, one with
// the translator and one without, in slices of random budgets, and
// compares the architectural state (registers, RIP, RFLAGS, retired count,
// the exit) after every slice: after every few blocks, not only at the
// end. The programs also fault in mid-block: a load from above the mapped
// gigabyte raises #PF, whose handler skips the load and returns, so a
// translated block is left at the faulting instruction and the fault is
// delivered with the interpreter's state.
func TestJITLockstep(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	const programs = 60
	r := rand.New(rand.NewPCG(3, 5))
	var slices, faults, runs uint64
	for i := 0; i < programs; i++ {
		body := jitProgram(r, 10+r.IntN(30))
		// Faulting loads (7 bytes each, which the handler skips), before
		// a few of the body's lines.
		lines := strings.Split(body, "\n")
		for j := 2; j < len(lines)-12; j += 3 + r.IntN(6) {
			if !strings.HasSuffix(lines[j], ":") && r.IntN(2) == 0 {
				lines[j] = "mov rax, qword ptr [r14 + 0x40000000]\n" + lines[j]
			}
		}
		src := strings.Join(lines, "\n") + `
		pfh:
			add rsp, 8
			add qword ptr [rsp], 7
			iretq
		`
		p := assemble(t, tmCode, src)
		seed := r.Uint64()
		ms := [2]*testMachine{}
		for k := range ms {
			m := newTestMachine(t, p.code)
			m.setIDT(14, tmCode+p.addr(t, "pfh"), 0xE, 0, 0)
			if k == 1 {
				m.cpu.enableJIT()
			}
			rr := rand.New(rand.NewPCG(seed, 1))
			for _, reg := range []int{cpu.RAX, cpu.RBX, cpu.RCX, cpu.RDX, cpu.RSI, cpu.RDI, cpu.RBP, cpu.R8, cpu.R9, cpu.R10, cpu.R11, cpu.R12, cpu.R13} {
				m.setReg(reg, rr.Uint64())
			}
			ms[k] = m
		}
		for n := 0; ; n++ {
			budget := uint64(1 + r.IntN(300))
			var ex [2]cpu.Exit
			for k, m := range ms {
				e, err := m.cpu.Run(budget)
				if err != nil {
					t.Fatal(err)
				}
				ex[k] = *e
			}
			a, b := ms[0].cpu, ms[1].cpu
			if ex[0].Reason != ex[1].Reason || ex[0].RIP != ex[1].RIP || a.Regs() != b.Regs() || a.Stats().Instructions != b.Stats().Instructions {
				t.Fatalf("program %d, slice %d: with the translator %v at %#x, %+v (%d retired); without %v at %#x, %+v (%d)\n%s",
					i, n, ex[1].Reason, ex[1].RIP, b.Regs(), b.Stats().Instructions, ex[0].Reason, ex[0].RIP, a.Regs(), a.Stats().Instructions, src)
			}
			slices++
			if ex[0].Reason == cpu.ExitHLT {
				break
			}
			if ex[0].Reason != cpu.ExitBudget || n > 100000 {
				t.Fatalf("program %d: exit %v at %#x", i, ex[0].Reason, ex[0].RIP)
			}
		}
		faults += ms[1].cpu.Stats().Exceptions[cpu.ExcPF]
		runs += ms[1].cpu.jit.Runs + ms[1].cpu.jitLinks
	}
	t.Logf("%d programs: %d slices compared, %d page faults, %d translated blocks run", programs, slices, faults, runs)
	if faults < programs || runs < 10*programs {
		t.Errorf("too few faults (%d) or translated runs (%d) to test anything", faults, runs)
	}
}
