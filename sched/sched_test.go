package sched

import (
	"sync/atomic"
	"testing"
)

type fake struct {
	slices  atomic.Int64
	stopAt  int64
	kicked  atomic.Int32
	budgets atomic.Uint64
}

func (f *fake) RunSlice(b uint64) bool {
	f.budgets.Store(b)
	return f.slices.Add(1) >= f.stopAt
}
func (f *fake) Kick() { f.kicked.Add(1) }

func TestGroupRunsUntilStopped(t *testing.T) {
	g := NewGroup()
	g.Slice = 1234
	f := &fake{stopAt: 10}
	g.Start(f)
	g.Wait()
	if f.slices.Load() != 10 || f.budgets.Load() != 1234 {
		t.Fatalf("slices %d budget %d", f.slices.Load(), f.budgets.Load())
	}
}

func TestGroupStop(t *testing.T) {
	g := NewGroup()
	f := &fake{stopAt: 1 << 62}
	g.Start(f)
	g.Stop()
	if f.kicked.Load() == 0 {
		t.Fatal("Stop did not kick")
	}
	n := f.slices.Load()
	if f.slices.Load() != n {
		t.Fatal("still running after Stop")
	}
}
