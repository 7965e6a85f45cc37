package mm

import "testing"

func TestSliceHoles(t *testing.T) {
	b := NewBudget(1 << 30)
	r, err := b.Reserve(200 * FrameSize)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	// Holes at gfn 3, 8-9, 63, 64 (a bitmap word boundary) and 199 (the last frame).
	if _, err := r.BalloonOut(FrameRange{3, 1}, FrameRange{8, 2}, FrameRange{63, 2}, FrameRange{199, 1}); err != nil {
		t.Fatal(err)
	}
	const f = FrameSize
	for _, tc := range []struct {
		gpa, n uint64
		ok     bool
	}{
		{0, 3 * f, true},
		{0, 3*f + 1, false},
		{3*f - 1, 1, true},
		{3*f - 1, 2, false},
		{3 * f, 1, false},
		{4*f - 1, 1, false},
		{4 * f, 4 * f, true},
		{4 * f, 4*f + 1, false},
		{7*f + 100, f, false},
		{10 * f, 53 * f, true},
		{10 * f, 53*f + 1, false},
		{62 * f, 4 * f, false},
		{65 * f, 134 * f, true},
		{65 * f, 134*f + 1, false},
		{199 * f, 0, true},
		{200 * f, 0, true},
		{200 * f, 1, false},
		{0, 200 * f, false},
		{3 * f, 0, true},
		{^uint64(0) - 10, 20, false},
		{5 * f, ^uint64(0), false},
	} {
		s, ok := r.Slice(tc.gpa, tc.n)
		if ok != tc.ok || (ok && uint64(len(s)) != tc.n) {
			t.Errorf("Slice(%#x, %#x) = len %d, %v; want %v", tc.gpa, tc.n, len(s), ok, tc.ok)
		}
		if ok && cap(s) != len(s) {
			t.Errorf("Slice(%#x, %#x) lets append reach beyond the range", tc.gpa, tc.n)
		}
	}
	for gfn, want := range map[uint64]bool{0: true, 3: false, 8: false, 9: false, 10: true, 63: false, 64: false,
		65: true, 198: true, 199: false, 200: false, ^uint64(0): false} {
		h, ok := r.Translate(gfn)
		if ok != want || r.Populated(gfn) != want {
			t.Errorf("Translate(%d) = %v; want %v", gfn, ok, want)
		}
		if ok && h != r.base+HFN(gfn) {
			t.Errorf("Translate(%d) = %#x; want %#x", gfn, h, r.base+HFN(gfn))
		}
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkP2M measures the translation path every hypercall pointer and
// engine refill takes.
func BenchmarkP2M(b *testing.B) {
	budget := NewBudget(1 << 30)
	r, err := budget.Reserve(64 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Release()
	if _, err := r.BalloonOut(FrameRange{First: 1000, Count: 1}); err != nil {
		b.Fatal(err)
	}
	const frames = 64 << 20 / FrameSize
	b.Run("Translate", func(b *testing.B) {
		var sink HFN
		for i := 0; b.Loop(); i++ {
			h, _ := r.Translate(uint64(i*7919) % frames)
			sink += h
		}
		_ = sink
	})
	b.Run("Slice8", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, ok := r.Slice((2000+uint64(i*7919)%(frames-3000))*FrameSize+8, 8); !ok {
				b.Fatal("Slice failed")
			}
		}
	})
	b.Run("Slice4K", func(b *testing.B) { // spans two frames
		for i := 0; b.Loop(); i++ {
			if _, ok := r.Slice((2000+uint64(i*7919)%(frames-3000))*FrameSize+100, FrameSize); !ok {
				b.Fatal("Slice failed")
			}
		}
	})
	b.Run("Slice1M", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, ok := r.Slice(uint64(2000+i%1000)*FrameSize, 1<<20); !ok {
				b.Fatal("Slice failed")
			}
		}
	})
}
