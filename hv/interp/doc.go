// Package interp is pvisor's pure-Go x86-64 engine: a long-mode CPU that runs
// an unmodified Linux 6.12 kernel and a glibc-static busybox, and implements
// cpu.VCPU for all three modes (pv, trap, hwassist).
//
// Design, fast by construction:
//   - Instructions are decoded once into compact, pointer-free Inst records
//     (24 bytes) grouped in basic blocks, cached by guest-physical address in
//     a direct-mapped block table. Blocks end at control transfers, at
//     instructions that change translation or privilege, and at page ends.
//   - A block's page is marked as code; writes to a code page take the slow
//     path, bump the page's generation (invalidating every block decoded from
//     it) and, if the running block lives there, end it after the current
//     instruction. Linux's alternatives and text_poke rely on this.
//   - Dispatch is an indexed call through a fixed array of handlers; there
//     is no map, interface call or allocation per instruction.
//   - Arithmetic flags are lazy: the last flag-setting operation's kind,
//     size, result and operands are kept, and flags are computed on demand.
//   - Memory goes through a direct-mapped soft TLB whose entries hold the
//     guest-physical page base and per-privilege permission bits. A write
//     permission is only cached once the walker has set the Dirty bit.
//
// Faults: a guest exception raised inside an instruction unwinds with a
// panic of a private sentinel, recovered once per Run slice; the instruction
// has then committed nothing to registers. Any other panic inside the engine
// (an engine bug) is turned into ExitInternal for this vCPU: it stops the
// VM, never the hypervisor.
//
// Invariants:
//   - r[16] is always zero; it is the "no base / no index" register of
//     effective-address computation.
//   - Only 64-bit code runs (EFER.LMA=1, CS.L=1); the loader enters the
//     guest that way. Far transfers (IRET, far RET, far JMP/CALL, SYSRET) of
//     every operand size load a compatibility-mode (L=0) code segment as
//     hardware does, with all its checks; the first instruction the vCPU
//     would then execute raises #UD, as a CPU without compatibility mode
//     would (the guest kernel sees the 32-bit CS in the frame; Linux sends
//     SIGILL). This keeps every load architectural, including SYSRET's,
//     which checks no descriptor and so could not refuse one. Leaving long
//     mode (clearing CR0.PG or EFER.LME) raises #GP(0). No guest action
//     ends in ExitInternal.
//   - Control-register and MSR rules (reserved bits, the MSR set) are
//     hv/cpu's (rules.go, msr.go), shared with hv/emul, so every mode
//     applies the same ones.
//   - Between Run calls no block is in progress (pc == blkStart): the
//     retire count and the TSC count exactly the instructions that
//     retired, and the next Run starts a new block at RIP. So the state
//     SaveState returns (state.go) is the registers plus the hidden state
//     it lists (pending events, an answered exit, the restart state of an
//     instruction that exited), never a position inside a block.
//
// Concurrency: a CPU is driven by one goroutine; Kick may be called from any
// goroutine. The code map of a Memory is shared by the vCPUs of a VM; for
// now a VM has one vCPU under this engine. Memory.Invalidate may be called
// from any goroutine (a virtio device's, after it wrote guest memory) while
// vCPUs run: the per-page code marks and generations are accessed only
// atomically, the clearing side with a locked swap (a full barrier, so the
// device's writes are visible before the new generation), and a vCPU reads
// a page's generation before it marks and decodes the page. Nothing is
// queued; the vCPU sees the invalidation at its next block lookup. On amd64
// an atomic load is a plain load, so the per-block generation check costs
// nothing more, and the per-instruction path does not look at the marks.
//
// Trust boundary: all guest state and memory is hostile. Page tables,
// descriptors and instruction bytes are validated as hardware would and
// produce guest exceptions; out-of-RAM physical addresses read as MMIO.
package interp
