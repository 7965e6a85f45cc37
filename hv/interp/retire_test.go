package interp

import (
	"encoding/binary"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// TestRetireCount: between Run calls the TSC and the retire count
// agree, whatever point of a block the last exit came from, and an
// exception whose delivery faults counts the block once.
func TestRetireCount(t *testing.T) {
	t.Run("mmio-exit", testTSCAfterMMIOExit)
	t.Run("fault-in-delivery", testRetiredFaultInDelivery)
}

func testTSCAfterMMIOExit(t *testing.T) {
	m, _ := newAsmMachine(t, cpu.ModeHWAssist, "nop\n nop\n nop\n mov rax, [0x1000000]\n rdtsc\n hlt")
	e := m.runExit(100)
	if e.Reason != cpu.ExitMMIO {
		t.Fatalf("exit %v", e.Reason)
	}
	if st := m.cpu.Stats(); st.Instructions != 3 || m.cpu.TSC() != 3 {
		t.Fatalf("after an MMIO exit at the 4th instruction: %d retired, TSC %d; want 3 and 3", st.Instructions, m.cpu.TSC())
	}
	if s := m.saveState(); s.TSC != 3 || s.Retired != 3 {
		t.Fatalf("saved TSC %d retired %d, want 3 and 3", s.TSC, s.Retired)
	}
	e.MMIO.Data = 0
	m.runToHLT(100)
	if got := m.reg(cpu.RAX); got != 5 {
		t.Errorf("RDTSC read %d, want 5 (3 NOPs, the MOV and the RDTSC itself)", got)
	}
}

// testRetiredFaultInDelivery: #UD whose gate is not present delivers #NP
// instead; the two NOPs before count once.
func testRetiredFaultInDelivery(t *testing.T) {
	f, _ := newAsmMachine(t, cpu.ModeHWAssist, "nop\n nop\n ud2\n hlt")
	lo := binary.LittleEndian.Uint64(f.ram[tmIDT+cpu.ExcUD*16:])
	binary.LittleEndian.PutUint64(f.ram[tmIDT+cpu.ExcUD*16:], lo&^(1<<47))
	if v := f.runToVector(100); v != cpu.ExcNP {
		t.Fatalf("stopped in vector %d, want #NP", v)
	}
	if got := f.cpu.Stats().Instructions; got != 3 {
		t.Errorf("%d instructions retired, want 3 (two NOPs and the handler's HLT)", got)
	}
}
