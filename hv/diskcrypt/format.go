package diskcrypt

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hv/snapshot"
)

// The image's layout (docs/snapshot.md, "Encrypted disk images").
const (
	// HeaderSize is the header's size, and the payload's offset in the
	// file: a whole 4 KiB page, so that the payload stays page-aligned.
	HeaderSize = 4096
	// SectorSize is the payload's unit of encryption (each sector has its
	// own tweak), virtio-blk's sector size.
	SectorSize = 512
	// Version is the format version this package reads and writes.
	Version = 1
	// IDSize is the size of a disk ID.
	IDSize = 16
	// SaltSize is the size of the argon2id salt.
	SaltSize = 16
	// MaxPayloadSize bounds the payload so that header plus payload fits
	// a file offset; it is a whole number of sectors.
	MaxPayloadSize = (1<<63 - 1 - HeaderSize) &^ (SectorSize - 1)

	keyCheckLen = 16
	macLen      = 32
	macEnd      = 96                       // the MAC covers bytes [0, macEnd)
	digestOff   = HeaderSize - sha256.Size // the digest covers bytes [0, digestOff)
	headerUsed  = macEnd + macLen          // bytes [headerUsed, digestOff) are zero
)

// magic opens every encrypted image. As the snapshot magic, its high byte
// catches 7-bit transfers, and CR LF and LF catch line-ending conversion.
var magic = [8]byte{0x89, 'P', 'V', 'D', '\r', '\n', 0x1a, '\n'}

// Header is an image's header as ParseHeader checked it. Nothing in it is
// secret: it holds no key, only what derives one from a master key.
type Header struct {
	Version     uint16
	SectorSize  uint32
	PayloadSize int64 // the disk's size in bytes, a whole number of sectors
	DiskID      [IDSize]byte
	KDF         snapshot.KDF          // KDFKeyFile or KDFArgon2id
	Argon2      snapshot.Argon2Params // zero unless KDF is KDFArgon2id
	Salt        [SaltSize]byte        // argon2id salt; zero unless KDF is KDFArgon2id
	KeyCheck    [keyCheckLen]byte     // HKDF of the master key: tells a wrong key from a modified header
	MAC         [macLen]byte          // HMAC-SHA-256 of the header's first 96 bytes
}

// VersionError is returned for an image written in another format version.
type VersionError struct {
	Got, Want uint16
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("encrypted disk image format version %d is not supported: this pvisor reads version %d only (convert it with the pvisor that wrote it: pvisor disk decrypt, then encrypt)", e.Got, e.Want)
}

var (
	// ErrNotDiskImage: the file does not start with the magic (a raw
	// image, say).
	ErrNotDiskImage = errors.New("not a pvisor encrypted disk image (bad magic): a raw image takes no key; encrypt one with pvisor disk encrypt")
	// ErrCorrupt wraps every integrity and format failure of the header
	// and the file's size.
	ErrCorrupt = errors.New("encrypted disk image corrupt or modified")
	// ErrWrongKey: the key or passphrase is not the image's.
	ErrWrongKey = errors.New("wrong key or passphrase for the encrypted disk image (or its key parameters were modified)")
)

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

var le = binary.LittleEndian

// marshal returns the header's bytes, its digest computed.
func (h *Header) marshal() []byte {
	b := make([]byte, HeaderSize)
	h.marshalMACed(b)
	copy(b[80:96], h.KeyCheck[:])
	copy(b[96:128], h.MAC[:])
	d := sha256.Sum256(b[:digestOff])
	copy(b[digestOff:], d[:])
	return b
}

// marshalMACed writes the fields the MAC covers, but for the key check,
// into b[:macEnd].
func (h *Header) marshalMACed(b []byte) {
	copy(b[0:8], magic[:])
	le.PutUint16(b[8:], h.Version)
	le.PutUint16(b[10:], 0) // flags
	le.PutUint32(b[12:], HeaderSize)
	le.PutUint32(b[16:], h.SectorSize)
	le.PutUint32(b[20:], 0)
	le.PutUint64(b[24:], uint64(h.PayloadSize))
	copy(b[32:48], h.DiskID[:])
	b[48] = byte(h.KDF)
	b[49] = h.Argon2.Threads
	le.PutUint16(b[50:], 0)
	le.PutUint32(b[52:], h.Argon2.Time)
	le.PutUint32(b[56:], h.Argon2.MemoryKiB)
	le.PutUint32(b[60:], 0)
	copy(b[64:80], h.Salt[:])
}

// macInput is what the header's MAC covers: its first macEnd bytes.
func (h *Header) macInput() []byte {
	b := make([]byte, macEnd)
	h.marshalMACed(b)
	copy(b[80:96], h.KeyCheck[:])
	return b
}

// ParseHeader checks and decodes an image's header from b, the file's
// first bytes (at least HeaderSize of them), without a key: magic,
// version, the header's digest, then every field. maxMemKiB bounds the
// argon2id memory it accepts (0: snapshot.MaxArgon2MemoryKiB).
func ParseHeader(b []byte, maxMemKiB uint32) (*Header, error) {
	if len(b) < len(magic) || [8]byte(b[:8]) != magic {
		return nil, ErrNotDiskImage
	}
	if len(b) < 10 {
		return nil, corrupt("truncated header: %d bytes of %d", len(b), HeaderSize)
	}
	if v := le.Uint16(b[8:]); v != Version {
		return nil, &VersionError{Got: v, Want: Version}
	}
	if len(b) < HeaderSize {
		return nil, corrupt("truncated header: %d bytes of %d", len(b), HeaderSize)
	}
	b = b[:HeaderSize]
	if d := sha256.Sum256(b[:digestOff]); [32]byte(b[digestOff:]) != d {
		return nil, corrupt("header digest mismatch (bytes 0..%d do not hash to the SHA-256 at %d)", digestOff, digestOff)
	}
	h := &Header{
		Version:     Version,
		SectorSize:  le.Uint32(b[16:]),
		PayloadSize: int64(le.Uint64(b[24:])),
		DiskID:      [IDSize]byte(b[32:48]),
		KDF:         snapshot.KDF(b[48]),
		Argon2: snapshot.Argon2Params{
			Threads:   b[49],
			Time:      le.Uint32(b[52:]),
			MemoryKiB: le.Uint32(b[56:]),
		},
		Salt:     [SaltSize]byte(b[64:80]),
		KeyCheck: [keyCheckLen]byte(b[80:96]),
		MAC:      [macLen]byte(b[96:128]),
	}
	if f := le.Uint16(b[10:]); f != 0 {
		return nil, corrupt("flags %#x: this version defines none", f)
	}
	if s := le.Uint32(b[12:]); s != HeaderSize {
		return nil, corrupt("header size %d: want %d", s, HeaderSize)
	}
	if r, r2 := le.Uint32(b[20:]), le.Uint16(b[50:]); r != 0 || r2 != 0 || le.Uint32(b[60:]) != 0 {
		return nil, corrupt("reserved header fields are not zero")
	}
	for i := headerUsed; i < digestOff; i++ {
		if b[i] != 0 {
			return nil, corrupt("reserved header byte %d is %#x, not zero", i, b[i])
		}
	}
	if err := h.validate(maxMemKiB); err != nil {
		return nil, err
	}
	return h, nil
}

// validate checks the decoded fields.
func (h *Header) validate(maxMemKiB uint32) error {
	if h.SectorSize != SectorSize {
		return corrupt("sector size %d: this version has %d-byte sectors", h.SectorSize, SectorSize)
	}
	if h.PayloadSize <= 0 || h.PayloadSize > MaxPayloadSize || h.PayloadSize%SectorSize != 0 {
		return corrupt("payload size %d: want a positive multiple of %d up to %d", h.PayloadSize, SectorSize, int64(MaxPayloadSize))
	}
	if h.DiskID == [IDSize]byte{} {
		return corrupt("disk ID is zero (a writer draws it at random)")
	}
	switch h.KDF {
	case snapshot.KDFKeyFile:
		if h.Argon2 != (snapshot.Argon2Params{}) || h.Salt != [SaltSize]byte{} {
			return corrupt("argon2id parameters or salt in a key-file image")
		}
	case snapshot.KDFArgon2id:
		if maxMemKiB == 0 || maxMemKiB > snapshot.MaxArgon2MemoryKiB {
			maxMemKiB = snapshot.MaxArgon2MemoryKiB
		}
		if err := h.Argon2.Validate(maxMemKiB); err != nil {
			return corrupt("%v: refused before deriving the key", err)
		}
		if h.Salt == [SaltSize]byte{} {
			return corrupt("argon2id salt is zero (a writer draws it at random)")
		}
	default:
		return corrupt("key derivation %v: want key-file (1) or argon2id (2)", h.KDF)
	}
	return nil
}
