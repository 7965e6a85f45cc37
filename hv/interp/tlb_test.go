package interp

import (
	"fmt"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// tlbAliasProg fills the soft TLB with a mapping of RBX, removes the
// mapping (writes RSI to the PTE at RDX), flushes R8 times by MOV CR3
// (INVLPG when R8 is 0), and then tries every non-canonical alias
// RBX ^ k<<48 for k in 1..0xffff with the access RCX selects (0 read,
// 1 write, 2 fetch, 3 REP MOVSB source, 4 REP STOSB destination). The #GP
// handler counts in R12 and resumes at the next alias; an access that does
// not fault counts in R9. R13 holds the last value read.
const tlbAliasProg = `
	mov rax, [rbx]
	mov byte ptr [rbx+8], 0xc3
	mov rax, [rbx+8]
	mov [rdx], rsi
	test r8, r8
	jnz 1f
	invlpg [rbx]
	jmp 2f
1:	mov rax, cr3
	mov cr3, rax
	dec r8
	jnz 1b
2:	xor r9, r9
	xor r12, r12
	mov r10, 1
next:
	mov r11, r10
	shl r11, 48
	xor r11, rbx
	cmp rcx, 1
	je dowrite
	cmp rcx, 2
	je dofetch
	cmp rcx, 3
	je domovs
	cmp rcx, 4
	je dostos
	mov r13, [r11]
	inc r9
	jmp after
dowrite:
	mov [r11], r14
	inc r9
	jmp after
dofetch:
	lea rax, [r11+8]
	call rax
	inc r9
	jmp after
domovs:
	push rcx
	mov rsi, r11
	lea rdi, [rip+scratch]
	mov rcx, 8
	rep movsb
	pop rcx
	inc r9
	jmp after
dostos:
	push rcx
	mov rdi, r11
	mov rcx, 8
	mov al, 0x5a
	rep stosb
	pop rcx
	inc r9
after:
	inc r10
	cmp r10, 0x10000
	jb next
	hlt
gp:
	add rsp, 8
	lea rax, [rip+after]
	mov [rsp], rax
	inc r12
	iretq
scratch:
	.quad 0
`

// TestTLBNonCanonicalAlias: after a translation is removed and flushed, no
// non-canonical alias of its address may reach the stale entry through any
// fast path; every alias raises #GP, as on hardware.
func TestTLBNonCanonicalAlias(t *testing.T) {
	accesses := []string{"read", "write", "fetch", "movs", "stos"}
	for acc, name := range accesses {
		for _, flushes := range []uint64{0, 1, 2, 7, 4100} {
			t.Run(fmt.Sprintf("%s/flush%d", name, flushes), func(t *testing.T) {
				m, p := newAsmMachine(t, cpu.ModeHWAssist, tlbAliasProg)
				m.setIDT(cpu.ExcGP, p.addr(t, "gp"), 0xe, 0, 0)
				va := uint64(tvBase) + 0x40000
				ents := m.mapVA(tmPML4, va, 0x600000, leaf4K, allFlags)
				m.putq(0x600000, 0x5354414c45) // "STALE"
				m.setReg(cpu.RBX, va)
				m.setReg(cpu.RCX, uint64(acc))
				m.setReg(cpu.RDX, ents[3])
				m.setReg(cpu.RSI, 0)
				m.setReg(cpu.R8, flushes)
				m.setReg(cpu.R14, 0x4242424242424242)
				m.runToHLT(20_000_000)
				if m.vector() != -1 {
					t.Fatalf("stopped in the handler of vector %d", m.vector())
				}
				if hits := m.reg(cpu.R9); hits != 0 {
					t.Errorf("%d non-canonical aliases reached the flushed page (last read %#x)", hits, m.reg(cpu.R13))
				}
				if gps := m.reg(cpu.R12); gps != 0xffff {
					t.Errorf("%d #GP, want 65535 (one per alias)", gps)
				}
				if got := m.q(0x600000); got != 0x5354414c45 {
					t.Errorf("the unmapped frame was written: %#x", got)
				}
			})
		}
	}
}

// TestTLBKeyWrap: the generation key wraps after the page-offset bits run
// out; entries written under the first keys must not hit after the wrap.
func TestTLBKeyWrap(t *testing.T) {
	m := newTestMachine(t, []byte{0xf4})
	c := m.cpu
	va := uint64(tvBase) + 0x40000
	m.mapVA(tmPML4, va, 0x600000, leaf4K, allFlags)
	for i := 0; i < 3*pageSize; i++ {
		e := c.translate(va, accRead)
		if c.tlbKey < tlbKeyFirst || c.tlbKey > pageMask {
			t.Fatalf("live key %#x outside [%#x, %#x]", c.tlbKey, tlbKeyFirst, pageMask)
		}
		c.flushTLB(false)
		if e.tag == va&^pageMask^c.tlbKey {
			t.Fatalf("after flush %d the old entry still matches", i)
		}
	}
}
