package mm

import (
	"errors"
	"fmt"
)

// FrameRange is Count guest frames from First.
type FrameRange struct {
	First, Count uint64
}

// ErrBeyondReservation is wrapped by balloon errors for frames outside the
// VM's reservation. A hypercall maps it to -EINVAL.
var ErrBeyondReservation = errors.New("beyond the VM's reservation")

// ErrReleased is returned by operations on a released reservation.
var ErrReleased = errors.New("mm: the VM's memory has been released")

// check returns an error naming the first range not inside the reservation
// (including on overflow).
func (r *Reservation) check(op string, ranges []FrameRange) error {
	for _, fr := range ranges {
		end := fr.First + fr.Count
		if end < fr.First || end > r.frames {
			return fmt.Errorf("mm: cannot balloon %s frames [%#x, +%#x): %w of %d frames (%d MiB)",
				op, fr.First, fr.Count, ErrBeyondReservation, r.frames, r.size>>20)
		}
	}
	return nil
}

// CheckRanges reports whether every range lies within the reservation:
// BalloonOut and BalloonIn refuse, doing nothing, exactly when it fails.
func (r *Reservation) CheckRanges(ranges ...FrameRange) error { return r.check("out", ranges) }

// BalloonOut takes the given guest frames out of the VM's p2m: they stop
// counting as resident, their host memory goes back to the kernel, and
// they read as zero when ballooned in again. Frames already out are left
// out. It returns the number of frames that were populated. If any range
// lies beyond the reservation nothing is done and the error wraps
// ErrBeyondReservation.
func (r *Reservation) BalloonOut(ranges ...FrameRange) (uint64, error) {
	if err := r.check("out", ranges); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.released {
		return 0, ErrReleased
	}
	var n uint64
	b := r.budget
	b.mu.Lock()
	for _, fr := range ranges {
		if fr.Count != 0 {
			n += r.p2m.clearRange(fr.First, fr.First+fr.Count-1)
		}
	}
	r.resident -= n
	b.resident -= n
	b.mu.Unlock()
	// Accesses through Slice now fail; drop the memory. (The hypervisor
	// marks the frames as holes in its engine and flushes every vCPU's
	// soft TLB, hv/balloon.go.) Zeroing the whole range also drops
	// anything written to frames that were already out.
	for _, fr := range ranges {
		zeroFrames(r.ram, fr.First, fr.Count)
	}
	return n, nil
}

// BalloonIn puts the given guest frames back in the VM's p2m, zeroed, and
// charges them to its resident count; frames already in are left as they
// are. It returns the number of frames added. Resident memory cannot exceed
// the reservation: a range beyond it refuses the whole call with an error
// wrapping ErrBeyondReservation.
func (r *Reservation) BalloonIn(ranges ...FrameRange) (uint64, error) {
	if err := r.check("in", ranges); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.released {
		return 0, ErrReleased
	}
	var n uint64
	for _, fr := range ranges {
		// Zero each run of holes before mapping it, so that no access
		// sees the frame populated and not yet zero.
		end := fr.First + fr.Count
		for g := fr.First; g < end; {
			if r.p2m.populated(g) {
				g++
				continue
			}
			run := g
			for g < end && !r.p2m.populated(g) {
				g++
			}
			zeroFrames(r.ram, run, g-run)
			b := r.budget
			b.mu.Lock()
			added := r.p2m.setRange(run, g-1)
			r.resident += added
			b.resident += added
			if r.resident > r.frames {
				b.mu.Unlock()
				panic("mm: resident frames above the reservation")
			}
			b.mu.Unlock()
			n += added
		}
	}
	return n, nil
}

// VMStats is one VM's accounting, in bytes.
type VMStats struct {
	Reserved  uint64 // the reservation
	Resident  uint64 // populated frames
	Ballooned uint64 // Reserved - Resident
	Target    uint64 // the operator's balloon target
}

// Stats returns the VM's accounting.
func (r *Reservation) Stats() VMStats {
	r.mu.Lock()
	target := r.target
	r.mu.Unlock()
	r.budget.mu.Lock()
	res := r.resident * FrameSize
	r.budget.mu.Unlock()
	return VMStats{Reserved: r.size, Resident: res, Ballooned: r.size - res, Target: target}
}

// SetTarget sets the resident size, in bytes rounded up to a frame, the
// operator asks the guest's balloon driver to reach (mem-set). It is
// advisory: the reservation stays the hard limit. A target above the
// reservation is refused.
func (r *Reservation) SetTarget(bytes uint64) error {
	if bytes > r.size {
		return fmt.Errorf("mm: balloon target %d MiB is above the VM's reservation of %d MiB", bytes>>20, r.size>>20)
	}
	r.mu.Lock()
	r.target = (bytes + FrameSize - 1) &^ (FrameSize - 1)
	r.mu.Unlock()
	return nil
}

// Target returns the operator's balloon target in bytes.
func (r *Reservation) Target() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.target
}
