package sched

import (
	"sync"
)

// Runnable is a vCPU as the scheduler sees it.
type Runnable interface {
	// RunSlice runs the vCPU for at most budget guest instructions (or until
	// it blocks) and reports whether it has stopped for good.
	RunSlice(budget uint64) (stopped bool)
	// Kick makes a running slice return soon.
	Kick()
}

// DefaultSlice is the instruction budget of one slice (~1-10 ms on the
// interpreter).
const DefaultSlice = 1 << 20

// Group is the set of vCPUs of one VM.
type Group struct {
	Slice uint64
	wg    sync.WaitGroup
	mu    sync.Mutex
	stop  bool // mu protects stop and members
	mem   []Runnable
}

// NewGroup returns a group with the default slice.
func NewGroup() *Group { return &Group{Slice: DefaultSlice} }

// Start runs r until it stops or the group is stopped.
func (g *Group) Start(r Runnable) {
	g.mu.Lock()
	g.mem = append(g.mem, r)
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for !g.stopped() {
			if r.RunSlice(g.Slice) {
				return
			}
		}
	}()
}

func (g *Group) stopped() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stop
}

// Stop asks every member to stop and waits until none is running.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stop = true
	mem := append([]Runnable(nil), g.mem...)
	g.mu.Unlock()
	for _, r := range mem {
		r.Kick()
	}
	g.wg.Wait()
}

// Wait waits until every member has stopped by itself or Stop was called.
func (g *Group) Wait() { g.wg.Wait() }
