package mm

import (
	"errors"
	"fmt"
)

// MemState is a VM's memory bookkeeping for a snapshot: its size, the
// operator's balloon target and the frames ballooned out (holes), in
// ascending, non-overlapping, non-adjacent runs. The contents of the
// populated frames are saved apart (the snapshot's memory section).
type MemState struct {
	Size   uint64 // bytes
	Target uint64 // bytes, a whole number of frames, at most Size
	Holes  []FrameRange
}

// Save returns the reservation's bookkeeping.
func (r *Reservation) Save() (MemState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.released {
		return MemState{}, ErrReleased
	}
	st := MemState{Size: r.size, Target: r.target}
	for gfn := uint64(0); gfn < r.frames; {
		if r.p2m.populated(gfn) {
			gfn++
			continue
		}
		first := gfn
		for gfn < r.frames && !r.p2m.populated(gfn) {
			gfn++
		}
		st.Holes = append(st.Holes, FrameRange{First: first, Count: gfn - first})
	}
	return st, nil
}

// Restore gives a reservation that has not been used yet (every frame
// populated, as Reserve returns it) the saved holes and target. The saved
// size must be the reservation's; the holes are checked to be what Save
// produces. On error nothing changes.
func (r *Reservation) Restore(st MemState) error {
	if st.Size != r.size {
		return fmt.Errorf("mm: restoring %d MiB of memory bookkeeping into a %d MiB reservation", st.Size>>20, r.size>>20)
	}
	if st.Target > r.size || st.Target%FrameSize != 0 {
		return fmt.Errorf("mm: balloon target %#x: want whole frames up to the reservation's %#x bytes", st.Target, r.size)
	}
	next := uint64(0)
	for i, h := range st.Holes {
		end := h.First + h.Count
		if h.Count == 0 || end < h.First || end > r.frames {
			return fmt.Errorf("mm: hole %d [%#x, +%#x) is empty or beyond the %d frames", i, h.First, h.Count, r.frames)
		}
		if i > 0 && h.First <= next {
			return fmt.Errorf("mm: hole %d at %#x overlaps or touches the one before", i, h.First)
		}
		next = end
	}
	if r.Stats().Resident != r.size {
		return errors.New("mm: restore into a reservation already ballooned")
	}
	if _, err := r.BalloonOut(st.Holes...); err != nil {
		return err
	}
	return r.SetTarget(st.Target)
}
