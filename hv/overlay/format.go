package overlay

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// The overlay file (docs/snapshot.md, "Disk overlays"; all integers
// little-endian):
//
//	offset  size  field
//	0       8     magic "\x89PVO\r\n\x1a\n"
//	8       2     version: 1
//	10      2     flags: 0
//	12      4     cluster size: a power of two, 4 KiB to 1 MiB
//	16      8     virtual size: the disk's size in bytes (the base's)
//	24      8     base size
//	32      32    base digest: SHA-256 of the base's contents
//	64      8     map offset: 4096
//	72      8     map entries: ceil(virtual size / cluster size)
//	80      8     data offset: 4096 + the map rounded up to 4 KiB, rounded up to the cluster size
//	88      32    SHA-256 of bytes 0 to 88
//	120     3976  zero
//	4096          the map: one uint32 per cluster, 0 (the base's) or 1 + the slot holding it
//	data offset   slots: slot k is cluster-size bytes at data offset + k·cluster size

const (
	// Magic opens every overlay file: the high byte catches 7-bit
	// transfers, CR LF and LF catch line-ending conversion (as PNG's).
	Magic = "\x89PVO\r\n\x1a\n"
	// Version is the overlay format version this package reads and writes.
	Version = 1
	// HeaderSize is the header's size in the file; the map follows it.
	HeaderSize = 4096
	// MinClusterSize and MaxClusterSize bound the cluster size.
	MinClusterSize = 4 << 10
	MaxClusterSize = 1 << 20
	// DefaultClusterSize is the cluster size of a new overlay (as
	// qcow2's): a first write to a cluster copies this much of the base.
	DefaultClusterSize = 64 << 10
	// MaxClusters bounds the map (4 bytes per cluster in memory and in the
	// file: 64 MiB): 1 TiB disks with the default cluster size, 16 TiB
	// with 1 MiB clusters.
	MaxClusters = 1 << 24

	headerUsed = 120
	mapPage    = 4096
)

// ErrNotOverlay is returned for a file that does not start with Magic.
var ErrNotOverlay = errors.New("overlay: not a pvisor overlay file (no overlay magic)")

// Identity names a base image: its size and the SHA-256 of its contents.
type Identity struct {
	Size   int64
	Digest [32]byte
}

func (id Identity) String() string {
	return fmt.Sprintf("%d bytes, sha256 %x", id.Size, id.Digest[:8])
}

// BaseIdentity reads the whole of base and returns its identity. It costs
// one read of the base and its SHA-256 (docs/snapshot.md, "Crashes and
// ordering", gives the figures).
func BaseIdentity(base interface {
	ReadAt([]byte, int64) (int, error)
	Size() int64
}) (Identity, error) {
	id := Identity{Size: base.Size()}
	if id.Size < 0 {
		return id, fmt.Errorf("overlay: base size %d is negative", id.Size)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < id.Size; {
		n := int(min(int64(len(buf)), id.Size-off))
		k, err := base.ReadAt(buf[:n], off)
		if k < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return id, fmt.Errorf("overlay: reading the base at %d: %w", off+int64(k), err)
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	h.Sum(id.Digest[:0])
	return id, nil
}

// header is an overlay file's header, parsed and checked.
type header struct {
	clusterSize int64
	size        int64 // virtual size
	base        Identity
	entries     int64
	dataOff     int64
}

// layout returns the header of an overlay of a disk of size bytes with
// clusters of cs bytes over base, or an error naming the bad value.
func layout(cs int64, base Identity) (header, error) {
	if cs < MinClusterSize || cs > MaxClusterSize || bits.OnesCount64(uint64(cs)) != 1 {
		return header{}, fmt.Errorf("overlay: cluster size %d: want a power of two from %d to %d", cs, MinClusterSize, MaxClusterSize)
	}
	if base.Size < 0 {
		return header{}, fmt.Errorf("overlay: base size %d is negative", base.Size)
	}
	entries := base.Size / cs
	if base.Size%cs != 0 {
		entries++
	}
	if entries > MaxClusters {
		return header{}, fmt.Errorf("overlay: a %d-byte disk has %d clusters of %d bytes, more than the %d an overlay maps: use larger clusters", base.Size, entries, cs, MaxClusters)
	}
	mapLen := roundUp(entries*4, mapPage)
	return header{clusterSize: cs, size: base.Size, base: base, entries: entries,
		dataOff: roundUp(HeaderSize+mapLen, cs)}, nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

func (h *header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	le := binary.LittleEndian
	le.PutUint16(b[8:], Version)
	le.PutUint32(b[12:], uint32(h.clusterSize))
	le.PutUint64(b[16:], uint64(h.size))
	le.PutUint64(b[24:], uint64(h.base.Size))
	copy(b[32:64], h.base.Digest[:])
	le.PutUint64(b[64:], HeaderSize)
	le.PutUint64(b[72:], uint64(h.entries))
	le.PutUint64(b[80:], uint64(h.dataOff))
	sum := sha256.Sum256(b[:88])
	copy(b[88:headerUsed], sum[:])
	return b
}

// parseHeader checks every field of a header read from a file.
func parseHeader(b []byte) (header, error) {
	if len(b) < HeaderSize {
		return header{}, fmt.Errorf("overlay: the file is %d bytes, shorter than the %d-byte header", len(b), HeaderSize)
	}
	if string(b[:8]) != Magic {
		return header{}, ErrNotOverlay
	}
	le := binary.LittleEndian
	if v := le.Uint16(b[8:]); v != Version {
		return header{}, fmt.Errorf("overlay: format version %d is not supported: this pvisor reads version %d only", v, Version)
	}
	if sum := sha256.Sum256(b[:88]); !bytes.Equal(sum[:], b[88:headerUsed]) {
		return header{}, errors.New("overlay: the header's checksum does not match: the file is damaged")
	}
	if f := le.Uint16(b[10:]); f != 0 {
		return header{}, fmt.Errorf("overlay: header flags %#x: version %d defines none", f, Version)
	}
	for _, c := range b[headerUsed:HeaderSize] {
		if c != 0 {
			return header{}, errors.New("overlay: the header's reserved bytes are not zero")
		}
	}
	size, baseSize := le.Uint64(b[16:]), le.Uint64(b[24:])
	if size != baseSize || size > 1<<62 {
		return header{}, fmt.Errorf("overlay: virtual size %d and base size %d: version %d wants them equal", size, baseSize, Version)
	}
	id := Identity{Size: int64(baseSize)}
	copy(id.Digest[:], b[32:64])
	h, err := layout(int64(le.Uint32(b[12:])), id)
	if err != nil {
		return header{}, err
	}
	if m, n, d := le.Uint64(b[64:]), le.Uint64(b[72:]), le.Uint64(b[80:]); m != HeaderSize || n != uint64(h.entries) || d != uint64(h.dataOff) {
		return header{}, fmt.Errorf("overlay: map at %d with %d entries and data at %d: a %d-byte disk in %d-byte clusters wants %d, %d and %d",
			m, n, d, h.size, h.clusterSize, HeaderSize, h.entries, h.dataOff)
	}
	return h, nil
}

// parseMap decodes and checks the map of h read from a file of fileSize
// bytes: every entry names a slot the file holds, no slot twice. It
// returns the map and the number of slots in use (the highest + 1).
func parseMap(h *header, b []byte, fileSize int64) ([]uint32, uint32, error) {
	if int64(len(b)) != h.entries*4 {
		return nil, 0, fmt.Errorf("overlay: map of %d bytes, want %d", len(b), h.entries*4)
	}
	// Slots are never freed, so there are at most as many as clusters.
	slots := min((fileSize-h.dataOff)/h.clusterSize, h.entries)
	if fileSize < h.dataOff {
		slots = 0
	}
	m := make([]uint32, h.entries)
	used := make([]uint64, (h.entries+63)/64)
	var next uint32
	for i := range m {
		e := binary.LittleEndian.Uint32(b[4*i:])
		m[i] = e
		if e == 0 {
			continue
		}
		s := int64(e - 1)
		if s >= slots {
			return nil, 0, fmt.Errorf("overlay: cluster %d is in slot %d, beyond the %d slots the file holds: the map is damaged", i, s, slots)
		}
		if used[s/64]&(1<<(s%64)) != 0 {
			return nil, 0, fmt.Errorf("overlay: cluster %d is in slot %d, which another cluster has: the map is damaged", i, s)
		}
		used[s/64] |= 1 << (s % 64)
		next = max(next, uint32(s)+1)
	}
	return m, next, nil
}
