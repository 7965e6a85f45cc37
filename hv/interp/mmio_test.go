package interp

import (
	"fmt"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// mmioProg reads the operand RCX selects at RBX into RAX (and, for the
// 16-byte forms, the high half into RDX), then halts.
const mmioProg = `
	cmp rcx, 1
	je 1f
	cmp rcx, 2
	je 2f
	cmp rcx, 3
	je 3f
	mov rax, [rbx]
	hlt
1:	mov eax, [rbx]
	hlt
2:	movdqu xmm0, [rbx]
	movq rax, xmm0
	psrldq xmm0, 8
	movq rdx, xmm0
	hlt
3:	mov rsi, rbx
	lea rdi, [rip+buf]
	mov rcx, 16
	rep movsb
	mov rax, [rip+buf]
	mov rdx, [rip+buf+8]
	hlt
buf:
	.quad 0, 0
`

// TestMMIOReadAcrossUnbacked: an access that is partly or wholly outside
// RAM, or next to a ballooned-out frame, completes as hardware would: the
// backed bytes from RAM, the unbacked ones from the MMIO answers (all-ones
// here, as hv answers when no device is there), with one exit per
// unbacked part and never an endless one.
func TestMMIOReadAcrossUnbacked(t *testing.T) {
	const ramEnd = tmSmallRAM
	const hole = 0xa00000 // a ballooned-out frame in the middle of RAM
	cases := []struct {
		name string
		pa   uint64 // where the operand starts
		kind int    // mmioProg's RCX
		size int
	}{
		{"qword at RAM end - 4", ramEnd - 4, 0, 8},
		{"qword at RAM end - 1", ramEnd - 1, 0, 8},
		{"dword at RAM end - 2", ramEnd - 2, 1, 4},
		{"qword wholly outside", ramEnd, 0, 8},
		{"xmm at RAM end - 8", ramEnd - 8, 2, 16},
		{"xmm at RAM end - 15", ramEnd - 15, 2, 16},
		{"qword before a hole", hole - 4, 0, 8},
		{"qword after a hole", hole + pageSize - 3, 0, 8},
		{"xmm into a hole", hole - 5, 2, 16},
		{"rep movsb into a hole", hole - 7, 3, 16},
		{"xmm inside a hole", hole + 8, 2, 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newAsmMachine(t, cpu.ModeHWAssist, mmioProg)
			m.mem.SetHoles(hole>>pageShift, 1, true)
			m.cpu.FlushTLB(true)
			va := uint64(tvBase) + 0x7000
			// Two virtual pages onto the operand's two physical pages.
			base := tc.pa &^ pageMask
			m.mapVA(tmPML4, va, base, leaf4K, allFlags)
			m.mapVA(tmPML4, va+pageSize, base+pageSize, leaf4K, allFlags)
			var want [16]byte
			for i := 0; i < tc.size; i++ {
				pa := tc.pa + uint64(i)
				want[i] = 0xff
				if pa < ramEnd && pa>>pageShift != hole>>pageShift {
					m.ram[pa] = byte(0x11 + i)
					want[i] = byte(0x11 + i)
				}
			}
			m.setReg(cpu.RBX, va+tc.pa&pageMask)
			m.setReg(cpu.RCX, uint64(tc.kind))
			exits := 0
			for {
				e := m.runExit(1000)
				if e.Reason == cpu.ExitHLT {
					break
				}
				if e.Reason != cpu.ExitMMIO {
					t.Fatalf("exit %v at %#x: %s", e.Reason, e.RIP, e.Message)
				}
				if e.MMIO.Addr < ramEnd && e.MMIO.Addr>>pageShift != hole>>pageShift {
					t.Fatalf("MMIO exit for backed RAM at %#x", e.MMIO.Addr)
				}
				if !e.MMIO.Write {
					e.MMIO.Data = ^uint64(0)
				}
				if exits++; exits > 64 {
					t.Fatalf("still exiting after %d MMIO exits (last at %#x)", exits, e.MMIO.Addr)
				}
			}
			var got [16]byte
			for i := 0; i < 8; i++ {
				got[i] = byte(m.reg(cpu.RAX) >> (8 * i))
				got[8+i] = byte(m.reg(cpu.RDX) >> (8 * i))
			}
			if tc.size == 4 {
				// A 32-bit load zero-extends.
				for i := 4; i < 8; i++ {
					want[i] = 0
				}
			}
			if tc.size <= 8 {
				copy(got[8:], make([]byte, 8))
			}
			if got != want {
				t.Errorf("read % x, want % x (%d exits)", got[:max(8, tc.size)], want[:max(8, tc.size)], exits)
			}
		})
	}
}

// TestFetchFromUnbacked: running from memory no RAM backs (a ballooned-out
// frame, or beyond RAM) reads all-ones, which is no instruction: #UD, not
// a stopped VM.
func TestFetchFromUnbacked(t *testing.T) {
	for _, pa := range []uint64{0xa00000, tmSmallRAM, tmSmallRAM + 0x10000} {
		t.Run(fmt.Sprintf("%#x", pa), func(t *testing.T) {
			m, _ := newAsmMachine(t, cpu.ModeHWAssist, "jmp rbx")
			m.mem.SetHoles(0xa00000>>pageShift, 1, true)
			m.cpu.FlushTLB(true)
			va := uint64(tvBase) + 0x9000
			m.mapVA(tmPML4, va, pa, leaf4K, allFlags)
			m.setReg(cpu.RBX, va+0x10)
			if vec := m.runToVector(100); vec != cpu.ExcUD {
				t.Fatalf("stopped in vector %d, want #UD", vec)
			}
			if rip := m.frame(1)[0]; rip != va+0x10 {
				t.Errorf("#UD at %#x, want %#x", rip, va+0x10)
			}
		})
	}
}
