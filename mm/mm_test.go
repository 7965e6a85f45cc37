package mm

import (
	"strings"
	"testing"
)

func TestAdmission(t *testing.T) {
	b := NewBudget(64 << 20)
	a, err := b.Reserve(40 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(40 << 20); err == nil || !strings.Contains(err.Error(), "budget is 64 MiB") {
		t.Fatalf("over-budget reservation: %v", err)
	}
	// The running VM is unaffected: its memory, its p2m and the budget's
	// accounting are as they were.
	a.RAM()[0] = 1
	if b.Reserved() != 40<<20 {
		t.Fatalf("reserved %d", b.Reserved())
	}
	if s, ok := a.Slice(40<<20-1, 1); !ok || s[0] != 0 || a.RAM()[0] != 1 {
		t.Fatal("running VM's memory changed by a refused reservation")
	}
	if s := b.Stats(); s != (Stats{Total: 64 << 20, Reserved: 40 << 20, Resident: 40 << 20, Free: 24 << 20, VMs: 1}) {
		t.Fatalf("stats after a refused reservation: %+v", s)
	}
	// Ballooning out does not free admission room: the reservation holds.
	if _, err := a.BalloonOut(FrameRange{0, 40 << 20 / FrameSize}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(40 << 20); err == nil || !strings.Contains(err.Error(), "budget is 64 MiB") {
		t.Fatalf("over-budget reservation with the first VM ballooned out: %v", err)
	}
	if _, err := b.Reserve(^uint64(0)); err == nil || !strings.Contains(err.Error(), "budget is 64 MiB") {
		t.Fatalf("huge reservation: %v", err)
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	a.Release()
	a.Release()
	if b.Reserved() != 0 {
		t.Fatalf("after release: %d", b.Reserved())
	}
	c, err := b.Reserve(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for _, v := range c.RAM()[:4096] {
		if v != 0 {
			t.Fatal("fresh reservation not zero")
		}
	}
	if _, err := b.Reserve(100); err == nil {
		t.Fatal("tiny reservation accepted")
	}
}

func TestSliceBounds(t *testing.T) {
	b := NewBudget(1 << 30)
	r, err := b.Reserve(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for _, tc := range []struct {
		gpa, n uint64
		ok     bool
	}{
		{0, 1 << 20, true}, {1<<20 - 1, 1, true}, {1 << 20, 0, true}, {1 << 20, 1, false},
		{1<<20 - 1, 2, false}, {^uint64(0), 2, false}, {5, ^uint64(0), false},
	} {
		s, ok := r.Slice(tc.gpa, tc.n)
		if ok != tc.ok || (ok && uint64(len(s)) != tc.n) {
			t.Errorf("Slice(%#x, %#x) = len %d, %v; want %v", tc.gpa, tc.n, len(s), ok, tc.ok)
		}
		if ok && cap(s) != len(s) {
			t.Errorf("Slice(%#x, %#x) lets append reach beyond the range", tc.gpa, tc.n)
		}
	}
}
