package interp

import (
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// syscallSetup programs STAR, LSTAR (to label "entry") and SFMASK the way
// Linux does, then enters user mode at "user" with IF set.
const syscallSetup = `
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
	mov eax, 0x47700
	xor edx, edx
	wrmsr
	TOUSER user, USTACK, 0x202
`

func TestSyscallSysret(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, syscallSetup+`
user:
	std
	stc
	mov rax, 42
	mov r11, 0x1111
	mov rcx, 0x2222
	syscall
post:
	pushfq
	pop r14
	int 0x80
entry:
	mov rbx, rsp
	pushfq
	pop rsi
	hlt
	sysretq
`)
	m.runToHLT(100)
	if m.cpu.rip != p.addr(t, "entry")+6 {
		t.Fatalf("stopped at %#x, want the HLT in the SYSCALL entry", m.cpu.rip)
	}
	if m.cpu.cpl != 0 || m.cpu.sreg[segCS].Selector != 0x10 || m.cpu.sreg[segSS].Selector != 0x18 {
		t.Errorf("after SYSCALL: CPL %d CS %#x SS %#x, want 0, 0x10, 0x18", m.cpu.cpl, m.cpu.sreg[segCS].Selector, m.cpu.sreg[segSS].Selector)
	}
	if rcx := m.reg(cpu.RCX); rcx != p.addr(t, "post") {
		t.Errorf("RCX %#x, want the return address %#x", rcx, p.addr(t, "post"))
	}
	userFlags := uint64(cpu.FlagsFixed | cpu.FlagIF | cpu.FlagDF | cpu.FlagCF)
	if r11 := m.reg(cpu.R11); r11&^(cpu.FlagsArith&^cpu.FlagCF) != userFlags {
		t.Errorf("R11 %#x, want the user RFLAGS %#x", r11, userFlags)
	}
	kflags := m.reg(cpu.RSI)
	if kflags&(cpu.FlagIF|cpu.FlagDF|cpu.FlagTF|cpu.FlagAC) != 0 || kflags&cpu.FlagCF == 0 {
		t.Errorf("kernel RFLAGS %#x: SFMASK 0x47700 should clear IF/DF/TF/AC and keep CF", kflags)
	}
	if m.reg(cpu.RBX) != tmUStack || m.reg(cpu.RAX) != 42 {
		t.Errorf("RSP %#x RAX %d changed by SYSCALL", m.reg(cpu.RBX), m.reg(cpu.RAX))
	}
	// Continue: SYSRET back to user mode.
	m.runToHLT(100)
	if m.vector() != 0x80 {
		t.Fatalf("stopped in vector %d", m.vector())
	}
	f := m.frame(5)
	if f[0] != p.addr(t, "post")+5 || f[1] != 0x33 || f[4] != 0x2b || f[3] != tmUStack {
		t.Errorf("user frame after SYSRET: %#x", f)
	}
	if uf := m.reg(cpu.R14); uf&^(cpu.FlagsArith&^cpu.FlagCF) != userFlags {
		t.Errorf("user RFLAGS after SYSRET %#x, want %#x", uf, userFlags)
	}
}

func TestSyscallFaults(t *testing.T) {
	cases := []struct {
		name   string
		src    string // "f" labels the faulting instruction
		noSCE  bool
		vec    int
		hasErr bool
		cs     uint64
	}{
		{"sysret-noncanonical-rcx", "mov rcx, 0x800000000000\n mov r11, 2\nf: sysretq\n hlt", false, cpu.ExcGP, true, tmKernelCS},
		{"sysret-noncanonical-high", "mov rcx, 0xffff000000000000\n mov r11, 2\nf: sysretq\n hlt", false, cpu.ExcGP, true, tmKernelCS},
		{"sysret-from-user", "TOUSER f\nf: sysretq\n hlt", false, cpu.ExcGP, true, tmUserCS},
		{"syscall-without-sce", "f: syscall\n hlt", true, cpu.ExcUD, false, tmKernelCS},
		{"sysret-without-sce", "f: sysretq\n hlt", true, cpu.ExcUD, false, tmKernelCS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, tc.src)
			if tc.noSCE {
				m.setSRegs(func(s *cpu.SRegs) { s.EFER &^= cpu.EFERSCE })
			}
			m.runToHLT(100)
			if m.vector() != tc.vec {
				t.Fatalf("stopped in vector %d at %#x, want %d", m.vector(), m.cpu.rip, tc.vec)
			}
			f := m.frame(3)
			if !tc.hasErr {
				f = append([]uint64{0}, f...)
			}
			if f[0] != 0 || f[1] != p.addr(t, "f") || f[2] != tc.cs {
				t.Errorf("frame %#x, want error 0, RIP %#x, CS %#x", f, p.addr(t, "f"), tc.cs)
			}
		})
	}
}

// TestIretUser enters user mode with IRETQ, takes a software interrupt and
// an external interrupt there, returns with IRETQ each time, and finishes.
func TestIretUser(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, `
	xor r15, r15
	mov ax, 0x18
	mov ds, ax
	mov es, ax
	TOUSER user, USTACK, 0x202
user:
	mov rbx, rsp
	int 0x81
back:
	mov rcx, rsp
1:	cmp r15, 2
	jne 1b
	mov ax, ds
	movzx r12, ax
	mov ax, es
	movzx r13, ax
	int 0x80
h81:
	inc r15
	mov r8, [rsp+8]
	mov r9, [rsp+32]
	iretq
hirq:
	inc r15
	iretq
`)
	m.setIDT(0x81, p.addr(t, "h81"), 0xe, 0, 3)
	m.setIDT(0x30, p.addr(t, "hirq"), 0xe, 0, 0)
	if e := m.runExit(200); e.Reason != cpu.ExitBudget {
		t.Fatalf("exit %v at %#x", e.Reason, e.RIP)
	}
	if m.cpu.cpl != 3 || m.reg(cpu.R15) != 1 {
		t.Fatalf("CPL %d R15 %d: not spinning in user mode after INT 0x81", m.cpu.cpl, m.reg(cpu.R15))
	}
	m.cpu.SetIRQ(0x30)
	m.runToHLT(200)
	if m.vector() != 0x80 {
		t.Fatalf("stopped in vector %d", m.vector())
	}
	if m.reg(cpu.R8) != tmUserCS || m.reg(cpu.R9) != tmUserDS {
		t.Errorf("INT 0x81 frame CS %#x SS %#x", m.reg(cpu.R8), m.reg(cpu.R9))
	}
	if m.reg(cpu.RBX) != tmUStack || m.reg(cpu.RCX) != tmUStack {
		t.Errorf("user RSP %#x before, %#x after IRETQ", m.reg(cpu.RBX), m.reg(cpu.RCX))
	}
	if m.cpu.IRQPending() {
		t.Errorf("IRQ still pending")
	}
	// The return to CPL 3 nulls DS/ES that held a DPL-0 data selector.
	if m.reg(cpu.R12) != 0 || m.reg(cpu.R13) != 0 {
		t.Errorf("DS %#x ES %#x in user mode, want null", m.reg(cpu.R12), m.reg(cpu.R13))
	}
	f := m.frame(5)
	if f[0] != p.addr(t, "h81") || f[1] != tmUserCS {
		t.Errorf("final frame %#x", f)
	}
}

func TestSyscallSwapgs(t *testing.T) {
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, `
	mov ecx, 0xc0000101
	mov eax, 0x200000
	xor edx, edx
	wrmsr
	mov ecx, 0xc0000102
	mov eax, 0x210000
	wrmsr
	mov r8, gs:[8]
	swapgs
	mov rbx, gs:[8]
	mov ecx, 0xc0000102
	rdmsr
	mov rsi, rax
	mov ecx, 0xc0000101
	rdmsr
	mov rdi, rax
	swapgs
	mov rbp, gs:[8]
	hlt
`)
	m.putq(0x200008, 111)
	m.putq(0x210008, 222)
	m.runToHLT(100)
	if m.reg(cpu.R8) != 111 {
		t.Errorf("gs:[8] before SWAPGS %d, want 111", m.reg(cpu.R8))
	}
	if m.reg(cpu.RBX) != 222 || m.reg(cpu.RBP) != 111 {
		t.Errorf("gs:[8] after SWAPGS %d, after the second %d; want 222, 111", m.reg(cpu.RBX), m.reg(cpu.RBP))
	}
	if m.reg(cpu.RSI) != 0x200000 || m.reg(cpu.RDI) != 0x210000 {
		t.Errorf("after SWAPGS: KERNEL_GS_BASE %#x GS_BASE %#x", m.reg(cpu.RSI), m.reg(cpu.RDI))
	}
	if s := m.cpu.SRegs(); s.GS.Base != 0x200000 || m.cpu.MSRs().KernelGSBase != 0x210000 {
		t.Errorf("final GS base %#x kernel GS base %#x", s.GS.Base, m.cpu.MSRs().KernelGSBase)
	}
}

// TestSyscallUserPrivileged: privileged instructions at CPL 3 raise #GP(0)
// in every mode, before the exit table is consulted. Port I/O follows
// IOPL only (the engine has no I/O permission bitmap).
func TestSyscallUserPrivileged(t *testing.T) {
	cases := []struct {
		name string
		inst string
		iopl uint64
		ud   bool // #UD instead of #GP
	}{
		{"hlt", "hlt", 0, false},
		{"cli", "cli", 0, false},
		{"sti", "sti", 0, false},
		{"mov-cr3", "mov cr3, rax", 0, false},
		{"read-cr3", "mov rax, cr3", 0, false},
		{"read-cr0", "mov rax, cr0", 0, false},
		{"wrmsr", "wrmsr", 0, false},
		{"rdmsr", "rdmsr", 0, false},
		{"lgdt", "lgdt [rsp]", 0, false},
		{"lidt", "lidt [rsp]", 0, false},
		{"ltr", "ltr ax", 0, false},
		{"invlpg", "invlpg [rsp]", 0, false},
		{"swapgs", "swapgs", 0, false},
		{"clts", "clts", 0, false},
		{"wbinvd", "wbinvd", 0, false},
		{"mov-dr7", "mov rax, dr7", 0, false},
		{"in", "in al, 0x60", 0, false},
		{"out", "out 0x80, al", 0, false},
		{"out-dx-iopl2", "out dx, al", 2 << 12, false},
		{"outsb", "outsb", 0, false},
		{"cli-iopl2", "cli", 2 << 12, false},
		{"vmcall", "vmcall", 0, true},
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		for _, tc := range cases {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				m, p := newAsmMachine(t, mode, "TOUSER f, USTACK, "+itoa(0x2|tc.iopl)+"\nf: "+tc.inst+"\n int 0x80")
				want := cpu.ExcGP
				if tc.ud {
					want = cpu.ExcUD
				}
				e := m.runExit(100)
				// In pv and trap modes the HLT of the handler is itself
				// handed over as a privileged instruction.
				var vec int
				switch e.Reason {
				case cpu.ExitHLT:
					vec = m.vector()
				case cpu.ExitPrivileged:
					vec = int(e.RIP - tmHltBase)
					if e.RIP < tmHltBase || e.RIP >= tmHltBase+256 {
						t.Fatalf("privileged exit at %#x, inst % x", e.RIP, e.Inst[:e.InstLen])
					}
				default:
					t.Fatalf("exit %v at %#x", e.Reason, e.RIP)
				}
				if vec != want {
					t.Fatalf("vector %d, want %d", vec, want)
				}
				f := m.frame(3)
				if !tc.ud && f[0] != 0 {
					t.Errorf("error code %#x", f[0])
				}
				if tc.ud {
					f = append([]uint64{0}, f...)
				}
				if f[1] != p.addr(t, "f") || f[2] != tmUserCS {
					t.Errorf("frame RIP %#x CS %#x, want %#x %#x", f[1], f[2], p.addr(t, "f"), tmUserCS)
				}
			})
		}
	}
	// With IOPL 3, CLI and port I/O are allowed at CPL 3.
	t.Run("iopl3", func(t *testing.T) {
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "TOUSER f, USTACK, 0x3202\nf: cli\n out 0x80, al\n int 0x80")
		e := m.runExit(100)
		if e.Reason != cpu.ExitIO || e.IO.Port != 0x80 {
			t.Fatalf("exit %v port %#x, want io to 0x80", e.Reason, e.IO.Port)
		}
		if m.cpu.getFlags()&cpu.FlagIF != 0 {
			t.Errorf("CLI at CPL 3 with IOPL 3 left IF set")
		}
	})
}

// TestIretSameLevel: IRETQ to CPL 0 (Linux's sync_core) restores RSP,
// RFLAGS and SS from the frame.
func TestIretSameLevel(t *testing.T) {
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, `
	mov rbx, rsp
	mov ax, ss
	push rax
	push rbx
	push 0x246
	push KCS
	lea rax, [rip+1f]
	push rax
	iretq
1:	mov rcx, rsp
	pushfq
	pop rdx
	hlt
`)
	m.runToHLT(100)
	if m.reg(cpu.RCX) != tmKStack {
		t.Errorf("RSP %#x after IRETQ, want %#x", m.reg(cpu.RCX), tmKStack)
	}
	if fl := m.reg(cpu.RDX); fl&(cpu.FlagIF|cpu.FlagZF|cpu.FlagPF) != cpu.FlagIF|cpu.FlagZF|cpu.FlagPF {
		t.Errorf("RFLAGS %#x after IRETQ, want IF, ZF, PF from the frame", fl)
	}
	if m.cpu.cpl != 0 || m.cpu.sreg[segSS].Selector != tmKernelDS {
		t.Errorf("CPL %d SS %#x", m.cpu.cpl, m.cpu.sreg[segSS].Selector)
	}
}

// TestIretFaults: IRETQ to a more privileged level, to a non-canonical RIP
// or to a user CS with a kernel SS raises #GP with the right error code at
// the IRETQ.
func TestIretFaults(t *testing.T) {
	cases := []struct {
		name  string
		frame string // pushes of SS, RSP, RFLAGS, CS, RIP
		user  bool
		err   uint64
	}{
		{"noncanonical-rip", "push UDS\n push USTACK\n push 2\n push UCS\n mov rax, 0x800000000000\n push rax", false, 0},
		{"user-cs-kernel-ss", "push KDS\n push USTACK\n push 2\n push UCS\n push 0", false, 0x18},
		{"to-cpl0-from-user", "push KDS\n push KSTACK\n push 2\n push KCS\n push 0", true, 0x10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "f: iretq\n hlt"
			if tc.user {
				src = "TOUSER u\nu: " + tc.frame + "\nf: iretq\n hlt"
			} else {
				src = tc.frame + "\n" + src
			}
			m, p := newAsmMachine(t, cpu.ModeHWAssist, src)
			m.runToHLT(100)
			if m.vector() != cpu.ExcGP {
				t.Fatalf("vector %d, want #GP", m.vector())
			}
			f := m.frame(3)
			if f[0] != tc.err || f[1] != p.addr(t, "f") {
				t.Errorf("error %#x RIP %#x, want %#x at %#x", f[0], f[1], tc.err, p.addr(t, "f"))
			}
		})
	}
}
