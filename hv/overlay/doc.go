// Package overlay is pvisor's copy-on-write disk overlay: a file that
// holds the clusters a VM wrote over a base image it only reads, so that
// one base serves many VMs and a snapshot carries a disk as the clusters
// that differ from the base (the delta, docs/snapshot.md "Disk overlays").
//
// A Store is a virtio.BlockStore over a base store and an overlay file.
// Reads of a cluster the overlay holds come from the overlay, the others
// fall through to the base. The first write to a cluster copies it from
// the base into a new slot at the end of the overlay (read-modify-write),
// then changes the slot; the base is never written.
//
// Invariants:
//   - A cluster's map entry is 0 (in the base) or 1 + its slot; slots are
//     appended, never freed or shared, so a slot is below the map's
//     length and below the slots the file holds.
//   - The on-disk map names only slots whose data is durable: new entries
//     are kept in memory and written by Sync after an fdatasync of the
//     data, then made durable by a second one. A crash loses at most the
//     writes since the last Sync (those clusters read as the base again,
//     as the guest's unflushed writes may) and leaks their slots.
//   - The base's identity (its size and the SHA-256 of its contents) is in
//     the header, and an overlay opens only over a base that has it.
//
// Concurrency: a Store's methods are safe from several goroutines (one
// mutex); the block device calls them from its goroutine, a snapshot from
// the pausing one while the device is quiesced. An overlay file is locked
// (flock) while a Store has it open, so two VMs cannot write one overlay.
//
// Trust boundary: the overlay file and a delta are operator input and may
// be hostile: every size, offset, index and count is bounded by the header
// and the base's size before it is used, and a bad one is an error naming
// it, never a panic or an allocation the base's size does not bound.
package overlay
