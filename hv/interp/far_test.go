package interp

import (
	"encoding/binary"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Extra GDT entries for far-transfer tests (after the harness's TSS at 0x40).
const (
	selUserCSNP = 0x50 // user 64-bit code, not present
	selUserDSNP = 0x58 // user data, not present
	selGate     = 0x60 // 64-bit call gate (16 bytes), DPL 3, to KCS:"kentry"
	selKCSLD    = 0x70 // kernel code with L and D both set (reserved)
	selKDSRO    = 0x78 // kernel read-only data
	selGateK    = 0x80 // 64-bit call gate, DPL 0
	selUser32CS = 0x20 // the harness's user32 CS (L=0, D=1): Linux's __USER32_CS
)

// farMachine builds a test machine in hwassist mode with the extra
// descriptors; gate points the call gates at label "kentry" if present.
func farMachine(t *testing.T, src string) (*testMachine, asmProg) {
	t.Helper()
	m, p := newAsmMachine(t, cpu.ModeHWAssist, src)
	le := binary.LittleEndian
	put := func(sel int, d uint64) { le.PutUint64(m.ram[tmGDT+sel:], d) }
	put(selUserCSNP, 0x00af7b000000ffff)
	put(selUserDSNP, 0x00cf73000000ffff)
	put(selKCSLD, 0x00ef9b000000ffff)
	put(selKDSRO, 0x00cf91000000ffff)
	if k, ok := p.sym["kentry"]; ok {
		for _, g := range []struct {
			sel int
			dpl uint64
		}{{selGate, 3}, {selGateK, 0}} {
			put(g.sel, k&0xffff|uint64(tmKernelCS)<<16|(0x80|g.dpl<<5|0xc)<<40|(k>>16&0xffff)<<48)
			put(g.sel+8, k>>32)
		}
	}
	m.setSRegs(func(s *cpu.SRegs) { s.GDT.Limit = 0x8f })
	return m, p
}

// faultAt runs to a HLT handler and checks the vector, error code and
// faulting RIP (label "f").
func faultAt(t *testing.T, m *testMachine, p asmProg, vec int, err uint64) {
	t.Helper()
	m.runToHLT(200)
	if m.vector() != vec {
		t.Fatalf("stopped in vector %d at %#x, want %d", m.vector(), m.cpu.rip, vec)
	}
	f := m.frame(3)
	if f[0] != err || f[1] != p.addr(t, "f") {
		t.Errorf("error %#x at %#x, want %#x at %#x", f[0], f[1], err, p.addr(t, "f"))
	}
}

// TestSoftIntGateDPL: INT n and INT3 from ring 3 through a DPL-0 gate raise
// #GP((vector<<3)|2) at the instruction, delivered normally (not as #DF or
// a triple fault, whatever the vector); INT1 does no DPL check.
func TestSoftIntGateDPL(t *testing.T) {
	for _, tc := range []struct {
		name string
		inst string
		vec  int
	}{
		{"int8", "int 8", 8},
		{"int13", "int 13", 13},
		{"int14", "int 14", 14},
		{"int0x81", "int 0x81", 0x81},
		{"int3", "int3", 3},
		{"int3-cd03", ".byte 0xcd, 3", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, "TOUSER f\nf: "+tc.inst+"\n hlt")
			faultAt(t, m, p, cpu.ExcGP, uint64(tc.vec)<<3|2)
			if f := m.frame(3); m.q(m.cpu.r[cpu.RSP]+16) != tmUserCS {
				t.Errorf("frame %#x: want the user CS", f)
			}
		})
	}
	t.Run("int1", func(t *testing.T) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "TOUSER u\nu: int1\nn: hlt")
		if v := m.runToVector(100); v != cpu.ExcDB {
			t.Fatalf("vector %d, want #DB", v)
		}
		if f := m.frame(2); f[0] != p.addr(t, "n") || f[1] != tmUserCS {
			t.Errorf("#DB frame %#x, want RIP after INT1 %#x", f, p.addr(t, "n"))
		}
	})
	// An external interrupt whose gate faults is delivered as that fault,
	// with EXT set, not as #DF, even on vector 8.
	t.Run("irq8-not-present", func(t *testing.T) {
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "sti\n nop\n1: jmp 1b")
		m.ram[tmIDT+8*16+5] &^= 0x80
		m.cpu.SetIRQ(8)
		if v := m.runToVector(100); v != cpu.ExcNP {
			t.Fatalf("vector %d, want #NP", v)
		}
		if f := m.frame(1); f[0] != 8<<3|2|1 {
			t.Errorf("error %#x, want %#x", f[0], 8<<3|2|1)
		}
	})
}

// TestIretOperandSizes: IRETW and IRETD pop five slots of 2 and 4 bytes,
// to CPL 3 and to the same level.
func TestIretOperandSizes(t *testing.T) {
	const low = 0xa000 // code and stack reachable with 16-bit values
	for _, tc := range []struct {
		name, src string
		rip, cs   uint64
		rsp       uint64
	}{
		{"iretw-user", "push word ptr UDS\n push word ptr 0xf000\n push word ptr 2\n push word ptr UCS\n push word ptr 0xa000\n iretw", low, tmUserCS, 0xf000},
		{"iretd-user", "sub rsp, 20\n lea rax, [rip+dst]\n mov [rsp], eax\n mov dword ptr [rsp+4], UCS\n mov dword ptr [rsp+8], 2\n" +
			"mov dword ptr [rsp+12], USTACK\n mov dword ptr [rsp+16], UDS\n iretd\ndst: int 0x80", 0, tmUserCS, tmUStack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, tc.src)
			copy(m.ram[low:], []byte{0xcd, 0x80}) // int 0x80
			rip := tc.rip
			if rip == 0 {
				rip = p.addr(t, "dst")
			}
			if v := m.runToVector(100); v != 0x80 {
				t.Fatalf("vector %d at %#x", v, m.cpu.rip)
			}
			f := m.frame(5)
			if f[0] != rip+2 || f[1] != tc.cs || f[3] != tc.rsp || f[4] != tmUserDS {
				t.Errorf("frame %#x, want RIP %#x CS %#x RSP %#x SS %#x", f, rip+2, tc.cs, tc.rsp, tmUserDS)
			}
		})
	}
}

// TestFarReturn: LRET of every operand size, with imm16, to the same and
// to an outer level, and its faults.
func TestFarReturn(t *testing.T) {
	type tc struct {
		name string
		src  string // "f" labels the LRET that faults; "dst" the target
		vec  int    // -1: reaches "dst: int 0x80" in user mode
		err  uint64
	}
	cases := []tc{
		{"lretq-same", "push KCS\n lea rax, [rip+dst]\n push rax\n lretq\n hlt\ndst: mov r15, 1\n hlt", -2, 0},
		{"lretd-same", "sub rsp, 8\n mov dword ptr [rsp+4], KCS\n lea rax, [rip+dst]\n mov [rsp], eax\n lret\n hlt\ndst: mov r15, 1\n hlt", -2, 0},
		{"lretq-imm-outer", "push UDS\n push USTACK-16\n push 0\n push 0\n push UCS\n lea rax, [rip+dst]\n push rax\n lretq 16\ndst: int 0x80", -1, 0},
		{"lret-null-cs", "push 0\n push 0\nf: lretq", cpu.ExcGP, 0},
		{"lret-rpl-below-cpl", "TOUSER u\nu: push KCS\n push 0\nf: lretq", cpu.ExcGP, tmKernelCS},
		{"lret-not-present", "push UDS\n push USTACK\n push 0x53\n push 0\nf: lretq", cpu.ExcNP, selUserCSNP},
		{"lret-ld-reserved", "push 0x70\n push 0\nf: lretq", cpu.ExcGP, selKCSLD},
		{"lret-noncanonical", "push KCS\n mov rax, 0x800000000000\n push rax\nf: lretq", cpu.ExcGP, 0},
		{"lret-ss-rpl", "push 0x28\n push USTACK\n push UCS\n push 0\nf: lretq", cpu.ExcGP, 0x28},
		{"lret-ss-kernel", "push KDS\n push USTACK\n push UCS\n push 0\nf: lretq", cpu.ExcGP, tmKernelDS},
		{"lret-ss-not-present", "push 0x5b\n push USTACK\n push UCS\n push 0\nf: lretq", cpu.ExcSS, selUserDSNP},
		{"lret-ss-null-user", "push 0\n push USTACK\n push UCS\n push 0\nf: lretq", cpu.ExcGP, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, p := farMachine(t, c.src)
			switch c.vec {
			case -2:
				m.runToHLT(100)
				if m.reg(cpu.R15) != 1 || m.cpu.sreg[segCS].Selector != tmKernelCS || m.reg(cpu.RSP) != tmKStack {
					t.Errorf("R15 %d CS %#x RSP %#x", m.reg(cpu.R15), m.cpu.sreg[segCS].Selector, m.reg(cpu.RSP))
				}
			case -1:
				if v := m.runToVector(100); v != 0x80 {
					t.Fatalf("vector %d at %#x", v, m.cpu.rip)
				}
				f := m.frame(5)
				// lretq 16 released 16 bytes from the user stack too.
				if f[0] != p.addr(t, "dst")+2 || f[1] != tmUserCS || f[3] != tmUStack || f[4] != tmUserDS {
					t.Errorf("frame %#x", f)
				}
			default:
				faultAt(t, m, p, c.vec, c.err)
			}
		})
	}
	// LRETW to a 16-bit address; the return to CPL 3 nulls DS/ES/FS/GS
	// that held DPL-0 data.
	t.Run("lretw-outer-nulls-data", func(t *testing.T) {
		m, _ := farMachine(t, "mov ax, KDS\n mov ds, ax\n mov es, ax\n mov fs, ax\n mov gs, ax\n"+
			"push word ptr UDS\n push word ptr 0xf000\n push word ptr UCS\n push word ptr 0xa000\n lretw")
		copy(m.ram[0xa000:], []byte{0xcd, 0x80})
		if v := m.runToVector(100); v != 0x80 {
			t.Fatalf("vector %d at %#x", v, m.cpu.rip)
		}
		if f := m.frame(5); f[0] != 0xa002 || f[3] != 0xf000 {
			t.Errorf("frame %#x", f)
		}
		for _, s := range []int{segES, segDS, segFS, segGS} {
			if m.cpu.sreg[s].Selector != 0 {
				t.Errorf("segment %d selector %#x, want null", s, m.cpu.sreg[s].Selector)
			}
		}
	})
}

// TestFarJmpCall: FF /5 and FF /3 with m16:16, m16:32 and m16:64, to code
// segments and through call gates, and their faults.
func TestFarJmpCall(t *testing.T) {
	// ptr writes a far pointer to DATA: offset (of label or value) of size
	// n, then the selector.
	const ptr = `
.macro FARPTR n, sel, off
	lea rax, [rip+\off]
	mov rbx, DATA
	.if \n == 2
	mov [rbx], ax
	mov word ptr [rbx+2], \sel
	.elseif \n == 4
	mov [rbx], eax
	mov word ptr [rbx+4], \sel
	.else
	mov [rbx], rax
	mov word ptr [rbx+8], \sel
	.endif
.endm
`
	t.Run("jmp-sizes", func(t *testing.T) {
		for _, tc := range []struct{ name, src string }{
			{"m16:32", "FARPTR 4, KCS, dst\n jmp fword ptr [rbx]\n hlt"},
			{"m16:64", "FARPTR 8, KCS, dst\n .byte 0x48, 0xff, 0x2b\n hlt"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m, _ := farMachine(t, ptr+tc.src+"\ndst: mov r15, 1\n hlt")
				m.runToHLT(100)
				if m.reg(cpu.R15) != 1 {
					t.Errorf("far JMP did not reach its target (rip %#x)", m.cpu.rip)
				}
			})
		}
		t.Run("m16:16", func(t *testing.T) {
			m, _ := farMachine(t, "mov rbx, DATA\n mov word ptr [rbx], 0xa000\n mov word ptr [rbx+2], KCS\n .byte 0x66, 0xff, 0x2b")
			copy(m.ram[0xa000:], []byte{0xf4})
			m.runToHLT(100)
			if m.cpu.rip != 0xa001 {
				t.Errorf("stopped at %#x, want the HLT at 0xa000", m.cpu.rip)
			}
		})
	})
	t.Run("call-lret", func(t *testing.T) {
		for _, tc := range []struct {
			name, src string
			n         uint64
		}{
			{"m16:32", "FARPTR 4, KCS, dst\n call fword ptr [rbx]\nback: hlt", 4},
			{"m16:64", "FARPTR 8, KCS, dst\n .byte 0x48, 0xff, 0x1b\nback: hlt", 8},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ret := "lret"
				if tc.n == 8 {
					ret = "lretq"
				}
				m, p := farMachine(t, ptr+tc.src+"\ndst: mov r14, [rsp]\n mov r13, [rsp+"+itoa(tc.n)+"]\n mov r15, rsp\n "+ret)
				m.runToHLT(100)
				mask := uint64(1)<<(8*tc.n) - 1
				if tc.n == 8 {
					mask = ^uint64(0)
				}
				if m.reg(cpu.R14)&mask != p.addr(t, "back") || m.reg(cpu.R13)&0xffff != tmKernelCS || m.reg(cpu.R15) != tmKStack-2*tc.n {
					t.Errorf("pushed RIP %#x CS %#x at RSP %#x", m.reg(cpu.R14), m.reg(cpu.R13), m.reg(cpu.R15))
				}
				if m.cpu.rip != p.addr(t, "back")+1 || m.reg(cpu.RSP) != tmKStack {
					t.Errorf("after LRET: RIP %#x RSP %#x", m.cpu.rip, m.reg(cpu.RSP))
				}
			})
		}
	})
	// A call gate from ring 3 to ring 0: new stack from TSS.RSP0, with the
	// old SS, RSP, CS, RIP on it; LRETQ returns to ring 3.
	t.Run("call-gate-inner", func(t *testing.T) {
		m, p := farMachine(t, ptr+"TOUSER u\nu: FARPTR 8, 0x63, dst\n mov rcx, rsp\n .byte 0x48, 0xff, 0x1b\nback: int 0x80\n"+
			"dst: hlt\nkentry: mov r12, [rsp]\n mov r13, [rsp+8]\n mov r14, [rsp+16]\n mov r15, [rsp+24]\n mov r11, rsp\n mov r10, cs\n mov r9, ss\n lretq")
		if v := m.runToVector(100); v != 0x80 {
			t.Fatalf("vector %d at %#x", v, m.cpu.rip)
		}
		want := []uint64{p.addr(t, "back"), tmUserCS, tmUStack, tmUserDS, tmKStack - 32, tmKernelCS, 0}
		got := []uint64{m.reg(cpu.R12), m.reg(cpu.R13), m.reg(cpu.R14), m.reg(cpu.R15), m.reg(cpu.R11), m.reg(cpu.R10), m.reg(cpu.R9)}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("gate frame/state %#x, want %#x", got, want)
				break
			}
		}
		if f := m.frame(5); f[1] != tmUserCS || f[3] != tmUStack {
			t.Errorf("back in user mode: frame %#x", f)
		}
	})
	t.Run("jmp-gate-same-level", func(t *testing.T) {
		m, _ := farMachine(t, ptr+"FARPTR 4, 0x80, dst\n jmp fword ptr [rbx]\ndst: hlt\nkentry: mov r15, 1\n hlt")
		m.runToHLT(100)
		if m.reg(cpu.R15) != 1 {
			t.Errorf("JMP through the call gate did not reach kentry (rip %#x)", m.cpu.rip)
		}
	})
	for _, tc := range []struct {
		name, src string
		vec       int
		err       uint64
	}{
		{"null", "FARPTR 4, 0, dst\nf: jmp fword ptr [rbx]\ndst: hlt", cpu.ExcGP, 0},
		{"beyond-gdt", "FARPTR 4, 0x400, dst\nf: jmp fword ptr [rbx]\ndst: hlt", cpu.ExcGP, 0x400},
		{"tss", "FARPTR 4, 0x40, dst\nf: jmp fword ptr [rbx]\ndst: hlt", cpu.ExcGP, 0x40},
		{"data", "FARPTR 4, KDS, dst\nf: jmp fword ptr [rbx]\ndst: hlt", cpu.ExcGP, tmKernelDS},
		{"dpl3-from-ring0", "FARPTR 4, UCS, dst\nf: jmp fword ptr [rbx]\ndst: hlt", cpu.ExcGP, 0x30},
		{"ring3-to-kernel", "TOUSER u\nu: FARPTR 4, KCS, dst\nf: jmp fword ptr [rbx]\ndst: hlt", cpu.ExcGP, tmKernelCS},
		{"not-present", "TOUSER u\nu: FARPTR 4, 0x53, dst\nf: jmp fword ptr [rbx]\ndst: hlt", cpu.ExcNP, selUserCSNP},
		{"gate-dpl0-from-ring3", "TOUSER u\nu: FARPTR 4, 0x83, dst\nf: call fword ptr [rbx]\ndst: hlt\nkentry: hlt", cpu.ExcGP, selGateK},
		{"jmp-gate-to-inner", "TOUSER u\nu: FARPTR 4, 0x63, dst\nf: jmp fword ptr [rbx]\ndst: hlt\nkentry: hlt", cpu.ExcGP, tmKernelCS},
		{"noncanonical-target", "mov rbx, DATA\n mov rax, 0x800000000000\n mov [rbx], rax\n mov word ptr [rbx+8], KCS\nf: .byte 0x48, 0xff, 0x2b", cpu.ExcGP, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := farMachine(t, ptr+tc.src)
			faultAt(t, m, p, tc.vec, tc.err)
		})
	}
}

// TestCompatibilityMode: a 32-bit code segment loads through IRETQ, LRETQ,
// a far JMP and SYSRET; the first instruction in it raises #UD with the
// 32-bit CS in the frame.
func TestCompatibilityMode(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"iretq", "push UDS\n push USTACK\n push 2\n push 0x23\n lea rax, [rip+dst]\n push rax\n iretq"},
		{"lretq", "push UDS\n push USTACK\n push 0x23\n lea rax, [rip+dst]\n push rax\n lretq"},
		{"ljmp", "TOUSER u\nu: lea rax, [rip+dst]\n mov rbx, DATA\n mov [rbx], eax\n mov word ptr [rbx+4], 0x23\n jmp fword ptr [rbx]"},
		{"sysretl", "mov ecx, 0xc0000081\n xor eax, eax\n mov edx, 0x00230010\n wrmsr\n lea rcx, [rip+dst]\n mov r11, 2\n .byte 0x0f, 0x07"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := farMachine(t, tc.src+"\ndst: nop\n hlt")
			if v := m.runToVector(100); v != cpu.ExcUD {
				t.Fatalf("vector %d at %#x, want #UD", v, m.cpu.rip)
			}
			if f := m.frame(5); f[0] != p.addr(t, "dst") || f[1] != selUser32CS|3 || f[3] != tmUStack && tc.name != "sysretl" {
				t.Errorf("#UD frame %#x, want RIP %#x CS %#x", f, p.addr(t, "dst"), selUser32CS|3)
			}
		})
	}
	t.Run("beyond-limit", func(t *testing.T) {
		m, p := farMachine(t, "push UDS\n push USTACK\n push 2\n push 0x23\n mov rax, 0x100000000\n push rax\nf: iretq")
		faultAt(t, m, p, cpu.ExcGP, 0)
	})
}
