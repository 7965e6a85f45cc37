// Package virtio is pvisor's virtio 1.x device layer, written once for
// both transports (virtio-mmio in trap and hwassist mode, the hypercall
// transport in pv mode): split virtqueues, feature
// negotiation, the device status state machine, config space, reset, and
// the device backends (block over a raw image file, rng over crypto/rand,
// net over a port of pvisor's switch), with a token-bucket rate limiter
// for block and for what a net device sends.
//
// Files, one per role:
//
//	spec.go           numbers from the virtio 1.1 specification
//	mem.go            Mem, the device's only way to guest memory
//	queue.go          the split virtqueue: layout checks, chain walk, used ring, notification suppression
//	chain.go          a request's copied descriptor chain and its bounded copies
//	device.go         the transport-independent device: status, features, config, queues, reset, Notify
//	mmio.go           transport A: the virtio-mmio register file
//	hcall.go          transport B: what the virtio_* hypercalls do to a device, and its interrupt bits
//	event_handler.go  the device goroutine: serving notified queues, throttling, interrupts
//	persist.go        save and restore of a device, its backend and both transports
//	ratelimit.go      token buckets (bytes/s and ops/s)
//	metrics.go        per-device counters
//	block.go, block_request.go, rng.go, net.go  the backends
//
// Trust boundary: everything read from guest memory is hostile. That is
// the rings, the descriptors, the request headers and the data, and they
// may change while the device reads them, since the guest's vCPUs run
// meanwhile. Hence:
//   - Every guest access goes through Mem.Slice (mm.Reservation.Slice in
//     hv), which refuses anything not entirely RAM, and the slice is used
//     for one bounded copy. No pointer into guest memory is kept across
//     requests, so a ballooned-out ring or buffer is refused at its next
//     use.
//   - A descriptor is copied to the host before any field of it is
//     looked at, and the walk follows only the copy. A request header is
//     copied out before it is validated (Xen's RING_COPY_REQUEST). So no
//     check can be overtaken by the guest (no time-of-check/time-of-use
//     gap). Data buffers are not validated, only copied.
//   - The rules of queue.go's walk and next (ranges in RAM without wrap,
//     chains of bounded length, which also catches loops, indirect
//     tables bounded and not nested, writable after readable, avail idx at
//     most Size ahead; a chain's bound is the queue's maximum size) and the backends' request rules are checked on the
//     copies. A violation breaks that device: DEVICE_NEEDS_RESET is set, a
//     config-change interrupt is raised, and the device serves nothing
//     until the driver resets it. It never panics, hangs or stops the
//     hypervisor. An I/O error the driver can be told of (a sector out of
//     range, a write to a read-only disk) is a status in the request.
//   - Work per notification is bounded: a pass over a queue serves at
//     most Size requests of at most the maximum size's buffers each, then
//     yields; a
//     block request moves at most the image's size, an rng request at
//     most 64 KiB, a net request one frame of at most 1514 bytes.
//
// Concurrency rule: device work runs on the device's own goroutine, never
// on a vCPU's, and that goroutine never touches vCPU state. It reaches
// the VM only through Mem (guest memory, and Invalidate for what it
// wrote) and the transport's Signaller (used-buffer and config-change
// interrupts). vCPUs reach the device only through the Device's methods:
// Notify records the queue and wakes the goroutine without blocking;
// status, feature, config and queue calls take the device's locks; a
// reset (status 0) and Quiesce wait for the request in progress to finish,
// so that after SetStatus(0) or Quiesce returns the device touches no
// guest memory. Mem must
// therefore be safe for use concurrently with running vCPUs, and a
// Signaller must never block or call back into the Device.
//
// Memory ordering with the driver: the device reads avail idx before the
// entries it publishes, and writes a used entry before used idx, in
// program order across the Mem calls; on x86 (TSO) that order holds in
// hardware. Where a store must precede a load (avail_event before the
// last look at avail idx, used idx before reading used_event), a locked
// instruction is a full barrier (queue.fence).
//
// Quiesce parks a device (no device goroutine: no guest memory access,
// no interrupt) with its state kept, putting back a request the rate
// limiter holds; Save and Restore (persist.go) copy that state, as plain
// values (DeviceState, QueueState), while the device is quiesced.
// Restore treats a state as hostile operator input and refuses anything
// the device could not have produced.
package virtio
