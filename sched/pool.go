package sched

import "time"

// Start runs the scheduler on Workers() goroutines until Stop. Each worker
// loops: Pick a vCPU, RunFor its budget, Finish; with nothing to pick it
// sleeps until a Wake, a new vCPU, a settings change or the next period.
// Precondition: the Clock follows real time (NewRealClock); the pool is
// not running.
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		panic("sched: Start on a running pool")
	}
	s.running, s.stopping = true, false
	s.wakeup = make([]chan struct{}, len(s.workers))
	for w := range s.wakeup {
		s.wakeup[w] = make(chan struct{}, 1)
	}
	s.wg.Add(len(s.workers))
	for w := range s.workers {
		go s.work(w, s.wakeup[w])
	}
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
	s.mu.Unlock()
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

func (s *Scheduler) work(w int, wakeup <-chan struct{}) {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		now := s.clock.Now()
		h, budget := s.pickLocked(w, now)
		wait := s.nextPeriod - now
		s.mu.Unlock()
		if h == nil {
			timer.Reset(wait)
			select {
			case <-wakeup:
			case <-timer.C:
			}
			timer.Stop()
			continue
		}
		used, st := h.v.RunFor(budget)
		s.Finish(w, used, st)
	}
}
