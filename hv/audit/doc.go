// Package audit watches VMM processes from outside: an eBPF program on
// the raw sys_enter tracepoint counts, by number, the system calls of
// the processes (thread groups) it is told to watch, and Monitor reads
// the counts. A call outside the VMM's declared profile
// (hv/sandbox.Profile) is a violation: seccomp blocks such calls, and
// this sees them where a filter was never installed (--sandbox=false),
// was set to log, or was bypassed.
//
// The program is assembled here with github.com/cilium/ebpf's asm
// package: no compiler at run time, no object file to trust.
//
//	tgid = bpf_get_current_pid_tgid() >> 32
//	slot = procs[tgid]            (hash: tgid -> slot; absent: return)
//	nr   = ctx->args[1]           (the syscall number; >= 512 counts as 512)
//	atomic counts[slot][nr] += 1  (array of slots, 513 counters each)
//
// Invariants: a slot belongs to one watched process at a time; Watch
// zeroes a slot before it maps a tgid to it, so counts start at zero
// when watching starts. The tracepoint fires after seccomp: a call the
// filter kills is not counted, one it logs is.
//
// Concurrency: Monitor's methods may be called from several goroutines;
// mu protects the slot table.
//
// Trust boundary: the monitor runs with CAP_BPF (root) outside the VMMs
// it watches; nothing it reads comes from them but the counts the
// kernel keeps.
package audit
