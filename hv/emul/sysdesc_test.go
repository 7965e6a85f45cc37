package emul

import (
	"encoding/binary"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/interp"
)

// ramMem is guest RAM as Mem.
type ramMem []byte

func (r ramMem) Slice(gpa, n uint64) ([]byte, bool) {
	if gpa+n < gpa || gpa+n > uint64(len(r)) {
		return nil, false
	}
	return r[gpa : gpa+n], true
}

func (ramMem) Invalidate(gpa, n uint64) {}

// TestLoadSystemSegmentCanonicalBase: the emulated LTR and LLDT refuse a
// 16-byte descriptor whose 64-bit base is not canonical with #GP(selector),
// as the engine's own do, and load a canonical one.
func TestLoadSystemSegmentCanonicalBase(t *testing.T) {
	const (
		pml4, pdpt, pd = 0x1000, 0x2000, 0x3000
		gdt, code      = 0x5000, 0x10000
		sel            = 0x50
	)
	for _, tc := range []struct {
		name  string
		inst  []byte
		typ   uint64
		hi    uint64
		fault bool
	}{
		{"ltr canonical", []byte{0x0f, 0x00, 0xd8}, 0x9, 0xffff8000, false},
		{"ltr non-canonical", []byte{0x0f, 0x00, 0xd8}, 0x9, 0x00008000, true},
		{"lldt canonical", []byte{0x0f, 0x00, 0xd0}, 0x2, 0xffff8000, false},
		{"lldt non-canonical", []byte{0x0f, 0x00, 0xd0}, 0x2, 0x00008000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ram := make([]byte, 4<<20)
			le := binary.LittleEndian
			le.PutUint64(ram[pml4:], pdpt|7)
			le.PutUint64(ram[pdpt:], pd|7)
			le.PutUint64(ram[pd:], 0|7|0x80) // 2 MiB identity page
			le.PutUint64(ram[pd+8:], 1<<21|7|0x80)
			le.PutUint64(ram[gdt+sel:], 0x67|0x1000<<16|(tc.typ|0x80)<<40)
			le.PutUint64(ram[gdt+sel+8:], tc.hi)
			copy(ram[code:], tc.inst)
			v, err := interp.New(interp.Config{Mem: interp.NewMemory(ram), Mode: cpu.ModeTrap})
			if err != nil {
				t.Fatal(err)
			}
			s := v.SRegs()
			s.CR3, s.GDT = pml4, cpu.DTable{Base: gdt, Limit: 0x5f}
			if err := v.SetSRegs(s); err != nil {
				t.Fatal(err)
			}
			var r cpu.Regs
			r.RIP, r.RFLAGS, r.GPR[cpu.RAX] = code, cpu.FlagsFixed, sel
			v.SetRegs(r)
			_, res, err := Emulate(v, tc.inst, nil, ramMem(ram))
			if err != nil {
				t.Fatal(err)
			}
			st, err := v.SaveState()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.fault {
				seg := st.SRegs.TR
				if tc.typ == 0x2 {
					seg = st.SRegs.LDT
				}
				if res != Done || seg.Base != tc.hi<<32|0x1000 {
					t.Fatalf("result %v, base %#x: the canonical descriptor did not load", res, seg.Base)
				}
				return
			}
			want := cpu.PendingException{Valid: true, Vector: cpu.ExcGP, HasError: true, Error: sel}
			if res != Fault || st.Events.Injected != want {
				t.Fatalf("result %v, injected %+v; want Fault and #GP(%#x)", res, st.Events.Injected, sel)
			}
			if st.SRegs.TR != s.TR || st.SRegs.LDT != s.LDT {
				t.Errorf("TR %+v LDTR %+v changed by the refused load", st.SRegs.TR, st.SRegs.LDT)
			}
		})
	}
}
