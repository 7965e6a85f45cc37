package interp

import (
	"encoding/binary"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// runCountingShadow runs the test machine to its HLT (an HLT exit, or in
// trap mode the privileged exit for it) and returns the shadow faults met,
// checking each one's RIP and address.
func runCountingShadow(t *testing.T, m *testMachine, wantRIP, wantAddr uint64) int {
	t.Helper()
	n := 0
	for range 1000 {
		e, err := m.cpu.Run(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Reason == cpu.ExitHLT, e.Reason == cpu.ExitPrivileged && e.Inst[0] == 0xf4:
			return n
		case e.Reason == cpu.ExitShadowFault:
			n++
			if e.RIP != wantRIP || e.Fault.Addr != wantAddr || m.cpu.Regs().RIP != wantRIP {
				t.Fatalf("shadow fault at rip %#x (vCPU at %#x) addr %#x, want rip %#x addr %#x",
					e.RIP, m.cpu.Regs().RIP, e.Fault.Addr, wantRIP, wantAddr)
			}
		case e.Reason == cpu.ExitCPUID, e.Reason == cpu.ExitMSR, e.Reason == cpu.ExitCR:
		default:
			t.Fatalf("unexpected exit %v at rip %#x: %s", e.Reason, e.RIP, e.Message)
		}
	}
	t.Fatal("no HLT after 1000 exits")
	return n
}

// TestShadowPageTables: in trap mode a write to a page-table page the
// walker has used exits once before the instruction commits, and running
// again completes it; pv and hwassist (EPT) have no such exit. After
// ShadowFloodWrites trapped writes with no walk through the page, writes
// stop exiting. The page table written is a 4 KiB table the test adds
// under PD entry 510 (VA 1020 MiB): a walk for VA 1020 MiB goes through it,
// the walks for the writes (through the identity map) do not.
func TestShadowPageTables(t *testing.T) {
	const (
		pt  = tmData + 0x1000 // the extra page table
		pte = pt + 8          // its entry 1, written by the programs
	)
	one := []byte{
		0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0xc0, 0x3f, // mov rax, [0x3fc00000]: a walk through pt
		0x48, 0xc7, 0xc3, 0x03, 0x10, 0x30, 0x00, // mov rbx, 0x301003 (P|W)
		0x48, 0x89, 0x1c, 0x25, 0x08, 0x10, 0x20, 0x00, // mov [pte], rbx
		0xf4, // hlt
	}
	flood := []byte{
		0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0xc0, 0x3f, // mov rax, [0x3fc00000]
		0x48, 0xc7, 0xc3, 0x03, 0x10, 0x30, 0x00, // mov rbx, 0x301003
		0x48, 0xc7, 0xc1, 0x28, 0x00, 0x00, 0x00, // mov rcx, 40
		0x48, 0x89, 0x1c, 0x25, 0x08, 0x10, 0x20, 0x00, // loop: mov [pte], rbx
		0x48, 0xff, 0xc9, // dec rcx
		0x75, 0xf3, // jne loop
		0xf4, // hlt
	}
	for _, tc := range []struct {
		mode    cpu.Mode
		code    []byte
		rip     uint64
		want    int
		retired uint64
	}{
		{cpu.ModeTrap, one, tmCode + 15, 1, 3},
		{cpu.ModeHWAssist, one, tmCode + 15, 0, 3},
		{cpu.ModePV, one, tmCode + 15, 0, 3},
		{cpu.ModeTrap, flood, tmCode + 22, cpu.ShadowFloodWrites, 3 + 3*40},
	} {
		m := newTestMachineMode(t, tc.mode, tc.code)
		binary.LittleEndian.PutUint64(m.ram[tmPD+510*8:], pt|ptP|ptW)
		binary.LittleEndian.PutUint64(m.ram[pt:], 0x300000|ptP|ptW)
		got := runCountingShadow(t, m, tc.rip, pte)
		if got != tc.want {
			t.Errorf("%v, %d-byte program: %d shadow faults, want %d", tc.mode, len(tc.code), got, tc.want)
		}
		if v := binary.LittleEndian.Uint64(m.ram[pte:]); v != 0x301003 {
			t.Errorf("%v: page-table entry %#x after the write", tc.mode, v)
		}
		if n := m.cpu.Stats().Instructions; n != tc.retired && n != tc.retired+1 {
			t.Errorf("%v: %d instructions retired, want %d (+1 for HLT)", tc.mode, n, tc.retired)
		}
	}
}
