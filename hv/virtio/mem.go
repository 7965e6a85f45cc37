package virtio

import "encoding/binary"

// Mem is the guest's memory as a device sees it. hv's guestMem (over
// mm.Reservation.Slice and the engine's Invalidate) implements it, as it
// does hv/emul's Mem.
//
// Both methods may be called from a device goroutine while vCPUs run.
type Mem interface {
	// Slice returns guest-physical [gpa, gpa+n), or false if any of it is
	// not RAM (beyond the end, in a hole, or wrapping past 2^64). An empty
	// range is valid anywhere in [0, size]. The slice is used for one copy
	// and dropped: no device keeps it across requests.
	Slice(gpa, n uint64) ([]byte, bool)
	// Invalidate tells the engine that [gpa, gpa+n) was written.
	Invalidate(gpa, n uint64)
}

// load16 reads a little-endian uint16 at gpa.
func load16(m Mem, gpa uint64) (uint16, bool) {
	b, ok := m.Slice(gpa, 2)
	if !ok {
		return 0, false
	}
	return binary.LittleEndian.Uint16(b), true
}

// store16 writes a little-endian uint16 at gpa.
func store16(m Mem, gpa uint64, v uint16) bool {
	b, ok := m.Slice(gpa, 2)
	if !ok {
		return false
	}
	binary.LittleEndian.PutUint16(b, v)
	m.Invalidate(gpa, 2)
	return true
}

// load copies len(p) bytes from gpa into p.
func load(m Mem, gpa uint64, p []byte) bool {
	b, ok := m.Slice(gpa, uint64(len(p)))
	if !ok {
		return false
	}
	copy(p, b)
	return true
}

// store copies p to gpa.
func store(m Mem, gpa uint64, p []byte) bool {
	b, ok := m.Slice(gpa, uint64(len(p)))
	if !ok {
		return false
	}
	copy(b, p)
	m.Invalidate(gpa, uint64(len(p)))
	return true
}
