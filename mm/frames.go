package mm

import (
	"fmt"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// FrameSize is the size of a host frame and of a guest frame: 4 KiB, the
// x86 base page.
const FrameSize = 4096

// HFN is a host frame number: the host virtual page (address / FrameSize)
// that backs a guest frame. Host frames are counted, not named, while free
// in the budget's pool; a frame gets its HFN when a reservation maps it, and
// each reservation's frames are one private anonymous mapping, so no HFN
// belongs to two live VMs.
type HFN uint64

// Stats is the host-wide accounting, in bytes.
type Stats struct {
	Total     uint64 // the budget
	Reserved  uint64 // held by live reservations
	Resident  uint64 // populated in live p2ms (upper bound of guest RSS)
	Ballooned uint64 // reserved but ballooned out: returned to the host
	Free      uint64 // Total - Reserved: what a new VM may still reserve
	VMs       int    // live reservations
}

// Stats returns the host-wide accounting.
func (b *Budget) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	res := b.resident * FrameSize
	return Stats{
		Total:     b.total,
		Reserved:  b.reserved,
		Resident:  res,
		Ballooned: b.reserved - res,
		Free:      b.total - b.reserved,
		VMs:       len(b.live),
	}
}

// Check verifies the budget's invariants and returns the first one that
// does not hold:
//   - reserved <= total, and reserved is the sum of live reservations;
//   - every VM's resident frames equal its populated p2m entries and are at
//     most its reservation, and their sum is the budget's resident count;
//   - the host frames of live VMs are disjoint (every frame has at most one
//     owner).
//
// It is for tests and debugging: it walks every live p2m under the budget's
// lock.
func (b *Budget) Check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reserved > b.total {
		return fmt.Errorf("mm: %d bytes reserved, above the budget of %d", b.reserved, b.total)
	}
	var reserved, resident uint64
	vms := make([]*Reservation, 0, len(b.live))
	for r := range b.live {
		vms = append(vms, r)
		reserved += r.size
		resident += r.resident
		if r.resident > r.frames {
			return fmt.Errorf("mm: VM at hfn %#x has %d resident frames, above its reservation of %d", r.base, r.resident, r.frames)
		}
		if n := r.p2m.count(); n != r.resident {
			return fmt.Errorf("mm: VM at hfn %#x counts %d resident frames but its p2m maps %d", r.base, r.resident, n)
		}
	}
	if reserved != b.reserved || resident != b.resident {
		return fmt.Errorf("mm: budget counts %d bytes reserved and %d frames resident; live VMs hold %d and %d",
			b.reserved, b.resident, reserved, resident)
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].base < vms[j].base })
	for i := 1; i < len(vms); i++ {
		if prev := vms[i-1]; prev.base+HFN(prev.frames) > vms[i].base {
			return fmt.Errorf("mm: host frames [%#x, %#x) and [%#x, %#x) overlap", prev.base, prev.base+HFN(prev.frames),
				vms[i].base, vms[i].base+HFN(vms[i].frames))
		}
	}
	return nil
}

// hostFramesMatch reports whether the kernel's page size is FrameSize, so
// a single guest frame can be dropped with madvise.
var hostFramesMatch = os.Getpagesize() == FrameSize

// zeroFrames drops guest frames [first, first+n) of ram: their host memory
// goes back to the kernel and they read as zero afterwards. On a host whose
// page size is not FrameSize, or if madvise fails, it writes zeros instead
// (same guarantee, the memory stays resident).
func zeroFrames(ram []byte, first, n uint64) {
	if n == 0 {
		return
	}
	b := ram[first*FrameSize : (first+n)*FrameSize]
	if hostFramesMatch && unix.Madvise(b, unix.MADV_DONTNEED) == nil {
		return
	}
	clear(b)
}
