package snapshot

import (
	"crypto/aes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/xts"
)

// SectorKeySize is the size of an XTS-AES-256 key: two AES-256 keys, the
// data key then the tweak key (IEEE 1619).
const SectorKeySize = 64

// SectorCipher encrypts a disk image sector by sector with XTS-AES-256,
// the sector number (little-endian, IEEE 1619's data unit sequence number)
// as tweak. XTS is length-preserving and unauthenticated: it hides a disk's
// contents, not its modification or the replay of an old sector. It is safe
// for concurrent use.
type SectorCipher struct {
	c          *xts.Cipher
	sectorSize int
}

// NewSectorCipher returns a cipher for sectors of sectorSize bytes (a
// multiple of 16 from 16 to 64 KiB; disks use 512 or 4096) under key,
// which must be SectorKeySize bytes with two different halves.
func NewSectorCipher(key []byte, sectorSize int) (*SectorCipher, error) {
	if len(key) != SectorKeySize {
		return nil, fmt.Errorf("XTS-AES-256 key must be %d bytes, not %d", SectorKeySize, len(key))
	}
	if subtle.ConstantTimeCompare(key[:32], key[32:]) == 1 {
		return nil, errors.New("XTS-AES-256 key halves are equal")
	}
	if sectorSize < aes.BlockSize || sectorSize > 64<<10 || sectorSize%aes.BlockSize != 0 {
		return nil, fmt.Errorf("sector size %d is not a multiple of %d from %d to %d", sectorSize, aes.BlockSize, aes.BlockSize, 64<<10)
	}
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		return nil, err
	}
	return &SectorCipher{c: c, sectorSize: sectorSize}, nil
}

// DiskKey derives a disk's XTS-AES-256 key from a key-file master key and
// the disk's ID (random, kept beside the image), so that two disks under
// one master key never share a key.
func DiskKey(k *Key, diskID []byte) ([]byte, error) {
	if k.raw == nil {
		return nil, errors.New("disk keys come from a key file (a passphrase needs a salt stored with the disk)")
	}
	if len(diskID) < 16 {
		return nil, fmt.Errorf("disk ID of %d bytes: at least 16", len(diskID))
	}
	return hkdf.Key(sha256.New, k.raw, diskID, infoDisk, SectorKeySize)
}

// SectorSize returns the sector size.
func (c *SectorCipher) SectorSize() int { return c.sectorSize }

func (c *SectorCipher) check(dst, src []byte, sector uint64) (uint64, error) {
	if len(src)%c.sectorSize != 0 || len(src) == 0 {
		return 0, fmt.Errorf("%d bytes is not a whole number of %d-byte sectors", len(src), c.sectorSize)
	}
	if len(dst) < len(src) {
		return 0, fmt.Errorf("destination of %d bytes for %d", len(dst), len(src))
	}
	n := uint64(len(src) / c.sectorSize)
	if sector > ^uint64(0)-(n-1) {
		return 0, fmt.Errorf("sectors %d+%d overflow the sector number", sector, n)
	}
	return n, nil
}

// Encrypt encrypts the whole sectors in src, the first numbered sector,
// into dst. Precondition: dst is src or does not overlap it.
func (c *SectorCipher) Encrypt(dst, src []byte, sector uint64) error {
	n, err := c.check(dst, src, sector)
	if err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		o := int(i) * c.sectorSize
		c.c.Encrypt(dst[o:o+c.sectorSize], src[o:o+c.sectorSize], sector+i)
	}
	return nil
}

// Decrypt is Encrypt's inverse.
func (c *SectorCipher) Decrypt(dst, src []byte, sector uint64) error {
	n, err := c.check(dst, src, sector)
	if err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		o := int(i) * c.sectorSize
		c.c.Decrypt(dst[o:o+c.sectorSize], src[o:o+c.sectorSize], sector+i)
	}
	return nil
}
