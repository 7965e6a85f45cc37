package virtio

import (
	"math"
	"sync"
	"testing"
	"time"
)

var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRateLimiter(t *testing.T) {
	type step struct {
		advance time.Duration
		bytes   uint64
		wait    time.Duration // Take's result
	}
	tests := []struct {
		name   string
		limits Limits
		steps  []step
	}{
		{"unlimited", Limits{}, []step{{0, 1 << 40, 0}, {0, 1 << 40, 0}}},
		{"ops: burst then rate", Limits{OpsPerSec: 4, OpsBurst: 2}, []step{
			{0, 0, 0}, {0, 0, 0}, {0, 0, 250 * time.Millisecond},
			{249 * time.Millisecond, 0, time.Millisecond},
			{time.Millisecond, 0, 0},
			{0, 0, 250 * time.Millisecond},
		}},
		{"ops: default burst is one second", Limits{OpsPerSec: 3}, []step{
			{0, 0, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 333333334},
		}},
		{"bytes: request larger than the burst goes through, then debt", Limits{BytesPerSec: 1000, BytesBurst: 100}, []step{
			{0, 5000, 0},
			{0, 1, 4901 * time.Millisecond}, // 4900 tokens of debt, then 1
			{4901 * time.Millisecond, 1, 0},
		}},
		{"bytes: partial refills add up exactly", Limits{BytesPerSec: 3, BytesBurst: 1}, []step{
			{0, 1, 0},
			{0, 1, 333333334},
			{111111111, 1, 222222223},
			{111111111, 1, 111111112},
			{111111112, 1, 0},
		}},
		{"idle time refills only to the burst", Limits{OpsPerSec: 10, OpsBurst: 2}, []step{
			{0, 0, 0}, {0, 0, 0},
			{time.Hour, 0, 0}, {0, 0, 0}, {0, 0, 100 * time.Millisecond},
		}},
		{"both buckets: the longer wait", Limits{OpsPerSec: 10, OpsBurst: 1, BytesPerSec: 100, BytesBurst: 100}, []step{
			{0, 100, 0},
			{0, 50, 500 * time.Millisecond},
			{100 * time.Millisecond, 50, 400 * time.Millisecond},
		}},
		{"clock going backwards adds nothing", Limits{OpsPerSec: 1, OpsBurst: 1}, []step{
			{0, 0, 0}, {-time.Hour, 0, time.Second}, {time.Hour, 0, time.Second},
		}},
		{"huge rate and interval do not overflow", Limits{BytesPerSec: math.MaxUint64, BytesBurst: math.MaxUint64}, []step{
			{0, math.MaxUint64, 0}, {1000 * time.Hour, 1, 0},
		}},
		{"huge debt waits, never wraps", Limits{BytesPerSec: 1, BytesBurst: 1}, []step{
			{0, math.MaxUint64, 0}, {0, 1, math.MaxInt64},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: testEpoch}
			r := NewRateLimiter(tt.limits, clk)
			for i, s := range tt.steps {
				clk.advance(s.advance)
				if got := r.Take(s.bytes); got != s.wait {
					t.Fatalf("step %d: Take(%d) = %v, want %v", i, s.bytes, got, s.wait)
				}
			}
		})
	}
}

// TestRateLimiterLongRun checks the long-run rate: over a simulated minute
// of back-to-back requests the limiter admits rate·t plus the burst.
func TestRateLimiterLongRun(t *testing.T) {
	clk := &fakeClock{now: testEpoch}
	r := NewRateLimiter(Limits{BytesPerSec: 1 << 20, BytesBurst: 64 << 10, OpsPerSec: 1000, OpsBurst: 10}, clk)
	var bytes, ops uint64
	for clk.Now().Sub(testEpoch) < time.Minute {
		if w := r.Take(4096); w > 0 {
			clk.advance(w)
			continue
		}
		bytes += 4096
		ops++
	}
	if max := uint64(60<<20 + 64<<10 + 4096); bytes > max || bytes < 60<<20-4096 {
		t.Fatalf("%d bytes in a minute, want about %d (at most %d)", bytes, 60<<20, max)
	}
	if ops > 60*1000+10 {
		t.Fatalf("%d ops in a minute, more than %d", ops, 60*1000+10)
	}
}
