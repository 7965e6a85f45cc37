package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Version is the snapshot format version this package writes and reads.
// Any change to the byte layout in docs/snapshot.md bumps it; the
// golden-layout test (TestGoldenLayout) fails until the change is deliberate.
const Version uint16 = 1

// magic opens every snapshot. Like PNG's signature, its high byte catches
// 7-bit transfers and its CR LF and LF catch line-ending conversion.
var magic = [8]byte{0x89, 'P', 'V', 'S', '\r', '\n', 0x1a, '\n'}

// Header flags (little-endian uint16 at offset 10). At most one is set;
// every other bit is reserved and must be zero.
const (
	FlagMAC       uint16 = 1 << 0 // body authenticated with HMAC-SHA-256 under a key
	FlagEncrypted uint16 = 1 << 1 // body encrypted with AES-256-GCM in chunks
)

// Protection is how a snapshot is protected at rest.
type Protection uint8

const (
	// Digest: a running SHA-256, detecting corruption only.
	Digest Protection = iota
	// MAC: a running HMAC-SHA-256 under a key; readable, authenticated.
	MAC
	// Encrypted: AES-256-GCM in authenticated chunks.
	Encrypted
)

func (p Protection) String() string {
	switch p {
	case Digest:
		return "sha256-digest"
	case MAC:
		return "hmac-sha256"
	case Encrypted:
		return "aes-256-gcm"
	}
	return fmt.Sprintf("protection(%d)", uint8(p))
}

func (p Protection) flags() uint16 {
	switch p {
	case MAC:
		return FlagMAC
	case Encrypted:
		return FlagEncrypted
	}
	return 0
}

// KDF says where a keyed snapshot's master key comes from.
type KDF uint8

const (
	KDFNone     KDF = 0 // digest-only snapshot: no key
	KDFKeyFile  KDF = 1 // 32 raw bytes from a key file
	KDFArgon2id KDF = 2 // argon2id over a passphrase, with Argon2 and Salt
)

func (k KDF) String() string {
	switch k {
	case KDFNone:
		return "none"
	case KDFKeyFile:
		return "key-file"
	case KDFArgon2id:
		return "argon2id"
	}
	return fmt.Sprintf("kdf(%d)", uint8(k))
}

// Argon2Params are argon2id's cost parameters (RFC 9106).
type Argon2Params struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultArgon2 is RFC 9106's second recommended option (section 4):
// t=3, m=64 MiB, p=4.
var DefaultArgon2 = Argon2Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Bounds on what a reader accepts from a header, so that a hostile snapshot
// cannot make key derivation or chunk buffering exhaust the host.
const (
	MinChunkSize       = 256
	MaxChunkSize       = 16 << 20
	DefaultChunkSize   = 1 << 20
	MaxArgon2Time      = 64
	MaxArgon2MemoryKiB = 1 << 20 // 1 GiB; ReaderOptions may lower it
	MaxNameLen         = 1024
	MaxModeLen         = 32
	PageSize           = 4096
	headerFixedLen     = 16  // magic, version, flags, metadata length
	metaFixedLen       = 184 // metadata up to the mode's length byte
	maxMetaLen         = metaFixedLen + 1 + MaxModeLen + 2 + MaxNameLen
	tagLen             = 32     // SHA-256 / HMAC-SHA-256 tag
	gcmTagLen          = 16     // AES-GCM tag
	chunkFrameLen      = 5      // chunk length (uint32) and flags (uint8)
	chunkFinal         = 1 << 0 // chunk flag: last chunk of the file
	sectionHeaderLen   = 12     // tag (uint32) and length (uint64)
	memoryHeaderLen    = 16     // page size (uint32), reserved, frames (uint64)
	memoryRunHeaderLen = 16     // first frame (uint64), count (uint64)
	keyCheckLen        = 16     // key check value in the header
	keySeedLen         = 32     // HKDF salt in the header
	saltLen            = 16     // argon2id salt in the header
)

// Metadata is what the caller says about the VM in a snapshot's header. It
// is authenticated with the rest of the file but never encrypted: anyone
// holding the file can read it.
type Metadata struct {
	Name         string    // VM name: valid UTF-8, 1..MaxNameLen bytes
	Mode         string    // "pv", "trap", "hwassist": printable ASCII, 1..MaxModeLen bytes
	MemorySize   uint64    // guest memory in bytes, a multiple of PageSize
	KernelDigest [32]byte  // SHA-256 of the guest kernel image
	PatchLevel   uint64    // patch level the guest had declared (rollback guard)
	GenerationID [16]byte  // VM generation ID at the time of the snapshot
	LineageID    [16]byte  // lineage record the VM belongs to
	Created      time.Time // host wall-clock time of the snapshot, stored in ns since 1970 UTC; zero means now (NewWriter)
}

// Header is a snapshot's whole header as the reader authenticated it.
type Header struct {
	Metadata
	Version    uint16
	Protection Protection
	SnapshotID [16]byte // random per snapshot; bound into every chunk
	ChunkSize  uint32
	KDF        KDF
	Argon2     Argon2Params // zero unless KDF is KDFArgon2id
	Salt       [saltLen]byte
	keySeed    [keySeedLen]byte
	keyCheck   [keyCheckLen]byte
}

// VersionError is returned for a snapshot written in another format version.
type VersionError struct {
	Got, Want uint16
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("snapshot format version %d is not supported: this pvisor reads version %d only (restore it with the pvisor that wrote it)", e.Got, e.Want)
}

var (
	// ErrNotSnapshot: the file does not start with the snapshot magic.
	ErrNotSnapshot = errors.New("snapshot: not a pvisor snapshot (bad magic)")
	// ErrCorrupt wraps every integrity and format failure: a modified,
	// truncated, reordered or spliced snapshot.
	ErrCorrupt = errors.New("snapshot: corrupt or modified")
	// ErrWrongKey: the key or passphrase does not match the snapshot's.
	ErrWrongKey = errors.New("snapshot: wrong key or passphrase (or its key parameters were modified)")
	// ErrKeyRequired: the snapshot is keyed and no key was given.
	ErrKeyRequired = errors.New("snapshot: the snapshot is keyed: pass its key file or passphrase")
	// ErrUnauthenticated: a key was given but the snapshot is digest-only,
	// which anyone can forge; refused so a keyed snapshot cannot be replaced
	// by a forged plain one.
	ErrUnauthenticated = errors.New("snapshot: a key was given but the snapshot is not authenticated with one (digest only): refusing; read it without a key if it is trusted")
)

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

func validateMetadata(m *Metadata) error {
	if len(m.Name) == 0 || len(m.Name) > MaxNameLen || !utf8.ValidString(m.Name) {
		return fmt.Errorf("VM name must be 1..%d bytes of UTF-8, not %q", MaxNameLen, m.Name)
	}
	if len(m.Mode) == 0 || len(m.Mode) > MaxModeLen {
		return fmt.Errorf("mode must be 1..%d bytes, not %q", MaxModeLen, m.Mode)
	}
	for i := 0; i < len(m.Mode); i++ {
		if c := m.Mode[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("mode must be printable ASCII, not %q", m.Mode)
		}
	}
	if y := m.Created.Year(); y < 1678 || y > 2261 {
		return fmt.Errorf("creation time %v is not representable in ns since 1970", m.Created)
	}
	if m.MemorySize%PageSize != 0 {
		return fmt.Errorf("memory size %d is not a multiple of %d", m.MemorySize, PageSize)
	}
	return nil
}

// Validate checks p against the bounds a reader applies: time 1 to
// MaxArgon2Time, at least one thread, memory from 8 KiB per thread to
// maxMemKiB.
func (p Argon2Params) Validate(maxMemKiB uint32) error { return validateArgon2(p, maxMemKiB) }

func validateArgon2(p Argon2Params, maxMemKiB uint32) error {
	if p.Time < 1 || p.Time > MaxArgon2Time {
		return fmt.Errorf("argon2id time %d outside 1..%d", p.Time, MaxArgon2Time)
	}
	if p.Threads < 1 {
		return errors.New("argon2id threads must be at least 1")
	}
	if p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxMemKiB {
		return fmt.Errorf("argon2id memory %d KiB outside %d..%d KiB", p.MemoryKiB, 8*uint32(p.Threads), maxMemKiB)
	}
	return nil
}

// marshal returns the header's bytes from the magic to the end of the
// metadata (the part its tag covers). Precondition: validateMetadata(h) is nil.
func (h *Header) marshal() []byte {
	metaLen := metaFixedLen + 1 + len(h.Mode) + 2 + len(h.Name)
	b := make([]byte, headerFixedLen+metaLen)
	copy(b[0:8], magic[:])
	le := binary.LittleEndian
	le.PutUint16(b[8:], h.Version)
	le.PutUint16(b[10:], h.Protection.flags())
	le.PutUint32(b[12:], uint32(metaLen))
	m := b[headerFixedLen:]
	copy(m[0:16], h.SnapshotID[:])
	copy(m[16:32], h.LineageID[:])
	copy(m[32:48], h.GenerationID[:])
	le.PutUint64(m[48:], uint64(h.Created.UnixNano()))
	le.PutUint64(m[56:], h.MemorySize)
	le.PutUint64(m[64:], h.PatchLevel)
	copy(m[72:104], h.KernelDigest[:])
	le.PutUint32(m[104:], h.ChunkSize)
	m[108] = byte(h.KDF)
	m[109] = h.Argon2.Threads
	// m[110:112] reserved, zero
	le.PutUint32(m[112:], h.Argon2.Time)
	le.PutUint32(m[116:], h.Argon2.MemoryKiB)
	copy(m[120:136], h.Salt[:])
	copy(m[136:168], h.keySeed[:])
	copy(m[168:184], h.keyCheck[:])
	m[184] = byte(len(h.Mode))
	copy(m[185:], h.Mode)
	o := 185 + len(h.Mode)
	le.PutUint16(m[o:], uint16(len(h.Name)))
	copy(m[o+2:], h.Name)
	return b
}

// parsePrefix checks the fixed 16 bytes and returns the flags and metadata
// length. The version is checked before anything else in the file.
func parsePrefix(b []byte) (flags uint16, metaLen int, err error) {
	if [8]byte(b[0:8]) != magic {
		return 0, 0, ErrNotSnapshot
	}
	le := binary.LittleEndian
	if v := le.Uint16(b[8:]); v != Version {
		return 0, 0, &VersionError{Got: v, Want: Version}
	}
	flags = le.Uint16(b[10:])
	if flags&^(FlagMAC|FlagEncrypted) != 0 || flags == FlagMAC|FlagEncrypted {
		return 0, 0, corrupt("header flags %#x: unknown or contradictory bits", flags)
	}
	n := le.Uint32(b[12:])
	if n < metaFixedLen+1+1+2+1 || n > maxMetaLen {
		return 0, 0, corrupt("metadata length %d outside %d..%d", n, metaFixedLen+5, maxMetaLen)
	}
	return flags, int(n), nil
}

// parseMetadata decodes and validates the metadata block m into h.
func parseMetadata(h *Header, flags uint16, m []byte, maxMemKiB uint32) error {
	le := binary.LittleEndian
	h.Version = Version
	switch flags {
	case 0:
		h.Protection = Digest
	case FlagMAC:
		h.Protection = MAC
	case FlagEncrypted:
		h.Protection = Encrypted
	}
	copy(h.SnapshotID[:], m[0:16])
	copy(h.LineageID[:], m[16:32])
	copy(h.GenerationID[:], m[32:48])
	h.Created = time.Unix(0, int64(le.Uint64(m[48:]))).UTC()
	h.MemorySize = le.Uint64(m[56:])
	h.PatchLevel = le.Uint64(m[64:])
	copy(h.KernelDigest[:], m[72:104])
	h.ChunkSize = le.Uint32(m[104:])
	h.KDF = KDF(m[108])
	h.Argon2.Threads = m[109]
	h.Argon2.Time = le.Uint32(m[112:])
	h.Argon2.MemoryKiB = le.Uint32(m[116:])
	copy(h.Salt[:], m[120:136])
	copy(h.keySeed[:], m[136:168])
	copy(h.keyCheck[:], m[168:184])
	if m[110] != 0 || m[111] != 0 {
		return corrupt("reserved header bytes are not zero")
	}
	if h.ChunkSize < MinChunkSize || h.ChunkSize > MaxChunkSize {
		return corrupt("chunk size %d outside %d..%d", h.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	ml := int(m[184])
	if 185+ml+2 > len(m) {
		return corrupt("mode length %d overruns the metadata", ml)
	}
	h.Mode = string(m[185 : 185+ml])
	o := 185 + ml
	nl := int(le.Uint16(m[o:]))
	if o+2+nl != len(m) {
		return corrupt("name length %d does not fill the metadata (%d bytes)", nl, len(m))
	}
	h.Name = string(m[o+2:])
	if err := validateMetadata(&h.Metadata); err != nil {
		return corrupt("%v", err)
	}
	zeroArgon := h.Argon2 == Argon2Params{} && h.Salt == [saltLen]byte{}
	switch {
	case h.Protection == Digest:
		if h.KDF != KDFNone || !zeroArgon || h.keySeed != [keySeedLen]byte{} || h.keyCheck != [keyCheckLen]byte{} {
			return corrupt("digest-only snapshot carries key parameters")
		}
	case h.KDF == KDFKeyFile:
		if !zeroArgon {
			return corrupt("key-file snapshot carries argon2id parameters")
		}
	case h.KDF == KDFArgon2id:
		if err := validateArgon2(h.Argon2, maxMemKiB); err != nil {
			return corrupt("%v", err)
		}
	default:
		return corrupt("keyed snapshot with key derivation %v", h.KDF)
	}
	return nil
}
