package sched

import (
	"errors"
	"runtime"
	"time"
)

// Start runs the scheduler on Workers() goroutines until Stop. Each worker
// loops: Pick a vCPU, RunFor its budget, Finish; with nothing it may pick
// it sleeps until a Wake, a new vCPU, a settings change or the next
// period.
//
// With Config.CPUs, each worker first locks its goroutine to an OS thread
// (runtime.LockOSThread, never undone) and binds that thread to its host
// CPU alone (sched_setaffinity), then reads the binding back. No vCPU runs
// until every worker is bound: if any binding fails (the CPU is offline,
// absent, or outside the process's allowed CPUs, such as its cgroup's
// cpuset), Start stops the workers and returns the errors, and the pool is
// not running. A pool never runs a worker unbound that Config.CPUs binds.
// The bound threads end with their goroutines at Stop, so that no other
// goroutine ever runs on a thread bound to one CPU; the Go runtime makes
// threads it needs meanwhile from a thread of its own, which keeps the
// process's affinity.
//
// Precondition: the Clock follows real time (NewRealClock); the pool is
// not running; Start and Stop are not called concurrently.
func (s *Scheduler) Start() error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		panic("sched: Start on a running pool")
	}
	s.running, s.stopping = true, false
	n := len(s.workers)
	s.wakeup = make([]chan struct{}, n)
	for w := range s.wakeup {
		s.wakeup[w] = make(chan struct{}, 1)
	}
	bound := make(chan error, n)
	begin := make(chan struct{})
	s.wg.Add(n)
	for w := range s.workers {
		w, cpu, wakeup := w, s.workers[w].cpu, s.wakeup[w]
		if cpu < 0 {
			go s.work(w, cpu, wakeup, bound, begin)
		} else {
			goLocked(func() { s.work(w, cpu, wakeup, bound, begin) })
		}
	}
	s.mu.Unlock()
	var errs []error
	for range n {
		if err := <-bound; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		close(begin)
		return nil
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	close(begin)
	s.wg.Wait()
	s.mu.Lock()
	s.running = false
	for w := range s.workers {
		s.workers[w].tid = 0
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Stop kicks every running vCPU and returns once no worker is running
// one. vCPUs keep their state; Start resumes them.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	s.stopping = true
	for w := range s.workers {
		if s.workers[w].cur != nil {
			s.kick(w)
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	s.running = false
	for w := range s.workers {
		s.workers[w].tid = 0
	}
	s.mu.Unlock()
}

// WorkerInfo describes one worker of the pool.
type WorkerInfo struct {
	Index int
	CPU   int // host CPU it is bound to (Config.CPUs); -1 if none
	// TID is the OS thread a bound worker runs on while the pool runs
	// (its affinity is CPU alone); 0 when the pool is stopped or the
	// worker is not bound (its goroutine then moves between threads).
	TID int
	// Wakeups counts the times the worker woke up while idle: a Wake, a
	// new vCPU, a settings change or a period.
	Wakeups uint64
}

// PoolWorkers returns the pool's workers, in index order.
func (s *Scheduler) PoolWorkers() []WorkerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WorkerInfo, len(s.workers))
	for w, wk := range s.workers {
		out[w] = WorkerInfo{Index: w, CPU: wk.cpu, TID: wk.tid, Wakeups: wk.wakeups}
	}
	return out
}

// notifyLocked wakes the pool's idle workers to pick again.
// Precondition: s.mu held.
func (s *Scheduler) notifyLocked() {
	for _, c := range s.wakeup {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// wakeLocked wakes worker w, if it sleeps, to pick again.
// Precondition: s.mu held.
func (s *Scheduler) wakeLocked(w int) {
	if w < len(s.wakeup) {
		select {
		case s.wakeup[w] <- struct{}{}:
		default:
		}
	}
}

// wakeIdleLocked wakes the idle workers other than w that may run a
// queued vCPU other than runq[picked] (the one w is about to take, if
// picked >= 0). A vCPU w may not run, or one w leaves for a higher
// priority, is thus not left queued while a worker it may use sleeps.
// It does nothing outside the pool (Sim picks for every idle worker).
// Precondition: s.mu held.
func (s *Scheduler) wakeIdleLocked(w, picked int) {
	if !s.running || len(s.runq) == 0 || len(s.runq) == 1 && picked == 0 {
		return
	}
	for o := range s.workers {
		if o == w || s.workers[o].cur != nil {
			continue
		}
		for i, h := range s.runq {
			if i != picked && !h.vm.parked() && h.vm.allowed.has(o) {
				s.wakeLocked(o)
				break
			}
		}
	}
}

// goLocked runs f on a new goroutine under runLocked.
func goLocked(f func()) { go runLocked(f) }

// runLocked runs f locked to an OS thread (never unlocked, so that the
// thread ends with f rather than serve other goroutines) that is not the
// process's main thread: the Go runtime never ends that one (a locked
// goroutine exiting there leaves it parked for good), and binding it
// would narrow what tools read as the process's affinity. On the main
// thread it starts f on another goroutine, which cannot run there while
// this one holds it, and returns once f has started.
func runLocked(f func()) {
	runtime.LockOSThread()
	if !mainThread() {
		f()
		return
	}
	moved := make(chan struct{})
	goLocked(func() {
		close(moved)
		f()
	})
	<-moved
	runtime.UnlockOSThread()
}

// work is worker w's goroutine; cpu is the host CPU to bind its thread
// to, or -1. It reports the binding on bound and waits for begin.
// Precondition: with cpu >= 0, it runs under runLocked.
func (s *Scheduler) work(w, cpu int, wakeup <-chan struct{}, bound chan<- error, begin <-chan struct{}) {
	defer s.wg.Done()
	if cpu >= 0 {
		tid, err := bindThread(w, cpu)
		s.mu.Lock()
		s.workers[w].tid = tid
		s.mu.Unlock()
		bound <- err
		if err != nil {
			return
		}
	} else {
		bound <- nil
	}
	<-begin
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	woke := false
	for {
		s.mu.Lock()
		if woke {
			s.workers[w].wakeups++
		}
		if s.stopping {
			s.mu.Unlock()
			return
		}
		now := s.clock.Now()
		h, budget := s.pickLocked(w, now)
		wait := s.nextPeriod - now
		s.mu.Unlock()
		woke = false
		if h == nil {
			timer.Reset(wait)
			select {
			case <-wakeup:
			case <-timer.C:
			}
			timer.Stop()
			woke = true
			continue
		}
		used, st := h.v.RunFor(budget)
		s.Finish(w, used, st)
	}
}
