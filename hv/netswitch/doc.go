// Package netswitch is pvisor's virtual switch: named segments, each a
// learning Ethernet switch of its own, ports that plug a VM's NIC (a
// virtio-net device, hv/virtio's Net) into one segment, and uplinks that
// connect a segment to the host through a TAP interface (uplink.go,
// tap_linux.go).
//
// Promises, each held by a test of switch_test.go:
//   - Isolation: a segment delivers only to its own ports. Broadcast,
//     multicast and unknown unicast flood within the segment, never
//     beyond it. A VM sees only the segments its NICs are attached to.
//   - No spoofing: a frame whose source MAC is not its port's is dropped
//     and counted, and is neither delivered nor learned, so a VM cannot
//     take over another's address. An uplink's frames may come from many
//     addresses, but never from a VM port's of the segment, nor from a
//     group address (TestUplinkRules).
//   - Copies: a frame is copied into each destination port's queue, never
//     shared between VMs or with the sender's buffer.
//   - Bounds: each port's receive queue holds a bounded number of frames
//     (full: the frame is dropped for that port and counted), the learning
//     table of a segment a bounded number of addresses, and each port's
//     token buckets (bytes/s, ops/s, hv/virtio's RateLimiter) bound what
//     its VM sends: the sending device goroutine waits.
//
// MACs: a port's MAC is given by the operator or derived (DeriveMAC) from
// the VM's name and the NIC's index, locally administered and unicast,
// and is unique within its segment.
//
// Concurrency: Send runs on the sending device's goroutine, Receive and
// Waiting on the receiving one's; any goroutine may attach, detach and
// read counters. Switch.mu protects the segment map; Segment.mu protects
// its ports and learning table (Send holds it shared while delivering);
// Port.mu protects the port's queue. Lock order: Switch.mu, Segment.mu,
// Port.mu. A port's wake function is called with the
// segment's lock held shared and no port's lock: it must not block or call
// the switch.
//
// Trust boundary: every frame comes from a guest and is hostile; only its
// length and its two MAC addresses are looked at.
package netswitch
