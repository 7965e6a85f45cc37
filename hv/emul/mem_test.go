package emul

import (
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/pvisor/pvisor/hv/cpu"
)

// effAddr must sign-extend the displacement x86asm hands back zero-extended.
func TestEffAddrNegativeDisp(t *testing.T) {
	for _, tc := range []struct {
		code []byte
		regs func(*cpu.Regs)
		want uint64
	}{
		// lidt -0x24ad54(%rip) at 0xffffffff816cae85 (len 7)
		{[]byte{0x0f, 0x01, 0x1d, 0xac, 0x52, 0xdb, 0xff}, func(r *cpu.Regs) { r.RIP = 0xffffffff816cae85 }, 0xffffffff81480138},
		// lgdt -0x10(%rax)
		{[]byte{0x0f, 0x01, 0x50, 0xf0}, func(r *cpu.Regs) { r.GPR[cpu.RAX] = 0x1000 }, 0xff0},
		// sgdt 0x10(%rax,%rbx,4)
		{[]byte{0x0f, 0x01, 0x44, 0x98, 0x10}, func(r *cpu.Regs) { r.GPR[cpu.RAX] = 0x1000; r.GPR[cpu.RBX] = 2 }, 0x1018},
	} {
		in, err := x86asm.Decode(tc.code, 64)
		if err != nil {
			t.Fatal(err)
		}
		var r cpu.Regs
		tc.regs(&r)
		if got := effAddr(in, in.Args[0].(x86asm.Mem), r, cpu.SRegs{}); got != tc.want {
			t.Errorf("% x: address %#x, want %#x", tc.code, got, tc.want)
		}
	}
}
