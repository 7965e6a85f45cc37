// Package diskcrypt is pvisor's encrypted disk image: a 4 KiB header, then
// the disk's sectors, each encrypted with XTS-AES-256 under a key of its
// own (derived from a master key and the image's random disk ID), the
// sector number as tweak. Store serves such an image to a virtio-blk
// device (it implements virtio.BlockStore); Create writes a new one from
// a raw image or zeros. The byte layout and what it protects against are
// in docs/snapshot.md ("Encrypted disk images").
//
// Invariants.
//   - The header is checked in a fixed order before any key is derived:
//     length, magic, version, its SHA-256 (a corrupt header is ErrCorrupt,
//     never "wrong key"), then each field, with the argon2id cost bounded
//     (snapshot.MaxArgon2Time, snapshot.MaxArgon2MemoryKiB or a lower
//     bound of the caller's), so a hostile header cannot make opening the
//     image exhaust the host. Then, with the key, the key check value
//     (ErrWrongKey) and the header's HMAC-SHA-256 (ErrCorrupt: modified
//     by someone without the key).
//   - The file is exactly the header plus the payload size it states; a
//     truncated or extended image is refused at open.
//   - A Store never writes plaintext to the file and never leaves
//     ciphertext in the caller's buffer: reads decrypt from its own buffer
//     into the caller's, writes encrypt from the caller's into its own.
//   - XTS is unauthenticated: a sector modified or replayed from an older
//     copy of the image decrypts to garbage or to the old contents without
//     an error. The format hides contents, not changes.
//
// Concurrency. A Store's methods run one at a time (virtio.BlockStore's
// rule: the device goroutine only); it reuses one buffer across calls.
//
// Trust boundary. An image file is operator input and may be hostile until
// its header's MAC has been checked with the key; the payload is never
// trusted beyond what XTS gives.
package diskcrypt
