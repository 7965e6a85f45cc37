package sched

import (
	"fmt"
	"sort"
	"time"
)

// Sim drives a Scheduler deterministically on a FakeClock, without
// goroutines: a discrete-event simulation in which each vCPU's RunFor
// returns at once and says how much of its budget it used; the Sim then
// advances the clock to the end of the slice. A Kick (tickle) of a worker
// cuts its slice short at the current time with state Ready.
type Sim struct {
	S     *Scheduler
	Clock *FakeClock

	slices []simSlice
	events []simEvent
	seq    int
}

type simSlice struct {
	busy  bool
	start time.Duration
	end   time.Duration
	used  time.Duration
	st    State
}

type simEvent struct {
	at  time.Duration
	seq int
	f   func()
}

// NewSim returns a simulation of a Scheduler made from cfg with a new
// FakeClock (cfg.Clock is ignored).
func NewSim(cfg Config) *Sim {
	m := &Sim{Clock: NewFakeClock()}
	cfg.Clock = m.Clock
	m.S = New(cfg)
	m.slices = make([]simSlice, m.S.Workers())
	m.S.kick = m.preempt
	return m
}

// Now returns the simulated time.
func (m *Sim) Now() time.Duration { return m.Clock.Now() }

// At schedules f (for example a Handle.Wake) to run at simulated time t.
func (m *Sim) At(t time.Duration, f func()) {
	m.seq++
	m.events = append(m.events, simEvent{at: t, seq: m.seq, f: f})
	sort.Slice(m.events, func(i, j int) bool {
		a, b := m.events[i], m.events[j]
		return a.at < b.at || a.at == b.at && a.seq < b.seq
	})
}

// preempt is the Sim's kick: worker w's slice ends now.
// Precondition: s.mu held (called from tickleLocked).
func (m *Sim) preempt(w int) {
	sl := &m.slices[w]
	now := m.Clock.Now()
	if !sl.busy || sl.end <= now {
		return
	}
	sl.end = now
	sl.used = min(sl.used, now-sl.start)
	sl.st = Ready
}

// RunUntil runs the simulation up to time t. At each instant it ends the
// slices due, runs the events due, then gives every idle worker a vCPU.
// Precondition: a fake vCPU's RunFor reports used > 0 or a state other
// than Ready (else simulated time could not advance).
func (m *Sim) RunUntil(t time.Duration) {
	for {
		now := m.Clock.Now()
		for w := range m.slices {
			if sl := &m.slices[w]; sl.busy && sl.end <= now {
				sl.busy = false
				m.S.Finish(w, sl.used, sl.st)
			}
		}
		for len(m.events) > 0 && m.events[0].at <= now {
			e := m.events[0]
			m.events = m.events[1:]
			e.f()
		}
		idle := false
		for w := range m.slices {
			sl := &m.slices[w]
			if sl.busy {
				continue
			}
			h, budget := m.S.Pick(w)
			if h == nil {
				idle = true
				continue
			}
			used, st := h.v.RunFor(budget)
			used = min(max(used, 0), budget)
			if used == 0 && st == Ready {
				panic(fmt.Sprintf("sched: Sim: vCPU %s/%d made no progress", h.vm.name, h.id))
			}
			*sl = simSlice{busy: true, start: now, end: now + used, used: used, st: st}
		}
		next := t
		for _, sl := range m.slices {
			if sl.busy {
				next = min(next, sl.end)
			}
		}
		if len(m.events) > 0 {
			next = min(next, m.events[0].at)
		}
		if idle {
			next = min(next, m.S.NextPeriod())
		}
		if now >= t {
			return
		}
		m.Clock.Set(next)
	}
}
