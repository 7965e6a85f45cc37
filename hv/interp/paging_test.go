package interp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// accessProg performs one access to RBX, in kernel mode (RDX = 0) or after
// an IRETQ to user mode (RDX = 1): RCX = 0 reads into RAX, 1 writes RSI,
// 2 calls RBX. Success ends in INT 0x80 (a DPL-3 gate); a fault stops in the
// fault's HLT handler.
const accessProg = `
start:
	test rdx, rdx
	jz kern
	push UDS
	push USTACK
	push 2
	push UCS
	lea rax, [rip+kern]
	push rax
	iretq
kern:
	cmp rcx, 1
	je dowrite
	cmp rcx, 2
	je dofetch
doread:
	mov rax, [rbx]
	int 0x80
dowrite:
	mov [rbx], rsi
	int 0x80
dofetch:
	call rbx
	int 0x80
`

const (
	doRead  = 0
	doWrite = 1
	doFetch = 2
)

// access runs accessProg on m and returns the vector it stopped in, the
// error code (for #PF/#GP) and CR2.
func access(t *testing.T, m *testMachine, va uint64, acc int, user bool) (vec int, errCode, cr2 uint64) {
	t.Helper()
	m.setReg(cpu.RBX, va)
	m.setReg(cpu.RCX, uint64(acc))
	m.setReg(cpu.RSI, 0x1122334455667788)
	if user {
		m.setReg(cpu.RDX, 1)
	}
	vec = m.runToVector(1000)
	if vec == cpu.ExcPF || vec == cpu.ExcGP {
		errCode = m.frame(1)[0]
	}
	return vec, errCode, m.cpu.cr2
}

func newAccessMachine(t *testing.T) *testMachine {
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, accessProg)
	return m
}

func TestPagingSizes(t *testing.T) {
	cases := []struct {
		name   string
		leaf   int
		pa     uint64 // frame base
		offset uint64 // offset of the access inside the page
	}{
		{"4K", leaf4K, 0x400000, 0x238},
		{"2M", leaf2M, 0x400000, 0x12348},
		{"1G", leaf1G, 0, 0xa34568},
		{"2M-PAT", leaf2M, 0x400000, 0x12348},
		{"1G-PAT", leaf1G, 0, 0xa34568},
	}
	for _, tc := range cases {
		for _, acc := range []int{doRead, doWrite} {
			t.Run(fmt.Sprintf("%s/acc%d", tc.name, acc), func(t *testing.T) {
				m := newAccessMachine(t)
				va := uint64(tvBase) + 3<<30 // PDPT index 3, not 1G-aligned at the PML4 level
				ents := m.mapVA(tmPML4, va, tc.pa, tc.leaf, allFlags)
				if strings.HasSuffix(tc.name, "-PAT") {
					// Bit 12 of a large-page entry is PAT, not address.
					m.putq(ents[len(ents)-1], m.q(ents[len(ents)-1])|1<<12)
				}
				pa := tc.pa + tc.offset
				m.putq(pa, 0xdeadbeefcafef00d)
				vec, e, cr2 := access(t, m, va+tc.offset, acc, false)
				if vec != 0x80 {
					t.Fatalf("stopped in vector %d (error %#x, cr2 %#x), want success", vec, e, cr2)
				}
				switch acc {
				case doRead:
					if got := m.reg(cpu.RAX); got != 0xdeadbeefcafef00d {
						t.Errorf("read %#x via %s page, want %#x", got, tc.name, uint64(0xdeadbeefcafef00d))
					}
				case doWrite:
					if got := m.q(pa); got != 0x1122334455667788 {
						t.Errorf("physical %#x holds %#x after write", pa, got)
					}
				}
			})
		}
	}
}

func TestPagingAccessedDirty(t *testing.T) {
	for _, leaf := range []int{leaf4K, leaf2M, leaf1G} {
		t.Run(fmt.Sprint("leaf", leaf), func(t *testing.T) {
			m := newAccessMachine(t)
			va := uint64(tvBase) + 5<<30
			pa := uint64(0x600000)
			if leaf == leaf1G {
				pa = 0
			}
			ents := m.mapVA(tmPML4, va, pa, leaf, allFlags)
			if vec, e, _ := access(t, m, va+0x10, doRead, false); vec != 0x80 {
				t.Fatalf("read stopped in vector %d error %#x", vec, e)
			}
			for i, ea := range ents {
				e := m.q(ea)
				if e&ptA == 0 {
					t.Errorf("level %d entry %#x: Accessed not set after a read", i, e)
				}
				if e&ptD != 0 {
					t.Errorf("level %d entry %#x: Dirty set after a read", i, e)
				}
			}
			// A write: Dirty on the leaf only.
			m2 := newAccessMachine(t)
			ents = m2.mapVA(tmPML4, va, pa, leaf, allFlags)
			if vec, e, _ := access(t, m2, va+0x10, doWrite, false); vec != 0x80 {
				t.Fatalf("write stopped in vector %d error %#x", vec, e)
			}
			for i, ea := range ents {
				e := m2.q(ea)
				leafEnt := i == len(ents)-1
				if e&ptA == 0 {
					t.Errorf("level %d entry %#x: Accessed not set after a write", i, e)
				}
				if leafEnt && e&ptD == 0 {
					t.Errorf("leaf entry %#x: Dirty not set after a write", e)
				}
				if !leafEnt && e&ptD != 0 {
					t.Errorf("non-leaf level %d entry %#x: bit 6 set by the walker", i, e)
				}
			}
		})
	}
	// Read first (TLB entry without Dirty), then write: the write must still
	// set Dirty.
	t.Run("read-then-write", func(t *testing.T) {
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, `
	mov rax, [rbx]
	mov [rbx], rax
	hlt`)
		va := uint64(tvBase) + 0x5000
		ents := m.mapVA(tmPML4, va, 0x600000, leaf4K, allFlags)
		m.setReg(cpu.RBX, va)
		m.runToHLT(100)
		if e := m.q(ents[3]); e&ptD == 0 {
			t.Errorf("PTE %#x: Dirty not set by a write after a read cached the page", e)
		}
	})
}

func TestPagingNotPresent(t *testing.T) {
	for lvl := 0; lvl < 4; lvl++ {
		for _, acc := range []int{doRead, doWrite, doFetch} {
			for _, user := range []bool{false, true} {
				t.Run(fmt.Sprintf("level%d/acc%d/user%v", lvl, acc, user), func(t *testing.T) {
					m := newAccessMachine(t)
					va := uint64(tvBase) + 0x7000
					f := allFlags
					f[lvl] &^= ptP
					m.mapVA(tmPML4, va, 0x600000, leaf4K, f)
					m.ram[0x600000+0x40] = 0xc3 // ret, for the fetch
					vec, e, cr2 := access(t, m, va+0x40, acc, user)
					want := uint64(0)
					if acc == doWrite {
						want |= cpu.PFWrite
					}
					if user {
						want |= cpu.PFUser
					}
					if acc == doFetch {
						want |= cpu.PFFetch // EFER.NXE is on
					}
					if vec != cpu.ExcPF || e != want || cr2 != va+0x40 {
						t.Errorf("got vector %d error %#x cr2 %#x, want #PF error %#x cr2 %#x", vec, e, cr2, want, va+0x40)
					}
				})
			}
		}
	}
}

// TestPagingPermissions clears R/W or U/S at one level at a time: the
// effective permission is the AND over all levels. Supervisor writes to a
// read-only page fault only with CR0.WP.
func TestPagingPermissions(t *testing.T) {
	type accKind struct {
		acc  int
		user bool
		wp   bool
	}
	accs := []accKind{
		{doRead, false, true}, {doWrite, false, true}, {doWrite, false, false},
		{doRead, true, true}, {doWrite, true, true}, {doWrite, true, false}, {doFetch, true, true},
	}
	for lvl := 0; lvl < 4; lvl++ {
		for _, bit := range []uint64{ptW, ptU} {
			for _, a := range accs {
				name := fmt.Sprintf("level%d/clear%#x/acc%d/user%v/wp%v", lvl, bit, a.acc, a.user, a.wp)
				t.Run(name, func(t *testing.T) {
					m := newAccessMachine(t)
					if !a.wp {
						m.setSRegs(func(s *cpu.SRegs) { s.CR0 &^= cpu.CR0WP })
					}
					va := uint64(tvBase) + 0x9000
					f := allFlags
					f[lvl] &^= bit
					m.mapVA(tmPML4, va, 0x600000, leaf4K, f)
					m.ram[0x600000+0x80] = 0xc3
					vec, e, cr2 := access(t, m, va+0x80, a.acc, a.user)
					writable, userOK := bit != ptW, bit != ptU
					fault := false
					switch {
					case a.user && !userOK:
						fault = true
					case a.user && a.acc == doWrite && !writable:
						fault = true
					case !a.user && a.acc == doWrite && !writable && a.wp:
						fault = true
					}
					if !fault {
						if vec != 0x80 {
							t.Fatalf("access faulted: vector %d error %#x cr2 %#x", vec, e, cr2)
						}
						if a.acc == doWrite && m.q(0x600080) != 0x1122334455667788 {
							t.Errorf("write did not reach memory")
						}
						return
					}
					want := uint64(cpu.PFPresent)
					if a.acc == doWrite {
						want |= cpu.PFWrite
					}
					if a.user {
						want |= cpu.PFUser
					}
					if a.acc == doFetch {
						want |= cpu.PFFetch
					}
					if vec != cpu.ExcPF || e != want || cr2 != va+0x80 {
						t.Errorf("got vector %d error %#x cr2 %#x, want #PF %#x at %#x", vec, e, cr2, want, va+0x80)
					}
					if a.acc == doWrite && m.q(0x600080) != 0xc3 {
						t.Errorf("faulting write reached memory")
					}
				})
			}
		}
	}
}

func TestPagingNX(t *testing.T) {
	cases := []struct {
		name  string
		level int // where NX is set
		nxe   bool
		acc   int
		user  bool
		want  int64 // error code, -1 = no fault
	}{
		{"leaf/fetch", 3, true, doFetch, false, cpu.PFPresent | cpu.PFFetch},
		{"pml4/fetch", 0, true, doFetch, false, cpu.PFPresent | cpu.PFFetch},
		{"pd/fetch-user", 2, true, doFetch, true, cpu.PFPresent | cpu.PFFetch | cpu.PFUser},
		{"leaf/read", 3, true, doRead, false, -1},
		{"leaf/write", 3, true, doWrite, true, -1},
		{"noNXE/read", 3, false, doRead, false, cpu.PFPresent | cpu.PFRsvd},
		{"noNXE/fetch", 3, false, doFetch, false, cpu.PFPresent | cpu.PFRsvd},
		{"noNXE/pdpt-write", 1, false, doWrite, true, cpu.PFPresent | cpu.PFRsvd | cpu.PFWrite | cpu.PFUser},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newAccessMachine(t)
			if !tc.nxe {
				m.setSRegs(func(s *cpu.SRegs) { s.EFER &^= cpu.EFERNXE })
			}
			va := uint64(tvBase) + 0xb000
			f := allFlags
			f[tc.level] |= ptNX
			m.mapVA(tmPML4, va, 0x600000, leaf4K, f)
			m.ram[0x600000+0x100] = 0xc3
			vec, e, cr2 := access(t, m, va+0x100, tc.acc, tc.user)
			if tc.want < 0 {
				if vec != 0x80 {
					t.Fatalf("faulted: vector %d error %#x", vec, e)
				}
				return
			}
			if vec != cpu.ExcPF || e != uint64(tc.want) || cr2 != va+0x100 {
				t.Errorf("got vector %d error %#x cr2 %#x, want #PF %#x", vec, e, cr2, tc.want)
			}
		})
	}
	// A fetch from an NX page reached by falling through from the page
	// before (no branch): the block cache must not run it.
	t.Run("fallthrough", func(t *testing.T) {
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "jmp rbx")
		va := uint64(tvBase) + 0xd000
		m.mapVA(tmPML4, va, 0x600000, leaf4K, allFlags)
		f := allFlags
		f[3] |= ptNX
		m.mapVA(tmPML4, va+pageSize, 0x601000, leaf4K, f)
		for i := uint64(0); i < pageSize; i++ {
			m.ram[0x600000+i] = 0x90 // nop sled into the NX page
		}
		m.ram[0x601000] = 0xf4
		m.setReg(cpu.RBX, va+pageSize-4)
		vec := m.runToVector(10000)
		if vec != cpu.ExcPF || m.frame(1)[0] != cpu.PFPresent|cpu.PFFetch || m.cpu.cr2 != va+pageSize {
			t.Errorf("got vector %d error %#x cr2 %#x, want #PF fetch at %#x", vec, m.frame(1)[0], m.cpu.cr2, va+pageSize)
		}
		if rip := m.frame(2)[1]; rip != va+pageSize {
			t.Errorf("pushed RIP %#x, want %#x", rip, va+pageSize)
		}
	})
}

func TestPagingReserved(t *testing.T) {
	const above = 1 << 40 // first bit above MAXPHYADDR (40)
	cases := []struct {
		name  string
		leaf  int
		level int
		bit   uint64
		pa    uint64
	}{
		{"pml4/bit40", leaf4K, 0, above, 0x600000},
		{"pdpt/bit40", leaf4K, 1, above, 0x600000},
		{"pd/bit40", leaf4K, 2, above, 0x600000},
		{"pt/bit40", leaf4K, 3, above, 0x600000},
		{"pt/bit51", leaf4K, 3, 1 << 51, 0x600000},
		{"2M/bit13", leaf2M, 2, 1 << 13, 0x600000},
		{"1G/bit29", leaf1G, 1, 1 << 29, 0},
		{"pml4/PS", leaf4K, 0, ptPS, 0x600000},
	}
	for _, tc := range cases {
		for _, acc := range []int{doRead, doWrite} {
			t.Run(fmt.Sprintf("%s/acc%d", tc.name, acc), func(t *testing.T) {
				m := newAccessMachine(t)
				va := uint64(tvBase) + 7<<30
				f := allFlags
				f[tc.level] |= tc.bit
				ents := m.mapVA(tmPML4, va, tc.pa, tc.leaf, f)
				if tc.level < len(ents) && tc.bit&0xfff == 0 {
					// mapVA keeps only flag bits of intermediate entries:
					// put the address bit in by hand.
					m.putq(ents[tc.level], m.q(ents[tc.level])|tc.bit)
				}
				vec, e, cr2 := access(t, m, va+0x18, acc, false)
				want := uint64(cpu.PFPresent | cpu.PFRsvd)
				if acc == doWrite {
					want |= cpu.PFWrite
				}
				if vec != cpu.ExcPF || e != want || cr2 != va+0x18 {
					t.Errorf("got vector %d error %#x cr2 %#x, want #PF %#x", vec, e, cr2, want)
				}
			})
		}
	}
	// Bits 52..62 are ignored (software-available), not reserved.
	t.Run("bits52-62-ignored", func(t *testing.T) {
		m := newAccessMachine(t)
		va := uint64(tvBase) + 0x3000
		f := allFlags
		ents := m.mapVA(tmPML4, va, 0x600000, leaf4K, f)
		for _, ea := range ents {
			m.putq(ea, m.q(ea)|0x7ff<<52)
		}
		if vec, e, _ := access(t, m, va, doRead, false); vec != 0x80 {
			t.Errorf("vector %d error %#x, want success", vec, e)
		}
	})
}

// TestPagingCrossing: an 8-byte access whose second half is on an absent or
// read-only page faults with CR2 at the second page and writes nothing.
func TestPagingCrossing(t *testing.T) {
	cases := []struct {
		name   string
		second uint64 // flags of the second page's PTE
		acc    int
		want   uint64
	}{
		{"write-absent", 0, doWrite, cpu.PFWrite},
		{"read-absent", 0, doRead, 0},
		{"write-readonly", ptP | ptU, doWrite, cpu.PFPresent | cpu.PFWrite},
		{"user-write-supervisor", ptP | ptW, doWrite, cpu.PFPresent | cpu.PFWrite | cpu.PFUser},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newAccessMachine(t)
			va := uint64(tvBase) + 0x20000
			m.mapVA(tmPML4, va, 0x600000, leaf4K, allFlags)
			f := allFlags
			f[3] = tc.second
			m.mapVA(tmPML4, va+pageSize, 0x601000, leaf4K, f)
			m.putq(0x600ff8, 0xaaaaaaaaaaaaaaaa)
			m.putq(0x601000, 0xbbbbbbbbbbbbbbbb)
			user := tc.want&cpu.PFUser != 0
			vec, e, cr2 := access(t, m, va+pageSize-4, tc.acc, user)
			if vec != cpu.ExcPF || e != tc.want || cr2 != va+pageSize {
				t.Errorf("got vector %d error %#x cr2 %#x, want #PF %#x at %#x", vec, e, cr2, tc.want, va+pageSize)
			}
			if m.q(0x600ff8) != 0xaaaaaaaaaaaaaaaa || m.q(0x601000) != 0xbbbbbbbbbbbbbbbb {
				t.Errorf("faulting crossing write changed memory: %#x %#x", m.q(0x600ff8), m.q(0x601000))
			}
		})
	}
	t.Run("both-present", func(t *testing.T) {
		m := newAccessMachine(t)
		va := uint64(tvBase) + 0x20000
		m.mapVA(tmPML4, va, 0x600000, leaf4K, allFlags)
		m.mapVA(tmPML4, va+pageSize, 0x700000, leaf4K, allFlags) // not physically contiguous
		if vec, e, _ := access(t, m, va+pageSize-4, doWrite, false); vec != 0x80 {
			t.Fatalf("vector %d error %#x", vec, e)
		}
		if lo, hi := m.q(0x600ff8)>>32, m.q(0x700000)&0xffffffff; lo != 0x55667788 || hi != 0x11223344 {
			t.Errorf("halves %#x %#x", lo, hi)
		}
	})
}

// tlbProg reads RBX, rewrites the PTE at RDX with RSI, reads again (R9:
// the stale mapping), flushes by RCX (0 INVLPG, 1 MOV CR3, 2 CR4.PGE off
// and on), and reads again (R10).
const tlbProg = `
	mov rax, [rbx]
	mov r8, rax
	mov [rdx], rsi
	mov rax, [rbx]
	mov r9, rax
	cmp rcx, 0
	jne 1f
	invlpg [rbx]
	jmp 3f
1:	cmp rcx, 1
	jne 2f
	mov rax, cr3
	mov cr3, rax
	jmp 3f
2:	mov rax, cr4
	mov rdi, rax
	xor rax, 0x80
	mov cr4, rax
	mov cr4, rdi
3:	mov rax, [rbx]
	mov r10, rax
	hlt
`

func TestPagingTLBFlush(t *testing.T) {
	cases := []struct {
		name    string
		flush   int
		global  bool
		flushed bool // the new mapping is seen after the flush
	}{
		{"invlpg", 0, false, true},
		{"cr3", 1, false, true},
		{"cr4.pge", 2, false, true},
		{"global/cr3", 1, true, false},
		{"global/invlpg", 0, true, true},
		{"global/cr4.pge", 2, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newAsmMachine(t, cpu.ModeHWAssist, tlbProg)
			m.setSRegs(func(s *cpu.SRegs) { s.CR4 |= cpu.CR4PGE })
			va := uint64(tvBase) + 0x40000
			f := allFlags
			if tc.global {
				f[3] |= ptG
			}
			ents := m.mapVA(tmPML4, va, 0x600000, leaf4K, f)
			m.putq(0x600000, 111)
			m.putq(0x601000, 222)
			m.setReg(cpu.RBX, va)
			m.setReg(cpu.RCX, uint64(tc.flush))
			m.setReg(cpu.RDX, ents[3])
			m.setReg(cpu.RSI, 0x601000|f[3])
			m.runToHLT(100)
			if r8, r9 := m.reg(cpu.R8), m.reg(cpu.R9); r8 != 111 || r9 != 111 {
				t.Errorf("before the flush: read %d then %d, want 111 (stale TLB entry) both times", r8, r9)
			}
			want := uint64(111)
			if tc.flushed {
				want = 222
			}
			if r10 := m.reg(cpu.R10); r10 != want {
				t.Errorf("after the flush: read %d, want %d", r10, want)
			}
		})
	}
}

func TestPagingNonCanonical(t *testing.T) {
	for _, va := range []uint64{1 << 47, 0xffff7ffffffffff8, 0x8000000000000000} {
		for _, acc := range []int{doRead, doWrite, doFetch} {
			t.Run(fmt.Sprintf("%#x/acc%d", va, acc), func(t *testing.T) {
				m, p := newAsmMachine(t, cpu.ModeHWAssist, accessProg)
				vec, e, _ := access(t, m, va, acc, false)
				if vec != cpu.ExcGP || e != 0 {
					t.Errorf("got vector %d error %#x, want #GP(0)", vec, e)
				}
				// The faulting instruction is the one pushed.
				rip := m.frame(2)[1]
				var want uint64
				switch acc {
				case doRead:
					want = p.addr(t, "doread")
				case doWrite:
					want = p.addr(t, "dowrite")
				case doFetch:
					want = p.addr(t, "dofetch")
				}
				if rip != want {
					t.Errorf("pushed RIP %#x, want %#x", rip, want)
				}
			})
		}
	}
}

// TestPagingFetchCrossing: an instruction whose last bytes are on an
// absent or NX page faults with CR2 at that page and RIP at the
// instruction.
func TestPagingFetchCrossing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second uint64
		err    uint64
	}{
		{"absent", 0, cpu.PFFetch},
		{"nx", ptP | ptW | ptU | ptNX, cpu.PFFetch | cpu.PFPresent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newAsmMachine(t, cpu.ModeHWAssist, "jmp rbx")
			va := uint64(tvBase) + 0x50000
			m.mapVA(tmPML4, va, 0x600000, leaf4K, allFlags)
			f := allFlags
			f[3] = tc.second
			m.mapVA(tmPML4, va+pageSize, 0x601000, leaf4K, f)
			// mov eax, imm32 with two bytes on each page.
			copy(m.ram[0x600ffe:], []byte{0xb8, 0x01})
			copy(m.ram[0x601000:], []byte{0x02, 0x03, 0x04, 0xf4})
			m.setReg(cpu.RBX, va+pageSize-2)
			m.runToHLT(100)
			if m.vector() != cpu.ExcPF || m.cpu.cr2 != va+pageSize {
				t.Fatalf("vector %d cr2 %#x, want #PF at %#x", m.vector(), m.cpu.cr2, va+pageSize)
			}
			if fr := m.frame(2); fr[0] != tc.err || fr[1] != va+pageSize-2 {
				t.Errorf("error %#x RIP %#x, want %#x at %#x", fr[0], fr[1], tc.err, va+pageSize-2)
			}
		})
	}
	t.Run("present", func(t *testing.T) {
		m, _ := newAsmMachine(t, cpu.ModeHWAssist, "jmp rbx")
		va := uint64(tvBase) + 0x50000
		m.mapVA(tmPML4, va, 0x600000, leaf4K, allFlags)
		m.mapVA(tmPML4, va+pageSize, 0x700000, leaf4K, allFlags)
		copy(m.ram[0x600ffe:], []byte{0xb8, 0x01})
		copy(m.ram[0x700000:], []byte{0x02, 0x03, 0x04, 0xf4})
		m.setReg(cpu.RBX, va+pageSize-2)
		m.runToHLT(100)
		if m.vector() != -1 || m.reg(cpu.RAX) != 0x04030201 {
			t.Errorf("vector %d RAX %#x", m.vector(), m.reg(cpu.RAX))
		}
	})
}
