package interp

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Values of the MMX instructions are compared with the host CPU by the
// differential test (diffmmx_test.go); the tests here cover decoding and
// the x87 interplay and exception conditions the host cannot show.

// TestMMXDecodeLengths checks every listed MMX encoding against x86asm.
func TestMMXDecodeLengths(t *testing.T) {
	checkDecodeLengths(t, mmxListing)
}

// x87Snap is the x87 state the MMX transitions touch.
type x87Snap struct {
	Top, FTW uint8
	FSW, FOP uint16
	FIP      uint64
	ST       [8]f80
}

func snapX87(c *CPU) x87Snap {
	f := &c.fpu
	return x87Snap{Top: f.top, FTW: f.ftw, FSW: f.fsw, FOP: f.fop, FIP: f.fip, ST: f.st}
}

// mmxStart gives the x87 unit a recognisable state: TOP = 5, physical
// registers 0 and 5 valid, register i holding significand i*0x0101...01
// and exponent 0x4000+i, FIP/FOP and some status bits set.
func mmxStart(c *CPU) {
	f := &c.fpu
	f.top, f.ftw, f.fsw, f.fcw = 5, 0x21, fswC2|fswPE, 0x037f
	f.fip, f.fop = 0x1234, 0x5a5
	for i := range f.st {
		f.st[i] = f80{mant: uint64(i) * 0x0101010101010101, se: 0x4000 + uint16(i)}
	}
}

// TestMMXState checks the aliasing of mm registers onto x87 physical
// registers and the tag, TOP and exponent rules (SDM Vol. 1, 9.5 and
// Table 9-3).
func TestMMXState(t *testing.T) {
	const (
		rexPaddb  = "41 0f fc c1" // paddb %mm9,%mm0: REX.B does not extend an mm register
		fld1      = "d9 e8"
		fxsaveRDI = "0f ae 07"
	)
	b := newSSEBench(t, "paddb %mm1,%mm0", "movd %mm4,%r11d", "movq %mm3,0x10(%rbx)", "movq (%rax),%mm2",
		"emms", "cvtpi2ps (%rax),%xmm2", "cvtpi2pd (%rax),%xmm2", "cvtpi2pd %mm1,%xmm12", "movdq2q %xmm10,%mm1", rexPaddb, fld1, fxsaveRDI)
	c := b.m.cpu
	st := func(i int) f80 { return f80{mant: uint64(i) * 0x0101010101010101, se: 0x4000 + uint16(i)} }
	// mmxAfter is the state mmxStart leaves after an MMX instruction that
	// writes the listed mm registers.
	mmxAfter := func(writes map[int]uint64) x87Snap {
		s := snapX87(c)
		s.Top, s.FTW = 0, 0xff
		for r, v := range writes {
			s.ST[r] = f80{mant: v, se: 0xffff}
		}
		return s
	}
	c.r[cpu.RAX] = tmData
	c.r[cpu.RBX] = tmData + 0x100
	binary.LittleEndian.PutUint64(b.m.ram[tmData:], 0xfedcba9876543210)
	c.fpu.xmm[10] = xmmv{0x1122334455667788, 0x99}
	for _, tc := range []struct {
		asm  string
		want func() x87Snap
		also func(t *testing.T)
	}{
		{"paddb %mm1,%mm0", func() x87Snap { return mmxAfter(map[int]uint64{0: 0x0101010101010101}) }, nil},
		{rexPaddb, func() x87Snap { return mmxAfter(map[int]uint64{0: 0x0101010101010101}) }, nil},
		{"movd %mm4,%r11d", func() x87Snap { return mmxAfter(nil) }, func(t *testing.T) {
			if got := c.r[cpu.R11]; got != 0x04040404 {
				t.Errorf("r11 = %#x", got)
			}
		}},
		{"movq %mm3,0x10(%rbx)", func() x87Snap { return mmxAfter(nil) }, func(t *testing.T) {
			if got := b.mem64(tmData + 0x110); got != 0x0303030303030303 {
				t.Errorf("stored %#x", got)
			}
		}},
		{"movq (%rax),%mm2", func() x87Snap { return mmxAfter(map[int]uint64{2: 0xfedcba9876543210}) }, nil},
		{"movdq2q %xmm10,%mm1", func() x87Snap { return mmxAfter(map[int]uint64{1: 0x1122334455667788}) }, nil},
		{"cvtpi2pd %mm1,%xmm12", func() x87Snap { return mmxAfter(nil) }, nil},
		// The memory forms of CVTPI2PS and CVTPI2PD do not switch to MMX
		// state.
		{"cvtpi2ps (%rax),%xmm2", func() x87Snap { return snapX87(c) }, nil},
		{"cvtpi2pd (%rax),%xmm2", func() x87Snap { return snapX87(c) }, func(t *testing.T) {
			if got, want := c.fpu.xmm[2], i32x2ToF64(0xfedcba9876543210); got != want {
				t.Errorf("xmm2 = %#x, want %#x", got, want)
			}
		}},
		// EMMS empties every register and sets TOP to 0.
		{"emms", func() x87Snap { s := snapX87(c); s.Top, s.FTW = 0, 0; return s }, nil},
	} {
		mmxStart(c)
		want := tc.want()
		if v := b.run(tc.asm); v >= 0 {
			t.Errorf("%s: exception %d", tc.asm, v)
			continue
		}
		if d := cmp.Diff(want, snapX87(c), cmp.AllowUnexported(f80{})); d != "" {
			t.Errorf("%s: x87 state (-want +got):\n%s", tc.asm, d)
		}
		if tc.also != nil {
			tc.also(t)
		}
	}

	// FXSAVE after an MMX instruction: abridged tag 0xff, TOP 0, ST(i) is
	// physical register i, so mm0 is in the first slot with exponent
	// 0xffff.
	mmxStart(c)
	b.mustRun("paddb %mm1,%mm0")
	c.r[cpu.RDI] = tmData + 0x400
	b.mustRun(fxsaveRDI)
	img := b.m.ram[tmData+0x400:]
	if fsw, ftw := binary.LittleEndian.Uint16(img[2:]), img[4]; fsw != fswC2|fswPE || ftw != 0xff {
		t.Errorf("fxsave after paddb: fsw %#x ftw %#x, want %#x 0xff", fsw, ftw, fswC2|fswPE)
	}
	for i := 0; i < 8; i++ {
		want := st(i)
		if i == 0 {
			want = f80{mant: 0x0101010101010101, se: 0xffff}
		}
		got := f80{mant: binary.LittleEndian.Uint64(img[32+16*i:]), se: binary.LittleEndian.Uint16(img[40+16*i:])}
		if got != want {
			t.Errorf("fxsave ST(%d) = %#x, want %#x", i, got, want)
		}
	}

	// An x87 load after MMX without EMMS overflows the stack (every
	// register valid): masked IE with SF and C1, the indefinite pushed.
	// After EMMS it loads normally.
	for _, emms := range []bool{false, true} {
		mmxStart(c)
		b.mustRun("paddb %mm1,%mm0")
		if emms {
			b.mustRun("emms")
		}
		b.mustRun(fld1)
		wantFSW, wantST := uint16(fswC2|fswPE|fswIE|fswSF|fswC1), f80Indefinite
		if emms {
			wantFSW, wantST = fswC2|fswPE, f80{mant: 1 << 63, se: 0x3fff}
		}
		f := &c.fpu
		if f.top != 7 || f.fsw != wantFSW || f.st[7] != wantST || f.ftw>>7&1 != 1 {
			t.Errorf("fld1 after MMX (emms %v): top %d fsw %#x st7 %#x ftw %#x, want top 7 fsw %#x st7 %#x", emms, f.top, f.fsw, f.st[7], f.ftw, wantFSW, wantST)
		}
	}
}

// TestMMXFaults checks #UD, #NM and #MF of MMX instructions and of SSE
// instructions with mm operands: a faulting instruction changes nothing.
func TestMMXFaults(t *testing.T) {
	const lockPaddb = "f0 0f fc c1"
	asms := []string{"paddb %mm1,%mm0", "paddb (%rax),%mm2", "pavgb %mm1,%mm0", "pmovmskb %mm2,%ecx", "pshufw $0x1b,%mm1,%mm0",
		"movntq %mm1,(%rdi)", "emms", "movq2dq %mm1,%xmm9", "cvtpi2ps (%rax),%xmm2", "cvtpi2pd %mm1,%xmm12", "cvtpi2pd (%rax),%xmm2", lockPaddb}
	b := newSSEBench(t, asms...)
	c := b.m.cpu
	c.r[cpu.RAX], c.r[cpu.RDI] = tmData, tmData+0x100
	// osfxsr: the instruction checks CR4.OSFXSR; mf: it takes a pending
	// x87 exception.
	sse := map[string]bool{"pavgb %mm1,%mm0": true, "pmovmskb %mm2,%ecx": true, "movq2dq %mm1,%xmm9": true,
		"cvtpi2ps (%rax),%xmm2": true, "cvtpi2pd %mm1,%xmm12": true, "cvtpi2pd (%rax),%xmm2": true}
	noMF := map[string]bool{"cvtpi2ps (%rax),%xmm2": true, "cvtpi2pd (%rax),%xmm2": true}
	for _, tc := range []struct {
		name     string
		cr0, cr4 uint64 // set, cleared
		pending  bool
		want     func(asm string) int
	}{
		{"TS", cpu.CR0TS, 0, false, func(string) int { return cpu.ExcNM }},
		{"EM", cpu.CR0EM, 0, false, func(string) int { return cpu.ExcUD }},
		{"EM+TS", cpu.CR0EM | cpu.CR0TS, 0, false, func(string) int { return cpu.ExcUD }},
		{"TS+pending", cpu.CR0TS, 0, true, func(string) int { return cpu.ExcNM }},
		{"no OSFXSR", 0, cpu.CR4OSFXSR, false, func(asm string) int {
			if sse[asm] {
				return cpu.ExcUD
			}
			return -1
		}},
		{"pending", 0, 0, true, func(asm string) int {
			if noMF[asm] {
				return -1
			}
			return cpu.ExcMF
		}},
		{"pending, CR0.NE clear", 0, 0, true, func(string) int { return -1 }},
		{"none", 0, 0, false, func(string) int { return -1 }},
	} {
		for _, asm := range asms {
			mmxStart(c)
			if tc.pending {
				c.fpu.fcw &^= fswZE
				c.fpu.fsw |= fswZE | fswES | fswB
			}
			c.cr0 |= tc.cr0
			c.cr4 &^= tc.cr4
			if strings.Contains(tc.name, "NE clear") {
				c.cr0 &^= cpu.CR0NE
			}
			before := snapX87(c)
			want := tc.want(asm)
			if asm == lockPaddb {
				want = cpu.ExcUD
				if tc.cr0&(cpu.CR0EM|cpu.CR0TS) == cpu.CR0TS && tc.cr0&cpu.CR0EM == 0 {
					want = cpu.ExcUD // LOCK is #UD before #NM
				}
			}
			got := b.run(asm)
			c.cr0 = c.cr0&^tc.cr0 | cpu.CR0NE
			c.cr4 |= tc.cr4
			if got != want {
				t.Errorf("%s: %s: vector %d, want %d", tc.name, asm, got, want)
				continue
			}
			if got >= 0 {
				if d := cmp.Diff(before, snapX87(c), cmp.AllowUnexported(f80{})); d != "" {
					t.Errorf("%s: %s: x87 state changed by a faulting instruction (-before +after):\n%s", tc.name, asm, d)
				}
			}
		}
	}
}

// TestMMXNoAlloc runs a loop of MMX instructions and checks that executing
// them does not allocate.
func TestMMXNoAlloc(t *testing.T) {
	loop := []string{
		"0f 6f 04 24",    // movq   (%rsp),%mm0
		"0f fc c8",       // paddb  %mm0,%mm1
		"0f e5 d1",       // pmulhw %mm1,%mm2
		"0f 61 da",       // punpcklwd %mm2,%mm3
		"0f 6b e3",       // packssdw %mm3,%mm4
		"0f 72 f4 03",    // pslld  $3,%mm4
		"0f 70 ec 1b",    // pshufw $0x1b,%mm4,%mm5
		"0f f6 f5",       // psadbw %mm5,%mm6
		"48 0f 7e f0",    // movq   %mm6,%rax
		"0f 2a c6",       // cvtpi2ps %mm6,%xmm0
		"0f 2d f8",       // cvtps2pi %xmm0,%mm7
		"0f 7f 7c 24 08", // movq   %mm7,0x8(%rsp)
		"0f 77",          // emms
		"48 ff c9",       // dec    %rcx
		"75 cf",          // jne    0b
		"f4",             // hlt
	}
	checkNoAlloc(t, loop, "MMX", func(c *CPU) {})
}

// mmxListing is GNU as output (objdump -d) for the MMX forms and the SSE
// forms with mm operands: encoding bytes, a tab, the AT&T source text.
const mmxListing = `
0f fc c1	paddb %mm1,%mm0
0f fc 10	paddb (%rax),%mm2
0f fc 3d 78 56 34 12	paddb 0x12345678(%rip),%mm7
42 0f fc 5c a4 f8	paddb -0x8(%rsp,%r12,4),%mm3
0f fd c1	paddw %mm1,%mm0
0f fd 10	paddw (%rax),%mm2
0f fd 3d 78 56 34 12	paddw 0x12345678(%rip),%mm7
42 0f fd 5c a4 f8	paddw -0x8(%rsp,%r12,4),%mm3
0f fe c1	paddd %mm1,%mm0
0f fe 10	paddd (%rax),%mm2
0f fe 3d 78 56 34 12	paddd 0x12345678(%rip),%mm7
42 0f fe 5c a4 f8	paddd -0x8(%rsp,%r12,4),%mm3
0f d4 c1	paddq %mm1,%mm0
0f d4 10	paddq (%rax),%mm2
0f d4 3d 78 56 34 12	paddq 0x12345678(%rip),%mm7
42 0f d4 5c a4 f8	paddq -0x8(%rsp,%r12,4),%mm3
0f ec c1	paddsb %mm1,%mm0
0f ec 10	paddsb (%rax),%mm2
0f ec 3d 78 56 34 12	paddsb 0x12345678(%rip),%mm7
42 0f ec 5c a4 f8	paddsb -0x8(%rsp,%r12,4),%mm3
0f ed c1	paddsw %mm1,%mm0
0f ed 10	paddsw (%rax),%mm2
0f ed 3d 78 56 34 12	paddsw 0x12345678(%rip),%mm7
42 0f ed 5c a4 f8	paddsw -0x8(%rsp,%r12,4),%mm3
0f dc c1	paddusb %mm1,%mm0
0f dc 10	paddusb (%rax),%mm2
0f dc 3d 78 56 34 12	paddusb 0x12345678(%rip),%mm7
42 0f dc 5c a4 f8	paddusb -0x8(%rsp,%r12,4),%mm3
0f dd c1	paddusw %mm1,%mm0
0f dd 10	paddusw (%rax),%mm2
0f dd 3d 78 56 34 12	paddusw 0x12345678(%rip),%mm7
42 0f dd 5c a4 f8	paddusw -0x8(%rsp,%r12,4),%mm3
0f f8 c1	psubb %mm1,%mm0
0f f8 10	psubb (%rax),%mm2
0f f8 3d 78 56 34 12	psubb 0x12345678(%rip),%mm7
42 0f f8 5c a4 f8	psubb -0x8(%rsp,%r12,4),%mm3
0f f9 c1	psubw %mm1,%mm0
0f f9 10	psubw (%rax),%mm2
0f f9 3d 78 56 34 12	psubw 0x12345678(%rip),%mm7
42 0f f9 5c a4 f8	psubw -0x8(%rsp,%r12,4),%mm3
0f fa c1	psubd %mm1,%mm0
0f fa 10	psubd (%rax),%mm2
0f fa 3d 78 56 34 12	psubd 0x12345678(%rip),%mm7
42 0f fa 5c a4 f8	psubd -0x8(%rsp,%r12,4),%mm3
0f fb c1	psubq %mm1,%mm0
0f fb 10	psubq (%rax),%mm2
0f fb 3d 78 56 34 12	psubq 0x12345678(%rip),%mm7
42 0f fb 5c a4 f8	psubq -0x8(%rsp,%r12,4),%mm3
0f e8 c1	psubsb %mm1,%mm0
0f e8 10	psubsb (%rax),%mm2
0f e8 3d 78 56 34 12	psubsb 0x12345678(%rip),%mm7
42 0f e8 5c a4 f8	psubsb -0x8(%rsp,%r12,4),%mm3
0f e9 c1	psubsw %mm1,%mm0
0f e9 10	psubsw (%rax),%mm2
0f e9 3d 78 56 34 12	psubsw 0x12345678(%rip),%mm7
42 0f e9 5c a4 f8	psubsw -0x8(%rsp,%r12,4),%mm3
0f d8 c1	psubusb %mm1,%mm0
0f d8 10	psubusb (%rax),%mm2
0f d8 3d 78 56 34 12	psubusb 0x12345678(%rip),%mm7
42 0f d8 5c a4 f8	psubusb -0x8(%rsp,%r12,4),%mm3
0f d9 c1	psubusw %mm1,%mm0
0f d9 10	psubusw (%rax),%mm2
0f d9 3d 78 56 34 12	psubusw 0x12345678(%rip),%mm7
42 0f d9 5c a4 f8	psubusw -0x8(%rsp,%r12,4),%mm3
0f 74 c1	pcmpeqb %mm1,%mm0
0f 74 10	pcmpeqb (%rax),%mm2
0f 74 3d 78 56 34 12	pcmpeqb 0x12345678(%rip),%mm7
42 0f 74 5c a4 f8	pcmpeqb -0x8(%rsp,%r12,4),%mm3
0f 75 c1	pcmpeqw %mm1,%mm0
0f 75 10	pcmpeqw (%rax),%mm2
0f 75 3d 78 56 34 12	pcmpeqw 0x12345678(%rip),%mm7
42 0f 75 5c a4 f8	pcmpeqw -0x8(%rsp,%r12,4),%mm3
0f 76 c1	pcmpeqd %mm1,%mm0
0f 76 10	pcmpeqd (%rax),%mm2
0f 76 3d 78 56 34 12	pcmpeqd 0x12345678(%rip),%mm7
42 0f 76 5c a4 f8	pcmpeqd -0x8(%rsp,%r12,4),%mm3
0f 64 c1	pcmpgtb %mm1,%mm0
0f 64 10	pcmpgtb (%rax),%mm2
0f 64 3d 78 56 34 12	pcmpgtb 0x12345678(%rip),%mm7
42 0f 64 5c a4 f8	pcmpgtb -0x8(%rsp,%r12,4),%mm3
0f 65 c1	pcmpgtw %mm1,%mm0
0f 65 10	pcmpgtw (%rax),%mm2
0f 65 3d 78 56 34 12	pcmpgtw 0x12345678(%rip),%mm7
42 0f 65 5c a4 f8	pcmpgtw -0x8(%rsp,%r12,4),%mm3
0f 66 c1	pcmpgtd %mm1,%mm0
0f 66 10	pcmpgtd (%rax),%mm2
0f 66 3d 78 56 34 12	pcmpgtd 0x12345678(%rip),%mm7
42 0f 66 5c a4 f8	pcmpgtd -0x8(%rsp,%r12,4),%mm3
0f d5 c1	pmullw %mm1,%mm0
0f d5 10	pmullw (%rax),%mm2
0f d5 3d 78 56 34 12	pmullw 0x12345678(%rip),%mm7
42 0f d5 5c a4 f8	pmullw -0x8(%rsp,%r12,4),%mm3
0f e5 c1	pmulhw %mm1,%mm0
0f e5 10	pmulhw (%rax),%mm2
0f e5 3d 78 56 34 12	pmulhw 0x12345678(%rip),%mm7
42 0f e5 5c a4 f8	pmulhw -0x8(%rsp,%r12,4),%mm3
0f f4 c1	pmuludq %mm1,%mm0
0f f4 10	pmuludq (%rax),%mm2
0f f4 3d 78 56 34 12	pmuludq 0x12345678(%rip),%mm7
42 0f f4 5c a4 f8	pmuludq -0x8(%rsp,%r12,4),%mm3
0f f5 c1	pmaddwd %mm1,%mm0
0f f5 10	pmaddwd (%rax),%mm2
0f f5 3d 78 56 34 12	pmaddwd 0x12345678(%rip),%mm7
42 0f f5 5c a4 f8	pmaddwd -0x8(%rsp,%r12,4),%mm3
0f 63 c1	packsswb %mm1,%mm0
0f 63 10	packsswb (%rax),%mm2
0f 63 3d 78 56 34 12	packsswb 0x12345678(%rip),%mm7
42 0f 63 5c a4 f8	packsswb -0x8(%rsp,%r12,4),%mm3
0f 6b c1	packssdw %mm1,%mm0
0f 6b 10	packssdw (%rax),%mm2
0f 6b 3d 78 56 34 12	packssdw 0x12345678(%rip),%mm7
42 0f 6b 5c a4 f8	packssdw -0x8(%rsp,%r12,4),%mm3
0f 67 c1	packuswb %mm1,%mm0
0f 67 10	packuswb (%rax),%mm2
0f 67 3d 78 56 34 12	packuswb 0x12345678(%rip),%mm7
42 0f 67 5c a4 f8	packuswb -0x8(%rsp,%r12,4),%mm3
0f 60 c1	punpcklbw %mm1,%mm0
0f 60 10	punpcklbw (%rax),%mm2
0f 60 3d 78 56 34 12	punpcklbw 0x12345678(%rip),%mm7
42 0f 60 5c a4 f8	punpcklbw -0x8(%rsp,%r12,4),%mm3
0f 61 c1	punpcklwd %mm1,%mm0
0f 61 10	punpcklwd (%rax),%mm2
0f 61 3d 78 56 34 12	punpcklwd 0x12345678(%rip),%mm7
42 0f 61 5c a4 f8	punpcklwd -0x8(%rsp,%r12,4),%mm3
0f 62 c1	punpckldq %mm1,%mm0
0f 62 10	punpckldq (%rax),%mm2
0f 62 3d 78 56 34 12	punpckldq 0x12345678(%rip),%mm7
42 0f 62 5c a4 f8	punpckldq -0x8(%rsp,%r12,4),%mm3
0f 68 c1	punpckhbw %mm1,%mm0
0f 68 10	punpckhbw (%rax),%mm2
0f 68 3d 78 56 34 12	punpckhbw 0x12345678(%rip),%mm7
42 0f 68 5c a4 f8	punpckhbw -0x8(%rsp,%r12,4),%mm3
0f 69 c1	punpckhwd %mm1,%mm0
0f 69 10	punpckhwd (%rax),%mm2
0f 69 3d 78 56 34 12	punpckhwd 0x12345678(%rip),%mm7
42 0f 69 5c a4 f8	punpckhwd -0x8(%rsp,%r12,4),%mm3
0f 6a c1	punpckhdq %mm1,%mm0
0f 6a 10	punpckhdq (%rax),%mm2
0f 6a 3d 78 56 34 12	punpckhdq 0x12345678(%rip),%mm7
42 0f 6a 5c a4 f8	punpckhdq -0x8(%rsp,%r12,4),%mm3
0f db c1	pand %mm1,%mm0
0f db 10	pand (%rax),%mm2
0f db 3d 78 56 34 12	pand 0x12345678(%rip),%mm7
42 0f db 5c a4 f8	pand -0x8(%rsp,%r12,4),%mm3
0f df c1	pandn %mm1,%mm0
0f df 10	pandn (%rax),%mm2
0f df 3d 78 56 34 12	pandn 0x12345678(%rip),%mm7
42 0f df 5c a4 f8	pandn -0x8(%rsp,%r12,4),%mm3
0f eb c1	por %mm1,%mm0
0f eb 10	por (%rax),%mm2
0f eb 3d 78 56 34 12	por 0x12345678(%rip),%mm7
42 0f eb 5c a4 f8	por -0x8(%rsp,%r12,4),%mm3
0f ef c1	pxor %mm1,%mm0
0f ef 10	pxor (%rax),%mm2
0f ef 3d 78 56 34 12	pxor 0x12345678(%rip),%mm7
42 0f ef 5c a4 f8	pxor -0x8(%rsp,%r12,4),%mm3
0f f1 c1	psllw %mm1,%mm0
0f f1 10	psllw (%rax),%mm2
0f f1 3d 78 56 34 12	psllw 0x12345678(%rip),%mm7
42 0f f1 5c a4 f8	psllw -0x8(%rsp,%r12,4),%mm3
0f f2 c1	pslld %mm1,%mm0
0f f2 10	pslld (%rax),%mm2
0f f2 3d 78 56 34 12	pslld 0x12345678(%rip),%mm7
42 0f f2 5c a4 f8	pslld -0x8(%rsp,%r12,4),%mm3
0f f3 c1	psllq %mm1,%mm0
0f f3 10	psllq (%rax),%mm2
0f f3 3d 78 56 34 12	psllq 0x12345678(%rip),%mm7
42 0f f3 5c a4 f8	psllq -0x8(%rsp,%r12,4),%mm3
0f d1 c1	psrlw %mm1,%mm0
0f d1 10	psrlw (%rax),%mm2
0f d1 3d 78 56 34 12	psrlw 0x12345678(%rip),%mm7
42 0f d1 5c a4 f8	psrlw -0x8(%rsp,%r12,4),%mm3
0f d2 c1	psrld %mm1,%mm0
0f d2 10	psrld (%rax),%mm2
0f d2 3d 78 56 34 12	psrld 0x12345678(%rip),%mm7
42 0f d2 5c a4 f8	psrld -0x8(%rsp,%r12,4),%mm3
0f d3 c1	psrlq %mm1,%mm0
0f d3 10	psrlq (%rax),%mm2
0f d3 3d 78 56 34 12	psrlq 0x12345678(%rip),%mm7
42 0f d3 5c a4 f8	psrlq -0x8(%rsp,%r12,4),%mm3
0f e1 c1	psraw %mm1,%mm0
0f e1 10	psraw (%rax),%mm2
0f e1 3d 78 56 34 12	psraw 0x12345678(%rip),%mm7
42 0f e1 5c a4 f8	psraw -0x8(%rsp,%r12,4),%mm3
0f e2 c1	psrad %mm1,%mm0
0f e2 10	psrad (%rax),%mm2
0f e2 3d 78 56 34 12	psrad 0x12345678(%rip),%mm7
42 0f e2 5c a4 f8	psrad -0x8(%rsp,%r12,4),%mm3
0f e0 c1	pavgb %mm1,%mm0
0f e0 10	pavgb (%rax),%mm2
0f e0 3d 78 56 34 12	pavgb 0x12345678(%rip),%mm7
42 0f e0 5c a4 f8	pavgb -0x8(%rsp,%r12,4),%mm3
0f e3 c1	pavgw %mm1,%mm0
0f e3 10	pavgw (%rax),%mm2
0f e3 3d 78 56 34 12	pavgw 0x12345678(%rip),%mm7
42 0f e3 5c a4 f8	pavgw -0x8(%rsp,%r12,4),%mm3
0f da c1	pminub %mm1,%mm0
0f da 10	pminub (%rax),%mm2
0f da 3d 78 56 34 12	pminub 0x12345678(%rip),%mm7
42 0f da 5c a4 f8	pminub -0x8(%rsp,%r12,4),%mm3
0f de c1	pmaxub %mm1,%mm0
0f de 10	pmaxub (%rax),%mm2
0f de 3d 78 56 34 12	pmaxub 0x12345678(%rip),%mm7
42 0f de 5c a4 f8	pmaxub -0x8(%rsp,%r12,4),%mm3
0f ea c1	pminsw %mm1,%mm0
0f ea 10	pminsw (%rax),%mm2
0f ea 3d 78 56 34 12	pminsw 0x12345678(%rip),%mm7
42 0f ea 5c a4 f8	pminsw -0x8(%rsp,%r12,4),%mm3
0f ee c1	pmaxsw %mm1,%mm0
0f ee 10	pmaxsw (%rax),%mm2
0f ee 3d 78 56 34 12	pmaxsw 0x12345678(%rip),%mm7
42 0f ee 5c a4 f8	pmaxsw -0x8(%rsp,%r12,4),%mm3
0f f6 c1	psadbw %mm1,%mm0
0f f6 10	psadbw (%rax),%mm2
0f f6 3d 78 56 34 12	psadbw 0x12345678(%rip),%mm7
42 0f f6 5c a4 f8	psadbw -0x8(%rsp,%r12,4),%mm3
0f e4 c1	pmulhuw %mm1,%mm0
0f e4 10	pmulhuw (%rax),%mm2
0f e4 3d 78 56 34 12	pmulhuw 0x12345678(%rip),%mm7
42 0f e4 5c a4 f8	pmulhuw -0x8(%rsp,%r12,4),%mm3
0f 71 f5 03	psllw $0x3,%mm5
0f 72 f5 03	pslld $0x3,%mm5
0f 73 f5 03	psllq $0x3,%mm5
0f 71 d5 03	psrlw $0x3,%mm5
0f 72 d5 03	psrld $0x3,%mm5
0f 73 d5 03	psrlq $0x3,%mm5
0f 71 e5 03	psraw $0x3,%mm5
0f 72 e5 03	psrad $0x3,%mm5
0f 6e c8	movd %eax,%mm1
41 0f 6e 11	movd (%r9),%mm2
48 0f 6e c8	movq %rax,%mm1
49 0f 7e da	movq %mm3,%r10
41 0f 7e e3	movd %mm4,%r11d
0f 7e 27	movd %mm4,(%rdi)
0f 6f d1	movq %mm1,%mm2
0f 6f 10	movq (%rax),%mm2
0f 7f 5b 10	movq %mm3,0x10(%rbx)
0f 6f e3	movq %mm3,%mm4
0f 77	emms
0f e7 0f	movntq %mm1,(%rdi)
0f 70 c1 1b	pshufw $0x1b,%mm1,%mm0
0f 70 00 1b	pshufw $0x1b,(%rax),%mm0
0f c4 d8 02	pinsrw $0x2,%eax,%mm3
0f c4 18 02	pinsrw $0x2,(%rax),%mm3
0f c5 c3 01	pextrw $0x1,%mm3,%eax
0f d7 ca	pmovmskb %mm2,%ecx
0f f7 d1	maskmovq %mm1,%mm2
f3 44 0f d6 c9	movq2dq %mm1,%xmm9
f2 41 0f d6 ca	movdq2q %xmm10,%mm1
0f 2a d1	cvtpi2ps %mm1,%xmm2
0f 2a 10	cvtpi2ps (%rax),%xmm2
0f 2d d1	cvtps2pi %xmm1,%mm2
0f 2d 10	cvtps2pi (%rax),%mm2
41 0f 2c d3	cvttps2pi %xmm11,%mm2
0f 2c 10	cvttps2pi (%rax),%mm2
66 44 0f 2a e1	cvtpi2pd %mm1,%xmm12
66 0f 2a 10	cvtpi2pd (%rax),%xmm2
66 0f 2d d1	cvtpd2pi %xmm1,%mm2
66 0f 2d 10	cvtpd2pi (%rax),%mm2
66 41 0f 2c d5	cvttpd2pi %xmm13,%mm2
66 0f 2c 10	cvttpd2pi (%rax),%mm2
`
