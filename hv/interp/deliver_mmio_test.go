package interp

import (
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// TestDeliveryMMIORestart: with the IDT outside RAM, delivering an event
// exits to read its gate (once per qword), and the delivery runs again
// from its start with the answers, as an instruction does: the event is
// delivered through the gate the hypervisor answered, not lost. The state
// is saved and restored after the first answer; both vCPUs deliver.
func TestDeliveryMMIORestart(t *testing.T) {
	const idt = tmSmallRAM // just past RAM
	cases := []struct {
		name  string
		src   string
		vec   int
		setup func(m *testMachine)
		// rip is the label of the pushed RIP
		rip    string
		hasErr bool
	}{
		{"injected #GP", "start: nop\n hlt", cpu.ExcGP,
			func(m *testMachine) { m.cpu.InjectException(cpu.ExcGP, 0, true) }, "start", true},
		{"interrupt", "sti\n nop\nstart: hlt", 0x30,
			func(m *testMachine) { m.cpu.SetIRQ(0x30) }, "start", false},
		{"int n", "int 0x21\nstart: hlt", 0x21, func(m *testMachine) {}, "start", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, p := newAsmMachine(t, cpu.ModeHWAssist, tc.src)
			m.setSRegs(func(s *cpu.SRegs) { s.IDT.Base = idt })
			tc.setup(m)
			handler := uint64(tmHltBase + tc.vec)
			gate := [2]uint64{handler&0xffff | tmKernelCS<<16 | 0xe<<40 | 3<<45 | 1<<47 | (handler>>16&0xffff)<<48, handler >> 32}
			answer := func(m *testMachine, want uint64) {
				t.Helper()
				e := m.runExit(100)
				if e.Reason != cpu.ExitMMIO || e.MMIO.Write || e.MMIO.Addr != want {
					t.Fatalf("exit %v at %#x, want the MMIO read of %#x", e.Reason, e.MMIO.Addr, want)
				}
				e.MMIO.Data = gate[(want-idt)/8%2]
			}
			base := idt + uint64(tc.vec)*16
			answer(m, base)
			n := m.cloneRestored(cpu.ModeHWAssist)
			for _, x := range []*testMachine{m, n} {
				answer(x, base+8)
				x.runToHLT(100)
				checkFrame(t, x, wantFrame{vec: tc.vec, hasErr: tc.hasErr, rip: p.addr(t, tc.rip), cs: tmKernelCS, rsp: tmKStack, ss: tmKernelDS})
				if x.cpu.IRQPending() {
					t.Errorf("the interrupt is still pending after its delivery")
				}
			}
			sameMachines(t, m, n)
		})
	}
}
