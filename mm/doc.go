// Package mm is pvisor's host-memory manager: admission control of VMs
// against a host budget, one reservation per VM, and the only path by which
// the hypervisor touches guest memory (bounds-checked guest-physical
// access).
//
// Invariants:
//   - The sum of live reservations never exceeds the budget; a VM that does
//     not fit is refused with an error naming the budget.
//   - A reservation's memory comes from an anonymous private mapping: it is
//     zero when given to a VM and is unmapped (returned to the host, which
//     zeroes it) when released, so no byte of one VM reaches another.
//   - Every guest-physical access from the hypervisor goes through
//     Reservation.Slice, which refuses any range not entirely inside the
//     VM's RAM.
//
// This is the first cut (issue 6 adds the p2m, the balloon and frame
// accounting): guest-physical memory is one contiguous RAM range from 0.
//
// Concurrency: Budget is safe for concurrent use; a Reservation's Slice may
// be called from any goroutine, Release only once.
//
// Trust boundary: guest-physical addresses and lengths are hostile.
package mm
