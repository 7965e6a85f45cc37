package interp

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
)

// typedExit is the exit an ActExit class produces.
var typedExit = map[cpu.Class]cpu.ExitReason{
	cpu.ClassCPUID:     cpu.ExitCPUID,
	cpu.ClassHLT:       cpu.ExitHLT,
	cpu.ClassIO:        cpu.ExitIO,
	cpu.ClassRDMSR:     cpu.ExitMSR,
	cpu.ClassWRMSR:     cpu.ExitMSR,
	cpu.ClassCRRead:    cpu.ExitCR,
	cpu.ClassCR2Read:   cpu.ExitCR,
	cpu.ClassCR0Write:  cpu.ExitCR,
	cpu.ClassCR3Write:  cpu.ExitCR,
	cpu.ClassCR4Write:  cpu.ExitCR,
	cpu.ClassCR8Write:  cpu.ExitCR,
	cpu.ClassDescLoad:  cpu.ExitDescTable,
	cpu.ClassINVLPG:    cpu.ExitINVLPG,
	cpu.ClassHypercall: cpu.ExitHypercall,
}

// exitCase is one sensitive instruction, at label "f" of its program, with
// the registers it needs set by setup.
type exitCase struct {
	name  string
	class cpu.Class
	src   string
	setup func(m *testMachine)
	// execRIP, if set, is the label RIP reaches when the instruction
	// executes (default: the next instruction, label "n").
	execRIP string
	// execVec >= 0: executing the instruction raises this exception.
	execVec int
}

func exitCases() []exitCase {
	cr := func(get func(s cpu.SRegs) uint64) func(m *testMachine) {
		return func(m *testMachine) { m.setReg(cpu.RAX, get(m.cpu.SRegs())) }
	}
	dt := func(m *testMachine) {
		// A pseudo-descriptor equal to the current IDT at DATA.
		binary.LittleEndian.PutUint16(m.ram[tmData:], 0xfff)
		m.putq(tmData+2, tmIDT)
		m.setReg(cpu.RBX, tmData)
	}
	return []exitCase{
		{name: "cpuid", class: cpu.ClassCPUID, src: "cpuid"},
		{name: "hlt", class: cpu.ClassHLT, src: "hlt"},
		{name: "out-imm", class: cpu.ClassIO, src: "out 0x80, al"},
		{name: "in-dx", class: cpu.ClassIO, src: "in eax, dx"},
		{name: "outsb", class: cpu.ClassIO, src: "outsb", setup: func(m *testMachine) { m.setReg(cpu.RSI, tmData) }},
		{name: "rdmsr", class: cpu.ClassRDMSR, src: "rdmsr", setup: func(m *testMachine) { m.setReg(cpu.RCX, cpu.MSREFER) }},
		{name: "wrmsr", class: cpu.ClassWRMSR, src: "wrmsr", setup: func(m *testMachine) { m.setReg(cpu.RCX, cpu.MSRSTAR) }},
		{name: "mov-from-cr0", class: cpu.ClassCRRead, src: "mov rax, cr0"},
		{name: "mov-from-cr3", class: cpu.ClassCRRead, src: "mov rax, cr3"},
		{name: "mov-from-cr2", class: cpu.ClassCR2Read, src: "mov rax, cr2"},
		{name: "mov-to-cr0", class: cpu.ClassCR0Write, src: "mov cr0, rax", setup: cr(func(s cpu.SRegs) uint64 { return s.CR0 })},
		{name: "clts", class: cpu.ClassCR0Write, src: "clts"},
		{name: "lmsw", class: cpu.ClassCR0Write, src: "lmsw ax", setup: cr(func(s cpu.SRegs) uint64 { return s.CR0 })},
		{name: "mov-to-cr3", class: cpu.ClassCR3Write, src: "mov cr3, rax", setup: cr(func(s cpu.SRegs) uint64 { return s.CR3 })},
		{name: "mov-to-cr4", class: cpu.ClassCR4Write, src: "mov cr4, rax", setup: cr(func(s cpu.SRegs) uint64 { return s.CR4 })},
		{name: "mov-to-cr8", class: cpu.ClassCR8Write, src: "mov cr8, rax"},
		{name: "mov-from-dr7", class: cpu.ClassDRAccess, src: "mov rax, dr7"},
		{name: "mov-to-dr7", class: cpu.ClassDRAccess, src: "mov dr7, rax"},
		{name: "lidt", class: cpu.ClassDescLoad, src: "lidt [rbx]", setup: dt},
		{name: "lldt-null", class: cpu.ClassDescLoad, src: "lldt ax"},
		{name: "sidt", class: cpu.ClassDescStore, src: "sidt [rbx]", setup: dt},
		{name: "str", class: cpu.ClassDescStore, src: "str eax"},
		{name: "smsw", class: cpu.ClassDescStore, src: "smsw eax"},
		{name: "invlpg", class: cpu.ClassINVLPG, src: "invlpg [rbx]", setup: dt},
		{name: "wbinvd", class: cpu.ClassCacheCtl, src: "wbinvd"},
		{name: "invd", class: cpu.ClassCacheCtl, src: "invd"},
		{name: "rdtsc", class: cpu.ClassRDTSC, src: "rdtsc"},
		// No performance counters are advertised: executing RDPMC faults.
		{name: "rdpmc", class: cpu.ClassRDPMC, src: "rdpmc", execVec: cpu.ExcGP},
		{name: "vmcall", class: cpu.ClassHypercall, src: "vmcall"},
		{name: "vmmcall", class: cpu.ClassHypercall, src: "vmmcall"},
		{name: "swapgs", class: cpu.ClassSWAPGS, src: "swapgs"},
		{name: "sysretq", class: cpu.ClassSysRet, src: "sysretq", execRIP: "u", setup: func(m *testMachine) {
			m.cpu.msr.STAR = 0x0023001000000000
		}},
		{name: "iretq-to-user", class: cpu.ClassSysRet, src: "iretq", execRIP: "u", setup: func(m *testMachine) {
			m.setReg(cpu.RSP, tmKStack-40)
		}},
	}
}

func TestExitTable(t *testing.T) {
	seen := map[cpu.Class]bool{}
	for _, tc := range exitCases() {
		seen[tc.class] = true
	}
	for cl := cpu.Class(0); cl < cpu.NumClasses; cl++ {
		if !seen[cl] {
			t.Errorf("class %v has no test instruction", cl)
		}
	}
	for mode := cpu.Mode(0); mode < cpu.NumModes; mode++ {
		for _, tc := range exitCases() {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				// "u" is a user-mode target for SYSRET/IRETQ.
				src := "f: " + tc.src + "\nn: hlt\nu: jmp u"
				m, p := newAsmMachine(t, mode, src)
				f, n := p.addr(t, "f"), p.addr(t, "n")
				m.setReg(cpu.RCX, p.addr(t, "u"))
				m.setReg(cpu.R11, 2)
				if tc.name == "iretq-to-user" {
					fr := userFrame(p.addr(t, "u"), 0)
					for i, v := range fr {
						m.putq(tmKStack-40+uint64(i)*8, v)
					}
				}
				if tc.setup != nil {
					tc.setup(m)
				}
				before := m.cpu.Regs()
				instBytes := m.ram[f:n]
				e, err := m.cpu.Run(1)
				if err != nil {
					t.Fatal(err)
				}
				act := cpu.ExitTable[mode][tc.class]
				switch act {
				case cpu.ActPrivileged:
					if e.Reason != cpu.ExitPrivileged {
						t.Fatalf("exit %v, want privileged (table: %v)", e.Reason, act)
					}
					if e.RIP != f || m.cpu.Regs().RIP != f {
						t.Errorf("exit RIP %#x, vCPU RIP %#x, want both at the instruction %#x", e.RIP, m.cpu.Regs().RIP, f)
					}
					if !bytes.Equal(e.Inst[:e.InstLen], instBytes) {
						t.Errorf("exit carries % x, want % x", e.Inst[:e.InstLen], instBytes)
					}
					if r := m.cpu.Regs(); r != before {
						t.Errorf("registers changed by a privileged exit: %+v -> %+v", before, r)
					}
					if n := m.cpu.Stats().Instructions; n != 0 {
						t.Errorf("%d instructions retired", n)
					}
				case cpu.ActExit:
					want, ok := typedExit[tc.class]
					if !ok {
						t.Fatalf("table says exit for %v, which has no typed exit", tc.class)
					}
					if e.Reason != want {
						t.Fatalf("exit %v, want %v", e.Reason, want)
					}
					if e.RIP != f {
						t.Errorf("exit RIP %#x, want %#x", e.RIP, f)
					}
					if m.cpu.rip != n {
						t.Errorf("vCPU RIP %#x after the exit, want %#x", m.cpu.rip, n)
					}
				case cpu.ActExecute:
					if tc.execVec > 0 {
						if e.Reason == cpu.ExitBudget {
							e, _ = m.cpu.Run(1)
						}
						if e.Reason != cpu.ExitHLT || m.vector() != tc.execVec {
							t.Fatalf("exit %v in vector %d, want #%d delivered", e.Reason, m.vector(), tc.execVec)
						}
						return
					}
					if e.Reason != cpu.ExitBudget {
						t.Fatalf("exit %v (%s), want the instruction executed (budget exit)", e.Reason, e.Message)
					}
					want := n
					if tc.execRIP != "" {
						want = p.addr(t, tc.execRIP)
					}
					if m.cpu.rip != want {
						t.Errorf("RIP %#x after executing, want %#x", m.cpu.rip, want)
					}
					if n := m.cpu.Stats().Instructions; n != 1 {
						t.Errorf("%d instructions retired, want 1", n)
					}
				}
			})
		}
	}
}

func TestExitTableIO(t *testing.T) {
	cases := []struct {
		src    string
		rax    uint64
		rdx    uint64
		port   uint16
		size   uint8
		in     bool
		data   uint32 // OUT: what the exit carries; IN: what the hypervisor answers
		after  uint64 // RAX after an IN completes
		reason cpu.ExitReason
	}{
		{src: "out 0x80, al", rax: 0x12345678, port: 0x80, size: 1, data: 0x78},
		{src: "out dx, ax", rax: 0x12345678, rdx: 0x3f8, port: 0x3f8, size: 2, data: 0x5678},
		{src: "out dx, eax", rax: 0xffffffff12345678, rdx: 0x10cf8, port: 0xcf8, size: 4, data: 0x12345678},
		{src: "in al, 0x60", rax: 0xffffffffffffffff, port: 0x60, size: 1, in: true, data: 0xab, after: 0xffffffffffffffab},
		{src: "in ax, dx", rax: 0xffffffffffffffff, rdx: 0x1f0, port: 0x1f0, size: 2, in: true, data: 0xabcd, after: 0xffffffffffffabcd},
		{src: "in eax, dx", rax: 0xffffffffffffffff, rdx: 0xcfc, port: 0xcfc, size: 4, in: true, data: 0x89abcdef, after: 0x89abcdef},
	}
	for _, tc := range cases {
		t.Run(tc.src, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, "f: "+tc.src+"\nn: hlt")
			m.setReg(cpu.RAX, tc.rax)
			m.setReg(cpu.RDX, tc.rdx)
			e := m.runExit(10)
			if e.Reason != cpu.ExitIO || e.RIP != p.addr(t, "f") {
				t.Fatalf("exit %v at %#x", e.Reason, e.RIP)
			}
			if e.IO.Port != tc.port || e.IO.Size != tc.size || e.IO.In != tc.in {
				t.Errorf("port %#x size %d in %v, want %#x %d %v", e.IO.Port, e.IO.Size, e.IO.In, tc.port, tc.size, tc.in)
			}
			if !tc.in && e.IO.Data != tc.data {
				t.Errorf("data %#x, want %#x", e.IO.Data, tc.data)
			}
			if tc.in {
				e.IO.Data = tc.data
			}
			m.runToHLT(10)
			want := tc.rax
			if tc.in {
				want = tc.after
			}
			if m.reg(cpu.RAX) != want {
				t.Errorf("RAX %#x, want %#x", m.reg(cpu.RAX), want)
			}
			if m.cpu.rip != p.addr(t, "n")+1 {
				t.Errorf("RIP %#x", m.cpu.rip)
			}
		})
	}
	t.Run("rep-outsb", func(t *testing.T) {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "f: rep outsb\nn: hlt")
		copy(m.ram[tmData:], "abc")
		m.setReg(cpu.RSI, tmData)
		m.setReg(cpu.RCX, 3)
		m.setReg(cpu.RDX, 0x3f8)
		var got []byte
		for i := 0; i < 3; i++ {
			e := m.runExit(10)
			if e.Reason != cpu.ExitIO || e.IO.Port != 0x3f8 || e.IO.In || e.RIP != p.addr(t, "f") {
				t.Fatalf("exit %d: %v port %#x at %#x", i, e.Reason, e.IO.Port, e.RIP)
			}
			got = append(got, byte(e.IO.Data))
		}
		m.runToHLT(10)
		if string(got) != "abc" || m.reg(cpu.RCX) != 0 || m.reg(cpu.RSI) != tmData+3 {
			t.Errorf("OUTSB sent %q, RCX %d RSI %#x", got, m.reg(cpu.RCX), m.reg(cpu.RSI))
		}
	})
	t.Run("rep-insb", func(t *testing.T) {
		// Each element exits for the port read at the instruction; the
		// data lands at ES:RDI when the vCPU runs again.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "f: rep insb\nn: hlt")
		m.setReg(cpu.RDI, tmData)
		m.setReg(cpu.RCX, 3)
		m.setReg(cpu.RDX, 0x3f8)
		for i := 0; i < 3; i++ {
			e := m.runExit(10)
			if e.Reason != cpu.ExitIO || e.IO.Port != 0x3f8 || !e.IO.In || e.IO.Size != 1 || e.RIP != p.addr(t, "f") {
				t.Fatalf("exit %d: %v port %#x in %v at %#x", i, e.Reason, e.IO.Port, e.IO.In, e.RIP)
			}
			e.IO.Data = uint32('x' + i)
		}
		m.runToHLT(10)
		if got := string(m.ram[tmData : tmData+4]); got != "xyz\x00" || m.reg(cpu.RCX) != 0 || m.reg(cpu.RDI) != tmData+3 {
			t.Errorf("INSB stored %q, RCX %d RDI %#x", got, m.reg(cpu.RCX), m.reg(cpu.RDI))
		}
	})
	t.Run("insd-fault-before-read", func(t *testing.T) {
		// A destination that faults raises #PF before the port is read.
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "f: insd\nn: hlt")
		m.setReg(cpu.RDI, 0x40000000) // beyond the 1 GiB map
		e := m.runExit(10)
		if e.Reason != cpu.ExitHLT || m.vector() != cpu.ExcPF {
			t.Fatalf("exit %v vector %d, want #PF without a port read", e.Reason, m.vector())
		}
		if f := m.frame(2); f[1] != p.addr(t, "f") {
			t.Errorf("#PF at %#x, want %#x", f[1], p.addr(t, "f"))
		}
	})
}

func TestExitTableCPUID(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, "f: cpuid\nn: hlt")
	m.setReg(cpu.RAX, 1)
	m.setReg(cpu.RCX, 7)
	e, _ := m.cpu.Run(10)
	if e.Reason != cpu.ExitCPUID || e.RIP != p.addr(t, "f") || e.CPUID.Leaf != 1 || e.CPUID.Sub != 7 {
		t.Fatalf("exit %v at %#x leaf %#x sub %d", e.Reason, e.RIP, e.CPUID.Leaf, e.CPUID.Sub)
	}
	a, b, c, d := cpu.CPUID(1, 7, 0)
	if e.CPUID.EAX != a || e.CPUID.EBX != b || e.CPUID.ECX != c || e.CPUID.EDX != d {
		t.Errorf("exit not pre-filled with the shaped leaf")
	}
	e.CPUID.EAX, e.CPUID.EBX, e.CPUID.ECX, e.CPUID.EDX = 0x11, 0x22, 0x33, 0x44
	m.runToHLT(10)
	if m.reg(cpu.RAX) != 0x11 || m.reg(cpu.RBX) != 0x22 || m.reg(cpu.RCX) != 0x33 || m.reg(cpu.RDX) != 0x44 {
		t.Errorf("registers %#x %#x %#x %#x, want the hypervisor's answer", m.reg(cpu.RAX), m.reg(cpu.RBX), m.reg(cpu.RCX), m.reg(cpu.RDX))
	}
}

func TestExitTableMSR(t *testing.T) {
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, "rdmsr\n mov rbx, rax\n mov rsi, rdx\n wrmsr\n hlt")
	m.setReg(cpu.RCX, 0x1234) // unknown to the engine
	e, _ := m.cpu.Run(10)
	if e.Reason != cpu.ExitMSR || e.MSR.Write || e.MSR.Known || e.MSR.Index != 0x1234 {
		t.Fatalf("exit %v %+v", e.Reason, e.MSR)
	}
	e.MSR.Value = 0xaabbccdd11223344
	e, _ = m.cpu.Run(10)
	if m.reg(cpu.RBX) != 0x11223344 || m.reg(cpu.RSI) != 0xaabbccdd {
		t.Errorf("RDMSR completed with EDX:EAX %#x:%#x", m.reg(cpu.RSI), m.reg(cpu.RBX))
	}
	if e.Reason != cpu.ExitMSR || !e.MSR.Write || e.MSR.Value != 0xaabbccdd11223344 {
		t.Errorf("WRMSR exit %v %+v", e.Reason, e.MSR)
	}
}

func TestExitTableHypercall(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, "f: vmcall\nn: hlt")
	for i := 0; i < 16; i++ {
		if i != cpu.RSP {
			m.setReg(i, 0x1000+uint64(i))
		}
	}
	before := m.cpu.Regs()
	e, _ := m.cpu.Run(10)
	if e.Reason != cpu.ExitHypercall || e.RIP != p.addr(t, "f") {
		t.Fatalf("exit %v at %#x", e.Reason, e.RIP)
	}
	wantArgs := [6]uint64{before.GPR[cpu.RDI], before.GPR[cpu.RSI], before.GPR[cpu.RDX], before.GPR[cpu.R10], before.GPR[cpu.R8], before.GPR[cpu.R9]}
	if e.Hypercall.Nr != before.GPR[cpu.RAX] || e.Hypercall.Args != wantArgs {
		t.Errorf("nr %#x args %#x, want %#x %#x", e.Hypercall.Nr, e.Hypercall.Args, before.GPR[cpu.RAX], wantArgs)
	}
	e.Hypercall.Ret = 0xfffffffffffffff2
	e, _ = m.cpu.Run(1)
	if e.Reason != cpu.ExitBudget && e.Reason != cpu.ExitHLT {
		t.Fatalf("exit %v after the hypercall", e.Reason)
	}
	after := m.cpu.Regs()
	want := before
	want.GPR[cpu.RAX] = 0xfffffffffffffff2
	want.RIP = after.RIP
	if after != want {
		t.Errorf("registers after the hypercall:\n got %+v\nwant %+v", after, want)
	}
	if after.RIP != p.addr(t, "n") && after.RIP != p.addr(t, "n")+1 {
		t.Errorf("RIP %#x", after.RIP)
	}
}

func TestExitTableBudget(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 7, 64, 65, 100, 1001} {
		m, p := newAsmMachine(t, cpu.ModeHWAssist, "1: inc rax\nj: jmp 1b")
		e, _ := m.cpu.Run(n)
		if e.Reason != cpu.ExitBudget {
			t.Fatalf("budget %d: exit %v", n, e.Reason)
		}
		if got := m.cpu.Stats().Instructions; got != n {
			t.Errorf("budget %d: %d instructions retired", n, got)
		}
		if m.reg(cpu.RAX) != (n+1)/2 {
			t.Errorf("budget %d: RAX %d", n, m.reg(cpu.RAX))
		}
		want := uint64(tmCode)
		if n%2 == 1 {
			want = p.addr(t, "j")
		}
		if e.RIP != want || m.cpu.rip != want {
			t.Errorf("budget %d: exit at %#x, RIP %#x, want %#x", n, e.RIP, m.cpu.rip, want)
		}
	}
	// Straight-line code longer than a block, stopped in the middle.
	src := ""
	for i := 0; i < 150; i++ {
		src += "inc rax\n"
	}
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, src+"hlt")
	for _, n := range []uint64{37, 60, 1} {
		before := m.reg(cpu.RAX)
		m.cpu.Run(n)
		if d := m.reg(cpu.RAX) - before; d != n {
			t.Errorf("Run(%d) ran %d instructions", n, d)
		}
	}
	if m.cpu.rip != tmCode+98*3 {
		t.Errorf("RIP %#x after 98 instructions", m.cpu.rip)
	}
}

func TestExitTableKick(t *testing.T) {
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, "1: inc rax\n jmp 1b")
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
				m.cpu.Kick()
			}
		}
	}()
	e, err := m.cpu.Run(1 << 62)
	close(done)
	wg.Wait()
	if err != nil || e.Reason != cpu.ExitKick {
		t.Fatalf("exit %v err %v, want kick", e.Reason, err)
	}
	if e.RIP != m.cpu.rip {
		t.Errorf("kick exit at %#x, vCPU RIP %#x", e.RIP, m.cpu.rip)
	}
	if m.reg(cpu.RAX) == 0 {
		t.Errorf("guest did not run before the kick")
	}
	// The next Run goes on from where it stopped.
	rax := m.reg(cpu.RAX)
	m.cpu.Run(2)
	if m.reg(cpu.RAX) != rax+1 {
		t.Errorf("RAX %d after resuming, want %d", m.reg(cpu.RAX), rax+1)
	}
}

// TestExitTableMMIO: accesses outside RAM exit with the address, size and
// data; a read completes with the hypervisor's data. Repeated accesses to
// the same MMIO page exit each time.
func TestExitTableMMIO(t *testing.T) {
	const mmio = 0x8000000 // 128 MiB: mapped, beyond the 64 MiB of RAM
	m, p := newAsmMachine(t, cpu.ModeHWAssist, `
f1:	mov eax, [rbx]
f2:	mov ecx, [rbx+8]
f3:	mov dword ptr [rbx+16], 0x12345678
f4:	mov rdx, [rbx+24]
	hlt`)
	m.setReg(cpu.RBX, mmio)
	for i, w := range []struct {
		label string
		off   uint64
		size  uint8
		write bool
		data  uint64
	}{{"f1", 0, 4, false, 0xaabbccdd}, {"f2", 8, 4, false, 0x11223344}, {"f3", 16, 4, true, 0x12345678}, {"f4", 24, 8, false, 0x0102030405060708}} {
		e := m.runExit(10)
		if e.Reason != cpu.ExitMMIO || e.RIP != p.addr(t, w.label) {
			t.Fatalf("access %d: exit %v at %#x (%s)", i, e.Reason, e.RIP, e.Message)
		}
		if e.MMIO.Addr != mmio+w.off || e.MMIO.Size != w.size || e.MMIO.Write != w.write {
			t.Errorf("access %d: %+v", i, e.MMIO)
		}
		if w.write && e.MMIO.Data != w.data {
			t.Errorf("write data %#x", e.MMIO.Data)
		}
		if !w.write {
			e.MMIO.Data = w.data
		}
	}
	m.runToHLT(10)
	if m.reg(cpu.RAX) != 0xaabbccdd || m.reg(cpu.RCX) != 0x11223344 || m.reg(cpu.RDX) != 0x0102030405060708 {
		t.Errorf("reads completed as %#x %#x %#x", m.reg(cpu.RAX), m.reg(cpu.RCX), m.reg(cpu.RDX))
	}
}
