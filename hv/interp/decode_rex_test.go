package interp

import (
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

// TestDecodeStrayREX: a REX prefix not immediately before the opcode is
// ignored, as the CPU does. x86asm v0.32.0 rejects these encodings, so the
// oracle is the host: the differential test runs such prefix orders
// natively (diffgen_test.go).
func TestDecodeStrayREX(t *testing.T) {
	for _, tc := range []struct {
		name     string
		code     []byte
		rax, mem uint64 // RAX and the qword at [RBX] afterwards
	}{
		{"44-66-add", []byte{0x44, 0x66, 0x03, 0x03}, 0x1111_2222_3333_7777, 0x0102_0304_0506_4444},
		{"4f-48-xadd", []byte{0x4f, 0x48, 0x0f, 0xc1, 0x03}, 0x0102_0304_0506_4444, 0x1213_2526_3839_7777},
		{"48-66-add", []byte{0x48, 0x66, 0x03, 0x03}, 0x1111_2222_3333_7777, 0x0102_0304_0506_4444},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if in, err := decode(tc.code); err != nil || int(in.len) != len(tc.code) || in.op == 0 {
				t.Fatalf("decode: op %d (%s) len %d, %v", in.op, opNames[in.op], in.len, err)
			}
			m := newTestMachine(t, append(append([]byte{}, tc.code...), 0xf4))
			m.cpu.r[cpu.RAX] = 0x1111_2222_3333_3333
			m.cpu.r[cpu.R8] = 0x8888
			m.cpu.r[cpu.RBX] = tmData
			m.putq(tmData, 0x0102_0304_0506_4444)
			m.runToHLT(10)
			if m.reg(cpu.RAX) != tc.rax || m.q(tmData) != tc.mem || m.reg(cpu.R8) != 0x8888 {
				t.Errorf("RAX %#x [RBX] %#x R8 %#x, want %#x %#x 0x8888", m.reg(cpu.RAX), m.q(tmData), m.reg(cpu.R8), tc.rax, tc.mem)
			}
		})
	}
}
