package diskcrypt

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pvisor/pvisor/hv/snapshot"
)

// CreateOptions configure Create.
type CreateOptions struct {
	// Argon2 is the cost of a passphrase image's key derivation (zero:
	// snapshot.DefaultArgon2).
	Argon2 snapshot.Argon2Params
	// Rand is the source of the disk ID and salt (nil: crypto/rand).
	Rand io.Reader
}

// Create writes a new encrypted image of size bytes (a positive multiple
// of SectorSize) at path, which must not exist, under k: the plaintext is
// the first size bytes of src, or zeros if src is nil. The image is
// written beside path under a temporary name, synced and linked into
// place (mode 0600), so that path holds a whole image or nothing. It
// returns the new image's header.
func Create(path string, size int64, k *snapshot.Key, src io.Reader, o CreateOptions) (*Header, error) {
	if k == nil {
		return nil, errors.New("an encrypted disk image needs a key file or a passphrase")
	}
	if size <= 0 || size > MaxPayloadSize || size%SectorSize != 0 {
		return nil, fmt.Errorf("disk size %d: want a positive multiple of %d bytes", size, SectorSize)
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s exists: remove it or give a new path", path)
	}
	h, ks, err := newHeader(size, k, o)
	if err != nil {
		return nil, err
	}
	c, err := snapshot.NewSectorCipher(ks.xts, SectorSize)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	fail := func(err error) (*Header, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(h.marshal()); err != nil {
		return fail(err)
	}
	pt, ct := make([]byte, bufSize), make([]byte, bufSize)
	for off := int64(0); off < size; {
		n := int(min(size-off, bufSize))
		if src != nil {
			if _, err := io.ReadFull(src, pt[:n]); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					err = fmt.Errorf("the source ended after about %d of its %d bytes", off, size)
				}
				return fail(err)
			}
		}
		if err := c.Encrypt(ct[:n], pt[:n], uint64(off/SectorSize)); err != nil {
			return fail(err)
		}
		if _, err := f.Write(ct[:n]); err != nil {
			return fail(err)
		}
		off += int64(n)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Link(tmp, path); err != nil { // refuses a path created meanwhile
		os.Remove(tmp)
		return nil, err
	}
	return h, os.Remove(tmp)
}

// newHeader draws a new image's disk ID (and salt), derives its keys from
// k and fills in the key check value and the MAC.
func newHeader(size int64, k *snapshot.Key, o CreateOptions) (*Header, *diskKeys, error) {
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	h := &Header{Version: Version, SectorSize: SectorSize, PayloadSize: size, KDF: snapshot.KDFKeyFile}
	if _, err := io.ReadFull(rnd, h.DiskID[:]); err != nil {
		return nil, nil, fmt.Errorf("random source: %w", err)
	}
	if k.IsPassphrase() {
		h.KDF, h.Argon2 = snapshot.KDFArgon2id, o.Argon2
		if h.Argon2 == (snapshot.Argon2Params{}) {
			h.Argon2 = snapshot.DefaultArgon2
		}
		if err := h.Argon2.Validate(snapshot.MaxArgon2MemoryKiB); err != nil {
			return nil, nil, fmt.Errorf("argon2id cost: %v", err)
		}
		if _, err := io.ReadFull(rnd, h.Salt[:]); err != nil {
			return nil, nil, fmt.Errorf("random source: %w", err)
		}
	}
	if err := h.validate(0); err != nil {
		return nil, nil, err
	}
	ks, err := deriveKeys(k, h, 0)
	if err != nil {
		return nil, nil, err
	}
	h.KeyCheck = ks.check
	h.MAC = ks.headerMAC(h)
	return h, ks, nil
}
