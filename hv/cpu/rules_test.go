package cpu

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		va   uint64
		want bool
	}{
		{0, true}, {0x7fffffffffff, true}, {0x800000000000, false},
		{0xffff800000000000, true}, {0xffff7fffffffffff, false}, {1 << 63, false},
	} {
		if got := Canonical(tc.va); got != tc.want {
			t.Errorf("Canonical(%#x) = %v, want %v", tc.va, got, tc.want)
		}
	}
}

func TestControlRegisterRules(t *testing.T) {
	base0 := uint64(CR0PE | CR0PG | CR0ET | CR0NE | CR0WP)
	base4 := uint64(CR4PAE | CR4OSFXSR | CR4OSXMMEXCPT)
	for _, tc := range []struct {
		name  string
		write func(uint64) (uint64, bool)
		in    uint64
		out   uint64
		ok    bool
	}{
		{"cr0", CR0Write, base0 | CR0TS, base0 | CR0TS, true},
		{"cr0-et-reads-1", CR0Write, base0 &^ CR0ET, base0, true},
		{"cr0-bit32", CR0Write, base0 | 1<<32, 0, false},
		{"cr0-bit6", CR0Write, base0 | 1<<6, 0, false},
		{"cr0-no-pg", CR0Write, base0 &^ CR0PG, 0, false},
		{"cr0-pg-without-pe", CR0Write, base0 &^ CR0PE, 0, false},
		{"cr0-nw-without-cd", CR0Write, base0 | CR0NW, 0, false},
		{"cr0-cd-nw", CR0Write, base0 | CR0NW | CR0CD, base0 | CR0NW | CR0CD, true},
		{"cr4", CR4Write, base4 | CR4PGE | CR4PSE | CR4TSD | CR4PCE, base4 | CR4PGE | CR4PSE | CR4TSD | CR4PCE, true},
		{"cr4-no-pae", CR4Write, base4 &^ CR4PAE, 0, false},
		{"cr4-umip", CR4Write, base4 | CR4UMIP, 0, false},
		{"cr4-vme", CR4Write, base4 | CR4VME, 0, false},
		{"cr4-osxsave", CR4Write, base4 | CR4OSXSAVE, 0, false},
		{"cr4-smep", CR4Write, base4 | CR4SMEP, 0, false},
		{"cr3", CR3Write, 0xfffffff000, 0xfffffff000, true},
		{"cr3-bit63", CR3Write, 1<<63 | 0x1000, 0x1000, true},
		{"cr3-bit40", CR3Write, 1 << 40, 0, false},
		{"cr8", CR8Write, 15, 15, true},
		{"cr8-bit4", CR8Write, 16, 0, false},
	} {
		out, ok := tc.write(tc.in)
		if ok != tc.ok || ok && out != tc.out {
			t.Errorf("%s(%#x) = %#x, %v; want %#x, %v", tc.name, tc.in, out, ok, tc.out, tc.ok)
		}
	}
}

func TestMSRModel(t *testing.T) {
	init := MSRState{EFER: EFERLME | EFERLMA | EFERSCE, TSC: 1000, MSRs: MSRs{PAT: 0x0007040600070406}}
	for _, tc := range []struct {
		name string
		idx  uint32
		v    uint64
		res  MSRWriteResult
		want func(*MSRState)
	}{
		{"efer-nxe", MSREFER, EFERLME | EFERSCE | EFERNXE, MSRWritten, func(s *MSRState) { s.EFER = EFERLME | EFERLMA | EFERSCE | EFERNXE }},
		{"efer-clear-lme", MSREFER, EFERSCE, MSRRefused, nil},
		{"efer-reserved", MSREFER, EFERLME | 1<<14, MSRRefused, nil},
		{"lstar", MSRLSTAR, 0xffffffff81000000, MSRWritten, func(s *MSRState) { s.LSTAR = 0xffffffff81000000 }},
		{"lstar-noncanonical", MSRLSTAR, 1 << 47, MSRRefused, nil},
		{"gs-base", MSRGSBase, 0x1000, MSRWritten, func(s *MSRState) { s.GSBase = 0x1000 }},
		{"fs-base-noncanonical", MSRFSBase, 1 << 60, MSRRefused, nil},
		{"sfmask", MSRSFMASK, 1<<40 | 0x47700, MSRWritten, func(s *MSRState) { s.SFMASK = 0x47700 }},
		{"tsc", MSRTSC, 5, MSRWritten, func(s *MSRState) { s.TSC = 5 }},
		{"tsc-aux", MSRTSCAux, 1<<32 | 7, MSRWritten, func(s *MSRState) { s.TSCAux = 7 }},
		{"pat-invalid", MSRPAT, 0x02, MSRRefused, nil},
		{"unknown", 0x1234, 0, MSRUnknown, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := init
			want := init
			if tc.want != nil {
				tc.want(&want)
			}
			if res := WriteMSR(&s, tc.idx, tc.v); res != tc.res {
				t.Fatalf("WriteMSR = %d, want %d", res, tc.res)
			}
			if d := cmp.Diff(want, s); d != "" {
				t.Errorf("state (-want +got):\n%s", d)
			}
			if tc.res == MSRWritten {
				if v, ok := ReadMSR(&s, tc.idx); !ok || tc.idx != MSREFER && tc.idx != MSRSFMASK && tc.idx != MSRTSCAux && v != tc.v {
					t.Errorf("ReadMSR = %#x, %v after writing %#x", v, ok, tc.v)
				}
			}
		})
	}
}
