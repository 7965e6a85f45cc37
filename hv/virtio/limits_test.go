package virtio

import (
	"testing"
	"time"
)

// TestSetLimits: changing limits at run time keeps a drained bucket
// drained (no fresh burst), applies the new rate at once, and a limiter
// going from unlimited to limited starts full.
func TestSetLimits(t *testing.T) {
	clk := &fakeClock{now: testEpoch}
	r := NewRateLimiter(Limits{OpsPerSec: 10, OpsBurst: 2}, clk)
	for i := range 2 {
		if w := r.Take(1); w != 0 {
			t.Fatalf("take %d from the burst waits %v", i, w)
		}
	}
	r.SetLimits(Limits{OpsPerSec: 100, OpsBurst: 50})
	if got := r.Limits(); got.OpsPerSec != 100 || got.OpsBurst != 50 {
		t.Fatalf("Limits %+v after SetLimits", got)
	}
	// The bucket was empty: one op at 100/s is 10 ms away, not a burst of 50.
	if w := r.Take(1); w != 10*time.Millisecond {
		t.Fatalf("after raising the limit: wait %v, want 10ms (no fresh burst)", w)
	}
	clk.advance(10 * time.Millisecond)
	if w := r.Take(1); w != 0 {
		t.Fatalf("after 10 ms: wait %v", w)
	}
	// Lowering the burst cuts what is held.
	clk.advance(time.Second) // refills to 50
	r.SetLimits(Limits{OpsPerSec: 1, OpsBurst: 1})
	if w := r.Take(1); w != 0 {
		t.Fatal("one op within the new burst of 1 waits")
	}
	if w := r.Take(1); w != time.Second {
		t.Fatalf("second op at 1/s: wait %v, want 1s", w)
	}
	// Unlimited, then limited: a full bucket of the new burst.
	r.SetLimits(Limits{})
	for range 1000 {
		if w := r.Take(1 << 20); w != 0 {
			t.Fatal("an unlimited limiter waits")
		}
	}
	r.SetLimits(Limits{BytesPerSec: 1 << 20, BytesBurst: 1 << 20})
	if w := r.Take(1 << 20); w != 0 {
		t.Fatal("a limiter newly limited does not start with a full bucket")
	}
	if w := r.Take(1); w == 0 {
		t.Fatal("the bucket did not drain")
	}
}

// TestResetKeepsBuckets: a guest cannot get a fresh burst by resetting its
// device; and a device's limits change while it runs.
func TestResetKeepsBuckets(t *testing.T) {
	clk := &fakeClock{now: testEpoch}
	path := newImage(t)
	b, err := OpenBlock(path, BlockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := newFakeMem(rigRAM)
	sig := newSignals()
	dev := NewDevice(b, m, sig, Options{Limits: Limits{OpsPerSec: 10, OpsBurst: 2}, Clock: clk})
	var slept []time.Duration
	dev.sleep = func(d time.Duration, stop <-chan struct{}) bool {
		slept = append(slept, d)
		clk.advance(d)
		return true
	}
	r := &rig{t: t, mem: m, dev: dev, sig: sig}
	r.bringUp(allRing, 16)
	defer dev.SetStatus(0)
	r.do([][]byte{blkHeader(blockReqIn, 0)}, []uint32{512, 1})
	r.do([][]byte{blkHeader(blockReqIn, 1)}, []uint32{512, 1})
	r.bringUp(allRing, 16) // a reset, then the driver again
	r.do([][]byte{blkHeader(blockReqIn, 2)}, []uint32{512, 1})
	if len(slept) != 1 || slept[0] != 100*time.Millisecond {
		t.Fatalf("after a reset the third request waited %v, want one 100 ms wait (the burst is spent)", slept)
	}
	if err := dev.SetLimits(Limits{}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r.do([][]byte{blkHeader(blockReqIn, uint64(3+i))}, []uint32{512, 1})
	}
	if len(slept) != 1 {
		t.Fatalf("unlimited at run time, yet waits %v", slept)
	}
	if l, err := dev.Limits(); err != nil || l != (Limits{}) {
		t.Fatalf("Limits %+v, %v", l, err)
	}
}
