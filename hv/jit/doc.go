// Package jit holds the host-side machinery of pvisor's binary translator:
// executable memory that is never writable and executable at once, the
// trampoline that runs translated code on a goroutine, and an x86-64
// emitter. The translator itself (guest blocks to host code, over the
// interpreter's decoded instructions, lazy flags and soft TLB) is built on
// it in hv/interp, which keeps the multiprocessor rules of its doc.go.
//
// # Executable memory (Arena)
//
// An Arena is one anonymous mapping, reserved inaccessible (PROT_NONE) and
// handed out in pages. Code is written while a page is read-write and
// sealed read-execute before anything runs it: Seal and Unseal are the
// only transitions, each one mprotect of whole pages, so no page of an
// Arena is ever writable and executable at once (W^X). Rewriting sealed
// code (invalidated translations, patched chains) unseals its pages first,
// which makes them non-executable: a vCPU about to run them must not be
// inside them, which the translator's code cache guarantees by
// invalidating at block boundaries only.
//
// # Running translated code (Enter)
//
// Enter(code, ctx) calls code with ctx in RDI and returns RAX. Translated
// code is a leaf: it calls nothing, not Go nor the C library, and uses no
// stack beyond Enter's return address, because a goroutine's stack may
// move (the runtime copies it to grow it) and holds no frame the runtime
// does not describe. Everything that needs Go (a soft-TLB miss, an
// exception, an instruction the translator leaves to the interpreter, an
// interrupt check that found an event) returns to Enter's caller with an
// exit code in RAX and the state in ctx; the caller does the work and
// enters again.
//
// Register rules for translated code: RSP, RBP, R14 (the goroutine
// pointer of Go's register ABI) and X15 (its zero register) are kept;
// every other general, vector and flag register may be clobbered (Enter is
// an ABI0 assembly function, so its callers keep nothing live across it).
// The direction flag must be clear on return, as Go expects.
//
// # The Go runtime around translated code
//
//   - Asynchronous preemption (SIGURG) landing in translated code finds a
//     PC outside any Go function, which the runtime treats as not a safe
//     point: it does not preempt and lets the code run on. The goroutine is
//     then preempted when it returns to Go, at the latest when its
//     instruction budget runs out (the translator checks the budget and
//     the vCPU's kick word at block boundaries). A stop-the-world (for the
//     GC, say) therefore waits at most one slice of guest time.
//   - Profiling signals (SIGPROF) landing in translated code unwind from an
//     unknown PC; the runtime's profiler stops such a traceback silently
//     and counts the sample as external code.
//   - The GC never sees a pointer in translated code or in the Arena (it is
//     not Go memory) and moves nothing that translated code addresses:
//     ctx and guest memory are heap objects or mappings that do not move,
//     kept alive by the caller across Enter.
//   - A fault inside translated code (a bad pointer in a translator bug)
//     is a signal in non-Go code, which the runtime turns into a crash of
//     the process: translated code must only touch ctx, guest memory
//     through the soft TLB's host pointers, and its own Arena.
//
// TestGoRuntimeAroundEnter runs translated loops on several goroutines
// while the GC runs, the CPU profiler samples and other goroutines force
// preemptions; TestArenaNeverWX reads /proc/self/maps while code is
// written and run.
package jit
