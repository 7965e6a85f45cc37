package overlay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A delta is an overlay's clusters as a stream, what a snapshot's disk
// section carries (docs/snapshot.md, "Disk sections"; little-endian):
//
//	offset  size   field
//	0       4      cluster size
//	4       4      reserved: zero
//	8       8      virtual size
//	16      8      base size
//	24      32     base digest
//	56      8      n: clusters in the delta, at most the map's entries
//	64      4·n    cluster indexes, strictly ascending, below the map's entries
//	64+4·n  n·cs   the clusters' bytes in that order; bytes of the last cluster past the disk's end are zero

// DeltaHeaderSize is the size of a delta's fixed part.
const DeltaHeaderSize = 64

// DeltaLen is the length of the delta WriteDelta writes now.
func (s *Store) DeltaLen() int64 {
	n := int64(s.Clusters())
	return DeltaHeaderSize + n*4 + n*s.h.clusterSize
}

// WriteDelta writes the overlay's clusters to w as a delta of exactly
// DeltaLen bytes. Precondition: no write runs meanwhile (the device is
// quiesced), so that DeltaLen and the delta agree.
func (s *Store) WriteDelta(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	var idx []uint32
	for c, e := range s.m {
		if e != 0 {
			idx = append(idx, uint32(c))
		}
	}
	b := make([]byte, DeltaHeaderSize+4*len(idx))
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(s.h.clusterSize))
	le.PutUint64(b[8:], uint64(s.h.size))
	le.PutUint64(b[16:], uint64(s.h.base.Size))
	copy(b[24:56], s.h.base.Digest[:])
	le.PutUint64(b[56:], uint64(len(idx)))
	for i, c := range idx {
		le.PutUint32(b[DeltaHeaderSize+4*i:], c)
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	for _, c := range idx {
		if _, err := s.f.ReadAt(s.buf, s.slotOff(s.m[c])); err != nil {
			return fmt.Errorf("overlay: reading cluster %d: %w", c, err)
		}
		// What the file holds past the disk's end is not the disk's.
		clear(s.buf[s.clusterLen(int64(c)):])
		if _, err := w.Write(s.buf); err != nil {
			return err
		}
	}
	return nil
}

// DeltaInfo is a delta's fixed part, checked against a base.
type DeltaInfo struct {
	ClusterSize int64
	Base        Identity
	Clusters    int64
}

// ReadDeltaHeader reads and checks a delta's fixed part from r, whose
// length is n bytes in all (a section's): the cluster size, the sizes,
// the count and the length must agree with each other.
func ReadDeltaHeader(r io.Reader, n uint64) (DeltaInfo, error) {
	var b [DeltaHeaderSize]byte
	if n < DeltaHeaderSize {
		return DeltaInfo{}, fmt.Errorf("overlay: delta of %d bytes, shorter than its %d-byte header", n, DeltaHeaderSize)
	}
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return DeltaInfo{}, fmt.Errorf("overlay: delta header: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(b[4:]) != 0 {
		return DeltaInfo{}, errors.New("overlay: delta header's reserved bytes are not zero")
	}
	size, baseSize := le.Uint64(b[8:]), le.Uint64(b[16:])
	if size != baseSize || size > 1<<62 {
		return DeltaInfo{}, fmt.Errorf("overlay: delta of a %d-byte disk over a %d-byte base: want them equal", size, baseSize)
	}
	d := DeltaInfo{ClusterSize: int64(le.Uint32(b[0:])), Base: Identity{Size: int64(size)}}
	copy(d.Base.Digest[:], b[24:56])
	h, err := layout(d.ClusterSize, d.Base)
	if err != nil {
		return DeltaInfo{}, err
	}
	count := le.Uint64(b[56:])
	if count > uint64(h.entries) {
		return DeltaInfo{}, fmt.Errorf("overlay: delta of %d clusters: a %d-byte disk has %d", count, size, h.entries)
	}
	d.Clusters = int64(count)
	if want := DeltaHeaderSize + uint64(d.Clusters)*(4+uint64(d.ClusterSize)); n != want {
		return DeltaInfo{}, fmt.Errorf("overlay: a delta of %d clusters of %d bytes is %d bytes long, not %d", count, d.ClusterSize, want, n)
	}
	return d, nil
}

// ReadDelta fills an overlay that holds no cluster yet with the delta in
// r, whose length is n bytes in all, and makes it durable. It checks the
// delta's fixed part and indexes before it writes anything: the base must
// be this overlay's, and the cluster size becomes the delta's. A delta
// that ends early, or whose last cluster has bytes past the disk's end,
// fails when that is read, with the overlay partly written: the caller
// discards it.
func (s *Store) ReadDelta(r io.Reader, n uint64) error {
	d, err := ReadDeltaHeader(r, n)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.ro {
		return errors.New("overlay: opened read-only")
	}
	if s.next != 0 {
		return errors.New("overlay: a delta goes into an empty overlay only")
	}
	if d.Base != s.h.base {
		return fmt.Errorf("overlay: the delta is over a base of %v, not this one of %v: give the base image the snapshot's disk was over", d.Base, s.h.base)
	}
	idx := make([]byte, 4*d.Clusters)
	if _, err := io.ReadFull(r, idx); err != nil {
		return fmt.Errorf("overlay: delta indexes: %w", err)
	}
	h, err := layout(d.ClusterSize, d.Base)
	if err != nil {
		return err
	}
	if err := checkIndexes(idx, h.entries); err != nil {
		return err
	}
	if d.ClusterSize != s.h.clusterSize {
		if err := s.format(d.ClusterSize, d.Base); err != nil {
			return err
		}
	}
	for i := int64(0); i < d.Clusters; i++ {
		c := int64(binary.LittleEndian.Uint32(idx[4*i:]))
		if _, err := io.ReadFull(r, s.buf); err != nil {
			return fmt.Errorf("overlay: delta cluster %d: %w", c, err)
		}
		for _, b := range s.buf[s.clusterLen(c):] {
			if b != 0 {
				return fmt.Errorf("overlay: delta cluster %d has bytes past the disk's end", c)
			}
		}
		if err := s.place(c, s.buf); err != nil {
			return err
		}
	}
	return s.syncLocked()
}

// checkIndexes checks a delta's cluster indexes: strictly ascending,
// below entries.
func checkIndexes(idx []byte, entries int64) error {
	prev := int64(-1)
	for i := 0; i+4 <= len(idx); i += 4 {
		c := int64(binary.LittleEndian.Uint32(idx[i:]))
		if c <= prev || c >= entries {
			return fmt.Errorf("overlay: delta cluster %d at position %d: want ascending indexes below %d", c, i/4, entries)
		}
		prev = c
	}
	return nil
}
