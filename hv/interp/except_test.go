package interp

import (
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// wantFrame is an exception frame as pushed in 64-bit mode.
type wantFrame struct {
	vec    int
	hasErr bool
	err    uint64
	rip    uint64
	cs     uint64
	rsp    uint64 // RSP before delivery
	ss     uint64
	handSP uint64 // RSP in the handler (0: not checked)
}

// checkFrame compares the frame at the handler's RSP with w. RFLAGS is
// returned for the caller to check.
func checkFrame(t *testing.T, m *testMachine, w wantFrame) uint64 {
	t.Helper()
	if v := m.vector(); v != w.vec {
		t.Fatalf("stopped in vector %d (rip %#x), want %d", v, m.cpu.rip, w.vec)
	}
	f := m.frame(6)
	if w.hasErr {
		if f[0] != w.err {
			t.Errorf("error code %#x, want %#x", f[0], w.err)
		}
		f = f[1:]
	}
	if f[0] != w.rip || f[1] != w.cs || f[3] != w.rsp || f[4] != w.ss {
		t.Errorf("frame RIP %#x CS %#x RSP %#x SS %#x, want %#x %#x %#x %#x", f[0], f[1], f[3], f[4], w.rip, w.cs, w.rsp, w.ss)
	}
	if w.handSP != 0 && m.reg(cpu.RSP) != w.handSP {
		t.Errorf("handler RSP %#x, want %#x", m.reg(cpu.RSP), w.handSP)
	}
	if m.cpu.cpl != 0 || m.cpu.sreg[segCS].Selector != tmKernelCS {
		t.Errorf("handler runs at CPL %d CS %#x", m.cpu.cpl, m.cpu.sreg[segCS].Selector)
	}
	return f[2]
}

func TestExcVectors(t *testing.T) {
	cases := []struct {
		name   string
		src    string // the faulting instruction is at label "f"; "n" follows it
		vec    int
		hasErr bool
		err    uint64
		next   bool // pushed RIP is the next instruction (traps, INT n)
	}{
		{"de/div", "xor edx, edx\n mov eax, 1\n xor ecx, ecx\nf: div ecx\nn: hlt", cpu.ExcDE, false, 0, false},
		{"de/idiv-overflow", "mov rdx, -1\n mov rax, 0x8000000000000000\n mov rcx, -1\n mov rdx, -1\nf: idiv rcx\nn: hlt", cpu.ExcDE, false, 0, false},
		{"de/div8", "mov ax, 0x1000\n mov cl, 2\nf: div cl\nn: hlt", cpu.ExcDE, false, 0, false},
		{"ud/ud2", "f: ud2\nn: hlt", cpu.ExcUD, false, 0, false},
		{"ud/push-es", "f: .byte 0x06\nn: hlt", cpu.ExcUD, false, 0, false},
		{"ud/daa", "f: .byte 0x27\nn: hlt", cpu.ExcUD, false, 0, false},
		{"ud/into", "f: .byte 0xce\nn: hlt", cpu.ExcUD, false, 0, false},
		{"ud/lock-nop", "f: .byte 0xf0, 0x90\nn: hlt", cpu.ExcUD, false, 0, false},
		{"ud/lock-mov", "f: .byte 0xf0, 0x48, 0x89, 0x03\nn: hlt", cpu.ExcUD, false, 0, false},
		{"ud/lock-cmp", "f: .byte 0xf0, 0x48, 0x39, 0x03\nn: hlt", cpu.ExcUD, false, 0, false},
		{"ok/lock-add-mem", "lea rbx, [rip+n+8]\n lock add qword ptr [rbx], 1\nf: int 0x41\nn: hlt", 0x41, false, 0, true},
		{"ud/lock-reg-add", "f: .byte 0xf0, 0x48, 0x01, 0xc0\nn: hlt", cpu.ExcUD, false, 0, false},
		{"gp/selector-beyond-gdt", "mov ax, 0x1233\nf: mov ds, ax\nn: hlt", cpu.ExcGP, true, 0x1230, false},
		{"gp/ss-user-selector", "mov ax, 0x2b\nf: mov ss, ax\nn: hlt", cpu.ExcGP, true, 0x28, false},
		{"gp/noncanonical", "mov rax, 0x800000000000\nf: mov rbx, [rax]\nn: hlt", cpu.ExcGP, true, 0, false},
		{"gp/wrmsr-reserved-efer", "mov ecx, 0xc0000080\n mov eax, 0xd03\n xor edx, edx\nf: wrmsr\nn: hlt", cpu.ExcGP, true, 0, false},
		{"gp/mov-cr4-reserved", "mov rax, cr4\n bts rax, 40\nf: mov cr4, rax\nn: hlt", cpu.ExcGP, true, 0, false},
		{"pf/not-present", "mov rax, 0x8000001230\nf: mov rbx, [rax]\nn: hlt", cpu.ExcPF, true, 0, false},
		{"bp/int3", "f: int3\nn: hlt", cpu.ExcBP, false, 0, true},
		{"bp/int-3", "f: int 3\nn: hlt", cpu.ExcBP, false, 0, true},
		{"int/0x41", "f: int 0x41\nn: hlt", 0x41, false, 0, true},
		{"int/0x8f", "f: int 0x8f\nn: hlt", 0x8f, false, 0, true},
		{"int1", "f: .byte 0xf1\nn: hlt", cpu.ExcDB, false, 0, true},
		{"int/gate-beyond-idt", "f: int 0x90\nn: hlt", cpu.ExcGP, true, 0x90*8 + 2, false},
		{"int/gate-not-present", "f: int 0x42\nn: hlt", cpu.ExcNP, true, 0x42*8 + 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, tc.src)
			// IDT limit below vector 0x90; vector 0x42 not present.
			m.setSRegs(func(s *cpu.SRegs) { s.IDT.Limit = 0x90*16 - 1 })
			m.ram[tmIDT+0x42*16+5] &^= 0x80
			m.setReg(cpu.RSP, 0x6fff0)
			m.runToHLT(100)
			rip := p.addr(t, "f")
			if tc.next {
				rip = p.addr(t, "n")
			}
			checkFrame(t, m, wantFrame{vec: tc.vec, hasErr: tc.hasErr, err: tc.err, rip: rip,
				cs: tmKernelCS, rsp: 0x6fff0, ss: tmKernelDS, handSP: 0x6fff0 - 40 - boolTo8(tc.hasErr)})
			if tc.vec == cpu.ExcPF && m.cpu.cr2 != 0x8000001230 {
				t.Errorf("CR2 %#x", m.cpu.cr2)
			}
		})
	}
}

func boolTo8(b bool) uint64 {
	if b {
		return 8
	}
	return 0
}

// TestExcUser delivers exceptions raised at CPL 3: the stack switches to
// TSS.RSP0 (or IST1), SS becomes a null selector and the user SS:RSP are in
// the frame.
func TestExcUser(t *testing.T) {
	cases := []struct {
		name   string
		src    string // user code; faulting instruction at "f"
		vec    int
		hasErr bool
		err    uint64
		next   bool
		ist    bool
		ursp   uint64
	}{
		{"ud2", "f: ud2", cpu.ExcUD, false, 0, false, false, tmUStack},
		{"ud2/misaligned-user-stack", "f: ud2", cpu.ExcUD, false, 0, false, false, tmUStack - 8},
		{"gp/hlt", "f: hlt", cpu.ExcGP, true, 0, false, false, tmUStack},
		{"gp/cli", "f: cli", cpu.ExcGP, true, 0, false, false, tmUStack},
		{"gp/int-dpl0", "f: int 0x40\nn:", cpu.ExcGP, true, 0x40*8 + 2, false, false, tmUStack},
		{"gp/int3-dpl0", "f: int3\nn:", cpu.ExcGP, true, 3*8 + 2, false, false, tmUStack},
		{"int-dpl3", "f: int 0x80\nn:", 0x80, false, 0, true, false, tmUStack},
		{"int1-ignores-dpl", "f: .byte 0xf1\nn:", cpu.ExcDB, false, 0, true, false, tmUStack},
		{"pf/supervisor-page", "f: mov rax, [0x1000]", cpu.ExcPF, true, cpu.PFUser | cpu.PFPresent, false, false, tmUStack},
		{"gp/mov-ds-kernel-data", "f: mov ds, word ptr [rip+sel]\n hlt\nsel: .word 0x18", cpu.ExcGP, true, 0x18, false, false, tmUStack},
		{"gp/mov-es-kernel-code", "f: mov es, word ptr [rip+sel]\n hlt\nsel: .word 0x10", cpu.ExcGP, true, 0x10, false, false, tmUStack},
		{"gp/mov-fs-rpl3-kernel-data", "f: mov fs, word ptr [rip+sel]\n hlt\nsel: .word 0x1b", cpu.ExcGP, true, 0x18, false, false, tmUStack},
		{"mov-ds-user-data", "f: mov ds, word ptr [rip+sel]\n jmp n\nsel: .word 0x2b", cpu.ExcGP, true, 0, true, false, tmUStack},
		{"ist1/ud2", "f: ud2", cpu.ExcUD, false, 0, false, true, tmUStack - 24},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "TOUSER f, " + itoa(tc.ursp) + "\n" + tc.src + "\nn:\n hlt"
			m, p := newAsmMachine(t, cpu.ModeHWAssist, src)
			// Page 0x1000 (the PML4) is supervisor-only for the #PF case.
			m.mapVA(tmPML4, 0x1000, 0x1000, leaf4K, [4]uint64{ptP | ptW | ptU, ptP | ptW | ptU, ptP | ptW | ptU, ptP | ptW})
			if tc.ist {
				m.setIDT(tc.vec, uint64(tmHltBase+tc.vec), 0xe, 1, 0)
			}
			m.runToHLT(100)
			rip := p.addr(t, "f")
			if tc.next {
				rip = p.addr(t, "n")
			}
			top := uint64(tmKStack)
			if tc.ist {
				top = tmIST1
			}
			fl := checkFrame(t, m, wantFrame{vec: tc.vec, hasErr: tc.hasErr, err: tc.err, rip: rip,
				cs: tmUserCS, rsp: tc.ursp, ss: tmUserDS, handSP: top - 40 - boolTo8(tc.hasErr)})
			if fl&cpu.FlagIOPL != 0 || fl&cpu.FlagsFixed == 0 {
				t.Errorf("pushed RFLAGS %#x", fl)
			}
			if ss := m.cpu.sreg[segSS].Selector; ss != 0 {
				t.Errorf("handler SS %#x, want the null selector", ss)
			}
		})
	}
}

// itoa formats v for assembler source.
func itoa(v uint64) string {
	const hex = "0123456789abcdef"
	b := []byte{}
	for {
		b = append([]byte{hex[v&15]}, b...)
		v >>= 4
		if v == 0 {
			break
		}
	}
	return "0x" + string(b)
}

// TestExcStackAlign: in 64-bit mode the stack is aligned down to 16 bytes
// before the frame is pushed, also for IST stacks.
func TestExcStackAlign(t *testing.T) {
	for _, tc := range []struct {
		rsp, ist uint64
		useIST   bool
	}{
		{0x6fff8, 0, false}, {0x6fff4, 0, false}, {0x6fff0, 0, false},
		{0x60000, 0x8ff8, true}, {0x60000, 0x9000, true},
	} {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "f: ud2")
		m.setReg(cpu.RSP, tc.rsp)
		top := tc.rsp &^ 15
		if tc.useIST {
			m.putq(tmTSS+36, tc.ist)
			m.setIDT(cpu.ExcUD, tmHltBase+cpu.ExcUD, 0xe, 1, 0)
			top = tc.ist &^ 15
		}
		m.runToHLT(10)
		checkFrame(t, m, wantFrame{vec: cpu.ExcUD, rip: p.addr(t, "f"), cs: tmKernelCS, rsp: tc.rsp, ss: tmKernelDS, handSP: top - 40})
	}
	// From user mode with a misaligned TSS.RSP0.
	m, p := newAsmMachine(t, cpu.ModeHWAssist, "TOUSER f\nf: ud2")
	m.putq(tmTSS+4, tmKStack-8)
	m.runToHLT(20)
	checkFrame(t, m, wantFrame{vec: cpu.ExcUD, rip: p.addr(t, "f"), cs: tmUserCS, rsp: tmUStack, ss: tmUserDS, handSP: tmKStack - 16 - 40})
}

// TestExcGateIF: an interrupt gate clears IF, a trap gate keeps it; the
// pushed RFLAGS has the interrupted IF.
func TestExcGateIF(t *testing.T) {
	for _, typ := range []uint8{0xe, 0xf} {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "sti\n nop\nf: int 0x40\nn: hlt")
		m.setIDT(0x40, tmHltBase+0x40, typ, 0, 0)
		m.runToHLT(10)
		fl := checkFrame(t, m, wantFrame{vec: 0x40, rip: p.addr(t, "n"), cs: tmKernelCS, rsp: tmKStack, ss: tmKernelDS})
		if fl&cpu.FlagIF == 0 {
			t.Errorf("gate type %#x: pushed RFLAGS %#x lacks IF", typ, fl)
		}
		gotIF := m.cpu.getFlags()&cpu.FlagIF != 0
		if gotIF != (typ == 0xf) {
			t.Errorf("gate type %#x: IF in the handler = %v", typ, gotIF)
		}
	}
	// TF, NT, RF, AC... TF and NT are cleared on delivery.
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, "pushfq\n or qword ptr [rsp], 0x4000\n popfq\n int 0x40\n hlt")
	m.runToHLT(10)
	if m.cpu.getFlags()&cpu.FlagNT != 0 {
		t.Errorf("NT not cleared by delivery")
	}
	if m.frame(3)[2]&cpu.FlagNT == 0 {
		t.Errorf("pushed RFLAGS lacks NT")
	}
}

// TestExcDoubleFault: a #PF while pushing the frame of a #PF (its IST stack
// is unmapped) becomes #DF with error code 0; a fault while delivering #DF
// is a triple fault.
func TestExcDoubleFault(t *testing.T) {
	const badStack = tvBase + 0x10000 // PML4 slot 1: not present
	setup := func(t *testing.T) (*testMachine, asmProg) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "mov rax, 0x8000002000\nf: mov rbx, [rax]\n hlt")
		m.putq(tmTSS+44, badStack) // IST2
		m.setIDT(cpu.ExcPF, tmHltBase+cpu.ExcPF, 0xe, 2, 0)
		m.setIDT(cpu.ExcDF, tmHltBase+cpu.ExcDF, 0xe, 1, 0)
		return m, p
	}
	t.Run("df", func(t *testing.T) {
		m, p := setup(t)
		m.runToHLT(10)
		if v := m.vector(); v != cpu.ExcDF {
			t.Fatalf("stopped in vector %d, want #DF", v)
		}
		f := m.frame(6)
		if f[0] != 0 {
			t.Errorf("#DF error code %#x, want 0", f[0])
		}
		if f[2] != tmKernelCS || m.reg(cpu.RSP) != tmIST1-48 {
			t.Errorf("#DF frame CS %#x, handler RSP %#x", f[2], m.reg(cpu.RSP))
		}
		if f[1] != p.addr(t, "f") {
			t.Errorf("#DF frame RIP %#x, want the faulting instruction %#x", f[1], p.addr(t, "f"))
		}
		if m.cpu.cr2 != badStack-8 {
			t.Errorf("CR2 %#x, want %#x (the second fault)", m.cpu.cr2, uint64(badStack-8))
		}
		if n := m.cpu.Stats().Exceptions[cpu.ExcDF]; n != 1 {
			t.Errorf("%d #DF counted", n)
		}
	})
	t.Run("triple", func(t *testing.T) {
		m, _ := setup(t)
		m.putq(tmTSS+36, badStack) // IST1, used by #DF
		e := m.runExit(10)
		if e.Reason != cpu.ExitTripleFault {
			t.Fatalf("exit %v, want triple fault", e.Reason)
		}
		if e.Fault.Vector != cpu.ExcPF {
			t.Errorf("triple fault caused by vector %d", e.Fault.Vector)
		}
	})
	t.Run("idt-unmapped", func(t *testing.T) {
		// Reading the gate of #UD faults (#PF while delivering #UD is
		// delivered as #PF), reading the gate of #PF faults (#DF), and
		// reading the gate of #DF faults: triple fault.
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "ud2")
		m.setSRegs(func(s *cpu.SRegs) { s.IDT.Base = badStack })
		e := m.runExit(10)
		if e.Reason != cpu.ExitTripleFault {
			t.Fatalf("exit %v, want triple fault", e.Reason)
		}
		if st := m.cpu.Stats(); st.Exceptions[cpu.ExcUD] != 1 || st.Exceptions[cpu.ExcPF] != 1 || st.Exceptions[cpu.ExcDF] != 1 {
			t.Errorf("exceptions counted: #UD %d #PF %d #DF %d", st.Exceptions[cpu.ExcUD], st.Exceptions[cpu.ExcPF], st.Exceptions[cpu.ExcDF])
		}
	})
	t.Run("gp-in-gp", func(t *testing.T) {
		// #GP whose gate is not a valid gate type: delivering it raises
		// #GP again -> #DF.
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "mov ax, 0x1234\n mov ds, ax\n hlt")
		m.ram[tmIDT+cpu.ExcGP*16+5] = 0x80 // P, type 0: invalid
		m.runToHLT(10)
		if v := m.vector(); v != cpu.ExcDF {
			t.Fatalf("stopped in vector %d, want #DF", v)
		}
	})
	t.Run("ud-in-pf-not-df", func(t *testing.T) {
		// A #PF while delivering #UD (benign) is delivered as #PF.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "f: ud2\n hlt")
		m.putq(tmTSS+44, badStack)
		m.setIDT(cpu.ExcUD, tmHltBase+cpu.ExcUD, 0xe, 2, 0)
		m.runToHLT(10)
		if v := m.vector(); v != cpu.ExcPF {
			t.Fatalf("stopped in vector %d, want #PF", v)
		}
		f := m.frame(2)
		if f[0] != cpu.PFWrite || f[1] != p.addr(t, "f") {
			t.Errorf("#PF error %#x rip %#x", f[0], f[1])
		}
	})
}

// TestExcInject delivers hypervisor-injected exceptions.
func TestExcInject(t *testing.T) {
	t.Run("gp-at-start", func(t *testing.T) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "start: nop\n hlt")
		m.cpu.InjectException(cpu.ExcGP, 0x1234, true)
		m.runToHLT(10)
		checkFrame(t, m, wantFrame{vec: cpu.ExcGP, hasErr: true, err: 0x1234, rip: p.addr(t, "start"), cs: tmKernelCS, rsp: tmKStack, ss: tmKernelDS})
	})
	t.Run("ud-no-error", func(t *testing.T) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "start: nop\n hlt")
		m.cpu.InjectException(cpu.ExcUD, 0, false)
		m.runToHLT(10)
		checkFrame(t, m, wantFrame{vec: cpu.ExcUD, rip: p.addr(t, "start"), cs: tmKernelCS, rsp: tmKStack, ss: tmKernelDS, handSP: tmKStack - 40})
	})
	t.Run("pf-uses-cr2", func(t *testing.T) {
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "start: nop\n hlt")
		m.setSRegs(func(s *cpu.SRegs) { s.CR2 = 0xabc000 })
		m.cpu.InjectException(cpu.ExcPF, cpu.PFWrite, true)
		m.runToHLT(10)
		if m.vector() != cpu.ExcPF || m.frame(1)[0] != cpu.PFWrite || m.cpu.cr2 != 0xabc000 {
			t.Errorf("vector %d error %#x cr2 %#x", m.vector(), m.frame(1)[0], m.cpu.cr2)
		}
	})
	t.Run("cancels-in-completion", func(t *testing.T) {
		// An IN exit answered with #GP: AL is untouched and the frame
		// points at the IN.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "mov eax, 0x55\nf: in al, 0x60\n hlt")
		e := m.runExit(10)
		if e.Reason != cpu.ExitIO {
			t.Fatalf("exit %v, want io", e.Reason)
		}
		e.IO.Data = 0xaa
		m.cpu.InjectException(cpu.ExcGP, 0, true)
		m.runToHLT(10)
		checkFrame(t, m, wantFrame{vec: cpu.ExcGP, hasErr: true, rip: p.addr(t, "f"), cs: tmKernelCS, rsp: tmKStack, ss: tmKernelDS})
		if al := m.reg(cpu.RAX); al != 0x55 {
			t.Errorf("RAX %#x after the cancelled IN", al)
		}
	})
	t.Run("user-mode", func(t *testing.T) {
		// Injection while the guest is at CPL 3 switches to RSP0.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "TOUSER u\nu: jmp u")
		if e := m.runExit(20); e.Reason != cpu.ExitBudget {
			t.Fatalf("exit %v", e.Reason)
		}
		if m.cpu.cpl != 3 {
			t.Fatalf("not in user mode")
		}
		m.cpu.InjectException(cpu.ExcGP, 8, true)
		m.runToHLT(10)
		checkFrame(t, m, wantFrame{vec: cpu.ExcGP, hasErr: true, err: 8, rip: p.addr(t, "u"), cs: tmUserCS, rsp: tmUStack, ss: tmUserDS, handSP: tmKStack - 48})
	})
}

// TestShadow checks the interrupt shadow of STI and MOV SS: a pending
// interrupt is taken only after the instruction that follows them.
func TestShadow(t *testing.T) {
	t.Run("sti", func(t *testing.T) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "sti\ni1: inc rax\ni2: inc rax\n inc rax\n hlt")
		m.cpu.SetIRQ(0x30)
		m.runToHLT(100)
		if m.vector() != 0x30 {
			t.Fatalf("stopped in vector %d", m.vector())
		}
		if rip := m.frame(1)[0]; rip != p.addr(t, "i2") || m.reg(cpu.RAX) != 1 {
			t.Errorf("interrupt taken at %#x with RAX %d, want %#x (one instruction after STI) and 1", rip, m.reg(cpu.RAX), p.addr(t, "i2"))
		}
		if m.cpu.IRQPending() {
			t.Errorf("IRQ still pending after delivery")
		}
	})
	t.Run("sti-if-already-set", func(t *testing.T) {
		// STI with IF already 1 has no shadow: the interrupt is taken at
		// the first instruction boundary the engine looks at.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "sti\n nop\ni1: sti\ni2: inc rax\ni3: inc rax\n hlt")
		if e := m.runExit(2); e.Reason != cpu.ExitBudget {
			t.Fatalf("exit %v", e.Reason)
		}
		m.cpu.SetIRQ(0x30)
		m.runToHLT(100)
		if rip := m.frame(1)[0]; m.vector() != 0x30 || rip != p.addr(t, "i1") {
			t.Errorf("vector %d taken at %#x, want 0x30 at %#x", m.vector(), rip, p.addr(t, "i1"))
		}
	})
	for _, tc := range []struct {
		name   string
		seg    string
		shadow bool
	}{{"mov-ss", "ss", true}, {"mov-ds", "ds", false}} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, "sti\n mov ax, 0x18\n mov "+tc.seg+", ax\ni1: inc rcx\ni2: inc rcx\n hlt")
			if e := m.runExit(3); e.Reason != cpu.ExitBudget {
				t.Fatalf("exit %v", e.Reason)
			}
			m.cpu.SetIRQ(0x30)
			m.runToHLT(100)
			want := p.addr(t, "i1")
			if tc.shadow {
				want = p.addr(t, "i2")
			}
			if rip := m.frame(1)[0]; m.vector() != 0x30 || rip != want {
				t.Errorf("vector %d taken at %#x, want 0x30 at %#x", m.vector(), rip, want)
			}
		})
	}
	t.Run("sti-hlt", func(t *testing.T) {
		// HLT runs inside the STI shadow and exits; the interrupt is
		// delivered on the next Run with RIP after the HLT.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "sti\n hlt\nn: inc rax\n hlt")
		m.cpu.SetIRQ(0x30)
		e := m.runExit(100)
		if e.Reason != cpu.ExitHLT || m.cpu.rip != p.addr(t, "n") {
			t.Fatalf("exit %v at rip %#x, want HLT exit with RIP %#x", e.Reason, m.cpu.rip, p.addr(t, "n"))
		}
		if !m.cpu.IRQPending() {
			t.Fatalf("IRQ delivered before the HLT exit")
		}
		m.runToHLT(100)
		if rip := m.frame(1)[0]; m.vector() != 0x30 || rip != p.addr(t, "n") || m.reg(cpu.RAX) != 0 {
			t.Errorf("vector %d taken at %#x RAX %d, want 0x30 at %#x", m.vector(), rip, m.reg(cpu.RAX), p.addr(t, "n"))
		}
	})
	t.Run("fault-in-shadow", func(t *testing.T) {
		// The instruction after STI faults: delivering the fault ends the
		// shadow, so with a trap gate (IF stays 1) the interrupt is taken
		// before the first instruction of the handler.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "sti\nf: ud2\n hlt")
		m.setIDT(cpu.ExcUD, tmHltBase+cpu.ExcUD, 0xf, 0, 0)
		m.cpu.SetIRQ(0x30)
		m.runToHLT(100)
		if m.vector() != 0x30 {
			t.Fatalf("stopped in vector %d, want 0x30", m.vector())
		}
		// The #UD frame (5 qwords at KSTACK-40) and, after 8 bytes of
		// alignment padding, the interrupt's frame below it.
		f := m.frame(11)
		if f[0] != tmHltBase+cpu.ExcUD || f[6] != p.addr(t, "f") || m.reg(cpu.RSP) != tmKStack-48-40 {
			t.Errorf("interrupt frame RIP %#x at %#x, #UD frame RIP %#x; want %#x, %#x", f[0], m.reg(cpu.RSP), f[6], tmHltBase+cpu.ExcUD, p.addr(t, "f"))
		}
	})
	t.Run("cli-masks", func(t *testing.T) {
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "sti\n cli\n inc rax\n inc rax\n hlt")
		m.cpu.SetIRQ(0x30)
		m.runToHLT(100)
		if m.vector() != -1 || m.reg(cpu.RAX) != 2 || !m.cpu.IRQPending() {
			t.Errorf("vector %d RAX %d pending %v: STI;CLI must not open a window", m.vector(), m.reg(cpu.RAX), m.cpu.IRQPending())
		}
	})
	t.Run("irq-window", func(t *testing.T) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "nop\n sti\ni1: inc rax\ni2: hlt")
		m.cpu.RequestIRQWindow(true)
		e := m.runExit(100)
		if e.Reason != cpu.ExitIRQWindow || m.cpu.rip != p.addr(t, "i2") {
			t.Errorf("exit %v at %#x, want irq-window at %#x (after the STI shadow)", e.Reason, m.cpu.rip, p.addr(t, "i2"))
		}
	})
}
