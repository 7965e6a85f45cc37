package sched

import (
	"fmt"
	"sync"
	"time"
)

// Clock is the scheduler's time source: a monotonic duration since an
// arbitrary origin. All scheduler timestamps come from one Clock.
type Clock interface {
	Now() time.Duration
}

// realClock follows the host's monotonic clock.
type realClock struct{ base time.Time }

// NewRealClock returns a Clock that follows real time, starting at 0 now.
func NewRealClock() Clock { return realClock{base: time.Now()} }

func (c realClock) Now() time.Duration { return time.Since(c.base) }

// FakeClock is a Clock that moves only when told to. It is safe for
// concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Duration // mu protects now
}

// NewFakeClock returns a FakeClock reading 0.
func NewFakeClock() *FakeClock { return &FakeClock{} }

// Now implements Clock.Now.
func (c *FakeClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d. Precondition: d >= 0.
func (c *FakeClock) Advance(d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("sched: FakeClock.Advance(%v): negative", d))
	}
	c.mu.Lock()
	c.now += d
	c.mu.Unlock()
}

// Set moves the clock to t. Precondition: t >= Now().
func (c *FakeClock) Set(t time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t < c.now {
		panic(fmt.Sprintf("sched: FakeClock.Set(%v) before now %v", t, c.now))
	}
	c.now = t
}
