package interp

import (
	"encoding/binary"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Test machine layout (guest-physical = guest-virtual, identity mapped):
//
//	0x1000  PML4       0x2000  PDPT       0x3000  PD (0-1 GiB, 2 MiB pages)
//	0x5000  GDT        0x6000  IDT        0x7000  TSS
//	0x8000  IST1 stack top (0x9000)       0x70000 kernel stack top
//	0x80000 user stack top                0x100000 code
//	0x200000- data
//
// GDT follows Linux's layout so SYSCALL/SYSRET selectors match:
// 0x10 kernel CS, 0x18 kernel DS, 0x20 user32 CS, 0x28 user DS, 0x30 user CS,
// 0x40 TSS (16 bytes).
const (
	tmPML4     = 0x1000
	tmPDPT     = 0x2000
	tmPD       = 0x3000
	tmGDT      = 0x5000
	tmIDT      = 0x6000
	tmTSS      = 0x7000
	tmIST1     = 0x9000
	tmKStack   = 0x70000
	tmUStack   = 0x80000
	tmCode     = 0x100000
	tmData     = 0x200000
	tmMemSize  = 64 << 20
	tmKernelCS = 0x10
	tmKernelDS = 0x18
	tmUserDS   = 0x2b
	tmUserCS   = 0x33
	tmTSSSel   = 0x40
)

type testMachine struct {
	t   testing.TB
	ram []byte
	mem *Memory
	cpu *CPU
}

func newTestMachineMode(t testing.TB, mode cpu.Mode, code []byte) *testMachine {
	t.Helper()
	return buildMachine(t, mode, code, tmMemSize)
}

// buildMachine lays out the test machine above in ramSize bytes of RAM.
func buildMachine(t testing.TB, mode cpu.Mode, code []byte, ramSize int) *testMachine {
	t.Helper()
	ram := make([]byte, ramSize)
	m := &testMachine{t: t, ram: ram, mem: NewMemory(ram)}
	le := binary.LittleEndian
	// Page tables: 1 GiB identity map with 2 MiB pages, user-accessible, writable.
	le.PutUint64(ram[tmPML4:], tmPDPT|ptP|ptW|ptU)
	le.PutUint64(ram[tmPDPT:], tmPD|ptP|ptW|ptU)
	for i := uint64(0); i < 512; i++ {
		le.PutUint64(ram[tmPD+i*8:], i<<21|ptP|ptW|ptU|ptPS)
	}
	// GDT.
	gdt := []uint64{
		0, 0,
		0x00af9b000000ffff, // 0x10 kernel CS: L, P, DPL0, code
		0x00cf93000000ffff, // 0x18 kernel DS
		0x00cffb000000ffff, // 0x20 user32 CS
		0x00cff3000000ffff, // 0x28 user DS
		0x00affb000000ffff, // 0x30 user CS (L)
		0,
	}
	for i, d := range gdt {
		le.PutUint64(ram[tmGDT+i*8:], d)
	}
	// TSS descriptor at 0x40: base tmTSS, limit 0x67, type 9, P.
	tss := uint64(0x67) | uint64(tmTSS&0xffffff)<<16 | uint64(0x89)<<40 | uint64(tmTSS>>24&0xff)<<56
	le.PutUint64(ram[tmGDT+0x40:], tss)
	le.PutUint64(ram[tmGDT+0x48:], 0)
	le.PutUint64(ram[tmTSS+4:], tmKStack) // RSP0
	le.PutUint64(ram[tmTSS+36:], tmIST1)  // IST1
	copy(ram[tmCode:], code)
	c, err := New(Config{Mem: m.mem, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	s := c.SRegs()
	s.CR3 = tmPML4
	s.GDT = cpu.DTable{Base: tmGDT, Limit: 0x4f}
	s.IDT = cpu.DTable{Base: tmIDT, Limit: 0xfff}
	s.TR = cpu.Segment{Selector: tmTSSSel, Base: tmTSS, Limit: 0x67, Attr: 0xb | cpu.SegAttrP}
	if err := c.SetSRegs(s); err != nil {
		t.Fatal(err)
	}
	var r cpu.Regs
	r.RIP = tmCode
	r.GPR[cpu.RSP] = tmKStack
	r.RFLAGS = cpu.FlagsFixed
	c.SetRegs(r)
	m.cpu = c
	return m
}

func newTestMachine(t testing.TB, code []byte) *testMachine {
	return newTestMachineMode(t, cpu.ModeHWAssist, code)
}

// setIDT installs an interrupt gate (type 0xE) or trap gate (0xF) for vector
// vec pointing at handler, with IST ist and DPL dpl.
func (m *testMachine) setIDT(vec int, handler uint64, typ uint8, ist uint8, dpl uint8) {
	lo := handler&0xffff | uint64(tmKernelCS)<<16 | uint64(ist)<<32 |
		uint64(typ)<<40 | uint64(dpl)<<45 | 1<<47 | (handler>>16&0xffff)<<48
	hi := handler >> 32
	binary.LittleEndian.PutUint64(m.ram[tmIDT+vec*16:], lo)
	binary.LittleEndian.PutUint64(m.ram[tmIDT+vec*16+8:], hi)
}

// runToHLT runs until an HLT exit (failing the test on any other exit
// except the ones in allow) within budget instructions.
func (m *testMachine) runToHLT(budget uint64) {
	m.t.Helper()
	for {
		e, err := m.cpu.Run(budget)
		if err != nil {
			m.t.Fatal(err)
		}
		switch e.Reason {
		case cpu.ExitHLT:
			return
		case cpu.ExitCPUID, cpu.ExitMSR, cpu.ExitCR:
			continue // the engine pre-filled the answer
		default:
			m.t.Fatalf("unexpected exit %v at rip %#x: %s", e.Reason, e.RIP, e.Message)
		}
	}
}

func (m *testMachine) reg(r int) uint64 { return m.cpu.r[r] }

func TestSmoke(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc0, 0x05, 0x00, 0x00, 0x00, // mov rax, 5
		0x48, 0x83, 0xc0, 0x07, // add rax, 7
		0x48, 0x89, 0xc3, // mov rbx, rax
		0x48, 0xff, 0xcb, // dec rbx
		0x75, 0xfb, // jnz -5 (dec rbx)
		0xf4, // hlt
	}
	m := newTestMachine(t, code)
	m.runToHLT(1000)
	if got := m.reg(cpu.RAX); got != 12 {
		t.Errorf("rax = %d, want 12", got)
	}
	if got := m.reg(cpu.RBX); got != 0 {
		t.Errorf("rbx = %d, want 0", got)
	}
	if got := m.cpu.rip; got != tmCode+uint64(len(code)) {
		t.Errorf("rip = %#x", got)
	}
}
