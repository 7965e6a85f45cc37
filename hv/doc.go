// Package hv is pvisor's VM core: VM and vCPU lifecycle, the boot loader,
// the exit loop that dispatches hypercalls through the generated table,
// event channels with upcall delivery, timers and pvclock, the console
// backend, strict-PV accounting, the virtio-mmio devices of trap and
// hwassist mode (mmiodev.go), the hypercall transport's virtio slots of
// pv mode with hot-plug (pvdev.go, hypercalls_virtio.go), the disks'
// copy-on-write overlays in snapshots (diskstate.go), and read-only
// introspection of one VM by another under the operator's grant
// (introspect.go).
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
//     is never written concurrently with the vCPU by the hypervisor, with
//     one exception: a virtio device's goroutine writes the buffers and
//     used rings its driver gave it, through mm.Reservation.Slice, and
//     then calls the engine's Memory.Invalidate, which is safe while vCPUs
//     run. It touches nothing else: interrupts go through its transport's
//     status bits and vcpu.notify, and the vCPU drives the PIC line or
//     raises the event-channel ports. While the VM is paused no vCPU
//     runs, and Pause and Resume stop and re-arm the vCPUs' timers and
//     rewrite the shared-info wall clock themselves (pause.go).
//   - Every guest-visible time (pvclock system time and its TSC, timer
//     deadlines, the PIT, the RTC, the wall clock) is read from the VM's
//     clock (hv/vclock), never from the host's: it stands still while
//     the VM is paused.
//
// Concurrency: VM.mu protects the exit status and the stop flag; each
// vcpu's state belongs to its goroutine except the atomic timer flag and
// the copy of its registers it publishes for introspection (vcpu.pub,
// under its own mutex). A monitor's introspect calls read the target's
// memory on the monitor's goroutine, under the target's intro.memMu
// (introspect.go), and never write it.
//
// Trust boundary: everything read from guest memory or registers is hostile.
package hv
