package overlay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/pvisor/pvisor/hv/virtio"
)

// Options say how Open opens an overlay.
type Options struct {
	// ClusterSize is a new overlay's cluster size; 0 is
	// DefaultClusterSize. An existing overlay keeps its own.
	ClusterSize int64
	// ReadOnly opens an existing overlay for reading only (shared lock):
	// writes fail and nothing in the file changes.
	ReadOnly bool
	// Base is the base's identity if the caller knows it already (it
	// must be right); nil: Open reads the base to compute it.
	Base *Identity
}

// Store is a copy-on-write overlay over a base store, as a
// virtio.BlockStore.
type Store struct {
	mu   sync.Mutex // protects everything below
	base virtio.BlockStore
	f    *os.File
	ro   bool
	h    header
	m    []uint32 // cluster → 1 + slot, 0: the base's
	next uint32   // slots in use

	// dirty marks the map pages (of 1024 entries) changed in memory
	// since the on-disk map was last written.
	dirty    []bool
	anyDirty bool
	buf      []byte // one cluster
	closed   bool
}

// Open opens the overlay file at path over base, which it only reads. A
// file that does not exist or is empty becomes a new overlay (not with
// o.ReadOnly); an existing one must be an overlay of a base with base's
// identity. The Store owns base from now on: Close closes it, and so does
// a failed Open.
func Open(path string, base virtio.BlockStore, o Options) (*Store, error) {
	s, err := open(path, base, o)
	if err != nil {
		base.Close()
		return nil, err
	}
	return s, nil
}

func open(path string, base virtio.BlockStore, o Options) (*Store, error) {
	var id Identity
	if o.Base != nil {
		id = *o.Base
	} else {
		var err error
		if id, err = BaseIdentity(base); err != nil {
			return nil, err
		}
	}
	if id.Size != base.Size() {
		return nil, fmt.Errorf("overlay: base identity of %d bytes for a base of %d", id.Size, base.Size())
	}
	flag, lock := os.O_RDWR|os.O_CREATE, unix.LOCK_EX
	if o.ReadOnly {
		flag, lock = os.O_RDONLY, unix.LOCK_SH
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	fail := func(err error) (*Store, error) {
		f.Close()
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), lock|unix.LOCK_NB); err != nil {
		return fail(fmt.Errorf("overlay %s is in use by another process (%v): give each VM its own overlay", path, err))
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("overlay: %w", err))
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("overlay %s is not a regular file (%s): give a file path", path, fi.Mode().Type()))
	}
	s := &Store{base: base, f: f, ro: o.ReadOnly}
	if fi.Size() == 0 {
		if o.ReadOnly {
			return fail(fmt.Errorf("overlay %s is empty: a read-only overlay must exist", path))
		}
		cs := o.ClusterSize
		if cs == 0 {
			cs = DefaultClusterSize
		}
		if err := s.format(cs, id); err != nil {
			return fail(fmt.Errorf("overlay %s: %w", path, err))
		}
		return s, nil
	}
	if err := s.load(f, fi.Size(), id); err != nil {
		return fail(fmt.Errorf("overlay %s: %w", path, err))
	}
	if !o.ReadOnly {
		// Slots past the last mapped one are a crash's leftovers: no map
		// entry names them.
		if err := f.Truncate(s.h.dataOff + int64(s.next)*s.h.clusterSize); err != nil {
			return fail(fmt.Errorf("overlay %s: %w", path, err))
		}
	}
	return s, nil
}

// format writes a new, empty overlay (header and zero map) with clusters
// of cs bytes into s.f, replacing whatever it held, and makes it durable.
func (s *Store) format(cs int64, id Identity) error {
	h, err := layout(cs, id)
	if err != nil {
		return err
	}
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	if _, err := s.f.WriteAt(h.marshal(), 0); err != nil {
		return err
	}
	if err := s.f.Truncate(h.dataOff); err != nil { // the map: zero
		return err
	}
	if err := unix.Fdatasync(int(s.f.Fd())); err != nil {
		return err
	}
	s.setHeader(h)
	s.m = make([]uint32, h.entries)
	s.next = 0
	return nil
}

func (s *Store) setHeader(h header) {
	s.h = h
	s.dirty = make([]bool, (h.entries*4+mapPage-1)/mapPage)
	s.anyDirty = false
	s.buf = make([]byte, h.clusterSize)
}

// load reads and checks the header and map of an overlay of fileSize
// bytes in r, which must be over a base of identity id.
func (s *Store) load(r io.ReaderAt, fileSize int64, id Identity) error {
	hb := make([]byte, HeaderSize)
	if fileSize < HeaderSize {
		return fmt.Errorf("overlay: the file is %d bytes, shorter than the %d-byte header", fileSize, HeaderSize)
	}
	if _, err := r.ReadAt(hb, 0); err != nil {
		return err
	}
	h, err := parseHeader(hb)
	if err != nil {
		return err
	}
	if h.base != id {
		return fmt.Errorf("overlay: made over a base of %v, not this one of %v: give the base image the overlay was made over", h.base, id)
	}
	if fileSize < h.dataOff {
		return fmt.Errorf("overlay: the file is %d bytes, shorter than its map (data at %d)", fileSize, h.dataOff)
	}
	mb := make([]byte, h.entries*4)
	if _, err := r.ReadAt(mb, HeaderSize); err != nil {
		return err
	}
	m, next, err := parseMap(&h, mb, fileSize)
	if err != nil {
		return err
	}
	s.setHeader(h)
	s.m, s.next = m, next
	return nil
}

// Size implements virtio.BlockStore.Size: the base's size.
func (s *Store) Size() int64 { return s.h.size }

// ClusterSize is the overlay's cluster size in bytes.
func (s *Store) ClusterSize() int64 { return s.h.clusterSize }

// Base is the identity of the base the overlay is over.
func (s *Store) Base() Identity { return s.h.base }

// Clusters is the number of clusters the overlay holds.
func (s *Store) Clusters() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.m {
		if e != 0 {
			n++
		}
	}
	return n
}

var errClosed = errors.New("overlay: the store is closed")

// span calls fn for each cluster piece of [off, off+n): the cluster, the
// offset within it, the piece's length. It refuses a range beyond the
// disk.
func (s *Store) span(n int, off int64, fn func(c int64, within int64, k int) error) error {
	if off < 0 || int64(n) > s.h.size || off > s.h.size-int64(n) {
		return fmt.Errorf("overlay: %d bytes at %d: beyond the %d-byte disk", n, off, s.h.size)
	}
	for n > 0 {
		c, within := off/s.h.clusterSize, off%s.h.clusterSize
		k := int(min(int64(n), s.h.clusterSize-within))
		if err := fn(c, within, k); err != nil {
			return err
		}
		off += int64(k)
		n -= k
	}
	return nil
}

func (s *Store) slotOff(e uint32) int64 { return s.h.dataOff + int64(e-1)*s.h.clusterSize }

// ReadAt implements virtio.BlockStore.ReadAt.
func (s *Store) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	done := 0
	err := s.span(len(p), off, func(c, within int64, k int) error {
		q := p[done : done+k]
		var err error
		if e := s.m[c]; e != 0 {
			_, err = s.f.ReadAt(q, s.slotOff(e)+within)
		} else {
			_, err = s.base.ReadAt(q, c*s.h.clusterSize+within)
		}
		if err != nil {
			return err
		}
		done += k
		return nil
	})
	return done, err
}

// WriteAt implements virtio.BlockStore.WriteAt: a cluster not in the
// overlay yet is copied from the base into a new slot first.
func (s *Store) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	if s.ro {
		return 0, errors.New("overlay: opened read-only")
	}
	done := 0
	err := s.span(len(p), off, func(c, within int64, k int) error {
		q := p[done : done+k]
		if e := s.m[c]; e != 0 {
			if _, err := s.f.WriteAt(q, s.slotOff(e)+within); err != nil {
				return err
			}
		} else if err := s.allocate(c, func(cl []byte) { copy(cl[within:], q) }, within == 0 && int64(k) == s.clusterLen(c)); err != nil {
			return err
		}
		done += k
		return nil
	})
	return done, err
}

// clusterLen is how many bytes of cluster c lie within the disk.
func (s *Store) clusterLen(c int64) int64 {
	return min(s.h.clusterSize, s.h.size-c*s.h.clusterSize)
}

// allocate puts cluster c into the next slot: its base contents (unless
// whole, when fill writes all of it), changed by fill. The map entry
// changes in memory; Sync writes it. Precondition: s.mu held, c not in the
// overlay.
func (s *Store) allocate(c int64, fill func([]byte), whole bool) error {
	cl := s.buf
	n := s.clusterLen(c)
	clear(cl[n:])
	if !whole {
		if k, err := s.base.ReadAt(cl[:n], c*s.h.clusterSize); int64(k) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("overlay: reading cluster %d of the base: %w", c, err)
		}
	}
	fill(cl[:n])
	return s.place(c, cl)
}

// place writes a whole cluster's bytes into the next slot and maps c to
// it. Precondition: s.mu held, c not in the overlay.
func (s *Store) place(c int64, cl []byte) error {
	slot := s.next
	if _, err := s.f.WriteAt(cl, s.slotOff(slot+1)); err != nil {
		return err
	}
	s.next++
	s.m[c] = slot + 1
	s.dirty[c*4/mapPage] = true
	s.anyDirty = true
	return nil
}

// Sync implements virtio.BlockStore.Sync: the data written so far is made
// durable, then the map entries that name new slots are written and made
// durable too, in that order, so that the on-disk map never names a slot
// whose data could be lost.
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *Store) syncLocked() error {
	if s.closed {
		return errClosed
	}
	if s.ro {
		return nil
	}
	fd := int(s.f.Fd())
	if err := unix.Fdatasync(fd); err != nil {
		return err
	}
	if !s.anyDirty {
		return nil
	}
	page := make([]byte, mapPage)
	for i, d := range s.dirty {
		if !d {
			continue
		}
		first := int64(i) * mapPage / 4
		n := min(mapPage/4, s.h.entries-first)
		for j := int64(0); j < n; j++ {
			binary.LittleEndian.PutUint32(page[4*j:], s.m[first+j])
		}
		if _, err := s.f.WriteAt(page[:4*n], HeaderSize+int64(i)*mapPage); err != nil {
			return err
		}
	}
	if err := unix.Fdatasync(fd); err != nil {
		return err
	}
	clear(s.dirty)
	s.anyDirty = false
	return nil
}

// Close implements virtio.BlockStore.Close: it syncs a writable overlay,
// then closes the overlay file and the base.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	err := s.syncLocked()
	s.closed = true
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if cerr := s.base.Close(); err == nil {
		err = cerr
	}
	return err
}
