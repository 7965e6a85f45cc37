package hv

import (
	"bytes"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/interp"
	"github.com/pvisor/pvisor/mm"
)

// TestVCPUStateRestores: the vCPU state the loader's boot plan sets up,
// and the one a guest leaves after running and shutting down, pass
// RestoreState's checks in every mode (the checks refuse nothing a VM
// produces), and restore to the same state.
func TestVCPUStateRestores(t *testing.T) {
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		var out bytes.Buffer
		vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: mode, Budget: mm.NewBudget(1 << 30), Console: &out, DeterministicTSC: true})
		if err != nil {
			t.Fatal(err)
		}
		check := func(when string) {
			t.Helper()
			s, err := vm.vcpus[0].cpu.SaveState()
			if err != nil {
				t.Fatalf("%v %s: %v", mode, when, err)
			}
			c, err := interp.New(interp.Config{Mem: interp.NewMemory(make([]byte, 1<<20)), Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.RestoreState(s); err != nil {
				t.Fatalf("%v %s: %v", mode, when, err)
			}
			if s2, _ := c.SaveState(); s2.Regs != s.Regs || s2.SRegs != s.SRegs || s2.Events != s.Events {
				t.Errorf("%v %s: restored state differs", mode, when)
			}
		}
		check("at boot")
		if st := vm.Run(); st.Code != 42 {
			t.Fatalf("%v: status %+v", mode, st)
		}
		check("after shutdown")
	}
}
