// Package hv is pvisor's VM core: VM and vCPU lifecycle, the boot loader,
// the exit loop that dispatches hypercalls through the generated table,
// event channels with upcall delivery, timers and pvclock, the console
// backend, and strict-PV accounting.
//
// Invariants:
//   - Guest memory is reached only through the VM's mm.Reservation (Slice),
//     which bounds every access to the VM's own RAM; a bad guest pointer is
//     -EFAULT to the guest, never a host fault.
//   - A fault in a guest (triple fault, engine stop, crash) stops that VM
//     with an exit status; it never panics the process or touches another
//     VM.
//   - Event and shared-page state is changed only on the vCPU's own
//     goroutine (timer goroutines only set flags and kick), so guest memory
//     is never written concurrently with the vCPU by the hypervisor.
//
// Concurrency: VM.mu protects the exit status and the stop flag; each
// vcpu's state belongs to its goroutine except the atomic timer flag.
//
// Trust boundary: everything read from guest memory or registers is hostile.
package hv
