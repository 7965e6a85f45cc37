// Package attest is pvisor's measured boot with a signed log: a software
// quote in the way a TPM's PCR extends and quotes work.
//
// A VM's measurement log is an ordered list of events (the pvisor binary,
// the kernel, the initramfs, the command line, each disk, the ABI version,
// the mode, and every patch level the VM reaches). Each event extends one
// 32-byte register that starts at zero:
//
//	R' = SHA-256(R || SHA-256(kind || 0x00 || detail || 0x00 || digest))
//
// where digest is the event's 32-byte SHA-256. A quote is the register,
// the log, the VM's name, a nonce chosen by the verifier and a time, signed
// with the host's Ed25519 key over a domain-separated byte string
// (quoteMessage). A verifier checks the signature with the host's public
// key, checks the nonce is the one it sent (so an old quote cannot be
// replayed), and replays the log to the register (so no event was changed,
// dropped or reordered); it then compares the events with what it expects.
//
// Trust boundary: everything in a quote handed to Verify is hostile; it is
// checked whole, and sizes are bounded before use. What a quote proves: the
// process holding the host key measured these files and settings for this
// VM after the verifier chose its nonce. What it does not prove: that the
// host key is safe (it is a file in the state directory, not a key sealed
// in a TPM), nor anything about the host kernel or about what ran before
// pvisor.
package attest
