package interp

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/pvisor/pvisor/hv/cpu"
)

// decodeSeeds are common encodings, used as seed corpus for both fuzzers.
var decodeSeeds = [][]byte{
	{0x90},                                        // nop
	{0x48, 0x89, 0xe5},                            // mov rbp, rsp
	{0x48, 0x8b, 0x04, 0x25, 0, 0x10, 0, 0},       // mov rax, [0x1000]
	{0x48, 0x8d, 0x05, 0x10, 0, 0, 0},             // lea rax, [rip+0x10]
	{0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8},          // mov rax, imm64
	{0x66, 0x41, 0x0f, 0xb7, 0x44, 0x24, 0x08},    // movzx ax, word [r12+8]
	{0xf0, 0x48, 0x0f, 0xb1, 0x0e},                // lock cmpxchg [rsi], rcx
	{0xf3, 0x48, 0xab},                            // rep stosq
	{0xf3, 0xa4},                                  // rep movsb
	{0x0f, 0x05},                                  // syscall
	{0x48, 0x0f, 0x07},                            // sysretq
	{0x48, 0xcf},                                  // iretq
	{0x0f, 0x01, 0xf8},                            // swapgs
	{0x0f, 0x22, 0xd8},                            // mov cr3, rax
	{0x0f, 0x01, 0x38},                            // invlpg [rax]
	{0x0f, 0x30},                                  // wrmsr
	{0x0f, 0xa2},                                  // cpuid
	{0xe6, 0x80},                                  // out 0x80, al
	{0x66, 0x0f, 0x6f, 0x07},                      // movdqa xmm0, [rdi]
	{0xf3, 0x0f, 0x6f, 0x0e},                      // movdqu xmm1, [rsi]
	{0x66, 0x0f, 0xd7, 0xc1},                      // pmovmskb eax, xmm1
	{0x0f, 0xae, 0x00},                            // fxsave [rax]
	{0xd9, 0x7d, 0xfe},                            // fnstcw [rbp-2]
	{0xdb, 0x2c, 0x24},                            // fld tbyte [rsp]
	{0x65, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0}, // mov rax, gs:[0x28]
	{0x0f, 0x1f, 0x44, 0, 0},                      // nopl [rax+rax]
	{0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0}, // nopw cs:[rax+rax]
	{0xe8, 0, 0, 0, 0},                            // call rel32
	{0xff, 0x24, 0xc5, 0, 0x10, 0, 0},             // jmp [rax*8+0x1000]
	{0x48, 0xf7, 0xf1},                            // div rcx
	{0x48, 0x0f, 0xc7, 0x0f},                      // cmpxchg16b [rdi]
	{0xc8, 0x10, 0, 1},                            // enter 16, 1
	{0x0f, 0x0b},                                  // ud2
	{0xcd, 0x80},                                  // int 0x80
	{0xf4},                                        // hlt
}

// opcodeAt returns the index of the first opcode byte after legacy
// prefixes and REX (len(b) if there is none).
func opcodeAt(b []byte) int {
	i := 0
	for i < len(b) {
		switch b[i] {
		case 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65:
			i++
			continue
		}
		break
	}
	if i < len(b) && b[i]&0xf0 == 0x40 {
		i++
	}
	return i
}

// x86asmUnreliable reports encodings where x86asm v0.32.0 is known to be
// wrong or silent (REFERENCE.md): ENDBR, RDPID, PTWRITE, RDSSP and the
// 0F 01 system forms it does not know.
func x86asmUnreliable(b []byte) bool {
	i := opcodeAt(b)
	if i+2 >= len(b) || b[i] != 0x0f {
		return false
	}
	hasF3 := false
	for _, p := range b[:i] {
		if p == 0xf3 {
			hasF3 = true
		}
	}
	op, modrm := b[i+1], b[i+2]
	switch {
	case op == 0x1e && hasF3: // ENDBR32/64, RDSSPD/Q
		return true
	case op == 0xc7 && hasF3 && modrm>>3&7 == 7: // RDPID
		return true
	case op == 0xae && hasF3 && modrm>>3&7 == 4: // PTWRITE
		return true
	case op == 0x01:
		switch modrm {
		case 0xc1, 0xca, 0xcb, 0xd9, 0xe8, 0xee, 0xef:
			return true
		}
	}
	return false
}

// FuzzDecode: decode never panics, a successful decode is 1..15 bytes
// inside the input, and for a valid instruction it agrees on the length
// with x86asm.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decode(b)
		if err == nil && (in.len < 1 || in.len > 15 || int(in.len) > len(b)) {
			t.Fatalf("decode(% x): length %d", b, in.len)
		}
		if err == nil && in.op >= uint16(nOps) {
			t.Fatalf("decode(% x): op %d beyond the %d registered", b, in.op, nOps)
		}
		// Property: on 15 bytes, where x86asm decodes a valid instruction
		// that the engine also knows, the lengths agree.
		var buf [15]byte
		copy(buf[:], b)
		in, err = decode(buf[:])
		if err != nil || in.op == 0 || x86asmUnreliable(buf[:]) {
			return
		}
		xi, xerr := x86asm.Decode(buf[:], 64)
		if xerr != nil || xi.Op == 0 {
			return
		}
		if xi.Len != int(in.len) {
			t.Errorf("% x: length %d (%s), x86asm %d (%v)", buf[:max(xi.Len, int(in.len))], in.len, opNames[in.op], xi.Len, xi)
		}
	})
}

// Fuzzed programs run on a small machine with the test machine's layout.
const fuzzRAM = 4 << 20

// newFuzzMachine is a test machine with fuzzRAM bytes of RAM: the page
// tables still map 1 GiB, so most addresses are MMIO.
func newFuzzMachine(t testing.TB, mode cpu.Mode, code []byte) *testMachine {
	m := newSizedMachine(t, mode, code, fuzzRAM)
	m.cpu.r[cpu.RBX] = tmData
	m.cpu.r[cpu.RSI] = tmData + 0x1000
	m.cpu.r[cpu.RDI] = tmData + 0x2000
	return m
}

// fuzzRun runs code for at most 1000 instructions, answering exits the way
// a minimal hypervisor would. It returns the exit that ended the run.
// ExitInternal fails the test: no guest code may stop the engine (a Go
// panic inside it is reported as ExitInternal "engine panic").
func fuzzRun(t testing.TB, mode cpu.Mode, code []byte) *cpu.Exit {
	m := newFuzzMachine(t, mode, code)
	if len(code) > 0 && code[0]&4 != 0 {
		// Start in user mode.
		s := m.cpu.SRegs()
		s.CS = cpu.Segment{Selector: tmUserCS, Limit: 0xffffffff, Attr: 0xb | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrL | cpu.SegAttrG | 3<<5}
		s.SS = cpu.Segment{Selector: tmUserDS, Limit: 0xffffffff, Attr: 0x3 | cpu.SegAttrS | cpu.SegAttrP | cpu.SegAttrDB | cpu.SegAttrG | 3<<5}
		if err := m.cpu.SetSRegs(s); err != nil {
			t.Fatal(err)
		}
		m.cpu.r[cpu.RSP] = tmUStack
	}
	if len(code) > 0 && code[0]&8 != 0 {
		m.cpu.SetIRQ(0x30) // taken whenever the code enables interrupts
	}
	remaining := uint64(1000)
	var e *cpu.Exit
	for runs := 0; runs < 2000 && remaining > 0; runs++ {
		before := m.cpu.Stats().Instructions
		var err error
		e, err = m.cpu.Run(remaining)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if e.Reason == cpu.ExitInternal {
			t.Fatalf("code % x (cpl %d at %#x): %s", code, m.cpu.cpl, e.RIP, e.Message)
		}
		used := m.cpu.Stats().Instructions - before
		if used >= remaining {
			break
		}
		remaining -= used
		switch e.Reason {
		case cpu.ExitInternal, cpu.ExitTripleFault, cpu.ExitBudget:
			return e
		case cpu.ExitPrivileged:
			// No emulator here: step over the instruction.
			r := m.cpu.Regs()
			r.RIP += uint64(e.InstLen)
			m.cpu.SetRegs(r)
		case cpu.ExitMMIO:
			if !e.MMIO.Write {
				e.MMIO.Data = 0
			}
		case cpu.ExitIO:
			e.IO.Data = 0xff
		}
	}
	return e
}

// FuzzExecute runs arbitrary bytes as code (kernel or user mode, with or
// without a pending interrupt, by the first byte): whatever they do, Run
// returns. Before fuzzing it runs a fixed batch of random programs and
// logs how their runs ended (go test -v shows it).
func FuzzExecute(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add(s)
	}
	f.Add([]byte{0xf3, 0xaa})             // rep stosb with RCX 0
	f.Add([]byte{0x48, 0xcf})             // iretq of garbage
	f.Add([]byte{0x0f, 0x22, 0xd8, 0xf4}) // mov cr3, rax (0)
	// System instructions and prefix orders, each in ring 0 and ring 3 of
	// every mode: the first byte picks both (fuzzRun), so each comes after
	// a harmless instruction whose first byte does (NOP and XCHG: ring 0;
	// ADD AL/EAX, OR AL with an immediate: ring 3).
	leads := [][]byte{{0x90}, {0x91}, {0x92}, {0x04, 0}, {0x05, 0, 0, 0, 0}, {0x0c, 0}}
	for _, s := range [][]byte{
		{0xcd, 0x08}, {0xcd, 0x0d}, {0xcd, 0x0e}, {0xcd, 0x81}, {0xcc}, {0xf1}, {0xce}, // INT n, INT3, INT1, INTO
		{0xcf}, {0x66, 0xcf}, // IRETD, IRETW
		{0xcb}, {0x66, 0xcb}, {0x48, 0xcb}, {0xca, 0x10, 0x00}, {0x48, 0xca, 0x08, 0x00}, // far RET
		{0xff, 0x2b}, {0x66, 0xff, 0x2b}, {0x48, 0xff, 0x2b}, // far JMP [rbx]
		{0xff, 0x1b}, {0x66, 0xff, 0x1b}, {0x48, 0xff, 0x1b}, // far CALL [rbx]
		{0x0f, 0x07}, {0x6c}, {0xf3, 0x6d}, // SYSRET (32-bit), INSB, REP INSD
		{0x0f, 0x22, 0xc0}, {0x0f, 0x22, 0xe0}, {0x44, 0x0f, 0x22, 0xc0}, // MOV CR0/CR4/CR8, RAX
		{0x0f, 0x30}, {0x44, 0x66, 0x03, 0x03}, {0x4f, 0x48, 0x0f, 0xc1, 0x03}, // WRMSR, stray REX
	} {
		for _, l := range leads {
			f.Add(append(append([]byte{}, l...), s...))
		}
	}
	// Random batch.
	rng := rand.New(rand.NewPCG(1, 2))
	reasons := map[string]int{}
	internal := map[string]int{}
	const n = 100
	for i := 0; i < n; i++ {
		code := make([]byte, 64+rng.IntN(512))
		for k := range code {
			code[k] = byte(rng.Uint32())
		}
		e := fuzzRun(f, cpu.Mode(i%int(cpu.NumModes)), code)
		if e == nil {
			continue
		}
		reasons[e.Reason.String()]++
		if e.Reason == cpu.ExitInternal {
			msg := e.Message
			if k := strings.IndexAny(msg, "\n("); k > 0 {
				msg = msg[:k]
			}
			internal[msg]++
		}
	}
	f.Logf("random programs: %d runs, endings %v", n, reasons)
	var msgs []string
	for k, v := range internal {
		msgs = append(msgs, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(msgs)
	f.Logf("ExitInternal: %d of %d (%s)", reasons[cpu.ExitInternal.String()], n, strings.Join(msgs, "; "))
	f.Fuzz(func(t *testing.T, code []byte) {
		if len(code) > 4096 {
			code = code[:4096]
		}
		mode := cpu.ModeHWAssist
		if len(code) > 0 {
			mode = cpu.Mode(code[0] % byte(cpu.NumModes))
		}
		fuzzRun(t, mode, code)
	})
}
