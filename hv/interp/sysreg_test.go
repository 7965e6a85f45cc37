package interp

import (
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
)

// emulBus is the test machine as hv/emul reaches it: no devices, RAM.
type emulBus struct{ m *testMachine }

func (emulBus) In(port uint16, size int) uint32     { return 0xffffffff }
func (emulBus) Out(port uint16, size int, v uint32) {}

func (b emulBus) Slice(gpa, n uint64) ([]byte, bool) {
	if gpa+n < gpa || gpa+n > uint64(len(b.m.ram)) {
		return nil, false
	}
	return b.m.ram[gpa : gpa+n], true
}

func (b emulBus) Invalidate(gpa, n uint64) { b.m.mem.Invalidate(gpa, n) }

// runEmulated runs to a HLT as the hypervisor would in the machine's mode:
// privileged instructions go to hv/emul. It returns the vector of the HLT
// handler reached, or -1 for a HLT outside the handlers.
func runEmulated(t *testing.T, m *testMachine) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		e := m.runExit(200)
		switch e.Reason {
		case cpu.ExitHLT:
			return m.vector()
		case cpu.ExitPrivileged:
			if e.InstLen == 1 && e.Inst[0] == 0xf4 {
				m.cpu.rip++
				return m.vector()
			}
			if _, _, err := emul.Emulate(m.cpu, e.Inst[:e.InstLen], emulBus{m}, emulBus{m}); err != nil {
				t.Fatalf("emulator: %v", err)
			}
		default:
			t.Fatalf("exit %v at %#x: %s", e.Reason, e.RIP, e.Message)
		}
	}
	t.Fatal("no HLT reached")
	return 0
}

// TestSystemRegisterRules: MOV to CR0/CR3/CR4/CR8 and WRMSR follow the same
// rules (hv/cpu) in every mode: executed by the engine, exited to the
// hypervisor after the engine checked them (hwassist), or emulated by
// hv/emul (pv, trap).
func TestSystemRegisterRules(t *testing.T) {
	const wrmsr = "mov rax, rdx\n shr rdx, 32\nf: wrmsr\n hlt"
	cases := []struct {
		name string
		src  string // "f" labels the instruction that may fault
		gp   bool
		rax  uint64 // checked when !gp and non-zero
	}{
		{"cr0-bit32", "mov rax, cr0\n bts rax, 32\nf: mov cr0, rax\n hlt", true, 0},
		{"cr0-reserved-bit6", "mov rax, cr0\n or rax, 0x40\nf: mov cr0, rax\n hlt", true, 0},
		{"cr0-clear-pg", "mov rax, cr0\n btr rax, 31\nf: mov cr0, rax\n hlt", true, 0},
		{"cr0-nw-without-cd", "mov rax, cr0\n bts rax, 29\nf: mov cr0, rax\n hlt", true, 0},
		{"cr0-ts", "mov rax, cr0\n or rax, 8\nf: mov cr0, rax\n mov rax, cr0\n and rax, 8\n hlt", false, 8},
		{"cr4-umip-not-advertised", "mov rax, cr4\n bts rax, 11\nf: mov cr4, rax\n hlt", true, 0},
		{"cr4-smep-not-advertised", "mov rax, cr4\n bts rax, 20\nf: mov cr4, rax\n hlt", true, 0},
		{"cr4-bit63", "mov rax, cr4\n bts rax, 63\nf: mov cr4, rax\n hlt", true, 0},
		{"cr4-pge", "mov rax, cr4\n or rax, 0x80\nf: mov cr4, rax\n mov rax, cr4\n and rax, 0x80\n hlt", false, 0x80},
		{"cr3-above-maxphyaddr", "mov rax, cr3\n bts rax, 40\nf: mov cr3, rax\n hlt", true, 0},
		{"cr3-bit63-hint", "mov rax, cr3\n bts rax, 63\nf: mov cr3, rax\n mov rax, cr3\n hlt", false, tmPML4},
		{"cr8-reserved", "mov eax, 0x10\nf: mov cr8, rax\n hlt", true, 0},
		{"cr8", "mov eax, 0xf\nf: mov cr8, rax\n mov rax, cr8\n hlt", false, 0xf},
		{"efer-clear-lme", "mov ecx, 0xc0000080\n rdmsr\n btr eax, 8\nf: wrmsr\n hlt", true, 0},
		{"efer-reserved", "mov ecx, 0xc0000080\n rdmsr\n bts eax, 14\nf: wrmsr\n hlt", true, 0},
		{"lstar-noncanonical", "mov ecx, 0xc0000082\n mov rdx, 0x800000000000\n" + wrmsr, true, 0},
		{"pat-invalid", "mov ecx, 0x277\n mov rdx, 0x0007040600070402\n" + wrmsr, true, 0},
		{"tsc-write", "mov ecx, 0x10\n mov rdx, 0x100000000000\n" + wrmsr[:len(wrmsr)-4] + "\n rdmsr\n shl rdx, 32\n or rax, rdx\n shr rax, 40\n hlt", false, 0x10},
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		for _, tc := range cases {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				m, p := newAsmMachine(t, mode, tc.src)
				v := runEmulated(t, m)
				if tc.gp {
					if v != cpu.ExcGP {
						t.Fatalf("vector %d, want #GP", v)
					}
					if f := m.frame(2); f[0] != 0 || f[1] != p.addr(t, "f") {
						t.Errorf("#GP(%#x) at %#x, want #GP(0) at %#x", f[0], f[1], p.addr(t, "f"))
					}
					return
				}
				if v != -1 {
					t.Fatalf("vector %d at %#x, want no fault", v, m.cpu.rip)
				}
				if tc.rax != 0 && m.reg(cpu.RAX) != tc.rax {
					t.Errorf("RAX %#x, want %#x", m.reg(cpu.RAX), tc.rax)
				}
			})
		}
	}
}

// countingBus answers port reads with successive bytes and records writes.
type countingBus struct {
	emulBus
	next byte
	outs []byte
}

func (b *countingBus) In(port uint16, size int) uint32 {
	var v uint32
	for i := 0; i < size; i++ {
		b.next++
		v |= uint32(b.next) << (8 * i)
	}
	return v
}

func (b *countingBus) Out(port uint16, size int, v uint32) {
	for i := 0; i < size; i++ {
		b.outs = append(b.outs, byte(v>>(8*i)))
	}
}

// TestEmulatedStringIO: in pv and trap mode, where port I/O is a
// privileged exit, hv/emul carries out INS and OUTS (one element per exit
// under REP), LMSW, and RDPMC (#GP(0): no counters are advertised).
func TestEmulatedStringIO(t *testing.T) {
	const src = `
	lea rdi, [rip+buf]
	mov ecx, 5
	mov dx, 0x80
	rep insb
	mov r8, rcx
	lea rsi, [rip+buf]
	mov ecx, 2
	rep outsw
	mov r9, rcx
	mov ax, 0x8
	lmsw ax
	mov r10, cr0
	xor eax, eax
	lmsw ax
	mov r11, cr0
	xor ecx, ecx
f:	rdpmc
	hlt
buf:
	.quad 0
`
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap} {
		t.Run(mode.String(), func(t *testing.T) {
			m, p := newAsmMachine(t, mode, src)
			bus := &countingBus{emulBus: emulBus{m}}
			var vec int
			for i := 0; ; i++ {
				if i > 100 {
					t.Fatal("no HLT reached")
				}
				e := m.runExit(200)
				if e.Reason == cpu.ExitHLT || e.Reason == cpu.ExitPrivileged && e.InstLen == 1 && e.Inst[0] == 0xf4 {
					if e.Reason == cpu.ExitPrivileged {
						m.cpu.rip++
					}
					vec = m.vector()
					break
				}
				if e.Reason != cpu.ExitPrivileged {
					t.Fatalf("exit %v at %#x: %s", e.Reason, e.RIP, e.Message)
				}
				if _, _, err := emul.Emulate(m.cpu, e.Inst[:e.InstLen], bus, bus); err != nil {
					t.Fatalf("emulator: %v", err)
				}
			}
			buf := p.addr(t, "buf")
			if got := m.ram[buf : buf+6]; string(got) != "\x01\x02\x03\x04\x05\x00" {
				t.Errorf("rep insb stored % x, want 01 02 03 04 05 00", got)
			}
			if r8, r9 := m.reg(cpu.R8), m.reg(cpu.R9); r8 != 0 || r9 != 0 {
				t.Errorf("RCX after rep insb %d, after rep outsw %d, want 0", r8, r9)
			}
			if string(bus.outs) != "\x01\x02\x03\x04" {
				t.Errorf("rep outsw wrote % x, want 01 02 03 04", bus.outs)
			}
			if cr0 := m.reg(cpu.R10); cr0&cpu.CR0TS == 0 || cr0&cpu.CR0PE == 0 {
				t.Errorf("CR0 after lmsw 8: %#x, want TS and PE set", cr0)
			}
			if cr0 := m.reg(cpu.R11); cr0&cpu.CR0TS != 0 || cr0&cpu.CR0PE == 0 {
				t.Errorf("CR0 after lmsw 0: %#x, want TS clear and PE kept", cr0)
			}
			if vec != cpu.ExcGP {
				t.Fatalf("rdpmc: vector %d, want #GP", vec)
			}
			if f := m.frame(2); f[0] != 0 || f[1] != p.addr(t, "f") {
				t.Errorf("rdpmc: #GP(%#x) at %#x, want #GP(0) at %#x", f[0], f[1], p.addr(t, "f"))
			}
		})
	}
}
