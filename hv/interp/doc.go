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
// Concurrency: a CPU is driven by one goroutine; Kick and RemoteFlushTLB
// may be called from any goroutine. Memory.Invalidate may be called from
// any goroutine (a virtio device's, after it wrote guest memory) while
// vCPUs run: the per-page code marks and generations are accessed only
// atomically, the clearing side with a locked swap (a full barrier, so the
// device's writes are visible before the new generation), and a vCPU reads
// a page's generation before it marks and decodes the page. Nothing is
// queued; the vCPU sees the invalidation at its next block lookup. On amd64
// an atomic load is a plain load, so the per-block generation check costs
// nothing more, and the per-instruction path does not look at the marks.
//
// Multiprocessor rules. A Memory may have up to MaxVCPUs vCPUs, each run by
// its own goroutine at the same time. These rules hold for any engine
// behind cpu.VCPU over this Memory, the interpreter and a translator alike:
//
//  1. Plain accesses are host loads and stores of guest RAM, one per
//     guest access of 1, 2, 4 or 8 bytes, made when the instruction makes
//     them. Nothing caches a guest memory value across instructions (a
//     handler reads memory each time it runs), so the guest sees the
//     host's ordering: x86-TSO on an x86-64 host. MFENCE is a host full
//     fence; LFENCE and SFENCE order nothing more under TSO.
//  2. LOCK-prefixed instructions and XCHG with memory are atomic with
//     respect to every other vCPU (lock.go): a transaction over the
//     naturally aligned 8-byte region (16 for CMPXCHG16B) that holds the
//     operand, committed with one host compare-and-swap, a full fence. An
//     operand outside one region (misaligned across 8 bytes, across a page,
//     or in MMIO) is a split lock: the vCPU parks every other vCPU and runs
//     the instruction alone, which is atomic with respect to plain accesses
//     too. So is an instruction whose compare-and-swap failed lockTries
//     times.
//  3. Decoded code is per vCPU; the code marks and generations are the
//     memory's. A vCPU that marks a page as code makes every other vCPU
//     drop its cached write permission to the page and waits until each
//     executing one has (at its next block boundary) before it reads the
//     page's bytes. After that, a write to the page by any vCPU takes the
//     slow path and bumps the generation, so no vCPU runs a block decoded
//     from older bytes once it has looked the block up again. A block
//     already running finishes (at most maxBlockLen instructions), as a
//     CPU may run stale code until it serializes.
//  4. Soft TLBs are per vCPU. INVLPG and CR3 loads flush only the vCPU
//     that runs them, as on hardware; another vCPU's TLB is flushed by a
//     request (RemoteFlushTLB: the hypervisor's shootdown for an IPI or a
//     flush hypercall), taken at that vCPU's next block boundary or before
//     it next runs, and the caller waits for it.
//  5. Requests and waits never deadlock: a vCPU is active (its flag set
//     with a locked store) only inside Run, waiters wait only for active
//     vCPUs, and a vCPU that waits keeps taking its own requests. A vCPU
//     parked for another's split lock is inactive.
//  6. The shadow-MMU model's page-table marks (trap mode) are counters of
//     a model, shared without ordering: a racing vCPU may miss a modelled
//     exit, never a guest write.
//
// Trust boundary: all guest state and memory is hostile. Page tables,
// descriptors and instruction bytes are validated as hardware would and
// produce guest exceptions; out-of-RAM physical addresses read as MMIO.
package interp
