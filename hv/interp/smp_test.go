package interp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Two or more vCPUs over one memory (smp.go, lock.go).

// addVCPU adds a vCPU to m's memory with the first vCPU's system state,
// entering at rip.
func (m *testMachine) addVCPU(t testing.TB, id uint32, rip uint64) *CPU {
	t.Helper()
	c, err := New(Config{Mem: m.mem, Mode: m.cpu.mode, ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetSRegs(m.cpu.SRegs()); err != nil {
		t.Fatal(err)
	}
	r := m.cpu.Regs()
	r.RIP = rip
	r.GPR[cpu.RSP] = tmKStack - uint64(id)*0x4000
	c.SetRegs(r)
	return c
}

// runAll runs the vCPUs concurrently until each stops at HLT, failing a
// vCPU that retires more than limit instructions (a lost lock release
// spins forever).
func runAll(t *testing.T, limit uint64, cpus ...*CPU) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(cpus))
	for i, c := range cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if c.retired > limit {
					errs[i] = fmt.Errorf("vCPU %d still running after %d instructions, at rip %#x", i, c.retired, c.rip)
					return
				}
				e, err := c.Run(1 << 20)
				if err != nil {
					errs[i] = err
					return
				}
				switch e.Reason {
				case cpu.ExitHLT:
					return
				case cpu.ExitBudget, cpu.ExitCPUID, cpu.ExitMSR, cpu.ExitCR:
					continue
				default:
					errs[i] = fmt.Errorf("vCPU %d: exit %v at rip %#x: %s", i, e.Reason, e.RIP, e.Message)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// lockedLoops is the concurrent locked-instruction workload: every vCPU
// runs it over the same words.
const lockedLoops = `
start:
	mov r8, NXADD
1:	mov ecx, 1
	lock xadd qword ptr [DATA+0x00], rcx
	dec r8
	jnz 1b

	mov r8, NCAS
2:	mov rax, [DATA+0x08]
3:	lea rdx, [rax+1]
	lock cmpxchg [DATA+0x08], rdx
	jnz 3b
	dec r8
	jnz 2b

	mov r8, NSPIN
4:	mov eax, 1
5:	xchg [DATA+0x10], eax
	test eax, eax
	jnz 5b
	inc qword ptr [DATA+0x18]
	mov dword ptr [DATA+0x10], 0
	dec r8
	jnz 4b

	mov r8, NNARROW
6:	lock inc word ptr [DATA+0x22]
	lock add byte ptr [DATA+0x25], 3
	lock sub dword ptr [DATA+0x2c], 1
	lock bts dword ptr [DATA+0x30], 0
	lock btr dword ptr [DATA+0x30], 0
	dec r8
	jnz 6b

	mov r8, N16
7:	mov rax, [DATA+0x40]
	mov rdx, [DATA+0x48]
8:	lea rbx, [rax+1]
	lea rcx, [rdx+2]
	lock cmpxchg16b [DATA+0x40]
	jnz 8b
	dec r8
	jnz 7b

	mov r8, NSPLIT
9:	mov ecx, 1
	lock xadd qword ptr [DATA+0xffc], rcx
	dec r8
	jnz 9b

	mov r8, NSPLIT
10:	mov eax, [DATA+0x106]
11:	lea edx, [eax+1]
	lock cmpxchg [DATA+0x106], edx
	jnz 11b
	dec r8
	jnz 10b

	mov r8, NSPLIT
12:	mov eax, 1
13:	xchg [DATA+0x1ffe], eax
	test eax, eax
	jnz 13b
	inc qword ptr [DATA+0x2008]
	mov dword ptr [DATA+0x1ffe], 0
	dec r8
	jnz 12b
	hlt
`

// TestConcurrentLocked runs LOCK XADD, CMPXCHG, CMPXCHG16B, narrow
// LOCK ADD/INC/SUB/BTS/BTR and XCHG spin locks on shared words from two
// vCPUs at once, aligned and split across 8-byte regions and a page, and
// checks that no update was lost.
func TestConcurrentLocked(t *testing.T) {
	const (
		nXadd, nCas, nSpin, nNarrow, n16, nSplit = 2_000_000, 1_000_000, 500_000, 300_000, 500_000, 40_000
		nCPU                                     = 2
	)
	if runtime.GOMAXPROCS(0) < 2 {
		t.Logf("GOMAXPROCS %d: the vCPUs interleave but do not run in parallel", runtime.GOMAXPROCS(0))
	}
	src := fmt.Sprintf(".set NXADD, %d\n.set NCAS, %d\n.set NSPIN, %d\n.set NNARROW, %d\n.set N16, %d\n.set NSPLIT, %d\n",
		nXadd, nCas, nSpin, nNarrow, n16, nSplit) + lockedLoops
	m, p := newAsmMachine(t, cpu.ModeHWAssist, src)
	start := p.addr(t, "start")
	m.cpu.rip = start
	cpus := []*CPU{m.cpu}
	for i := 1; i < nCPU; i++ {
		cpus = append(cpus, m.addVCPU(t, uint32(i), start))
	}
	runAll(t, 1<<30, cpus...)

	le := binary.LittleEndian
	d := m.ram[tmData:]
	q := func(off int) uint64 { return le.Uint64(d[off:]) }
	type want struct {
		name string
		got  uint64
		want uint64
	}
	checks := []want{
		{"lock xadd (aligned)", q(0x00), nCPU * nXadd},
		{"lock cmpxchg (aligned)", q(0x08), nCPU * nCas},
		{"xchg spin lock", q(0x18), nCPU * nSpin},
		{"xchg lock word released", uint64(le.Uint32(d[0x10:])), 0},
		{"lock inc word", uint64(le.Uint16(d[0x22:])), nCPU * nNarrow & 0xffff},
		{"lock add byte", uint64(d[0x25]), nCPU * nNarrow * 3 & 0xff},
		{"lock sub dword", uint64(le.Uint32(d[0x2c:])), 1<<32 - nCPU*nNarrow},
		{"lock bts/btr", uint64(le.Uint32(d[0x30:])), 0},
		{"lock cmpxchg16b low", q(0x40), nCPU * n16},
		{"lock cmpxchg16b high", q(0x48), 2 * nCPU * n16},
		{"lock xadd across a page", q(0xffc), nCPU * nSplit},
		{"lock cmpxchg across 8 bytes", uint64(le.Uint32(d[0x106:])), nCPU * nSplit},
		{"xchg spin lock across a page", q(0x2008), nCPU * nSplit},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
	var retries, split, excl uint64
	for _, c := range cpus {
		s := c.Stats()
		retries, split, excl = retries+s.LockRetries, split+s.SplitLocks, excl+s.Exclusive
	}
	total := nCPU * (nXadd + nCas + nSpin + 5*nNarrow + n16 + 3*nSplit)
	t.Logf("%d locked operations on %d vCPUs: %d retried, %d split, %d run alone", total, nCPU, retries, split, excl)
	if split < nCPU*3*nSplit {
		t.Errorf("%d split locked operations took the split path, want at least %d", split, nCPU*3*nSplit)
	}
}

// crossModify: vCPU B (b_start) first writes to the page of A's code, so
// its soft TLB holds write permission to it, then waits for A to run the
// instruction at patch and rewrites that instruction's immediate. A loops
// until it sees the new immediate.
const crossModify = `
b_start:
	mov dword ptr [rip+slot], 1
1:	cmp dword ptr [DATA+0x100], 0
	je 1b
	mov dword ptr [rip+patch+1], 2
	hlt
	.balign 4096
a_start:
patch:	mov eax, 1
	mov dword ptr [DATA+0x100], 1
	cmp eax, 2
	jne a_start
	hlt
	.balign 64
slot:	.long 0
`

// TestCrossModifyingCode checks that a plain store by one vCPU to a page
// another vCPU has decoded invalidates that vCPU's code, even though the
// writer cached write permission to the page before it became code.
func TestCrossModifyingCode(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, crossModify)
	b := m.cpu
	b.rip = p.addr(t, "b_start")
	a := m.addVCPU(t, 1, p.addr(t, "a_start"))
	// B runs alone first, to its wait loop: its TLB now allows writes to
	// A's page, which is not yet code.
	if e, err := b.Run(200); err != nil || e.Reason != cpu.ExitBudget {
		t.Fatalf("B: %v %v", e, err)
	}
	runAll(t, 1<<28, a, b)
	if got := a.r[cpu.RAX]; got != 2 {
		t.Errorf("A's RAX = %d, want 2", got)
	}
	t.Logf("A: %d instructions, %d code invalidations seen by B; B: %d shootdowns waited by A",
		a.retired, b.Stats().CodeInvalidations, a.Stats().Shootdowns)
}

// TestRemoteFlushTLB checks that RemoteFlushTLB, called from another
// goroutine while the vCPU runs, reaches it: the vCPU polls a virtual
// address whose mapping is changed, and sees the new page.
func TestRemoteFlushTLB(t *testing.T) {
	p := asmAt(t, tmCode, `
start:
1:	mov rax, [0x800000]
	cmp rax, 0x2222
	jne 1b
	hlt
`)
	m := newSizedMachine(t, cpu.ModeHWAssist, p.code, 16<<20)
	le := binary.LittleEndian
	le.PutUint64(m.ram[0x800000:], 0x1111)
	le.PutUint64(m.ram[0xa00000:], 0x2222)
	c := m.cpu
	c.rip = p.addr(t, "start")
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if i == 1 {
				close(started)
			}
			if c.retired > 1<<28 {
				done <- fmt.Errorf("still polling after %d instructions: the flush did not reach the vCPU", c.retired)
				return
			}
			e, err := c.Run(1 << 16)
			if err != nil || e.Reason == cpu.ExitHLT {
				done <- err
				return
			}
			if e.Reason != cpu.ExitBudget {
				done <- fmt.Errorf("exit %v", e.Reason)
				return
			}
		}
	}()
	<-started
	// Remap 0x800000 (PD entry 4) to the page at 0xa00000, as another vCPU
	// would before its shootdown, then flush the running vCPU remotely.
	le.PutUint64(m.ram[tmPD+4*8:], 0xa00000|ptP|ptW|ptU|ptPS)
	c.RemoteFlushTLB(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLocked measures locked instructions per vCPU: one vCPU (the
// plain handler), two vCPUs on one shared word (transactions that
// contend), two vCPUs on words of their own (transactions that do not),
// and a split lock (the other vCPU parked each time).
func BenchmarkLocked(b *testing.B) {
	const loop = `
start:
1:	lock inc qword ptr [rdi]
	dec r8
	jnz 1b
	hlt
`
	for _, bc := range []struct {
		name  string
		cpus  int
		addrs [2]uint64
	}{
		{"1vcpu", 1, [2]uint64{tmData}},
		{"2vcpu-shared", 2, [2]uint64{tmData, tmData}},
		{"2vcpu-private", 2, [2]uint64{tmData, tmData + 0x1000}},
		{"2vcpu-split", 2, [2]uint64{tmData + 0xffc, tmData + 0xffc}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := asmAt(b, tmCode, loop)
			m := newSizedMachine(b, cpu.ModeHWAssist, p.code, tmSmallRAM)
			cpus := []*CPU{m.cpu}
			for i := 1; i < bc.cpus; i++ {
				cpus = append(cpus, m.addVCPU(b, uint32(i), 0))
			}
			n := uint64(b.N)
			for _, a := range bc.addrs {
				clear(m.ram[a : a+8])
			}
			for i, c := range cpus {
				c.rip = p.addr(b, "start")
				c.r[cpu.RDI], c.r[cpu.RCX], c.r[8] = bc.addrs[i], 1, n
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range cpus {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						e, _ := c.Run(1 << 20)
						if e.Reason != cpu.ExitBudget {
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if got := binary.LittleEndian.Uint64(m.ram[bc.addrs[0]:]); bc.addrs[0] == bc.addrs[len(cpus)-1] && got != n*uint64(len(cpus)) {
				b.Fatalf("counter %d, want %d", got, n*uint64(len(cpus)))
			}
		})
	}
}
