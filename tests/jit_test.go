package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/jit"
)

// TestLinuxJIT boots Linux on the binary translator (Config.JIT) in every
// mode, on one vCPU and on two (the patched kernel in pv mode, the
// unmodified one in trap and hwassist mode), and runs the stress workload:
// its outputs must equal the host busybox's, as on the interpreter.
func TestLinuxJIT(t *testing.T) {
	if !jit.Available {
		t.Skip("no translator on this host architecture")
	}
	for _, mode := range []cpu.Mode{cpu.ModePV, cpu.ModeTrap, cpu.ModeHWAssist} {
		for _, n := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/%d", mode, n), func(t *testing.T) {
				vmlinux, initrd, con := modeGuest(t, mode)
				var out syncBuffer
				cfg := linuxConfig(t, vmlinux, initrd, mode, con, "T=/tmp\n"+stressScript, &out)
				cfg.VCPUs, cfg.JIT = n, true
				vm, err := hv.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				o, code, _ := runLinuxVM(t, vm, mode, &out, 15*time.Minute)
				checkStress(t, o, code)
				var s cpu.Stats
				for i := 0; i < n; i++ {
					e := vm.EngineStats(i)
					s.Instructions += e.Instructions
					s.TranslatedBlocks += e.TranslatedBlocks
					s.TranslatedInsts += e.TranslatedInsts
					s.TranslatedRuns += e.TranslatedRuns
				}
				t.Logf("%v, %d vCPU(s): %d instructions, %d blocks translated (%d instructions), %d runs of translated code",
					mode, n, s.Instructions, s.TranslatedBlocks, s.TranslatedInsts, s.TranslatedRuns)
				if s.TranslatedBlocks < 1000 || s.TranslatedRuns < 1000000 {
					t.Errorf("the translator hardly ran: %d blocks, %d runs", s.TranslatedBlocks, s.TranslatedRuns)
				}
			})
		}
	}
}
