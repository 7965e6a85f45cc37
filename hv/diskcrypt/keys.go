package diskcrypt

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hv/snapshot"
)

// HKDF-SHA-256 labels of an image's keys, the disk ID as salt. The XTS
// key's label is snapshot.DiskKey's, so that a key-file image's key is
// DiskKey(master, ID). Changing one is a format change (bump Version).
const (
	infoXTS   = "pvisor disk v1 xts-aes-256"
	infoCheck = "pvisor disk v1 key check"
	infoMAC   = "pvisor disk v1 header hmac-sha256"
)

// diskKeys are an image's keys, derived from its master key and disk ID.
type diskKeys struct {
	xts   []byte // snapshot.SectorKeySize bytes: data key, tweak key
	check [keyCheckLen]byte
	mac   []byte
}

// deriveKeys derives h's keys from k. Precondition: h is validated (the
// argon2id cost is bounded).
func deriveKeys(k *snapshot.Key, h *Header, maxMemKiB uint32) (*diskKeys, error) {
	if k == nil {
		return nil, errors.New("no key given for an encrypted disk image: pass key=FILE or passphrase=FILE")
	}
	switch {
	case h.KDF == snapshot.KDFKeyFile && k.IsPassphrase():
		return nil, fmt.Errorf("%w: the image is keyed with a key file, and a passphrase was given", ErrWrongKey)
	case h.KDF == snapshot.KDFArgon2id && !k.IsPassphrase():
		return nil, fmt.Errorf("%w: the image is keyed with a passphrase, and a key file was given", ErrWrongKey)
	}
	master, err := snapshot.DiskMaster(k, h.KDF, h.Argon2, h.Salt[:], maxMemKiB)
	if err != nil {
		return nil, err
	}
	var ks diskKeys
	if ks.xts, err = hkdf.Key(sha256.New, master, h.DiskID[:], infoXTS, snapshot.SectorKeySize); err != nil {
		return nil, err
	}
	c, err := hkdf.Key(sha256.New, master, h.DiskID[:], infoCheck, keyCheckLen)
	if err != nil {
		return nil, err
	}
	copy(ks.check[:], c)
	if ks.mac, err = hkdf.Key(sha256.New, master, h.DiskID[:], infoMAC, macLen); err != nil {
		return nil, err
	}
	return &ks, nil
}

// headerMAC is the HMAC-SHA-256 of h's first macEnd bytes under ks.
func (ks *diskKeys) headerMAC(h *Header) [macLen]byte {
	m := hmac.New(sha256.New, ks.mac)
	m.Write(h.macInput())
	return [macLen]byte(m.Sum(nil))
}

// unlock derives h's keys from k and checks them against the header: the
// key check value first (ErrWrongKey), then the MAC (ErrCorrupt).
func unlock(k *snapshot.Key, h *Header, maxMemKiB uint32) (*diskKeys, error) {
	ks, err := deriveKeys(k, h, maxMemKiB)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(ks.check[:], h.KeyCheck[:]) {
		return nil, ErrWrongKey
	}
	if m := ks.headerMAC(h); !hmac.Equal(m[:], h.MAC[:]) {
		return nil, corrupt("header authentication failed: the header was modified by someone without the key")
	}
	return ks, nil
}
