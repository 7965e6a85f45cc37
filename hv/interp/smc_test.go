package interp

import (
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Self-modifying code: decoded blocks must never run bytes that have been
// overwritten, whoever wrote them and through whichever mapping.

func TestSMCSameBlock(t *testing.T) {
	cases := []struct {
		name string
		src  string
		rax  uint64
		rbx  uint64
	}{
		{"next-instruction", `
	mov byte ptr [rip+t1+1], 2
t1:	mov eax, 1
	hlt`, 2, 0},
		{"later-in-block", `
	mov byte ptr [rip+t1+1], 7
	nop
	inc rbx
	nop
t1:	mov eax, 1
	hlt`, 7, 1},
		{"qword-store", `
	mov rcx, 0x9090909090909090
	mov [rip+t1], rcx
t1:	inc rax                    # 8 bytes replaced by NOPs
	inc rax
	nop
	nop
	inc rbx
	hlt`, 0, 1},
		{"rep-movsb", `
	lea rsi, [rip+src]
	lea rdi, [rip+t1]
	mov ecx, 5
	rep movsb
t1:	mov eax, 1
	hlt
src: mov eax, 9`, 9, 0},
		{"loop-patches-its-immediate", `
	mov ecx, 5
	xor ebx, ebx
1:
imm: add ebx, 1
	inc byte ptr [rip+imm+2]
	dec ecx
	jnz 1b
	hlt`, 0, 1 + 2 + 3 + 4 + 5},
		{"xchg-patch", `
	mov rax, 0x04eb            # jmp +4: over two bytes of the old code to the third INC
	xchg ax, [rip+t1]
t1:	inc rbx
	inc rbx
	inc rbx
	hlt`, 0xff48, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newAsmMachine(t, cpu.ModeHWAssist, tc.src)
			m.runToHLT(1000)
			if m.reg(cpu.RAX)&0xffffffff != tc.rax || m.reg(cpu.RBX) != tc.rbx {
				t.Errorf("RAX %d RBX %d, want %d %d", m.reg(cpu.RAX), m.reg(cpu.RBX), tc.rax, tc.rbx)
			}
		})
	}
}

// smcPages has a function at page2 (one page after start) returning its
// immediate in EAX.
const smcPages = `
	call page2
	mov r8, rax
	mov byte ptr [rip+page2+1], 2
	call page2
	mov r9, rax
	hlt
	.org 0x1000
page2:
	mov eax, 1
	ret
`

func TestSMCOtherPage(t *testing.T) {
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, smcPages)
	m.runToHLT(1000)
	if m.reg(cpu.R8) != 1 || m.reg(cpu.R9) != 2 {
		t.Errorf("page2 returned %d then %d, want 1 then 2", m.reg(cpu.R8), m.reg(cpu.R9))
	}
	if m.cpu.Stats().CodeInvalidations == 0 {
		t.Errorf("no code invalidation counted")
	}
}

// TestSMCAlias writes the code page through a second virtual mapping,
// in the same address space and in a temporary one loaded into CR3, as
// Linux's text_poke does.
func TestSMCAlias(t *testing.T) {
	const alias = tvBase + 0x7000
	src := `
	mov byte ptr [rbx+1], 5    # write through the alias before the page is code
	call page2
	mov r8, rax
	mov byte ptr [rbx+1], 6    # the alias is cached as writable
	call page2
	mov r9, rax
	mov cr3, r12               # temporary mm
	mov byte ptr [rsi+1], 7
	mov cr3, r13
	call page2
	mov r10, rax
	hlt
	.org 0x1000
page2:
	mov eax, 1
	ret
`
	m, p := newAsmMachine(t, cpu.ModeHWAssist, src)
	page2 := p.addr(t, "page2")
	m.mapVA(tmPML4, alias, page2, leaf4K, allFlags)
	// A second PML4: the identity map plus another alias of page2.
	pml4b := m.ptAlloc()
	m.putq(pml4b, m.q(tmPML4))
	const alias2 = 2<<39 + 0x3000
	m.mapVA(pml4b, alias2, page2, leaf4K, allFlags)
	m.setReg(cpu.RBX, alias)
	m.setReg(cpu.RSI, alias2)
	m.setReg(cpu.R12, pml4b)
	m.setReg(cpu.R13, tmPML4)
	m.runToHLT(1000)
	if r8, r9, r10 := m.reg(cpu.R8), m.reg(cpu.R9), m.reg(cpu.R10); r8 != 5 || r9 != 6 || r10 != 7 {
		t.Errorf("page2 returned %d, %d, %d; want 5, 6, 7", r8, r9, r10)
	}
}

// TestSMCInvalidate: a write by the hypervisor (not the guest) followed by
// Memory.Invalidate is seen by the next run.
func TestSMCInvalidate(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, `
start:
	call page2
	hlt
	.org 0x1000
page2:
	mov eax, 1
	ret
`)
	m.runToHLT(100)
	if m.reg(cpu.RAX) != 1 {
		t.Fatalf("RAX %d", m.reg(cpu.RAX))
	}
	page2 := p.addr(t, "page2")
	for _, v := range []byte{3, 4} {
		m.ram[page2+1] = v
		m.mem.Invalidate(page2+1, 1)
		m.cpu.rip = p.addr(t, "start")
		m.runToHLT(100)
		if m.reg(cpu.RAX) != uint64(v) {
			t.Errorf("after Invalidate: RAX %d, want %d", m.reg(cpu.RAX), v)
		}
	}
	// An invalidated range spanning pages covers all of them.
	m.ram[page2+1] = 8
	m.mem.Invalidate(page2-2, 4)
	m.cpu.rip = p.addr(t, "start")
	m.runToHLT(100)
	if m.reg(cpu.RAX) != 8 {
		t.Errorf("after a page-spanning Invalidate: RAX %d, want 8", m.reg(cpu.RAX))
	}
}

// TestSMCCrossingInstruction patches the second half of an instruction that
// crosses a page boundary.
func TestSMCCrossingInstruction(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, `
	xor ebx, ebx
1:	call fn
	add rbx, rax
	mov byte ptr [rip+fn+4], 0x10    # the top byte of the immediate, on the second page
	inc rcx
	cmp rcx, 2
	jne 1b
	hlt
	.org 0xffc
fn:	mov eax, 0x00000001
	ret
`)
	if fn := p.addr(t, "fn"); (fn+4)&pageMask != 0 {
		t.Fatalf("fn at %#x does not cross a page as intended", fn)
	}
	m.runToHLT(1000)
	if want := uint64(1 + 0x10000001); m.reg(cpu.RBX) != want {
		t.Errorf("sum %#x, want %#x", m.reg(cpu.RBX), want)
	}
}

// TestInvalidateConcurrent: a device goroutine calls Memory.Invalidate on
// the page the vCPU is executing from while it runs (run it with -race: the
// code-page bookkeeping must be atomic), and the code keeps its meaning.
func TestInvalidateConcurrent(t *testing.T) {
	m, p := newAsmMachine(t, cpu.ModeHWAssist, `
	mov ecx, 20000
	xor ebx, ebx
1:	call page2
	add ebx, eax
	dec ecx
	jnz 1b
	hlt
	.org 0x1000
page2:
	mov eax, 1
	ret
`)
	page2 := p.addr(t, "page2")
	stop := make(chan struct{})
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.mem.Invalidate(page2, 4096)
		close(started)
		for {
			select {
			case <-stop:
				return
			default:
			}
			m.mem.Invalidate(page2, 4096)
		}
	}()
	<-started // the device side is running when the vCPU starts
	m.runToHLT(1 << 30)
	close(stop)
	<-done
	if m.reg(cpu.RBX) != 20000 {
		t.Errorf("RBX %d, want 20000", m.reg(cpu.RBX))
	}
}
