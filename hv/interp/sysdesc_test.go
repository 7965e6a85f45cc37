package interp

import (
	"encoding/binary"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// TestSystemDescriptorCanonicalBase: LTR and LLDT of a 16-byte descriptor
// whose 64-bit base is not canonical raise #GP(selector) and load nothing,
// so TR and LDTR always hold canonical bases (RestoreState relies on it).
func TestSystemDescriptorCanonicalBase(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inst  string
		typ   uint64 // descriptor type
		hi    uint64 // base bits 63:32
		fault bool
	}{
		{"ltr canonical", "ltr ax", 0x9, 0xffff8000, false},
		{"ltr non-canonical", "ltr ax", 0x9, 0x00008000, true},
		{"lldt canonical", "lldt ax", 0x2, 0xffff8000, false},
		{"lldt non-canonical", "lldt ax", 0x2, 0x00008000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, "mov ax, 0x50\nf: "+tc.inst+"\n hlt")
			lo := uint64(0x67) | uint64(0x1000)<<16 | (tc.typ|0x80)<<40
			binary.LittleEndian.PutUint64(m.ram[tmGDT+0x50:], lo)
			binary.LittleEndian.PutUint64(m.ram[tmGDT+0x58:], tc.hi)
			m.setSRegs(func(s *cpu.SRegs) { s.GDT.Limit = 0x5f })
			before := m.cpu.SRegs()
			m.runToHLT(10)
			s := m.cpu.SRegs()
			if !tc.fault {
				seg := s.TR
				if tc.typ == 0x2 {
					seg = s.LDT
				}
				if m.vector() != -1 || seg.Base != tc.hi<<32|0x1000 {
					t.Fatalf("vector %d, base %#x: the canonical descriptor did not load", m.vector(), seg.Base)
				}
				return
			}
			if m.vector() != cpu.ExcGP || m.frame(2)[0] != 0x50 || m.frame(2)[1] != p.addr(t, "f") {
				t.Fatalf("vector %d frame %#x, want #GP(0x50) at the %s", m.vector(), m.frame(2), tc.inst)
			}
			if s.TR != before.TR || s.LDT != before.LDT {
				t.Errorf("TR %+v LDTR %+v changed by the refused load", s.TR, s.LDT)
			}
		})
	}
}
