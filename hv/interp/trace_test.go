package interp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
)

func TestTrace(t *testing.T) {
	code := []byte{
		0x48, 0xc7, 0xc0, 0x05, 0x00, 0x00, 0x00, // mov rax, 5
		0x48, 0xff, 0xc8, // dec rax
		0x75, 0xfb, // jnz -5
		0xf4, // hlt
	}
	m := newTestMachine(t, code)
	var buf bytes.Buffer
	m.cpu.SetTrace(&buf)
	m.runToHLT(1000)
	m.cpu.FlushTrace()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// mov, then 5 x (dec, jnz), then hlt.
	if len(lines) != 12 {
		t.Fatalf("%d trace lines, want 12:\n%s", len(lines), buf.String())
	}
	if !strings.HasPrefix(lines[0], "RIP=0000000000100000 RAX=0000000000000000") {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.HasPrefix(lines[2], "RIP=000000000010000a RAX=0000000000000004") {
		t.Errorf("third line %q", lines[2])
	}
	if m.reg(cpu.RAX) != 0 {
		t.Error("program did not run to the end under tracing")
	}
}
