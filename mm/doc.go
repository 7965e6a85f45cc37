// Package mm is pVisor's host-memory manager: admission control of VMs
// against a host budget, one reservation per VM with a guest-physical →
// host map (p2m), the balloon, and the only path by which the hypervisor
// touches guest memory (bounds-checked guest-physical access).
//
// Model. The budget is a pool of Total/FrameSize host frames (FrameSize is
// 4 KiB) shared by every VM of the process. Reserve takes a VM's whole
// reservation from the pool up front (overcommit is off): a VM that does
// not fit is refused with an error naming the budget, and nothing about
// running VMs changes. A reservation is one anonymous private mapping; guest
// frame gfn lives at RAM()[gfn*FrameSize:], host frame (HFN) base+gfn. The
// p2m is a bitmap saying which guest frames are populated; the others are
// holes, ballooned out. A VM starts fully populated.
//
// Balloon. BalloonOut clears frames from the p2m, uncharges them from the
// VM's resident count and drops their host memory with
// madvise(MADV_DONTNEED), after which the kernel supplies zero-filled
// memory on the next touch. BalloonIn zeroes the frames again, then maps
// them and charges them, never beyond the reservation. The reservation stays
// charged to the budget while frames are out, so BalloonIn cannot fail for
// lack of host memory and ballooning does not create admission room.
// SetTarget records the operator's advisory target (mem-set).
//
// Trade-off. Keeping each VM's frames in one contiguous mapping lets an
// engine use one []byte (RAM) for all guest memory and makes the p2m
// translation an offset plus a bit test (see BenchmarkP2M), at the price
// that frames cannot move between VMs: what BalloonOut returns goes to the
// kernel, not to another VM's reservation. An engine must honour holes:
// hv marks them in the interpreter (interp.Memory.SetHoles), which then
// treats them as outside RAM (reads all-ones, writes dropped; never a
// soft-TLB entry) and flushes its TLBs, so a ballooned-out frame is never
// touched and repopulated. Were an engine to write one anyway, it would
// repopulate it inside its own mapping only (never above the reservation,
// never in another VM), and BalloonIn zeroes it before the guest gets it
// back.
//
// Zeroing. Frames are zeroed on release: MADV_DONTNEED for a ballooned-out
// frame, munmap for a destroyed VM (the kernel zeroes pages before any
// other mapping gets them), and a fresh reservation is a fresh anonymous
// mapping, which reads as zero. BalloonIn zeroes once more on the way back.
// No byte of one VM is ever visible to another.
//
// Invariants (Budget.Check verifies them; TestBoundsProperty drives them):
//   - The sum of live reservations never exceeds the budget.
//   - A VM's resident frames are exactly its populated p2m entries and never
//     exceed its reservation; the budget's resident count is their sum.
//   - Every host frame belongs to at most one live VM.
//   - Every guest-physical access from the hypervisor goes through
//     Reservation.Slice, which refuses any range not entirely inside the
//     VM's RAM or touching a hole, with no integer overflow; a hypercall
//     pointer that Slice refuses is -EFAULT for that guest.
//
// Concurrency. Budget is safe for concurrent use. Slice, Translate
// and Populated read the p2m without locks and may be called
// from any goroutine. Balloon operations on one VM are serialised by the
// reservation's mu; accounting and p2m changes happen under the budget's
// mu (lock order: Reservation.mu, then Budget.mu). A Slice obtained before
// a concurrent BalloonOut of the same frames may see them become zero: the
// guest races only itself. The hypervisor makes ballooned-out
// frames holes in its engine and flushes the vCPUs' soft TLBs before they
// run again. Release may be called more than once, but only when
// no engine or hypercall uses the memory any more.
//
// Trust boundary: guest-physical addresses, lengths and frame ranges are
// hostile; every one is checked against the reservation before use. Errors
// are for the VM that asked; none panics the hypervisor.
package mm
