package diskcrypt

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/pvisor/pvisor/hv/snapshot"
)

// bufSize is a Store's buffer: the most ciphertext one step of a read or
// write handles (a larger request takes several steps).
const bufSize = 64 << 10

// Options configure Open.
type Options struct {
	// ReadOnly opens the file read-only; WriteAt then fails.
	ReadOnly bool
	// MaxArgon2MemoryKiB lowers the argon2id memory a header may ask for
	// (0: snapshot.MaxArgon2MemoryKiB).
	MaxArgon2MemoryKiB uint32
}

// Store is an open encrypted image as a virtio.BlockStore: byte b of the
// disk is byte b%512 of sector b/512, stored encrypted at file offset
// HeaderSize+b. Its methods run one at a time.
type Store struct {
	f      *os.File
	h      Header
	c      *snapshot.SectorCipher
	ro     bool
	buf    []byte           // ciphertext of a step (bufSize)
	sector [SectorSize]byte // plaintext of a partly written or read sector
}

// Open opens the encrypted image at path under k. Every failure names
// what was wrong; the caller adds the path.
func Open(path string, k *snapshot.Key, o Options) (*Store, error) {
	flag := os.O_RDWR
	if o.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	s, err := NewStore(f, k, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// NewStore makes a store of f, a regular file opened for reading (and
// writing unless o.ReadOnly), under k. The store owns f on success; on
// error f is not closed.
func NewStore(f *os.File, k *snapshot.Key, o Options) (*Store, error) {
	h, err := readHeader(f, o.MaxArgon2MemoryKiB)
	if err != nil {
		return nil, err
	}
	ks, err := unlock(k, h, o.MaxArgon2MemoryKiB)
	if err != nil {
		return nil, err
	}
	c, err := snapshot.NewSectorCipher(ks.xts, SectorSize)
	if err != nil {
		return nil, err
	}
	return &Store{f: f, h: *h, c: c, ro: o.ReadOnly, buf: make([]byte, bufSize)}, nil
}

// readHeader reads and checks f's header without a key, and f's size
// against it.
func readHeader(f *os.File, maxMemKiB uint32) (*Header, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): give an encrypted image file", f.Name(), fi.Mode().Type())
	}
	b := make([]byte, HeaderSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	h, err := ParseHeader(b[:n], maxMemKiB)
	if err != nil {
		return nil, err
	}
	if want := HeaderSize + h.PayloadSize; fi.Size() != want {
		return nil, corrupt("the file is %d bytes, its header says %d (%d of header, %d of disk): truncated or extended", fi.Size(), want, HeaderSize, h.PayloadSize)
	}
	return h, nil
}

// Inspect reads and checks the header of the image at path, and its size,
// without a key: what `pvisor disk info` prints.
func Inspect(path string) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readHeader(f, 0)
}

// Header returns the image's header.
func (s *Store) Header() Header { return s.h }

// Size implements virtio.BlockStore.Size: the disk's size in bytes.
func (s *Store) Size() int64 { return s.h.PayloadSize }

// Sync implements virtio.BlockStore.Sync (fdatasync).
func (s *Store) Sync() error { return unix.Fdatasync(int(s.f.Fd())) }

// Close implements virtio.BlockStore.Close.
func (s *Store) Close() error {
	clear(s.buf)
	clear(s.sector[:])
	return s.f.Close()
}

// inRange refuses n bytes at off unless they lie within the disk.
func (s *Store) inRange(n int, off int64) error {
	if off < 0 || off > s.h.PayloadSize || int64(n) > s.h.PayloadSize-off {
		return fmt.Errorf("%d bytes at offset %d are beyond the %d-byte encrypted disk", n, off, s.h.PayloadSize)
	}
	return nil
}

// readSectors reads the ciphertext of the len(dst)/SectorSize sectors from
// sector into s.buf and decrypts it into dst. Precondition: len(dst) is a
// whole number of sectors, at most bufSize.
func (s *Store) readSectors(dst []byte, sector int64) error {
	ct := s.buf[:len(dst)]
	if _, err := s.f.ReadAt(ct, HeaderSize+sector*SectorSize); err != nil {
		return fmt.Errorf("reading encrypted sectors %d+%d: %w", sector, len(dst)/SectorSize, err)
	}
	return s.c.Decrypt(dst, ct, uint64(sector))
}

// writeSectors encrypts src, whole sectors from sector, into s.buf and
// writes it. Precondition: as readSectors'.
func (s *Store) writeSectors(src []byte, sector int64) error {
	ct := s.buf[:len(src)]
	if err := s.c.Encrypt(ct, src, uint64(sector)); err != nil {
		return err
	}
	if _, err := s.f.WriteAt(ct, HeaderSize+sector*SectorSize); err != nil {
		return fmt.Errorf("writing encrypted sectors %d+%d: %w", sector, len(src)/SectorSize, err)
	}
	return nil
}

// ReadAt implements virtio.BlockStore.ReadAt: the disk's plaintext at off.
// Whole sectors are decrypted straight into p; the ends of a range that
// does not start or end on a sector boundary go through one sector's
// buffer.
func (s *Store) ReadAt(p []byte, off int64) (int, error) {
	if err := s.inRange(len(p), off); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		sector, in := pos/SectorSize, int(pos%SectorSize)
		if in != 0 || len(p)-n < SectorSize {
			if err := s.readSectors(s.sector[:], sector); err != nil {
				return n, err
			}
			n += copy(p[n:], s.sector[in:])
			continue
		}
		k := min((len(p)-n)&^(SectorSize-1), bufSize)
		if err := s.readSectors(p[n:n+k], sector); err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// WriteAt implements virtio.BlockStore.WriteAt: p becomes the disk's
// plaintext at off. A sector written in part is read, decrypted, patched
// and written again.
func (s *Store) WriteAt(p []byte, off int64) (int, error) {
	if s.ro {
		return 0, errors.New("the encrypted disk is open read-only")
	}
	if err := s.inRange(len(p), off); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		sector, in := pos/SectorSize, int(pos%SectorSize)
		if in != 0 || len(p)-n < SectorSize {
			if err := s.readSectors(s.sector[:], sector); err != nil {
				return n, err
			}
			k := copy(s.sector[in:], p[n:])
			if err := s.writeSectors(s.sector[:], sector); err != nil {
				return n, err
			}
			n += k
			continue
		}
		k := min((len(p)-n)&^(SectorSize-1), bufSize)
		if err := s.writeSectors(p[n:n+k], sector); err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}
