package interp

import (
	"bufio"
	"fmt"
	"io"

	"github.com/pvisor/pvisor/hv/cpu"
)

// Tracing: with a trace writer set, the engine runs one instruction per
// block and writes the state before each instruction, one line each:
//
//	RIP=<hex> RAX=<hex> RBX=... R15=<hex> RFL=<hex> CPL=<n>
//
// GPRs in the order RAX RBX RCX RDX RSI RDI RBP RSP R8..R15 (QEMU's), all
// 16 hex digits. cmd/tracediff compares this with QEMU's -d cpu log.

// SetTrace starts (w != nil) or stops tracing.
func (c *CPU) SetTrace(w io.Writer) {
	if w == nil {
		if c.trace != nil {
			c.trace.Flush()
		}
		c.trace = nil
		return
	}
	c.trace = bufio.NewWriterSize(w, 1<<16)
}

// FlushTrace writes out buffered trace lines.
func (c *CPU) FlushTrace() {
	if c.trace != nil {
		c.trace.Flush()
	}
}

var traceOrder = [16]int{cpu.RAX, cpu.RBX, cpu.RCX, cpu.RDX, cpu.RSI, cpu.RDI, cpu.RBP, cpu.RSP,
	cpu.R8, cpu.R9, cpu.R10, cpu.R11, cpu.R12, cpu.R13, cpu.R14, cpu.R15}

var traceNames = [16]string{"RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "RSP",
	"R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}

func (c *CPU) traceStep() {
	w := c.trace
	fmt.Fprintf(w, "RIP=%016x", c.rip)
	for i, r := range traceOrder {
		fmt.Fprintf(w, " %s=%016x", traceNames[i], c.r[r])
	}
	fmt.Fprintf(w, " RFL=%08x CPL=%d\n", c.getFlags(), c.cpl)
}
