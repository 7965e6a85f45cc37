package interp

import (
	"bytes"
	"encoding/gob"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pvisor/pvisor/hv/cpu"
)

// Tests of SaveState and RestoreState (state.go).

// gobBytes gob-encodes s.
func gobBytes(t *testing.T, s cpu.EngineState) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// saveState saves m's vCPU state, failing the test on error.
func (m *testMachine) saveState() cpu.EngineState {
	m.t.Helper()
	s, err := m.cpu.SaveState()
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

// cloneRestored builds a new vCPU over a copy of m's guest memory and
// restores m's state into it through a gob round trip; it checks that the
// clone saves the same state, byte for byte and field by field.
func (m *testMachine) cloneRestored(mode cpu.Mode) *testMachine {
	m.t.Helper()
	t := m.t.(*testing.T)
	s1 := m.saveState()
	enc1 := gobBytes(t, s1)
	var dec cpu.EngineState
	if err := gob.NewDecoder(bytes.NewReader(enc1)).Decode(&dec); err != nil {
		t.Fatal(err)
	}
	ram := bytes.Clone(m.ram)
	n := &testMachine{t: m.t, ram: ram, mem: NewMemory(ram)}
	c, err := New(Config{Mem: n.mem, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RestoreState(dec); err != nil {
		t.Fatal(err)
	}
	n.cpu = c
	s2 := n.saveState()
	if d := cmp.Diff(s1, s2); d != "" {
		t.Fatalf("restored vCPU saves a different state (-saved +restored):\n%s", d)
	}
	if !bytes.Equal(enc1, gobBytes(t, s2)) {
		t.Fatal("the two states gob-encode differently")
	}
	return n
}

// sameMachines fails unless a and b have the same vCPU state and memory.
func sameMachines(t *testing.T, a, b *testMachine) {
	t.Helper()
	if d := cmp.Diff(a.saveState(), b.saveState()); d != "" {
		t.Fatalf("states differ (-original +restored):\n%s", d)
	}
	if !bytes.Equal(a.ram, b.ram) {
		for i := range a.ram {
			if a.ram[i] != b.ram[i] {
				t.Fatalf("memory differs first at %#x: %#x vs %#x", i, a.ram[i], b.ram[i])
			}
		}
	}
}

// mmioAnswer is the answer the state tests give an MMIO read: a function of
// the address and of the vCPU's retire count, so two vCPUs in the same
// state get the same answer.
func mmioAnswer(e *cpu.Exit, retired uint64) uint64 {
	return (e.MMIO.Addr*0x9e3779b97f4a7c15 ^ retired) & sizeMask[e.MMIO.Size]
}

// stateDriver runs a vCPU for a number of Run calls, answering every exit
// and raising events as a hypervisor would, deterministically: what it
// does depends only on the vCPU's state and exits.
type stateDriver struct {
	exits []string // what happened, for comparing two runs
}

func (d *stateDriver) step(t *testing.T, m *testMachine) {
	t.Helper()
	st := m.cpu.Stats()
	budget := 1 + st.Instructions%53
	e, err := m.cpu.Run(budget)
	if err != nil {
		t.Fatal(err)
	}
	ret := m.cpu.Stats().Instructions
	d.exits = append(d.exits, e.Reason.String())
	switch e.Reason {
	case cpu.ExitBudget, cpu.ExitCPUID, cpu.ExitMSR, cpu.ExitCR, cpu.ExitHLT:
	case cpu.ExitIRQWindow:
		m.cpu.RequestIRQWindow(false)
	case cpu.ExitMMIO:
		if !e.MMIO.Write {
			e.MMIO.Data = mmioAnswer(e, ret)
		}
	case cpu.ExitIO:
		if e.IO.In {
			e.IO.Data = uint32(ret*7+uint64(e.IO.Port)) & uint32(sizeMask[e.IO.Size])
		}
	default:
		t.Fatalf("unexpected exit %v at %#x: %s", e.Reason, e.RIP, e.Message)
	}
	switch {
	case ret%11 == 3 && !m.cpu.IRQPending():
		m.cpu.SetIRQ(0x30)
	case e.Reason != cpu.ExitBudget:
	case ret%5 == 2:
		m.cpu.RequestIRQWindow(true)
	case ret%7 == 1:
		m.cpu.InjectException(cpu.ExcGP, uint32(ret&0xfff8), true)
	}
}

func (d *stateDriver) run(t *testing.T, m *testMachine, steps int) {
	t.Helper()
	for i := 0; i < steps; i++ {
		d.step(t, m)
	}
}

// stateProg is a guest that keeps every part of the state busy: user and
// kernel mode (SYSCALL/SYSRET), memory writes over a buffer, x87 and SSE
// arithmetic, port and MMIO reads, interrupts (vector 0x30, counted) and
// injected #GP (vector 13, returns to the instruction).
const stateProg = `
	mov ecx, 0xc0000081
	xor eax, eax
	mov edx, 0x00230010
	wrmsr
	mov ecx, 0xc0000082
	lea rax, [rip+entry]
	mov rdx, rax
	shr rdx, 32
	wrmsr
	mov ecx, 0xc0000084
	mov eax, 0x700
	xor edx, edx
	wrmsr
	mov ecx, 0xc0000102
	mov eax, 0x1000
	mov edx, 0xffff8000
	wrmsr
	fninit
	TOUSER user, USTACK, 0x3202
user:
	lea rdi, [rip+buf]
	fld1
	fldpi
loop:
	inc qword ptr [rip+count]
	mov rbx, [rip+count]
	mov rax, rbx
	imul rax, rax, 0x1e3779b1
	mov rcx, rbx
	and ecx, 0x1ff
	mov [rdi+rcx*8], rax
	add [rdi+rcx*8+8], ebx
	fmul st(0), st(1)
	fsqrt
	fst qword ptr [rip+xf]
	cvtsi2sd xmm0, rbx
	mulsd xmm0, xmm0
	addpd xmm1, xmm0
	pxor xmm2, xmm1
	movdqu [rdi+rcx*8+16], xmm2
	test bl, 7
	jnz 1f
	mov rax, [0x1000008]
	xor [rip+acc], rax
	in al, 0x60
	add [rip+acc], al
	movdqu xmm3, [0x1000ff8]
	paddq xmm1, xmm3
1:	test bl, 15
	jnz 2f
	mov eax, 1
	syscall
2:	cmp rbx, 0
	jmp loop

entry:
	swapgs
	add [rip+scount], rax
	mov r9, [rip+scount]
	swapgs
	sysretq

irq:
	push rax
	inc qword ptr [rip+icount]
	pop rax
	iretq
gp:
	add rsp, 8
	inc qword ptr [rip+gpcount]
	iretq

	.balign 8
count: .quad 0
acc: .quad 0
xf: .quad 0
scount: .quad 0
icount: .quad 0
gpcount: .quad 0
	.balign 64
buf: .fill 4200, 1, 0
`

func newStateMachine(t *testing.T, mode cpu.Mode) (*testMachine, asmProg) {
	m, p := newAsmMachine(t, mode, stateProg)
	m.setIDT(0x30, p.addr(t, "irq"), 0xe, 0, 0)
	m.setIDT(cpu.ExcGP, p.addr(t, "gp"), 0xe, 0, 0)
	return m, p
}

// TestEngineStateRoundTrip saves a vCPU in the middle of a busy program
// at many points (each with whatever is pending then: an answered MMIO or
// port read, an interrupt, a window request, an injected #GP, a shadow),
// restores it into a new vCPU over a copy of memory, and checks the
// restored one saves the same state and then behaves as the original.
func TestEngineStateRoundTrip(t *testing.T) {
	for _, mode := range []cpu.Mode{cpu.ModeHWAssist} {
		t.Run(mode.String(), func(t *testing.T) {
			m, p := newStateMachine(t, mode)
			var d stateDriver
			seen := map[string]bool{}
			for point := 0; point < 40; point++ {
				d.run(t, m, 7+point%5)
				s := m.saveState()
				seen["completion "+completionName(s.Completion.Kind)] = true
				if s.Events.IRQ >= 0 {
					seen["irq"] = true
				}
				if s.Events.IRQWindow {
					seen["window"] = true
				}
				if s.Events.Injected.Valid {
					seen["injected"] = true
				}
				if len(s.Internal.MMIOReads) > 0 {
					seen["mmio log"] = true
				}
				n := m.cloneRestored(mode)
				var d1, d2 stateDriver
				d1.run(t, m, 9)
				d2.run(t, n, 9)
				if d := cmp.Diff(d1.exits, d2.exits); d != "" {
					t.Fatalf("point %d: exits differ after restore:\n%s", point, d)
				}
				sameMachines(t, m, n)
			}
			for _, want := range []string{"completion mmio-read", "completion in", "irq", "window", "mmio log"} {
				if !seen[want] {
					t.Errorf("no save point had %s pending: the test does not cover it", want)
				}
			}
			for _, c := range []string{"count", "scount", "icount", "gpcount"} {
				if m.q(p.addr(t, c)) == 0 {
					t.Errorf("%s is 0: the program did not exercise it", c)
				}
			}
		})
	}
}

func completionName(k cpu.CompletionKind) string {
	return [...]string{"none", "in", "mmio-read", "cpuid", "rdmsr", "hypercall", "ins"}[k]
}

// TestEngineStateDeterminism runs the program for N Run calls, saves,
// restores into a new vCPU over a copy of guest memory, runs both for M
// more, and requires identical states and memories.
func TestEngineStateDeterminism(t *testing.T) {
	m, p := newStateMachine(t, cpu.ModeHWAssist)
	var d stateDriver
	d.run(t, m, 400)
	n := m.cloneRestored(cpu.ModeHWAssist)
	var d1, d2 stateDriver
	d1.run(t, m, 2000)
	d2.run(t, n, 2000)
	if d := cmp.Diff(d1.exits, d2.exits); d != "" {
		t.Fatalf("exits differ after restore:\n%s", d)
	}
	sameMachines(t, m, n)
	st := m.cpu.Stats()
	if st.Instructions < 20000 || m.q(p.addr(t, "icount")) == 0 || m.q(p.addr(t, "scount")) == 0 {
		t.Errorf("the run was too short to mean much: %d instructions, %d interrupts, %d syscalls",
			st.Instructions, m.q(p.addr(t, "icount")), m.q(p.addr(t, "scount")))
	}
	t.Logf("%d instructions after the restore point, %d interrupts, %d syscalls, %d injected #GP in all",
		st.Instructions, m.q(p.addr(t, "icount")), m.q(p.addr(t, "scount")), m.q(p.addr(t, "gpcount")))
	if got, want := n.cpu.TSC(), m.cpu.TSC(); got != want {
		t.Errorf("TSC %d after restore, original %d", got, want)
	}
}

// TestEngineStateEvents stops where hidden state decides what happens
// next and checks the restored vCPU does the same as the original.
func TestEngineStateEvents(t *testing.T) {
	t.Run("sti-shadow", func(t *testing.T) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "sti\ni1: inc rax\ni2: inc rax\n inc rax\n hlt")
		m.cpu.SetIRQ(0x30)
		if e := m.runExit(1); e.Reason != cpu.ExitBudget {
			t.Fatalf("exit %v", e.Reason)
		}
		s := m.saveState()
		if !s.Events.InterruptShadow || s.Events.IRQ != 0x30 {
			t.Fatalf("after STI: shadow %v IRQ %d, want the shadow and 0x30 pending", s.Events.InterruptShadow, s.Events.IRQ)
		}
		n := m.cloneRestored(cpu.ModeHWAssist)
		for _, x := range []*testMachine{m, n} {
			x.runToHLT(100)
			if rip := x.frame(1)[0]; x.vector() != 0x30 || rip != p.addr(t, "i2") || x.reg(cpu.RAX) != 1 {
				t.Errorf("vector %d at %#x RAX %d, want 0x30 at %#x (one instruction after STI), RAX 1", x.vector(), rip, x.reg(cpu.RAX), p.addr(t, "i2"))
			}
		}
		sameMachines(t, m, n)
		// Without the shadow the interrupt comes one instruction earlier:
		// the field is what made the difference.
		s.Events.InterruptShadow = false
		o, _ := newAsmMachine(t, cpu.ModeHWAssist, "sti\ni1: inc rax\ni2: inc rax\n inc rax\n hlt")
		if err := o.cpu.RestoreState(s); err != nil {
			t.Fatal(err)
		}
		o.runToHLT(100)
		if rip := o.frame(1)[0]; rip != p.addr(t, "i1") {
			t.Errorf("without the shadow the interrupt was taken at %#x, want %#x", rip, p.addr(t, "i1"))
		}
	})
	t.Run("injected", func(t *testing.T) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "start: nop\n hlt")
		m.cpu.InjectException(cpu.ExcGP, 0x1234, true)
		s := m.saveState()
		if want := (cpu.PendingException{Valid: true, Vector: cpu.ExcGP, HasError: true, Error: 0x1234}); s.Events.Injected != want {
			t.Fatalf("injected %+v, want %+v", s.Events.Injected, want)
		}
		n := m.cloneRestored(cpu.ModeHWAssist)
		for _, x := range []*testMachine{m, n} {
			x.runToHLT(10)
			checkFrame(t, x, wantFrame{vec: cpu.ExcGP, hasErr: true, err: 0x1234, rip: p.addr(t, "start"), cs: tmKernelCS, rsp: tmKStack, ss: tmKernelDS})
		}
		sameMachines(t, m, n)
	})
	t.Run("injected-cancels-in", func(t *testing.T) {
		// An answered IN, then an injection that cancels it, saved before
		// the next Run: AL is untouched and the frame points at the IN.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "mov eax, 0x55\nf: in al, 0x60\n hlt")
		e := m.runExit(10)
		if e.Reason != cpu.ExitIO {
			t.Fatalf("exit %v, want io", e.Reason)
		}
		e.IO.Data = 0xaa
		n := m.cloneRestored(cpu.ModeHWAssist)
		if k := n.saveState().Completion.Kind; k != cpu.CompletionIn {
			t.Fatalf("completion %d, want IN", k)
		}
		for _, x := range []*testMachine{m, n} {
			x.cpu.InjectException(cpu.ExcGP, 0, true)
			x.runToHLT(10)
			checkFrame(t, x, wantFrame{vec: cpu.ExcGP, hasErr: true, rip: p.addr(t, "f"), cs: tmKernelCS, rsp: tmKStack, ss: tmKernelDS})
			if al := x.reg(cpu.RAX); al != 0x55 {
				t.Errorf("RAX %#x after the cancelled IN", al)
			}
		}
		sameMachines(t, m, n)
	})
	t.Run("in-completes", func(t *testing.T) {
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "mov eax, 0x1155\nf: in al, 0x60\n hlt")
		e := m.runExit(10)
		e.IO.Data = 0xaa
		n := m.cloneRestored(cpu.ModeHWAssist)
		n.runToHLT(10)
		if al := n.reg(cpu.RAX); al != 0x11aa {
			t.Errorf("RAX %#x after the restored IN, want 0x11aa", al)
		}
	})
	t.Run("int1-pending", func(t *testing.T) {
		// INT1 retires and queues #DB; with the budget used up the #DB is
		// still pending when Run returns.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "nop\n int1\nn: hlt")
		if e := m.runExit(2); e.Reason != cpu.ExitBudget {
			t.Fatalf("exit %v", e.Reason)
		}
		if s := m.saveState(); !s.Events.Raised.Valid || s.Events.Raised.Vector != cpu.ExcDB {
			t.Fatalf("raised %+v, want #DB pending", s.Events.Raised)
		}
		n := m.cloneRestored(cpu.ModeHWAssist)
		for _, x := range []*testMachine{m, n} {
			x.runToHLT(10)
			checkFrame(t, x, wantFrame{vec: cpu.ExcDB, rip: p.addr(t, "n"), cs: tmKernelCS, rsp: tmKStack, ss: tmKernelDS})
		}
		sameMachines(t, m, n)
	})
	t.Run("mmio-restart", func(t *testing.T) {
		// MOVDQU across two unbacked qwords exits twice; saved after the
		// first answer, the restored vCPU replays it and asks only for the
		// second.
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "mov rbx, 0x1000ff8\n movdqu xmm0, [rbx]\n movq rax, xmm0\n psrldq xmm0, 8\n movq rdx, xmm0\n hlt")
		var addrs []uint64
		e := m.runExit(100)
		if e.Reason != cpu.ExitMMIO {
			t.Fatalf("exit %v", e.Reason)
		}
		e.MMIO.Data = 0x1111111111111111
		addrs = append(addrs, e.MMIO.Addr)
		e = m.runExit(100)
		if e.Reason != cpu.ExitMMIO || e.MMIO.Addr == addrs[0] {
			t.Fatalf("exit %v at %#x, want the second MMIO read", e.Reason, e.MMIO.Addr)
		}
		e.MMIO.Data = 0x2222222222222222
		s := m.saveState()
		if len(s.Internal.MMIOReads) != 1 || s.Completion.Kind != cpu.CompletionMMIORead {
			t.Fatalf("saved %d MMIO answers, completion %d; want 1 answer and an MMIO completion", len(s.Internal.MMIOReads), s.Completion.Kind)
		}
		n := m.cloneRestored(cpu.ModeHWAssist)
		for _, x := range []*testMachine{m, n} {
			x.runToHLT(100)
			if x.reg(cpu.RAX) != 0x1111111111111111 || x.reg(cpu.RDX) != 0x2222222222222222 {
				t.Errorf("RAX %#x RDX %#x, want the two answers", x.reg(cpu.RAX), x.reg(cpu.RDX))
			}
		}
		sameMachines(t, m, n)
	})
}

// TestEngineStateShadowFault saves a trap-mode vCPU right after a shadow
// page-table fault: the restored vCPU completes the write without a second
// exit, as the original does.
func TestEngineStateShadowFault(t *testing.T) {
	m, _ := newAsmMachine(t, cpu.ModeTrap, "mov rax, 0x1234\n mov [0x3000+8*100], rax\n hlt")
	e := m.runExit(100)
	if e.Reason != cpu.ExitShadowFault {
		t.Fatalf("exit %v, want a shadow fault on the page-directory write", e.Reason)
	}
	s := m.saveState()
	if !s.Internal.ShadowFault {
		t.Fatal("the shadow-fault pass is not in the saved state")
	}
	n := m.cloneRestored(cpu.ModeTrap)
	copy(n.mem.ptab, m.mem.ptab) // the Memory's shadow marks are not vCPU state
	for _, x := range []*testMachine{m, n} {
		// HLT is privileged in trap mode: its exit shows the write completed.
		if e := x.runExit(100); e.Reason != cpu.ExitPrivileged {
			t.Fatalf("exit %v after the shadow fault, want the write to complete and HLT to exit", e.Reason)
		}
		if got := x.q(0x3000 + 8*100); got != 0x1234 {
			t.Errorf("PDE %#x, want 0x1234", got)
		}
	}
	sameMachines(t, m, n)
}

// TestEngineStateRestoreRefuses restores states no vCPU could have been
// in: each is refused with an error and leaves the vCPU as it was.
func TestEngineStateRestoreRefuses(t *testing.T) {
	src, _ := newStateMachine(t, cpu.ModeHWAssist)
	var d stateDriver
	d.run(t, src, 30)
	good := src.saveState()
	if good.SRegs.CS.Selector&3 != 3 {
		t.Fatalf("the base state is at CPL %d, want user mode", good.SRegs.CS.Selector&3)
	}
	const nonCanon = 0x0000800000000000
	exc := func(v uint8, hasErr bool, e uint32) cpu.PendingException {
		return cpu.PendingException{Valid: true, Vector: v, HasError: hasErr, Error: e}
	}
	cases := []struct {
		name string
		bad  func(s *cpu.EngineState)
	}{
		{"other engine", func(s *cpu.EngineState) { s.Engine = "kvm" }},
		{"RIP non-canonical", func(s *cpu.EngineState) { s.Regs.RIP = nonCanon }},
		{"RIP above 4G in a 32-bit CS", func(s *cpu.EngineState) {
			s.SRegs.CS.Attr = s.SRegs.CS.Attr&^cpu.SegAttrL | cpu.SegAttrDB
			s.Regs.RIP = 1 << 32
		}},
		{"RFLAGS.VM", func(s *cpu.EngineState) { s.Regs.RFLAGS |= cpu.FlagVM }},
		{"RFLAGS reserved bit 3", func(s *cpu.EngineState) { s.Regs.RFLAGS |= 1 << 3 }},
		{"RFLAGS reserved bit 22", func(s *cpu.EngineState) { s.Regs.RFLAGS |= 1 << 22 }},
		{"RFLAGS bit 1 clear", func(s *cpu.EngineState) { s.Regs.RFLAGS &^= cpu.FlagsFixed }},
		{"CR0 reserved bit", func(s *cpu.EngineState) { s.SRegs.CR0 |= 1 << 6 }},
		{"CR0 high bits", func(s *cpu.EngineState) { s.SRegs.CR0 |= 1 << 32 }},
		{"CR0.PG clear (long mode without paging)", func(s *cpu.EngineState) { s.SRegs.CR0 &^= cpu.CR0PG }},
		{"CR0.ET clear", func(s *cpu.EngineState) { s.SRegs.CR0 &^= cpu.CR0ET }},
		{"CR0.NW without CD", func(s *cpu.EngineState) { s.SRegs.CR0 = s.SRegs.CR0&^cpu.CR0CD | cpu.CR0NW }},
		{"CR3 beyond physical bits", func(s *cpu.EngineState) { s.SRegs.CR3 |= 1 << 62 }},
		{"CR4 unbacked bit (LA57)", func(s *cpu.EngineState) { s.SRegs.CR4 |= 1 << 12 }},
		{"CR4 SMEP not advertised", func(s *cpu.EngineState) { s.SRegs.CR4 |= cpu.CR4SMEP }},
		{"CR4.PAE clear", func(s *cpu.EngineState) { s.SRegs.CR4 &^= cpu.CR4PAE }},
		{"CR8 reserved", func(s *cpu.EngineState) { s.SRegs.CR8 = 16 }},
		{"EFER reserved bit", func(s *cpu.EngineState) { s.SRegs.EFER |= 1 << 12 }},
		{"EFER.LMA clear", func(s *cpu.EngineState) { s.SRegs.EFER &^= cpu.EFERLMA }},
		{"EFER.LME clear", func(s *cpu.EngineState) { s.SRegs.EFER &^= cpu.EFERLME }},
		{"FS base non-canonical", func(s *cpu.EngineState) { s.SRegs.FS.Base = nonCanon }},
		{"GS base non-canonical", func(s *cpu.EngineState) { s.SRegs.GS.Base = nonCanon }},
		{"kernel GS base non-canonical", func(s *cpu.EngineState) { s.MSRs.KernelGSBase = nonCanon }},
		{"LSTAR non-canonical", func(s *cpu.EngineState) { s.MSRs.LSTAR = nonCanon }},
		{"CSTAR non-canonical", func(s *cpu.EngineState) { s.MSRs.CSTAR = nonCanon }},
		{"SYSENTER_EIP non-canonical", func(s *cpu.EngineState) { s.MSRs.SysenterEIP = nonCanon }},
		{"PAT undefined memory type", func(s *cpu.EngineState) { s.MSRs.PAT = 0x0007040600070402 }},
		{"SFMASK high bits", func(s *cpu.EngineState) { s.MSRs.SFMASK |= 1 << 40 }},
		{"TSC_AUX high bits", func(s *cpu.EngineState) { s.MSRs.TSCAux = 1 << 32 }},
		{"CS.L with CS.D", func(s *cpu.EngineState) { s.SRegs.CS.Attr |= cpu.SegAttrDB }},
		{"CS not present", func(s *cpu.EngineState) { s.SRegs.CS.Attr &^= cpu.SegAttrP }},
		{"CS a data segment", func(s *cpu.EngineState) { s.SRegs.CS.Attr &^= 0x8 }},
		{"CS a system segment", func(s *cpu.EngineState) { s.SRegs.CS.Attr &^= cpu.SegAttrS }},
		{"CS base above 4G", func(s *cpu.EngineState) { s.SRegs.CS.Base = 1 << 32 }},
		{"SS RPL is not the CPL", func(s *cpu.EngineState) { s.SRegs.SS.Selector &^= 3 }},
		{"SS read-only", func(s *cpu.EngineState) { s.SRegs.SS.Attr &^= 0x2 }},
		{"SS a code segment", func(s *cpu.EngineState) { s.SRegs.SS.Attr |= 0x8 }},
		{"DS execute-only code", func(s *cpu.EngineState) {
			s.SRegs.DS = cpu.Segment{Selector: 0x2b, Limit: 0xfffff, Attr: 0x8 | cpu.SegAttrS | cpu.SegAttrP | 3<<5}
		}},
		{"DS a system segment", func(s *cpu.EngineState) {
			s.SRegs.DS = cpu.Segment{Selector: 0x2b, Limit: 0xfffff, Attr: 0x3 | cpu.SegAttrP | 3<<5}
		}},
		{"DS reserved attribute bits", func(s *cpu.EngineState) { s.SRegs.DS.Attr |= 0x100 }},
		{"ES base above 4G", func(s *cpu.EngineState) { s.SRegs.ES.Base = 1 << 32 }},
		{"TR an available TSS", func(s *cpu.EngineState) { s.SRegs.TR.Attr = 0x9 | cpu.SegAttrP }},
		{"TR in the LDT", func(s *cpu.EngineState) { s.SRegs.TR.Selector |= 4 }},
		{"TR not present", func(s *cpu.EngineState) { s.SRegs.TR.Attr &^= cpu.SegAttrP }},
		{"TR base non-canonical", func(s *cpu.EngineState) { s.SRegs.TR.Base = nonCanon }},
		{"LDTR not an LDT", func(s *cpu.EngineState) { s.SRegs.LDT = cpu.Segment{Selector: 0x50, Attr: 0x9 | cpu.SegAttrP} }},
		{"LDTR base non-canonical", func(s *cpu.EngineState) { s.SRegs.LDT.Base = nonCanon }},
		{"GDTR base non-canonical", func(s *cpu.EngineState) { s.SRegs.GDT.Base = nonCanon }},
		{"IDTR base non-canonical", func(s *cpu.EngineState) { s.SRegs.IDT.Base = nonCanon }},
		{"MXCSR reserved bit", func(s *cpu.EngineState) { s.FPU.MXCSR |= 1 << 16 }},
		{"IRQ vector 256", func(s *cpu.EngineState) { s.Events.IRQ = 256 }},
		{"IRQ vector -2", func(s *cpu.EngineState) { s.Events.IRQ = -2 }},
		{"injected vector 32", func(s *cpu.EngineState) { s.Events.Injected = exc(32, false, 0) }},
		{"injected software interrupt", func(s *cpu.EngineState) {
			s.Events.Injected = cpu.PendingException{Valid: true, Vector: 0x80, Soft: true, InstRIP: s.Regs.RIP}
		}},
		{"injected #GP without error code", func(s *cpu.EngineState) { s.Events.Injected = exc(cpu.ExcGP, false, 0) }},
		{"injected #UD with error code", func(s *cpu.EngineState) { s.Events.Injected = exc(cpu.ExcUD, true, 0) }},
		{"injected #UD error value without HasError", func(s *cpu.EngineState) { s.Events.Injected = exc(cpu.ExcUD, false, 5) }},
		{"injected fields on an invalid entry", func(s *cpu.EngineState) { s.Events.Injected = cpu.PendingException{Vector: 3} }},
		{"raised software interrupt with error", func(s *cpu.EngineState) {
			s.Events.Raised = cpu.PendingException{Valid: true, Vector: 0x80, Soft: true, HasError: true, InstRIP: s.Regs.RIP}
		}},
		{"raised software interrupt at non-canonical", func(s *cpu.EngineState) {
			s.Events.Raised = cpu.PendingException{Valid: true, Vector: 0x80, Soft: true, InstRIP: nonCanon}
		}},
		{"raised exception with InstRIP", func(s *cpu.EngineState) {
			s.Events.Raised = cpu.PendingException{Valid: true, Vector: cpu.ExcUD, InstRIP: 0x1000}
		}},
		{"completion of unknown kind", func(s *cpu.EngineState) { s.Completion = cpu.Completion{Kind: cpu.NumCompletionKinds, RIP: s.Regs.RIP} }},
		{"IN of 3 bytes", func(s *cpu.EngineState) {
			s.Completion = cpu.Completion{Kind: cpu.CompletionIn, RIP: s.Regs.RIP, Size: 3}
		}},
		{"IN data wider than 32 bits", func(s *cpu.EngineState) {
			s.Completion = cpu.Completion{Kind: cpu.CompletionIn, RIP: s.Regs.RIP, Size: 4, Data: 1 << 32}
		}},
		{"MMIO read beyond physical addresses", func(s *cpu.EngineState) {
			s.Completion = cpu.Completion{Kind: cpu.CompletionMMIORead, RIP: s.Regs.RIP, Addr: 1 << 40, Size: 8}
		}},
		{"MMIO read across a page", func(s *cpu.EngineState) {
			s.Completion = cpu.Completion{Kind: cpu.CompletionMMIORead, RIP: s.Regs.RIP, Addr: 0x1000ffc, Size: 8}
		}},
		{"MMIO read of 0 bytes", func(s *cpu.EngineState) {
			s.Completion = cpu.Completion{Kind: cpu.CompletionMMIORead, RIP: s.Regs.RIP, Addr: 0x1000000}
		}},
		{"completion at non-canonical RIP", func(s *cpu.EngineState) { s.Completion = cpu.Completion{Kind: cpu.CompletionCPUID, RIP: nonCanon} }},
		{"no completion with a RIP", func(s *cpu.EngineState) { s.Completion = cpu.Completion{RIP: s.Regs.RIP} }},
		{"CPUID completion with port data", func(s *cpu.EngineState) {
			s.Completion = cpu.Completion{Kind: cpu.CompletionCPUID, RIP: s.Regs.RIP, Data: 1}
		}},
		{"65 MMIO answers", func(s *cpu.EngineState) {
			s.Internal.MMIOReads = make([]cpu.MMIORead, mmioLogMax+1)
			for i := range s.Internal.MMIOReads {
				s.Internal.MMIOReads[i] = cpu.MMIORead{Addr: 0x1000000, Size: 8}
			}
			s.Internal.MMIORIP, s.Internal.MMIOSeq = s.Regs.RIP, s.Retired
		}},
		{"MMIO position beyond the answers", func(s *cpu.EngineState) {
			s.Internal.MMIOReads = []cpu.MMIORead{{Addr: 0x1000000, Size: 8}}
			s.Internal.MMIORIP, s.Internal.MMIOSeq, s.Internal.MMIOPos = s.Regs.RIP, s.Retired, 2
		}},
		{"MMIO answers of another attempt", func(s *cpu.EngineState) {
			s.Internal.MMIOReads = []cpu.MMIORead{{Addr: 0x1000000, Size: 8}}
			s.Internal.MMIORIP, s.Internal.MMIOSeq = s.Regs.RIP, s.Retired+1
		}},
		{"MMIO answer wider than its size", func(s *cpu.EngineState) {
			s.Internal.MMIOReads = []cpu.MMIORead{{Addr: 0x1000000, Size: 2, Data: 0x10000}}
			s.Internal.MMIORIP, s.Internal.MMIOSeq = s.Regs.RIP, s.Retired
		}},
		{"MMIO answer of 3 bytes", func(s *cpu.EngineState) {
			s.Internal.MMIOReads = []cpu.MMIORead{{Addr: 0x1000000, Size: 3}}
			s.Internal.MMIORIP, s.Internal.MMIOSeq = s.Regs.RIP, s.Retired
		}},
		{"MMIO position without answers", func(s *cpu.EngineState) { s.Internal.MMIOPos = 1 }},
		{"INS data without INSReady", func(s *cpu.EngineState) { s.Internal.INSData = 7 }},
		{"INS at non-canonical RIP", func(s *cpu.EngineState) { s.Internal.INSReady, s.Internal.INSRIP = true, nonCanon }},
		{"shadow fault without shadow page tables", func(s *cpu.EngineState) {
			s.Internal.ShadowFault, s.Internal.ShadowRIP, s.Internal.ShadowSeq = true, s.Regs.RIP, s.Retired
		}},
		{"shadow-fault fields without ShadowFault", func(s *cpu.EngineState) { s.Internal.ShadowRIP = s.Regs.RIP }},
	}
	target, _ := newStateMachine(t, cpu.ModeHWAssist)
	before := target.saveState()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := target.cpu.RestoreState(before); err != nil {
				t.Fatal(err)
			}
			s := good
			s.Internal.MMIOReads = append([]cpu.MMIORead(nil), good.Internal.MMIOReads...)
			tc.bad(&s)
			err := target.cpu.RestoreState(s)
			if err == nil {
				t.Fatal("restored")
			}
			t.Log(err)
			if d := cmp.Diff(before, target.saveState()); d != "" {
				t.Errorf("a refused restore changed the vCPU:\n%s", d)
			}
		})
	}
	// The unchanged state is accepted: each refusal above is the one field.
	if err := target.cpu.RestoreState(good); err != nil {
		t.Fatalf("the good state is refused: %v", err)
	}
}

// TestEngineStateCompatCS: a 32-bit SYSRET leaves a compatibility-mode CS
// (which the engine refuses to execute with #UD); that state saves and
// restores like any other, and both vCPUs take the #UD.
func TestEngineStateCompatCS(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, `
	mov ecx, 0xc0000081
	xor eax, eax
	mov edx, 0x00230010
	wrmsr
	lea rcx, [rip+after]
	mov r11d, 0x2
	.byte 0x0f, 0x07 # SYSRET without REX.W
after:
	nop
`)
	for m.cpu.sreg[segCS].Attr&cpu.SegAttrL != 0 {
		if e := m.runExit(1); e.Reason != cpu.ExitBudget {
			t.Fatalf("exit %v before the SYSRET", e.Reason)
		}
	}
	n := m.cloneRestored(cpu.ModeHWAssist)
	for _, x := range []*testMachine{m, n} {
		if v := x.runToVector(10); v != cpu.ExcUD {
			t.Fatalf("vector %d in compatibility mode, want #UD", v)
		}
		if f := x.frame(2); f[0] != p.addr(t, "after") || f[1] != 0x23 {
			t.Errorf("#UD frame RIP %#x CS %#x, want %#x 0x23", f[0], f[1], p.addr(t, "after"))
		}
	}
	sameMachines(t, m, n)
}

// manualClock is a cpu.Clock the test sets.
type manualClock struct{ now time.Duration }

func (k *manualClock) Now() time.Duration { return k.now }

// TestEngineStateClockTSC: with the TSC on the VM's clock, the restored
// vCPU's TSC reads the saved value at restore and then follows its clock.
// Restored after the VM's clock (to the saved guest time), it keeps the
// original's offset: both read the same TSC as their clocks go on.
func TestEngineStateClockTSC(t *testing.T) {
	ram := make([]byte, 1<<20)
	k1 := &manualClock{now: 1000}
	orig, err := New(Config{Mem: NewMemory(ram), TSCClock: k1})
	if err != nil {
		t.Fatal(err)
	}
	orig.SetTSC(1 << 50)
	k1.now = 5000
	s, err := orig.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if s.TSC != 1<<50+4000 {
		t.Fatalf("saved TSC %d, want %d", s.TSC, uint64(1<<50+4000))
	}
	for _, at := range []time.Duration{5000, 0, 123456} {
		k2 := &manualClock{now: at}
		n, err := New(Config{Mem: NewMemory(bytes.Clone(ram)), TSCClock: k2})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.RestoreState(s); err != nil {
			t.Fatal(err)
		}
		if got := n.TSC(); got != s.TSC {
			t.Errorf("clock at %d: restored TSC %d, want the saved %d", at, got, s.TSC)
		}
		k2.now += 700
		if got := n.TSC(); got != s.TSC+700 {
			t.Errorf("clock at %d+700: TSC %d, want %d", at, got, s.TSC+700)
		}
		if at == k1.now {
			k1.now += 700
			if n.TSC() != orig.TSC() {
				t.Errorf("restored after its clock: TSC %d, original %d", n.TSC(), orig.TSC())
			}
			k1.now -= 700
		}
	}
}

// TestEngineStateRestoreFlushesCaches: RestoreState into a vCPU that has
// run drops what it had decoded and translated. Memory rewritten behind
// the engine's back (as a snapshot restore rewrites it) is seen afresh:
// new code bytes and a new page mapping.
func TestEngineStateRestoreFlushesCaches(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, "start: mov eax, 1\n mov rcx, 0x8000000000\n mov rbx, [rcx]\n hlt")
	const pageA, pageB = 0x400000, 0x401000
	m.putq(pageA, 0xaaaa)
	m.putq(pageB, 0xbbbb)
	ptes := m.mapVA(tmPML4, tvBase, pageA, leaf4K, allFlags)
	s := m.saveState()
	m.runToHLT(100)
	if m.reg(cpu.RAX) != 1 || m.reg(cpu.RBX) != 0xaaaa {
		t.Fatalf("first run: RAX %#x RBX %#x", m.reg(cpu.RAX), m.reg(cpu.RBX))
	}
	// Behind the engine's back: the MOV's immediate, and the mapping.
	m.ram[p.addr(t, "start")+1] = 2
	m.putq(ptes[len(ptes)-1], pageB|ptP|ptW|ptU)
	if err := m.cpu.RestoreState(s); err != nil {
		t.Fatal(err)
	}
	m.runToHLT(100)
	if m.reg(cpu.RAX) != 2 || m.reg(cpu.RBX) != 0xbbbb {
		t.Errorf("after restore: RAX %#x RBX %#x, want 2 (new code) and 0xbbbb (new mapping)", m.reg(cpu.RAX), m.reg(cpu.RBX))
	}
}
