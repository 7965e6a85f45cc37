package virtio

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// Limits bound a device's requests with two token buckets, as Firecracker's
// rate limiter does: bytes per second and operations (requests) per
// second, each with a burst (the bucket's capacity). A zero rate is
// unlimited; a zero burst is one second's worth of the rate.
type Limits struct {
	BytesPerSec uint64
	BytesBurst  uint64
	OpsPerSec   uint64
	OpsBurst    uint64
}

func (l Limits) unlimited() bool { return l.BytesPerSec == 0 && l.OpsPerSec == 0 }

// Clock is the rate limiter's time source.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// RateLimiter admits requests against Limits. A request of cost n goes
// ahead when a bucket holds at least min(n, burst) tokens and then takes
// all n, possibly leaving the bucket in debt, so that a request larger
// than the burst still goes through and the ones after it wait off its
// cost: over any interval t a bucket admits at most burst + rate·t tokens
// plus one request's cost.
type RateLimiter struct {
	clock Clock
	mu    sync.Mutex // protects the buckets
	bytes bucket
	ops   bucket
}

// NewRateLimiter returns a limiter with full buckets; nil c is the system
// clock.
func NewRateLimiter(l Limits, c Clock) *RateLimiter {
	if c == nil {
		c = systemClock{}
	}
	r := &RateLimiter{clock: c}
	r.bytes.init(l.BytesPerSec, l.BytesBurst)
	r.ops.init(l.OpsPerSec, l.OpsBurst)
	r.Reset()
	return r
}

// SetLimits changes the limits from now on. Tokens already in a bucket
// are kept up to the new burst, and a debt is kept: changing the limits
// never hands out a fresh burst.
func (r *RateLimiter) SetLimits(l Limits) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	r.bytes.refill(now)
	r.ops.refill(now)
	for _, x := range []struct {
		b           *bucket
		rate, burst uint64
	}{{&r.bytes, l.BytesPerSec, l.BytesBurst}, {&r.ops, l.OpsPerSec, l.OpsBurst}} {
		was := x.b.rate
		x.b.init(x.rate, x.burst)
		x.b.last = now
		if was == 0 {
			// From unlimited: start from a full bucket, as a new limiter.
			x.b.tokens, x.b.frac = int64(x.b.burst), 0
		}
		x.b.tokens = min(x.b.tokens, int64(x.b.burst))
	}
}

// Limits returns the limits in force.
func (r *RateLimiter) Limits() Limits {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Limits{BytesPerSec: r.bytes.rate, BytesBurst: r.bytes.burst, OpsPerSec: r.ops.rate, OpsBurst: r.ops.burst}
}

// Reset fills both buckets.
func (r *RateLimiter) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	r.bytes.fill(now)
	r.ops.fill(now)
}

// Take admits one operation of n bytes and returns 0, or returns how long
// to wait before asking again, taking nothing.
func (r *RateLimiter) Take(n uint64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	r.bytes.refill(now)
	r.ops.refill(now)
	wait := max(r.bytes.wait(n), r.ops.wait(1))
	if wait == 0 {
		r.bytes.take(n)
		r.ops.take(1)
	}
	return wait
}

// bucket is one token bucket in whole tokens. frac carries the part of a
// token earned but not yet whole, in units of 1/1e9 token, so that refills
// at any rate and interval lose nothing.
type bucket struct {
	rate   uint64 // tokens per second; 0 is unlimited
	burst  uint64 // capacity
	tokens int64  // below zero while in debt
	frac   uint64
	last   time.Time
}

const nsPerSec = uint64(time.Second)

// maxTokens bounds a bucket's capacity and debt so tokens never overflow.
const maxTokens = math.MaxInt64 / 4

func (b *bucket) init(rate, burst uint64) {
	b.rate = rate
	if burst == 0 {
		burst = rate
	}
	b.burst = min(burst, maxTokens)
}

func (b *bucket) fill(now time.Time) {
	b.tokens, b.frac, b.last = int64(b.burst), 0, now
}

func (b *bucket) refill(now time.Time) {
	if b.rate == 0 {
		return
	}
	elapsed := now.Sub(b.last)
	if elapsed <= 0 {
		return // a clock that went backwards adds nothing
	}
	b.last = now
	hi, lo := bits.Mul64(b.rate, uint64(elapsed))
	lo, carry := bits.Add64(lo, b.frac, 0)
	hi += carry
	if hi >= nsPerSec {
		b.tokens, b.frac = int64(b.burst), 0 // more than 2^64 tokens earned
		return
	}
	add, frac := bits.Div64(hi, lo, nsPerSec)
	if add >= uint64(int64(b.burst)-b.tokens) {
		b.tokens, b.frac = int64(b.burst), 0
		return
	}
	b.tokens += int64(add)
	b.frac = frac
}

// wait is how long until the bucket admits a cost of n (0: now).
func (b *bucket) wait(n uint64) time.Duration {
	if b.rate == 0 {
		return 0
	}
	need := int64(min(n, b.burst)) - b.tokens
	if need <= 0 {
		return 0
	}
	// ceil((need·1e9 - frac) / rate) nanoseconds
	hi, lo := bits.Mul64(uint64(need), nsPerSec)
	lo, borrow := bits.Sub64(lo, b.frac, 0)
	hi -= borrow
	if hi >= b.rate {
		return math.MaxInt64
	}
	q, rem := bits.Div64(hi, lo, b.rate)
	if rem != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(q)
}

func (b *bucket) take(n uint64) {
	if b.rate == 0 {
		return
	}
	b.tokens -= int64(min(n, maxTokens))
	if b.tokens < -maxTokens {
		b.tokens = -maxTokens
	}
}
