package cpu

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCPUIDSignatures(t *testing.T) {
	_, b, c, d := CPUID(0, 0, 0)
	var v [12]byte
	binary.LittleEndian.PutUint32(v[0:], b)
	binary.LittleEndian.PutUint32(v[4:], d)
	binary.LittleEndian.PutUint32(v[8:], c)
	if string(v[:]) != VendorString {
		t.Errorf("vendor = %q, want %q", v, VendorString)
	}
	max, b, c, d := CPUID(0x40000000, 0, 0)
	binary.LittleEndian.PutUint32(v[0:], b)
	binary.LittleEndian.PutUint32(v[4:], c)
	binary.LittleEndian.PutUint32(v[8:], d)
	if string(v[:]) != HypervisorSignature || max < 0x40000001 {
		t.Errorf("hypervisor leaf = %q max %#x", v, max)
	}
	var brand []byte
	for l := uint32(0x80000002); l <= 0x80000004; l++ {
		a, b, c, d := CPUID(l, 0, 0)
		for _, r := range []uint32{a, b, c, d} {
			brand = binary.LittleEndian.AppendUint32(brand, r)
		}
	}
	if got := string(brand[:18]); got != "pvisor virtual CPU" {
		t.Errorf("brand = %q", got)
	}
}

// Linux 6.12's arch/x86/include/asm/required-features.h plus what the
// issue requires: the kernel refuses to boot without these.
func TestCPUIDRequiredFeatures(t *testing.T) {
	_, _, ecx, edx := CPUID(1, 0, 0)
	for name, bit := range map[string]uint32{"fpu": Feat1EDXFPU, "pse": Feat1EDXPSE, "tsc": Feat1EDXTSC,
		"msr": Feat1EDXMSR, "pae": Feat1EDXPAE, "cx8": Feat1EDXCX8, "pge": Feat1EDXPGE, "cmov": Feat1EDXCMOV,
		"fxsr": Feat1EDXFXSR, "sse": Feat1EDXSSE, "sse2": Feat1EDXSSE2} {
		if edx&bit == 0 {
			t.Errorf("leaf 1 EDX lacks %s", name)
		}
	}
	// No SSE3 (bit 0), SSSE3 (9), SSE4.1 (19), SSE4.2 (20), POPCNT (23), XSAVE (26), OSXSAVE (27), AVX (28).
	if bad := ecx & (1<<0 | 1<<9 | 1<<19 | 1<<20 | 1<<23 | 1<<26 | 1<<27 | 1<<28); bad != 0 {
		t.Errorf("leaf 1 ECX advertises %#x", bad)
	}
	_, _, _, xedx := CPUID(0x80000001, 0, 0)
	for name, bit := range map[string]uint32{"syscall": FeatExtEDXSyscall, "nx": FeatExtEDXNX, "lm": FeatExtEDXLM} {
		if xedx&bit == 0 {
			t.Errorf("leaf 0x80000001 EDX lacks %s", name)
		}
	}
}

func TestExitTableComplete(t *testing.T) {
	for m := Mode(0); m < NumModes; m++ {
		if ExitTable[m][ClassHypercall] != ActExit {
			t.Errorf("%v: hypercall must exit", m)
		}
	}
	// hwassist: exactly VT-x+EPT's exits for the classes where they differ from trap.
	for _, c := range []Class{ClassCR3Write, ClassINVLPG, ClassDescLoad, ClassRDTSC} {
		if ExitTable[ModeHWAssist][c] != ActExecute {
			t.Errorf("hwassist %v should execute", c)
		}
		if ExitTable[ModeTrap][c] != ActPrivileged {
			t.Errorf("trap %v should trap", c)
		}
	}
	for c := Class(0); c < NumClasses; c++ {
		if c.String() == "" || classNames[c] == "" {
			t.Errorf("class %d has no name", c)
		}
	}
}

// TestCPUIDDocMatchesFeatures: docs/cpuid.md lists, per feature word,
// exactly the bits cpu.Features advertises, and CPUID reports them.
func TestCPUIDDocMatchesFeatures(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cpuid.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string][]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 4 {
			continue
		}
		word := strings.TrimSpace(cols[1])
		for _, n := range strings.Split(cols[2], ",") {
			listed[word] = append(listed[word], strings.TrimSpace(n))
		}
	}
	want := map[string][]string{}
	var got [numFeatureWords]uint32
	_, _, got[Leaf1ECX], got[Leaf1EDX] = CPUID(1, 0, 0)
	_, _, got[ExtLeafECX], got[ExtLeafEDX] = CPUID(0x80000001, 0, 0)
	var fromTable [numFeatureWords]uint32
	for _, f := range Features {
		want[f.Word.String()] = append(want[f.Word.String()], f.Name)
		fromTable[f.Word] |= f.Bit
	}
	for w := FeatureWord(0); w < numFeatureWords; w++ {
		if diff := cmp.Diff(want[w.String()], listed[w.String()]); diff != "" {
			t.Errorf("docs/cpuid.md row %q differs from cpu.Features (-table +doc):\n%s", w, diff)
		}
		if got[w] != fromTable[w] {
			t.Errorf("CPUID %s = %#x, cpu.Features says %#x", w, got[w], fromTable[w])
		}
	}
}
