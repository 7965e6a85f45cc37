// Package cpu is the engine interface of pvisor: the architectural state of
// an x86-64 vCPU, the exits an engine reports, and the small set of
// operations every engine (the pure-Go interpreter, KVM) implements.
//
// Invariants:
//   - No engine-specific type appears here; hv, sched and mm see engines only
//     through VCPU.
//   - An Exit returned by Run is owned by the vCPU and valid until the next
//     call to Run. Exits that need the hypervisor's answer (IN, MMIO read,
//     CPUID, RDMSR, hypercall) are completed by filling the named fields of the
//     Exit before calling Run again; Run finishes the instruction first.
//   - Between Run calls a vCPU's whole state is an EngineState
//     (enginestate.go): SaveState returns it, RestoreState takes it back
//     after CheckEngineState and the engine's own checks, so a snapshot
//     (operator input) cannot put a vCPU in a state it could not reach.
//
// Concurrency: a VCPU is driven by one goroutine at a time. Kick is the only
// method that may be called concurrently with Run.
//
// Trust boundary: everything in the state a guest can set (registers,
// descriptor tables, page tables) is hostile; engines validate it as the
// hardware would and report a fault to the guest, never a panic to the host.
package cpu
