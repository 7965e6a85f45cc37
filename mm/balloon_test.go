package mm

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestBalloon(t *testing.T) {
	b := NewBudget(1 << 20)
	r, err := b.Reserve(16 * FrameSize)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	ram := r.RAM()
	for i := range ram {
		ram[i] = 0xa5
	}
	want := func(res uint64) {
		t.Helper()
		s := r.Stats()
		if s.Resident != res*FrameSize || s.Reserved != 16*FrameSize || s.Ballooned != (16-res)*FrameSize {
			t.Fatalf("VM stats %+v; want %d resident frames", s, res)
		}
		h := b.Stats()
		if h.Resident != res*FrameSize || h.Reserved != 16*FrameSize || h.Free != 1<<20-16*FrameSize || h.VMs != 1 {
			t.Fatalf("host stats %+v; want %d resident frames", h, res)
		}
		if err := b.Check(); err != nil {
			t.Fatal(err)
		}
	}
	want(16)

	if n, err := r.BalloonOut(FrameRange{2, 3}, FrameRange{4, 2}); err != nil || n != 4 {
		t.Fatalf("BalloonOut = %d, %v; want 4 frames (overlapping ranges count once)", n, err)
	}
	want(12)
	if n, err := r.BalloonOut(FrameRange{2, 4}); err != nil || n != 0 {
		t.Fatalf("BalloonOut of frames already out = %d, %v", n, err)
	}
	if _, ok := r.Slice(2*FrameSize, 1); ok {
		t.Fatal("Slice reaches a ballooned-out frame")
	}
	// Out of range: refused as a whole.
	for _, fr := range []FrameRange{{15, 2}, {16, 1}, {^uint64(0), 2}, {1, ^uint64(0)}} {
		_, err := r.BalloonOut(FrameRange{0, 1}, fr)
		if !errors.Is(err, ErrBeyondReservation) || !strings.Contains(err.Error(), "reservation of 16 frames") {
			t.Fatalf("BalloonOut(%v): %v", fr, err)
		}
		_, err = r.BalloonIn(FrameRange{2, 1}, fr)
		if !errors.Is(err, ErrBeyondReservation) {
			t.Fatalf("BalloonIn(%v): %v", fr, err)
		}
	}
	want(12)
	if !r.Populated(0) || r.Populated(2) {
		t.Fatal("refused balloon call changed the p2m")
	}

	// A write to a ballooned-out frame through RAM (an engine bypassing
	// the p2m) is dropped on the way back in.
	ram[3*FrameSize+7] = 0x5a
	if n, err := r.BalloonIn(FrameRange{0, 16}); err != nil || n != 4 {
		t.Fatalf("BalloonIn = %d, %v; want 4", n, err)
	}
	want(16)
	s, ok := r.Slice(2*FrameSize, 4*FrameSize)
	if !ok {
		t.Fatal("Slice fails after BalloonIn")
	}
	if !bytes.Equal(s, make([]byte, 4*FrameSize)) {
		t.Fatal("ballooned-in frames are not zero")
	}
	// Frames that stayed in kept their contents.
	if ram[FrameSize] != 0xa5 || ram[6*FrameSize] != 0xa5 || ram[16*FrameSize-1] != 0xa5 {
		t.Fatal("BalloonIn changed populated frames")
	}
	if n, err := r.BalloonIn(FrameRange{0, 16}); err != nil || n != 0 {
		t.Fatalf("BalloonIn at the reservation = %d, %v", n, err)
	}

	if _, err := r.BalloonOut(FrameRange{9, 1}); err != nil {
		t.Fatalf("BalloonOut: %v", err)
	}

	if err := r.SetTarget(8*FrameSize - 1); err != nil || r.Target() != 8*FrameSize || r.Stats().Target != 8*FrameSize {
		t.Fatalf("SetTarget: %v, target %d", err, r.Target())
	}
	if err := r.SetTarget(17 * FrameSize); err == nil {
		t.Fatal("target above the reservation accepted")
	}

	r.Release()
	if _, err := r.BalloonIn(FrameRange{9, 1}); err != ErrReleased {
		t.Fatalf("BalloonIn after Release: %v", err)
	}
	if _, ok := r.Slice(0, 1); ok {
		t.Fatal("Slice after Release")
	}
	if h := b.Stats(); h != (Stats{Total: 1 << 20, Free: 1 << 20}) {
		t.Fatalf("host stats after release %+v", h)
	}
}

// TestBalloonConcurrent runs Slice readers against balloon operations on
// the same VM and Stats readers on the budget; run with -race.
func TestBalloonConcurrent(t *testing.T) {
	b := NewBudget(1 << 20)
	r, err := b.Reserve(64 * FrameSize)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if s, ok := r.Slice(i%60*FrameSize, 2*FrameSize); ok && len(s) != 2*FrameSize {
					t.Error("short slice")
				}
				_ = b.Stats()
			}
		}()
	}
	for i := uint64(0); i < 2000; i++ {
		fr := FrameRange{i % 50, i%13 + 1}
		if _, err := r.BalloonOut(fr); err != nil {
			t.Fatal(err)
		}
		if _, err := r.BalloonIn(fr); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
}
