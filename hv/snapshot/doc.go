// Package snapshot is pvisor's snapshot container: a versioned, streamed file
// of typed sections (the state blobs of each subsystem, resident guest
// memory, disk overlays) behind a header that names the VM, its kernel, its
// patch level and its lineage, protected at rest in one of three ways:
//
//   - digest: a running SHA-256; the file ends with the SHA-256 of every byte
//     before it. It detects corruption, not an attacker, who can recompute it.
//   - HMAC: the same construction with HMAC-SHA-256 under a key, so the file
//     is authenticated but stays readable.
//   - encrypted: AES-256-GCM in authenticated chunks, the header bound as
//     associated data.
//
// The byte layout, the threat model and the key derivation are in
// docs/snapshot.md; this comment states the invariants the code keeps.
//
// Invariants.
//   - Nothing unauthenticated reaches the caller. The Reader verifies the
//     header's tag before NewReader returns the header, and a chunk's tag
//     (digest, HMAC or GCM tag) before any byte of that chunk is returned.
//     A truncated or modified snapshot may therefore yield an authentic
//     prefix of its sections, then an error: a caller restores a VM from a
//     snapshot only after Next has returned io.EOF.
//   - Order is authenticated. In the digest and HMAC forms each chunk's tag
//     covers every byte of the file before it; in the encrypted form each
//     chunk's nonce and associated data carry its index, its final flag, the
//     snapshot's random ID and the header's hash. Reordering, dropping,
//     duplicating, truncating or splicing chunks from another snapshot all
//     fail authentication. Bytes after the final chunk are refused.
//   - The reader buffers one chunk (at most the header's chunk size, bounded
//     by MaxChunkSize), never the file.
//   - A snapshot is operator input and may be hostile: every length, count
//     and parameter read from it is bounded before use (chunk size, argon2id
//     cost, section and memory-run lengths), and a malformed file is an
//     error, never a panic (FuzzSnapshotReader).
//   - A caller that holds a key gets no downgrade: a Reader given a key
//     refuses a snapshot that is not authenticated with it.
//
// Keys are 32 bytes, from a key file (ReadKeyFile refuses files readable by
// group or others and files of any other size) or from a passphrase through
// argon2id with its parameters and salt in the header. Per-snapshot keys are
// derived from that master key and a random seed in the header with
// HKDF-SHA-256, so GCM nonces (chunk index and final flag) never repeat
// under one key. SectorCipher is the XTS-AES-256 primitive for disk images.
//
// Concurrency. A Writer or Reader is used by one goroutine at a time.
//
// Trust boundary. Everything read from a snapshot file is hostile until its
// tag has been checked, and is still only as trustworthy as the key: a
// digest-only snapshot is trusted no more than the place it was kept.
package snapshot
