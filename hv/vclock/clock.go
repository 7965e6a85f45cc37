// Package vclock is a VM's clock: the one time base of everything a guest
// can read as time (pvclock system time, the TSC of an engine whose TSC
// follows time, one-shot timer deadlines, the legacy PC's PIT and RTC,
// the shared-info wall clock).
//
// Guest time is host monotonic time less an offset. Pause stops it;
// Resume starts it again. What Resume does with the paused span is the
// VM's Policy: Frozen (the default) adds it to the offset, so that guest
// time goes on from where it stopped and a paused guest sees no jump;
// Live leaves the offset alone, so that guest time catches up with host
// time at once, as it would have had the VM run.
//
// The wall clock is kept right either way: Wall is the host's wall-clock
// time at guest time zero plus guest time, and that base is taken again
// from the host's wall clock at every Resume and Restore, so that Wall
// reads the host's date after them. Under Frozen the base moves forward
// by the paused span; a guest that read the date once and counts on
// from its clock (Linux does) is then behind by the pause until it reads
// the date again (NTP, or a reboot).
//
// Invariants: guest time never goes backwards, while running or across
// Pause and Resume (Restore sets it outright). It stands still while
// paused.
//
// Concurrency: Now and Wall may be called from any goroutine, lock-free
// (a sequence counter, readers retry around a change); Pause, Resume and
// Restore are serialized by a mutex.
package vclock

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Policy is what Resume does with the time a VM spent paused.
type Policy uint8

const (
	// Frozen: guest time stands still while paused and goes on from
	// there at Resume: no jump (`--clock paused`, the default).
	Frozen Policy = iota
	// Live: guest time follows host time: at Resume it jumps forward by
	// the paused span, as a clock that ran on would have (`--clock host`).
	Live
)

// ParsePolicy parses a --clock value: "paused" (Frozen) or "host" (Live).
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "paused", "":
		return Frozen, nil
	case "host":
		return Live, nil
	}
	return 0, fmt.Errorf("unknown clock policy %q: want paused (the guest clock stops while the VM is paused) or host (it catches up with host time on resume)", s)
}

func (p Policy) String() string {
	switch p {
	case Frozen:
		return "paused"
	case Live:
		return "host"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// MaxTime is the largest guest time a Clock holds (about 146 years): far
// beyond any run, and small enough that offsets from the host's clock
// cannot overflow.
const MaxTime = time.Duration(1 << 62)

// Clock is one VM's clock. The zero value is not usable: use New.
type Clock struct {
	policy Policy
	host   func() time.Duration // host monotonic time
	wall   func() time.Time     // host wall-clock time

	mu  sync.Mutex    // serializes writers
	seq atomic.Uint64 // odd while a writer changes the fields below
	// Guest time is host() - offset while running, frozen while paused.
	offset atomic.Int64
	frozen atomic.Int64
	paused atomic.Bool
	// wallBase is the wall-clock time, in Unix nanoseconds, at guest time
	// zero.
	wallBase atomic.Int64
	// pausedAt is host() at Pause (for PausedFor).
	pausedAt atomic.Int64
}

// New returns a running Clock at guest time zero on the host's clocks.
func New(p Policy) *Clock {
	base := time.Now()
	return NewWith(p, func() time.Duration { return time.Since(base) }, time.Now)
}

// NewWith returns a running Clock at guest time zero on the given host
// clocks: host is monotonic time (it must never go backwards), wall the
// wall-clock time. Tests drive a Clock with fake ones.
func NewWith(p Policy, host func() time.Duration, wall func() time.Time) *Clock {
	c := &Clock{policy: p, host: host, wall: wall}
	h := host()
	c.offset.Store(int64(h))
	c.wallBase.Store(wall().UnixNano())
	return c
}

// Policy returns the clock's policy.
func (c *Clock) Policy() Policy { return c.policy }

// Now returns guest time: nanoseconds since the VM's start, not counting
// paused time under Frozen.
func (c *Clock) Now() time.Duration {
	for {
		s := c.seq.Load()
		if s&1 != 0 {
			runtime.Gosched()
			continue
		}
		var t time.Duration
		if c.paused.Load() {
			t = time.Duration(c.frozen.Load())
		} else {
			t = c.host() - time.Duration(c.offset.Load())
		}
		if c.seq.Load() == s {
			return t
		}
	}
}

// Wall returns the guest's wall-clock time: WallBase plus Now.
func (c *Clock) Wall() time.Time {
	for {
		s := c.seq.Load()
		if s&1 != 0 {
			runtime.Gosched()
			continue
		}
		base := c.wallBase.Load()
		t := c.Now()
		if c.seq.Load() == s {
			return time.Unix(0, base).Add(t)
		}
	}
}

// WallBase returns the wall-clock time at guest time zero (what the
// shared-info page's wall clock holds). It changes at Resume and Restore.
func (c *Clock) WallBase() time.Time { return time.Unix(0, c.wallBase.Load()) }

// Paused reports whether the clock is paused.
func (c *Clock) Paused() bool { return c.paused.Load() }

// write runs f with the sequence counter odd: readers wait for it.
// Precondition: c.mu held.
func (c *Clock) write(f func()) {
	c.seq.Add(1)
	f()
	c.seq.Add(1)
}

// Pause stops guest time where it is. Pausing a paused clock does
// nothing.
func (c *Clock) Pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused.Load() {
		return
	}
	c.write(func() {
		h := c.host()
		c.frozen.Store(int64(h) - c.offset.Load())
		c.pausedAt.Store(int64(h))
		c.paused.Store(true)
	})
}

// Resume starts guest time again: from where Pause stopped it under
// Frozen, from where it would have been had it not stopped under Live. It
// takes the wall-clock base again from the host's wall clock. It returns
// the host time the clock was paused for. Resuming a running clock does
// nothing and returns 0.
func (c *Clock) Resume() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused.Load() {
		return 0
	}
	var span time.Duration
	c.write(func() {
		h := c.host()
		span = h - time.Duration(c.pausedAt.Load())
		if c.policy == Frozen {
			c.offset.Store(int64(h) - c.frozen.Load())
		}
		c.paused.Store(false)
		c.wallBase.Store(c.wall().UnixNano() - (int64(h) - c.offset.Load()))
	})
	return span
}

// ClockState is a Clock's saved state.
type ClockState struct {
	// Now is guest time at Save, in nanoseconds: 0..MaxTime.
	Now uint64
	// Paused says whether the clock was paused. A restored clock goes
	// on from Now: at once if it was running, at Resume if not.
	Paused bool
}

// Save returns the clock's state. A snapshot is taken of a paused VM, so
// Now is the time its guest stopped at.
func (c *Clock) Save() ClockState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ClockState{Now: uint64(c.Now()), Paused: c.paused.Load()}
}

// ErrBadState is wrapped by every error of Restore.
var ErrBadState = errors.New("vclock: bad clock state")

// Restore sets the clock to st: guest time st.Now, paused or running from
// now as st.Paused says; the wall-clock base is taken again from the
// host's wall clock. The policy stays the clock's own (it is
// configuration). A time beyond MaxTime is refused and leaves the clock
// as it was.
func (c *Clock) Restore(st ClockState) error {
	if st.Now > uint64(MaxTime) {
		return fmt.Errorf("%w: guest time %d ns is beyond %d ns", ErrBadState, st.Now, uint64(MaxTime))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.write(func() {
		h := c.host()
		g := int64(st.Now)
		c.frozen.Store(g)
		c.pausedAt.Store(int64(h))
		c.offset.Store(int64(h) - g)
		c.paused.Store(st.Paused)
		c.wallBase.Store(c.wall().UnixNano() - g)
	})
	return nil
}
