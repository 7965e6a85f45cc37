package hv

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/loader"
	"github.com/pvisor/pvisor/mm"
)

// privGuest executes privileged instructions (mov from/to CR, cpuid, out to
// the CMOS index port selecting register 0x0f, in from the data port,
// wrmsr/rdmsr of LSTAR) and reports the results through the console.
var privGuest = []byte{
	0x0f, 0x20, 0xc0, 0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00, 0x0f,
	0x20, 0xd8, 0x0f, 0x22, 0xd8, 0x48, 0x89, 0x04, 0x25, 0x08, 0x00, 0x30,
	0x00, 0xb8, 0x00, 0x00, 0x00, 0x40, 0x0f, 0xa2, 0x89, 0x1c, 0x25, 0x10,
	0x00, 0x30, 0x00, 0xb0, 0x0f, 0xe6, 0x70, 0xe4, 0x71, 0x48, 0x89, 0x04,
	0x25, 0x18, 0x00, 0x30, 0x00, 0xb9, 0x82, 0x00, 0x00, 0xc0, 0xb8, 0x78,
	0x56, 0x34, 0x12, 0xba, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x30, 0x31, 0xc0,
	0x31, 0xd2, 0x0f, 0x32, 0x89, 0x04, 0x25, 0x20, 0x00, 0x30, 0x00, 0x89,
	0x14, 0x25, 0x24, 0x00, 0x30, 0x00, 0x49, 0xc7, 0xc3, 0x00, 0xa0, 0x00,
	0x00, 0xbf, 0x00, 0x00, 0x30, 0x00, 0xbe, 0x28, 0x00, 0x00, 0x00, 0xb8,
	0x03, 0x00, 0x00, 0x00, 0x41, 0xff, 0xd3, 0xb8, 0x0f, 0x00, 0x00, 0x00,
	0x31, 0xff, 0x31, 0xf6, 0x41, 0xff, 0xd3, 0xf4,
}

// TestPrivilegedEmulation runs privGuest in trap and pv modes, where every
// one of those instructions exits to hv/emul, and in hwassist mode, where
// the engine or the typed exits handle them; the results must agree.
func TestPrivilegedEmulation(t *testing.T) {
	var trapIn uint64
	for _, mode := range []cpu.Mode{cpu.ModeTrap, cpu.ModePV, cpu.ModeHWAssist} {
		var out bytes.Buffer
		vm, err := New(Config{Kernel: elfImage(privGuest), MemBytes: 8 << 20, Mode: mode,
			Budget: mm.NewBudget(1 << 30), Console: &out, DeterministicTSC: true})
		if err != nil {
			t.Fatal(err)
		}
		st := vm.Run()
		b := out.Bytes()
		if st.Code != 0 || len(b) != 40 {
			t.Fatalf("%v: status %+v, %d console bytes", mode, st, len(b))
		}
		le := binary.LittleEndian
		cr0, cr3, sig, in := le.Uint64(b), le.Uint64(b[8:]), le.Uint32(b[16:]), le.Uint64(b[24:])
		lstar := uint64(le.Uint32(b[32:])) | uint64(le.Uint32(b[36:]))<<32
		wantCR0 := uint64(cpu.CR0PE | cpu.CR0MP | cpu.CR0ET | cpu.CR0NE | cpu.CR0WP | cpu.CR0PG)
		// Port 0x71 is the CMOS data port, register 0x0f (plain CMOS RAM, not
		// the clock, so both runs read the same): the emulated RTC answers
		// in trap and hwassist, pv mode has no device and reads 0xff.
		wantIn := uint64(0xff)
		switch mode {
		case cpu.ModeTrap:
			trapIn = in & 0xff
			wantIn = trapIn
		case cpu.ModeHWAssist:
			wantIn = trapIn
		}
		if cr0 != wantCR0 || cr3 != loader.PML4GPA || sig != 0x73697670 /* "pvis" */ || in&0xff != wantIn || lstar != 0xffffffff12345678 {
			t.Errorf("%v: cr0 %#x cr3 %#x sig %#x in %#x lstar %#x", mode, cr0, cr3, sig, in, lstar)
		}
		_, priv, before, _ := vm.StatsSnapshot()
		if mode == cpu.ModeHWAssist {
			if before != 0 {
				t.Errorf("hwassist: %d privileged exits", before)
			}
			continue
		}
		// trap: mov cr0, mov cr3 x2, cpuid, out, in, wrmsr, rdmsr; pv: cpuid executes.
		want := uint64(8)
		if mode == cpu.ModePV {
			want = 7
		}
		if before != want || len(priv) != 0 {
			t.Errorf("%v: %d privileged exits before PV start (want %d), after: %v", mode, before, want, priv)
		}
	}
}
