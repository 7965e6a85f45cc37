package emul

import (
	"sync"
	"time"
)

// Clock is the time base of the emulated devices: the monotonic time since
// the VM started. The PIT counts against it; nothing else in this package
// reads the host clock.
type Clock interface {
	Now() time.Duration
}

// RealClock is a Clock on the host's monotonic clock, starting at zero when
// it is made.
type RealClock struct{ start time.Time }

// NewRealClock returns a RealClock whose Now is zero at this call.
func NewRealClock() *RealClock { return &RealClock{start: time.Now()} }

// Now implements Clock.
func (c *RealClock) Now() time.Duration { return time.Since(c.start) }

// FakeClock is a Clock that moves only when told to; tests drive devices
// with it. It is safe for concurrent use.
type FakeClock struct {
	mu  sync.Mutex // mu protects now.
	now time.Duration
}

// Now implements Clock.
func (c *FakeClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to d. Moving it backwards is refused (a monotonic
// clock never does that) and leaves it where it was.
func (c *FakeClock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > c.now {
		c.now = d
	}
}

// Add moves the clock forward by d and returns the new time; a negative d
// is ignored.
func (c *FakeClock) Add(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now += d
	}
	return c.now
}
