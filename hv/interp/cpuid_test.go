package interp

import (
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// featureProbes back each advertised CPUID feature bit (cpu.Features) with
// instructions or behaviour a CPU that advertises it must carry out: run
// in ring 0, each must reach its final HLT without an exception.
var featureProbes = map[string]struct {
	src   string
	setup func(m *testMachine)
}{
	"fpu":     {src: "fld1\n fldpi\n fmulp\n fstp st(0)\n fnstsw ax\n hlt"},
	"pse":     {src: "mov rax, cr4\n or rax, 0x10\n mov cr4, rax\n hlt"},
	"tsc":     {src: "rdtsc\n hlt"},
	"msr":     {src: "mov ecx, 0xc0000080\n rdmsr\n wrmsr\n hlt"},
	"pae":     {src: "mov rax, cr4\n or rax, 0x20\n mov cr4, rax\n hlt"},
	"cx8":     {src: "mov edi, 0x200000\n cmpxchg8b [rdi]\n lock cmpxchg8b [rdi]\n hlt"},
	"pge":     {src: "mov rax, cr4\n or rax, 0x80\n mov cr4, rax\n hlt"},
	"cmov":    {src: "cmovz eax, ebx\n cmovnc rax, [0x200000]\n hlt"},
	"pat":     {src: "mov ecx, 0x277\n rdmsr\n wrmsr\n hlt"},
	"clflush": {src: "clflush [0x200000]\n hlt"},
	"mmx": {src: "movq mm0, [0x200000]\n paddb mm0, mm1\n pmaddwd mm0, mm1\n packsswb mm0, mm1\n" +
		" psrlq mm0, 3\n movd eax, mm0\n emms\n hlt"},
	"fxsr": {src: "mov edi, 0x200000\n fxsave [rdi]\n fxrstor [rdi]\n fxsave64 [rdi]\n fxrstor64 [rdi]\n hlt"},
	"sse": {src: "addps xmm0, xmm1\n mulss xmm0, [0x200000]\n movaps xmm2, xmm0\n shufps xmm2, xmm0, 0x1b\n" +
		" stmxcsr [0x200000]\n ldmxcsr [0x200000]\n pminub mm0, mm1\n pavgb mm0, mm1\n emms\n sfence\n hlt"},
	"sse2": {src: "paddq xmm0, xmm1\n addpd xmm0, xmm1\n movdqa xmm2, xmm0\n pshufd xmm2, xmm0, 0x1b\n" +
		" cvttsd2si eax, xmm0\n pmovmskb eax, xmm2\n movq2dq xmm3, mm0\n emms\n lfence\n mfence\n hlt"},
	"cx16":       {src: "mov edi, 0x200000\n cmpxchg16b [rdi]\n lock cmpxchg16b [rdi]\n hlt"},
	"hypervisor": {src: "mov eax, 0x40000000\n cpuid\n cmp eax, 0x40000001\n jne 1f\n hlt\n1: ud2"},
	"syscall": {src: "mov ecx, 0xc0000081\n xor eax, eax\n mov edx, 0x10\n wrmsr\n" +
		" lea rax, [rip+2f]\n mov rdx, rax\n shr rdx, 32\n mov ecx, 0xc0000082\n wrmsr\n syscall\n ud2\n2: hlt"},
	"nx": {src: "mov ecx, 0xc0000080\n rdmsr\n or eax, 0x800\n wrmsr\n hlt"},
	"pdpe1gb": {src: "mov rax, [rbx]\n hlt", setup: func(m *testMachine) {
		va := uint64(tvBase) + 1<<30
		m.mapVA(tmPML4, va, 0, leaf1G, allFlags)
		m.setReg(cpu.RBX, va+0x200000)
	}},
	"lm":      {src: "mov ecx, 0xc0000080\n rdmsr\n bt eax, 10\n jnc 1f\n hlt\n1: ud2"},
	"lahf_lm": {src: "lahf\n sahf\n hlt"},
}

// TestCPUIDFeaturesBacked: every feature bit CPUID advertises is backed by
// the engine, in every mode: its representative instructions run without
// #UD (or any other exception). A bit with no probe fails the test.
func TestCPUIDFeaturesBacked(t *testing.T) {
	for _, f := range cpu.Features {
		p, ok := featureProbes[f.Name]
		if !ok {
			t.Errorf("CPUID advertises %s (%s bit %#x) but no probe backs it", f.Name, f.Word, f.Bit)
			continue
		}
		for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
			t.Run(f.Name+"/"+mode.String(), func(t *testing.T) {
				m, _ := newAsmMachine(t, mode, p.src)
				if p.setup != nil {
					p.setup(m)
				}
				if v := runEmulated(t, m); v != -1 {
					fr := m.frame(2)
					if cpu.HasErrorCode(uint8(v)) {
						fr = fr[1:]
					}
					t.Errorf("stopped in the handler of vector %d at %#x", v, fr[0])
				}
			})
		}
	}
	if len(featureProbes) != len(cpu.Features) {
		t.Errorf("%d probes for %d advertised features: a probe names a feature CPUID does not advertise", len(featureProbes), len(cpu.Features))
	}
}
