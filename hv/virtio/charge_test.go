package virtio

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestChargeReportsDeviceCPU: with Options.Charge the device goroutine
// reports the CPU time of its passes. Many 64 KiB rng requests (crypto/rand
// fills) must add up to some CPU time, never more than the wall time they
// took, and a device without the hook must run the same requests.
func TestChargeReportsDeviceCPU(t *testing.T) {
	var total atomic.Int64
	var calls atomic.Int64
	r := newRig(t, Rng{}, allRing, 16, Options{Charge: func(d time.Duration) {
		if d < 0 {
			t.Errorf("negative charge %v", d)
		}
		total.Add(int64(d))
		calls.Add(1)
	}})
	start := time.Now()
	const n = 40
	for range n {
		if got, _ := r.do(nil, []uint32{64 << 10}); got != 64<<10 {
			t.Fatalf("used len %d", got)
		}
	}
	wall := time.Since(start)
	r.dev.SetStatus(0) // the goroutine's last charge is in
	t.Logf("%d requests of 64 KiB: charged %v in %d calls over %v wall", n, time.Duration(total.Load()), calls.Load(), wall)
	if calls.Load() < 1 || total.Load() <= 0 {
		t.Fatalf("charged %v in %d calls, want the device goroutine's CPU time", time.Duration(total.Load()), calls.Load())
	}
	if time.Duration(total.Load()) > wall {
		t.Fatalf("charged %v, more than the %v wall time", time.Duration(total.Load()), wall)
	}

	plain := newRig(t, Rng{}, allRing, 16, Options{})
	if got, _ := plain.do(nil, []uint32{64}); got != 64 {
		t.Fatalf("without Charge: used len %d", got)
	}
}
