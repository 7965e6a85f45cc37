package snapshot

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of a master key and of a key file.
const KeySize = 32

// Key is a master key: 32 raw bytes from a key file, or a passphrase that
// argon2id turns into 32 bytes with the parameters and salt of a header.
type Key struct {
	raw        []byte
	passphrase []byte
}

// KeyFromBytes returns a key of exactly KeySize raw bytes (copied).
func KeyFromBytes(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("snapshot key must be %d bytes, not %d", KeySize, len(b))
	}
	return &Key{raw: append([]byte(nil), b...)}, nil
}

// Passphrase returns a key derived from p with argon2id. p is copied.
func Passphrase(p []byte) (*Key, error) {
	if len(p) == 0 {
		return nil, errors.New("snapshot passphrase is empty")
	}
	return &Key{passphrase: append([]byte(nil), p...)}, nil
}

// ReadKeyFile reads a key file: a regular file of exactly KeySize bytes
// that neither group nor others may read or write (mode 0600 or 0400).
func ReadKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat() // of the open file, not the path: no race with a rename
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %04o: group or others may access it; run chmod 600 %s", path, perm, path)
	}
	b := make([]byte, KeySize+1)
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if n != KeySize {
		if n > KeySize {
			return nil, fmt.Errorf("key file %s is longer than %d bytes", path, KeySize)
		}
		return nil, fmt.Errorf("key file %s holds %d bytes, not %d", path, n, KeySize)
	}
	return KeyFromBytes(b[:KeySize])
}

// WriteKeyFile creates path (which must not exist) with mode 0600 holding
// KeySize bytes from rand (crypto/rand.Reader when nil).
func WriteKeyFile(path string, rand io.Reader) error {
	rand = randOrDefault(rand)
	b := make([]byte, KeySize)
	if _, err := io.ReadFull(rand, b); err != nil {
		return fmt.Errorf("key file: random source: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("key file: %w", err)
	}
	return f.Close()
}

func (k *Key) kdf() KDF {
	if k.raw != nil {
		return KDFKeyFile
	}
	return KDFArgon2id
}

// master returns the 32-byte master key for a header's KDF parameters.
func (k *Key) master(h *Header) ([]byte, error) {
	switch h.KDF {
	case KDFKeyFile:
		if k.raw == nil {
			return nil, fmt.Errorf("%w: the snapshot was keyed with a key file, not a passphrase", ErrWrongKey)
		}
		return k.raw, nil
	case KDFArgon2id:
		if k.passphrase == nil {
			return nil, fmt.Errorf("%w: the snapshot was keyed with a passphrase, not a key file", ErrWrongKey)
		}
		p := h.Argon2
		return argon2.IDKey(k.passphrase, h.Salt[:], p.Time, p.MemoryKiB, p.Threads, KeySize), nil
	}
	return nil, fmt.Errorf("snapshot: key derivation %v", h.KDF)
}

// HKDF-SHA-256 labels of the per-snapshot keys. Changing one is a format
// change (bump Version).
const (
	infoCheck = "pvisor snapshot v1 key check"
	infoMAC   = "pvisor snapshot v1 hmac-sha256"
	infoGCM   = "pvisor snapshot v1 aes-256-gcm"
	infoDisk  = "pvisor disk v1 xts-aes-256"
)

type snapKeys struct {
	check [keyCheckLen]byte
	mac   []byte // header tag, and the running MAC in the MAC form
	gcm   []byte // chunk key in the encrypted form
}

func deriveKeys(master []byte, seed []byte) (*snapKeys, error) {
	var ks snapKeys
	c, err := hkdf.Key(sha256.New, master, seed, infoCheck, keyCheckLen)
	if err != nil {
		return nil, err
	}
	copy(ks.check[:], c)
	if ks.mac, err = hkdf.Key(sha256.New, master, seed, infoMAC, 32); err != nil {
		return nil, err
	}
	if ks.gcm, err = hkdf.Key(sha256.New, master, seed, infoGCM, 32); err != nil {
		return nil, err
	}
	return &ks, nil
}

// checkKey derives the header's per-snapshot keys from k and compares the
// key check value; a mismatch is ErrWrongKey.
func checkKey(k *Key, h *Header) (*snapKeys, error) {
	master, err := k.master(h)
	if err != nil {
		return nil, err
	}
	ks, err := deriveKeys(master, h.keySeed[:])
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(ks.check[:], h.keyCheck[:]) {
		return nil, ErrWrongKey
	}
	return ks, nil
}

// IsPassphrase reports whether k is a passphrase (argon2id) rather than a
// key file's raw bytes.
func (k *Key) IsPassphrase() bool { return k.raw == nil }

// DiskMaster returns the 32-byte master key of an encrypted disk image
// (package hv/diskcrypt) keyed with kdf: k's raw bytes for KDFKeyFile, or
// argon2id over k's passphrase with p and salt for KDFArgon2id. p is
// checked against the bounds a snapshot reader applies (maxMemKiB, when
// not zero, lowers MaxArgon2MemoryKiB) before argon2id runs. A key of the
// other kind is ErrWrongKey.
func DiskMaster(k *Key, kdf KDF, p Argon2Params, salt []byte, maxMemKiB uint32) ([]byte, error) {
	switch kdf {
	case KDFKeyFile:
		if k.raw == nil {
			return nil, fmt.Errorf("%w: the disk was keyed with a key file, not a passphrase", ErrWrongKey)
		}
		return k.raw, nil
	case KDFArgon2id:
		if k.passphrase == nil {
			return nil, fmt.Errorf("%w: the disk was keyed with a passphrase, not a key file", ErrWrongKey)
		}
		if maxMemKiB == 0 || maxMemKiB > MaxArgon2MemoryKiB {
			maxMemKiB = MaxArgon2MemoryKiB
		}
		if err := p.Validate(maxMemKiB); err != nil {
			return nil, err
		}
		if len(salt) < 16 {
			return nil, fmt.Errorf("argon2id salt of %d bytes: at least 16", len(salt))
		}
		return argon2.IDKey(k.passphrase, salt, p.Time, p.MemoryKiB, p.Threads, KeySize), nil
	}
	return nil, fmt.Errorf("key derivation %v: want key-file or argon2id", kdf)
}
