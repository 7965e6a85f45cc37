package interp

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// System-level test helpers: an assembler driver, page-table building and
// exception vectors whose handlers are single HLT instructions.

// asmProg is assembled guest code placed at base.
type asmProg struct {
	base uint64
	code []byte
	sym  map[string]uint64 // label -> guest address
}

// addr returns the guest address of label, failing the test if unknown.
func (p asmProg) addr(t testing.TB, label string) uint64 {
	t.Helper()
	a, ok := p.sym[label]
	if !ok {
		t.Fatalf("no label %q in assembled program", label)
	}
	return a
}

var (
	asmMu    sync.Mutex
	asmCache = map[string]asmProg{}
)

// asmPrelude is prepended to every program: Intel syntax and the test
// machine's layout as assembler constants.
const asmPrelude = `.intel_syntax noprefix
.set KCS, 0x10
.set KDS, 0x18
.set UDS, 0x2b
.set UCS, 0x33
.set KSTACK, 0x70000
.set USTACK, 0x80000
.set DATA, 0x200000
.macro TOUSER label, rsp=USTACK, fl=2
	push UDS
	mov rax, \rsp
	push rax
	push \fl
	push UCS
	lea rax, [rip+\label]
	push rax
	iretq
.endm
.text
`

// assemble assembles src (GNU as, Intel syntax) as code loaded at base.
// The program must be position independent (RIP-relative references only):
// it is not linked. A missing assembler fails the test.
func assemble(t testing.TB, base uint64, src string) asmProg {
	t.Helper()
	key := src // symbols are kept as offsets: the cache is base-independent
	asmMu.Lock()
	p, ok := asmCache[key]
	asmMu.Unlock()
	if ok {
		p.base = base
		return p
	}
	as, err := exec.LookPath("as")
	if err != nil {
		t.Fatalf("GNU as is needed to assemble test guests (install binutils): %v", err)
	}
	dir := t.TempDir()
	in, obj := filepath.Join(dir, "t.s"), filepath.Join(dir, "t.o")
	if err := os.WriteFile(in, []byte(asmPrelude+src+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(as, "--64", "-o", obj, in)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("as: %v\n%s", err, stderr.String())
	}
	f, err := elf.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text := f.Section(".text")
	if text == nil {
		t.Fatal("assembled object has no .text")
	}
	if f.Section(".rela.text") != nil {
		t.Fatal("program needs relocations: use RIP-relative addressing only")
	}
	code, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	p = asmProg{base: base, code: code, sym: map[string]uint64{}}
	for _, s := range syms {
		if int(s.Section) < len(f.Sections) && f.Sections[s.Section] == text && elf.ST_TYPE(s.Info) != elf.STT_SECTION {
			p.sym[s.Name] = s.Value // offset; made absolute below
		}
	}
	asmMu.Lock()
	asmCache[key] = p
	asmMu.Unlock()
	return p
}

// at returns the program's symbols as absolute addresses.
func (p asmProg) at() asmProg {
	q := asmProg{base: p.base, code: p.code, sym: make(map[string]uint64, len(p.sym))}
	for k, v := range p.sym {
		q.sym[k] = p.base + v
	}
	return q
}

// asmAt assembles src for base and returns it with absolute symbols.
func asmAt(t testing.TB, base uint64, src string) asmProg {
	t.Helper()
	return assemble(t, base, src).at()
}

// newAsmMachine assembles src at tmCode and builds a test machine in mode
// with it, with single-HLT handlers on every vector.
func newAsmMachine(t testing.TB, mode cpu.Mode, src string) (*testMachine, asmProg) {
	t.Helper()
	p := asmAt(t, tmCode, src)
	return newSizedMachine(t, mode, p.code, tmSmallRAM), p
}

// tmSmallRAM is the RAM of machines built by newAsmMachine: enough for the
// layout and the page-table pool, and much cheaper to allocate per test
// case than the harness's 64 MiB.
const tmSmallRAM = 16 << 20

// newSizedMachine builds the harness's test machine (same layout, page
// tables mapping 1 GiB, GDT, TSS) with ramSize bytes of RAM and single-HLT
// handlers on every vector. Addresses beyond RAM are MMIO.
func newSizedMachine(t testing.TB, mode cpu.Mode, code []byte, ramSize int) *testMachine {
	t.Helper()
	m := buildMachine(t, mode, code, ramSize)
	m.hltHandlers()
	return m
}

// Exception handlers: vector v's gate points at tmHltBase+v, a single HLT.
// After the HLT exit, RIP-1-tmHltBase is the vector and RSP points at the
// frame the delivery pushed.
const (
	tmHltBase = 0x90000
	tmPTPool  = 0x800000 // page tables built by tests, upward
	tmPTEnd   = 0x1000000
)

// hltHandlers installs interrupt gates for all 256 vectors (DPL 0, no IST;
// vector 0x80 has DPL 3 for user-mode "done" calls).
func (m *testMachine) hltHandlers() {
	for v := 0; v < 256; v++ {
		m.ram[tmHltBase+v] = 0xf4
		dpl := uint8(0)
		if v == 0x80 {
			dpl = 3
		}
		m.setIDT(v, uint64(tmHltBase+v), 0xe, 0, dpl)
	}
}

// vector returns the vector whose HLT handler the vCPU stopped in, or -1.
func (m *testMachine) vector() int {
	rip := m.cpu.rip - 1
	if rip >= tmHltBase && rip < tmHltBase+256 {
		return int(rip - tmHltBase)
	}
	return -1
}

// q reads a little-endian qword of guest-physical memory.
func (m *testMachine) q(pa uint64) uint64 { return binary.LittleEndian.Uint64(m.ram[pa:]) }

// putq writes a qword of guest-physical memory (from outside the guest).
func (m *testMachine) putq(pa, v uint64) { binary.LittleEndian.PutUint64(m.ram[pa:], v) }

// frame returns n qwords at the current RSP (identity-mapped stack).
func (m *testMachine) frame(n int) []uint64 {
	f := make([]uint64, n)
	for i := range f {
		f[i] = m.q(m.cpu.r[cpu.RSP] + uint64(i)*8)
	}
	return f
}

// runExit runs until an exit other than the ones the engine completes by
// itself (CPUID, MSR, CR in hwassist) and returns it.
func (m *testMachine) runExit(budget uint64) *cpu.Exit {
	m.t.Helper()
	for {
		e, err := m.cpu.Run(budget)
		if err != nil {
			m.t.Fatal(err)
		}
		switch e.Reason {
		case cpu.ExitCPUID, cpu.ExitMSR, cpu.ExitCR:
			continue
		}
		return e
	}
}

// runToVector runs to a HLT exit and returns the vector of the handler it
// stopped in (-1 for a HLT outside the handlers).
func (m *testMachine) runToVector(budget uint64) int {
	m.t.Helper()
	m.runToHLT(budget)
	return m.vector()
}

// ptAlloc hands out zeroed page-table pages from tmPTPool.
func (m *testMachine) ptAlloc() uint64 {
	m.t.Helper()
	// The pool's first page holds the allocation pointer.
	a := m.q(tmPTPool)
	if a == 0 {
		a = tmPTPool + pageSize
	}
	if a >= tmPTEnd {
		m.t.Fatal("test page-table pool exhausted")
	}
	m.putq(tmPTPool, a+pageSize)
	clear(m.ram[a : a+pageSize])
	return a
}

// Leaf levels for mapVA.
const (
	leaf4K = 4
	leaf2M = 3
	leaf1G = 2
)

// mapVA maps va to pa in the hierarchy rooted at pml4. lf[i] holds the
// flag bits (low 12 bits and NX) of the entry at level i (0 PML4E, 1 PDPTE,
// 2 PDE, 3 PTE); the walk stops at depth leaf (leaf4K, leaf2M, leaf1G),
// whose entry gets PS added for large pages. Missing tables are allocated;
// the flags of existing intermediate entries are replaced by lf. It returns
// the guest-physical addresses of the entries, top first.
func (m *testMachine) mapVA(pml4, va, pa uint64, leaf int, lf [4]uint64) []uint64 {
	m.t.Helper()
	const flagMask = 0xfff | ptNX
	table := pml4
	var addrs []uint64
	for lvl := 0; lvl < leaf; lvl++ {
		shift := 39 - 9*uint(lvl)
		ea := table + (va>>shift&511)*8
		addrs = append(addrs, ea)
		if lvl == leaf-1 {
			e := pa | lf[lvl]
			if leaf != leaf4K {
				e |= ptPS
			}
			m.putq(ea, e)
			break
		}
		e := m.q(ea)
		next := e & physAddrMask
		switch {
		case e&ptP != 0 && e&ptPS != 0:
			// A large page in the way: split it into the same mapping
			// one level down.
			next = m.ptAlloc()
			size := uint64(1) << (shift - 9)
			for i := uint64(0); i < 512; i++ {
				sub := e&physAddrMask + i*size | e&0xfff | e&ptNX
				if lvl+1 == leaf4K-1 {
					sub &^= ptPS
				}
				m.putq(next+i*8, sub)
			}
		case e&ptP == 0 || next == 0:
			next = m.ptAlloc()
		}
		m.putq(ea, next|lf[lvl]&flagMask)
		table = next
	}
	return addrs
}

// allFlags is P|W|U at every level.
var allFlags = [4]uint64{ptP | ptW | ptU, ptP | ptW | ptU, ptP | ptW | ptU, ptP | ptW | ptU}

// Test virtual addresses outside the 1 GiB identity map (PML4 slots 1..).
const (
	tvBase = 1 << 39 // PML4 index 1
)

// setEFER, setCR0, setCR4 change control state from outside the guest.
func (m *testMachine) setSRegs(f func(s *cpu.SRegs)) {
	m.t.Helper()
	s := m.cpu.SRegs()
	f(&s)
	if err := m.cpu.SetSRegs(s); err != nil {
		m.t.Fatal(err)
	}
}

// setReg sets one GPR from outside the guest.
func (m *testMachine) setReg(r int, v uint64) { m.cpu.r[r] = v }

// userFrame is the IRETQ frame (RIP, CS, RFLAGS, RSP, SS) that enters user
// mode at rip with the user stack.
func userFrame(rip, rflags uint64) [5]uint64 {
	return [5]uint64{rip, tmUserCS, rflags | cpu.FlagsFixed, tmUStack, tmUserDS}
}
