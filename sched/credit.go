package sched

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// State is what a vCPU reports at the end of RunFor.
type State int

const (
	// Ready: the vCPU wants to run more (its slice ended or it was kicked).
	Ready State = iota
	// Blocked: the vCPU halted; it consumes nothing until Handle.Wake.
	Blocked
	// Stopped: the vCPU is done for good and is never run again.
	Stopped
)

func (st State) String() string {
	switch st {
	case Ready:
		return "ready"
	case Blocked:
		return "blocked"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("State(%d)", int(st))
}

// VCPU is a virtual CPU as the credit scheduler sees it. An engine-backed
// implementation turns d into its budget (instructions or a deadline) and
// maps the engine's budget exit to Ready, a halt with nothing pending to
// Blocked and the end of the VM to Stopped.
type VCPU interface {
	// RunFor runs the vCPU for at most about d of CPU time and reports the
	// CPU time it used and the state it ended in. It returns early, with
	// Ready, when Kick is called; a vCPU that halts returns Blocked at once
	// instead of waiting for its event.
	RunFor(d time.Duration) (used time.Duration, st State)
	// Kick makes a RunFor in progress, or the next one if none is, return
	// soon. Kick may be called from any goroutine, with the scheduler's lock
	// held: it must not call into the Scheduler.
	Kick()
}

// Defaults (Xen's credit scheduler uses the same weight, slice and period).
const (
	DefaultWeight    = 256
	MaxWeight        = 65535
	DefaultTimeSlice = 10 * time.Millisecond
	DefaultPeriod    = 30 * time.Millisecond
)

// Config sets up a Scheduler. Zero fields take their defaults.
type Config struct {
	Workers int // host workers; default len(CPUs) if set, else runtime.NumCPU()
	// CPUs, when set, binds the pool to these host CPUs: one worker per
	// CPU, in this order, whose thread Start binds to that CPU alone.
	// Workers, if also set, must equal len(CPUs). Unset, the workers are
	// not bound and VM.SetCPUs is refused.
	CPUs   []int
	Slice  time.Duration // longest run of one vCPU; default DefaultTimeSlice
	Period time.Duration // accounting period; default DefaultPeriod
	Clock  Clock         // default NewRealClock()
}

// Validate reports what is wrong with cfg, if anything: CPUs must list
// distinct CPU numbers from 0 to 1023 (a CPU mask's size), and Workers, if set with CPUs, must equal
// len(CPUs). It does not look at the host: NewChecked and Start do.
func (cfg Config) Validate() error {
	if cfg.CPUs == nil {
		return nil
	}
	if len(cfg.CPUs) == 0 {
		return fmt.Errorf("sched: Config.CPUs is empty: list the host CPUs of the pool, or leave it nil for unbound workers")
	}
	if cfg.Workers != 0 && cfg.Workers != len(cfg.CPUs) {
		return fmt.Errorf("sched: Config.Workers is %d but Config.CPUs lists %d CPUs (%s): a bound pool has one worker per CPU; leave Workers 0", cfg.Workers, len(cfg.CPUs), FormatCPUs(cfg.CPUs))
	}
	for i, c := range cfg.CPUs {
		if c < 0 || c >= cpuSetSize {
			return fmt.Errorf("sched: Config.CPUs[%d] is %d: host CPUs are numbered 0 to %d", i, c, cpuSetSize-1)
		}
		if j := slices.Index(cfg.CPUs, c); j < i {
			return fmt.Errorf("sched: Config.CPUs lists CPU %d twice (at %d and %d): one worker per CPU", c, j, i)
		}
	}
	return nil
}

// prio is a vCPU's scheduling priority; higher runs first.
type prio int

const (
	prioOver  prio = iota // credit used up: runs only when nothing else wants to
	prioUnder             // credit left
	prioBoost             // just woken: runs at the next slice boundary or sooner
)

// hstate is where a Handle is.
type hstate int

const (
	hQueued  hstate = iota // ready, waiting for a worker (the time is steal)
	hRunning               // on a worker
	hBlocked               // halted, waiting for Wake
	hStopped               // gone
	hPaused                // its VM is paused (VM.Pause): off the run queue whatever it was doing
)

// Scheduler is a credit scheduler: it decides which vCPU each host worker
// runs next. Its core (Pick, Finish, Handle.Wake) is a deterministic state
// machine driven by its Clock; Start adds a pool of real worker goroutines
// and Sim drives it step by step with a FakeClock.
type Scheduler struct {
	clock   Clock
	nworker int
	wg      sync.WaitGroup // counts the pool's workers

	mu         sync.Mutex
	slice      time.Duration // mu protects everything below
	period     time.Duration
	nextPeriod time.Duration
	workers    []worker
	vms        []*VM
	runq       []*Handle // hQueued handles in FIFO order
	kick       func(w int)
	acts       []act // scratch for accountLocked

	// cpus is the host CPU of each worker (Config.CPUs), nil when the
	// workers are not bound; fixed at New. all holds every worker,
	// unreserved those no VM's exclusive cpuset holds; groups are the
	// capacity constraints of accountLocked (recomputeMasksLocked).
	cpus       []int
	all        wset
	unreserved wset
	groups     []group
	gacc       []gacc // scratch for accountLocked
	member     []bool // scratch for accountLocked: acts x groups

	// worker pool (pool.go)
	running  bool
	stopping bool
	wakeup   []chan struct{}
}

type worker struct {
	cur    *Handle // nil when idle
	start  time.Duration
	kicked bool // a tickle is in flight

	cpu     int    // host CPU it is bound to, -1 if none; fixed at New
	tid     int    // its OS thread while the pool runs, if bound; else 0
	wakeups uint64 // times the pool's goroutine woke up idle
}

// VM is a domain: the unit of weight, cap and CPU accounting.
type VM struct {
	s      *Scheduler
	name   string
	weight int           // s.mu protects the fields below
	cap    int           // percent of one host CPU; 0 = none
	capBal time.Duration // CPU time left under the cap in this period
	vcpus  []*Handle
	// charged is host CPU time spent for the VM outside its vCPUs
	// (device backends), from Charge.
	charged time.Duration
	// paused: Pause was called and Resume not since. quiet is closed
	// once no vCPU of the paused VM is on a worker (or on Resume);
	// quietClosed says whether it is.
	paused      bool
	quiet       chan struct{}
	quietClosed bool
	// cpus is the VM's cpuset (SetCPUs), sorted, nil if none; exclusive
	// reserves it. allowed is the workers its vCPUs may run on: those of
	// cpus, or the unreserved ones without a cpuset (recomputeMasksLocked).
	cpus      []int
	exclusive bool
	allowed   wset
	// periodCharged is the part of charged since the last accounting:
	// host CPU beyond the workers', handed out with theirs.
	periodCharged time.Duration
}

// Handle is one vCPU registered with a Scheduler.
type Handle struct {
	vm *VM
	v  VCPU
	id int // index in vm.vcpus

	state       hstate // vm.s.mu protects the fields below
	since       time.Duration
	added       time.Duration
	credit      time.Duration
	boost       bool
	wakePending bool // Wake arrived while running
	// resumeReady: a paused vCPU is runnable at Resume (it was queued or
	// running when its VM paused, or a Wake came while paused);
	// wokePaused: that Wake came while paused.
	resumeReady bool
	wokePaused  bool
	periodRun   time.Duration
	run, steal  time.Duration
	runOn       []time.Duration // run per worker
	on          int             // the worker it runs on, while hRunning
	blocked     time.Duration
	paused      time.Duration // time in hPaused
	slices      uint64
	wakes       uint64
	waking      bool
	wokeAt      time.Duration
	maxWake     time.Duration
}

// New returns a Scheduler with no VMs; see Config for the defaults.
// Precondition: cfg.Validate() == nil (New panics otherwise; NewChecked
// returns the error instead and checks the host's CPUs as well).
func New(cfg Config) *Scheduler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.CPUs != nil {
		cfg.Workers = len(cfg.CPUs)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Slice <= 0 {
		cfg.Slice = DefaultTimeSlice
	}
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.Clock == nil {
		cfg.Clock = NewRealClock()
	}
	s := &Scheduler{
		clock:   cfg.Clock,
		nworker: cfg.Workers,
		slice:   cfg.Slice,
		period:  cfg.Period,
		workers: make([]worker, cfg.Workers),
		cpus:    slices.Clone(cfg.CPUs),
		all:     newWset(cfg.Workers),
	}
	for w := range s.workers {
		s.workers[w].cpu = -1
		if s.cpus != nil {
			s.workers[w].cpu = s.cpus[w]
		}
		s.all.add(w)
	}
	s.recomputeMasksLocked()
	s.nextPeriod = s.clock.Now() + s.period
	s.kick = func(w int) { s.workers[w].cur.v.Kick() }
	return s
}

// NewChecked is New for a Config from an operator: it returns cfg's
// Validate error, and, when cfg.CPUs is set, an error naming any CPU that
// is not in the process's allowed CPUs (sched_getaffinity: online, and in
// its cgroup's cpuset), instead of a Scheduler whose Start would fail.
func NewChecked(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CPUs != nil {
		if err := checkHostCPUs(cfg.CPUs); err != nil {
			return nil, err
		}
	}
	return New(cfg), nil
}

// Workers returns the number of host workers.
func (s *Scheduler) Workers() int { return s.nworker }

// CPUs returns the host CPU of each worker, in worker order (Config.CPUs),
// or nil if the workers are not bound.
func (s *Scheduler) CPUs() []int { return slices.Clone(s.cpus) }

// SetSlice changes the time slice; running slices keep their budget.
func (s *Scheduler) SetSlice(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("sched: slice %v: must be positive", d)
	}
	s.mu.Lock()
	s.slice = d
	s.mu.Unlock()
	return nil
}

// NewVM adds a VM with DefaultWeight and no cap.
func (s *Scheduler) NewVM(name string) *VM {
	s.mu.Lock()
	defer s.mu.Unlock()
	vm := &VM{s: s, name: name, weight: DefaultWeight, allowed: s.unreserved}
	s.vms = append(s.vms, vm)
	return vm
}

// Name returns the name given to NewVM.
func (vm *VM) Name() string { return vm.name }

// SetWeight sets the VM's share under contention, relative to the other
// VMs' weights (1..MaxWeight). It takes effect at the next period.
func (vm *VM) SetWeight(w int) error {
	if w < 1 || w > MaxWeight {
		return fmt.Errorf("sched: weight %d for VM %q: must be 1..%d", w, vm.name, MaxWeight)
	}
	vm.s.mu.Lock()
	vm.weight = w
	vm.s.mu.Unlock()
	return nil
}

// SetCap sets the VM's ceiling in percent of one host CPU (0 = none,
// 150 = one and a half CPUs). A lower cap binds at once, a higher one at
// the next period.
func (vm *VM) SetCap(pct int) error {
	if pct < 0 {
		return fmt.Errorf("sched: cap %d%% for VM %q: must be >= 0 (0 = no cap)", pct, vm.name)
	}
	s := vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.capLimit(pct)
	switch {
	case pct == 0:
		vm.capBal = 0
	case vm.cap == 0 || vm.capBal > lim:
		vm.capBal = lim
	}
	vm.cap = pct
	s.notifyLocked()
	return nil
}

// Charge accounts d of host CPU time spent on the VM's behalf outside its
// vCPUs (its device backends' goroutines) as if its vCPUs had run it: d
// comes out of the VM's cap budget for this period and out of its vCPUs'
// credit, split evenly, so that neither a cap nor a weight can be
// exceeded by making the host work for the guest. It may be called from
// any goroutine and never blocks on a vCPU.
func (vm *VM) Charge(d time.Duration) {
	if d <= 0 {
		return
	}
	s := vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	vm.charged += d
	vm.periodCharged += d
	if vm.cap > 0 {
		vm.capBal -= d
	}
	if n := len(vm.vcpus); n > 0 {
		bound := s.period + s.slice
		per := d / time.Duration(n)
		for _, h := range vm.vcpus {
			h.credit = max(h.credit-per, -bound)
			h.periodRun += per
		}
	}
}

// Weight returns the current weight.
func (vm *VM) Weight() int {
	vm.s.mu.Lock()
	defer vm.s.mu.Unlock()
	return vm.weight
}

// Cap returns the cap in percent of one host CPU (0 = none).
func (vm *VM) Cap() int {
	vm.s.mu.Lock()
	defer vm.s.mu.Unlock()
	return vm.cap
}

// capLimit is the CPU time a cap of pct allows per period.
// Precondition: s.mu held.
func (s *Scheduler) capLimit(pct int) time.Duration {
	return s.period * time.Duration(pct) / 100
}

// parked reports whether the VM has used up its cap for this period.
// Precondition: s.mu held.
func (vm *VM) parked() bool { return vm.cap > 0 && vm.capBal <= 0 }

// AddVCPU registers v as the VM's next vCPU, ready to run (at Resume, if
// the VM is paused).
func (vm *VM) AddVCPU(v VCPU) *Handle {
	s := vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	h := &Handle{vm: vm, v: v, id: len(vm.vcpus), state: hQueued, since: now, added: now,
		runOn: make([]time.Duration, len(s.workers)), on: -1}
	vm.vcpus = append(vm.vcpus, h)
	if vm.paused {
		h.state, h.resumeReady = hPaused, true
		return h
	}
	s.runq = append(s.runq, h)
	s.notifyLocked()
	return h
}

// Pause takes the VM's vCPUs off the run queue, whatever their state: a
// queued vCPU leaves the queue, a running one is kicked and leaves its
// worker when its RunFor returns, a blocked one stays blocked. Until
// Resume they are never picked, use no CPU and accumulate neither steal
// nor credit (the time counts as Paused in VCPUStats); a Wake meanwhile
// is remembered and makes the vCPU runnable at Resume. A vCPU whose
// RunFor ends Stopped stops as usual.
//
// The channel returned is closed once no vCPU of the VM is on a worker:
// at once if none is, else when the last running one's Finish comes (or
// at Resume, whichever is first). Pausing a paused VM returns the same
// channel.
func (vm *VM) Pause() <-chan struct{} {
	s := vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.tickLocked(now)
	if vm.paused {
		return vm.quiet
	}
	vm.paused, vm.quiet, vm.quietClosed = true, make(chan struct{}), false
	for _, h := range vm.vcpus {
		switch h.state {
		case hQueued:
			s.dequeueLocked(h)
			h.resumeReady = true
			h.enter(hPaused, now)
		case hBlocked:
			h.resumeReady = false
			h.enter(hPaused, now)
		case hRunning:
			for w := range s.workers {
				if wk := &s.workers[w]; wk.cur == h && !wk.kicked {
					wk.kicked = true
					s.kick(w)
				}
			}
		}
	}
	vm.checkQuietLocked()
	return vm.quiet
}

// Resume ends a Pause: every paused vCPU that was runnable, or was woken
// while paused, is queued again (a woken one with BOOST, as a Wake gives),
// the others are blocked again. Resuming a VM that is not paused does
// nothing.
func (vm *VM) Resume() {
	s := vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.tickLocked(now)
	if !vm.paused {
		return
	}
	vm.paused = false
	if !vm.quietClosed {
		vm.quietClosed = true
		close(vm.quiet)
	}
	for _, h := range vm.vcpus {
		if h.state != hPaused {
			continue
		}
		if !h.resumeReady {
			h.enter(hBlocked, now)
			continue
		}
		h.enter(hQueued, now)
		if h.wokePaused {
			h.boost = s.mayBoost(h)
			h.waking = true
		}
		if h.waking {
			h.wokeAt = now // wake latency does not count the pause
		}
		h.resumeReady, h.wokePaused = false, false
		s.runq = append(s.runq, h)
		s.tickleLocked(h)
	}
	s.notifyLocked()
}

// Paused reports whether the VM is paused.
func (vm *VM) Paused() bool {
	vm.s.mu.Lock()
	defer vm.s.mu.Unlock()
	return vm.paused
}

// checkQuietLocked closes a paused VM's quiet channel once none of its
// vCPUs is on a worker. Precondition: s.mu held.
func (vm *VM) checkQuietLocked() {
	if !vm.paused || vm.quietClosed {
		return
	}
	for _, h := range vm.vcpus {
		if h.state == hRunning {
			return
		}
	}
	vm.quietClosed = true
	close(vm.quiet)
}

// dequeueLocked removes the queued h from the run queue.
// Precondition: s.mu held; h.state == hQueued.
func (s *Scheduler) dequeueLocked(h *Handle) {
	for i, q := range s.runq {
		if q == h {
			s.runq = append(s.runq[:i], s.runq[i+1:]...)
			return
		}
	}
	panic("sched: a queued vCPU is not on the run queue")
}

// prio returns h's priority. Precondition: s.mu held.
func (h *Handle) prio() prio {
	switch {
	case h.boost:
		return prioBoost
	case h.credit > 0:
		return prioUnder
	}
	return prioOver
}

// enter moves h to state st at now, closing the interval of its old state.
// Precondition: s.mu held; h is not running.
func (h *Handle) enter(st hstate, now time.Duration) {
	d := now - h.since
	switch h.state {
	case hQueued:
		h.steal += d
	case hBlocked:
		h.blocked += d
	case hPaused:
		h.paused += d
	case hRunning:
		panic("sched: enter from running")
	}
	h.state, h.since = st, now
}

// Wake makes a Blocked vCPU runnable with BOOST priority (unless it is
// more than a slice in debt, see mayBoost), so that it runs within one
// slice even while other VMs spin (unless its VM is parked by its cap);
// if no worker is idle it
// preempts (kicks) a worker running a lower-priority vCPU. A Wake that
// arrives while the vCPU runs is remembered: if that run ends Blocked the
// vCPU is requeued at once. Waking a ready or stopped vCPU does nothing.
// A Wake of a paused vCPU is remembered: it is runnable at Resume.
// Wake may be called from any goroutine (an event or a timer).
func (h *Handle) Wake() {
	s := h.vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.tickLocked(now)
	switch h.state {
	case hBlocked:
		h.waking, h.wokeAt = true, now
		h.wakes++
		h.boost = s.mayBoost(h)
		h.enter(hQueued, now)
		s.runq = append(s.runq, h)
		s.tickleLocked(h)
	case hRunning:
		h.wakePending = true
	case hPaused:
		if !h.resumeReady {
			h.resumeReady, h.wokePaused = true, true
			h.wakes++
		}
	}
}

// mayBoost reports whether a vCPU waking now gets BOOST: unless it is
// more than a slice over its credit. A VM that wakes itself constantly to
// run with BOOST thus drops to OVER within a period and gets no more than
// its weight. Precondition: s.mu held.
func (s *Scheduler) mayBoost(h *Handle) bool { return h.credit > -s.slice }

// tickleLocked gets a worker h may run on to look at the newly queued h:
// the idle ones if any, else one running a lower-priority vCPU, which is
// kicked. Workers h may not run on are never considered: an idle one
// cannot run h, and kicking one would not make room for it.
// Precondition: s.mu held.
func (s *Scheduler) tickleLocked(h *Handle) {
	if h.vm.parked() {
		return
	}
	victim, vp := -1, h.prio()
	idle := false
	for w := range s.workers {
		if !h.vm.allowed.has(w) {
			continue
		}
		wk := &s.workers[w]
		if wk.cur == nil {
			s.wakeLocked(w)
			idle = true
			continue
		}
		if wk.kicked {
			continue
		}
		if p := wk.cur.prio(); p < vp {
			victim, vp = w, p
		}
	}
	if !idle && victim >= 0 {
		s.workers[victim].kicked = true
		s.kick(victim)
	}
}

// Pick chooses the vCPU worker w runs next and the budget to run it for:
// the queued vCPU of the highest priority (BOOST, UNDER, OVER) whose VM is
// not parked by its cap and may run on w (its cpuset, or the unreserved
// workers), first come first served within a priority. It
// returns nil when there is none; the worker should then wait for a Wake,
// a new vCPU, a settings change or NextPeriod. Precondition: worker w is
// idle (it has no slice without a Finish).
func (s *Scheduler) Pick(w int) (h *Handle, budget time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pickLocked(w, s.clock.Now())
}

func (s *Scheduler) pickLocked(w int, now time.Duration) (*Handle, time.Duration) {
	s.tickLocked(now)
	wk := &s.workers[w]
	if wk.cur != nil {
		panic(fmt.Sprintf("sched: Pick(%d) on a busy worker", w))
	}
	best, bp := -1, prioOver
	for i, h := range s.runq {
		if h.vm.parked() || !h.vm.allowed.has(w) {
			continue
		}
		if p := h.prio(); best < 0 || p > bp {
			best, bp = i, p
		}
	}
	s.wakeIdleLocked(w, best)
	if best < 0 {
		return nil, 0
	}
	h := s.runq[best]
	s.runq = append(s.runq[:best], s.runq[best+1:]...)
	h.enter(hRunning, now)
	h.on = w
	wk.cur, wk.start, wk.kicked = h, now, false
	if h.waking {
		h.waking = false
		if lat := now - h.wokeAt; lat > h.maxWake {
			h.maxWake = lat
		}
	}
	budget := s.slice
	if vm := h.vm; vm.cap > 0 && vm.capBal < budget {
		budget = vm.capBal
	}
	return h, budget
}

// Finish ends worker w's slice: the vCPU used that much CPU time (clamped
// to the wall time since Pick; the rest of that time counts as steal) and
// ended in state st. Precondition: Pick(w) returned a vCPU since the last
// Finish(w).
func (s *Scheduler) Finish(w int, used time.Duration, st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishLocked(w, s.clock.Now(), used, st)
}

func (s *Scheduler) finishLocked(w int, now, used time.Duration, st State) {
	wk := &s.workers[w]
	h := wk.cur
	if h == nil {
		panic(fmt.Sprintf("sched: Finish(%d) on an idle worker", w))
	}
	wall := now - wk.start
	used = min(max(used, 0), wall)
	h.run += used
	h.runOn[w] += used
	h.on = -1
	h.steal += wall - used
	h.slices++
	h.credit -= used
	h.periodRun += used
	h.boost = false
	vm := h.vm
	if vm.cap > 0 {
		vm.capBal -= used
	}
	wk.cur, wk.start, wk.kicked = nil, 0, false
	h.since = now
	if st == Blocked && h.wakePending {
		st = Ready
		h.boost = s.mayBoost(h)
		h.waking, h.wokeAt = true, now
		h.wakes++
	}
	h.wakePending = false
	switch {
	case st == Stopped:
		h.state = hStopped
	case vm.paused:
		// Off the run queue until Resume, runnable then if it was now.
		h.state, h.resumeReady = hPaused, st != Blocked
		h.wokePaused = false
	case st == Blocked:
		h.state = hBlocked
	default:
		h.state = hQueued
		s.runq = append(s.runq, h)
		if h.boost {
			s.tickleLocked(h)
		}
	}
	vm.checkQuietLocked()
	s.tickLocked(now)
}

// NextPeriod returns the clock time of the next accounting, when parked
// VMs get new cap budget.
func (s *Scheduler) NextPeriod() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextPeriod
}

// tickLocked runs the accounting for every period boundary up to now. A
// long idle gap counts as at most two periods: credit and cap balance
// saturate after one anyway. Precondition: s.mu held.
func (s *Scheduler) tickLocked(now time.Duration) {
	if now < s.nextPeriod {
		return
	}
	n := (now-s.nextPeriod)/s.period + 1
	for i := time.Duration(0); i < min(n, 2); i++ {
		s.accountLocked()
	}
	s.nextPeriod += n * s.period
	s.notifyLocked()
}

// accountLocked hands out one period of credit. The host's capacity is
// split among the active VMs (those with a vCPU that is runnable or ran
// in the period) in proportion to weight, water-filled so that no VM is
// given more than its active vCPUs, its cap or the workers it may run on
// can use, and no set of VMs more than the workers they may run on
// between them (the groups of recomputeMasksLocked): two VMs pinned to
// one CPU share that CPU by weight whatever the rest of the pool does,
// and an exclusive VM gets its CPUs wholly. Without cpusets there is one
// group, the whole pool. A group's capacity is its workers x period plus
// what devices used for its VMs beside them in the last period (Charge),
// so that charged time is part of each VM's share rather than a debt
// that sinks every VM's credit.
//
// The water-filling raises one level (credit per unit of weight) for
// every VM not yet fixed until a VM reaches its own limit or a group is
// full, fixes those VMs, and goes on with the rest: weighted max-min
// fairness. It is exact when the VMs' cpusets are disjoint or nested, and
// for partial overlaps as long as the union closure has at most
// maxGroups sets. Each VM's share is split evenly among its active vCPUs.
// Credit is kept within ±(period+slice) so that neither idle time nor a
// debt is carried for long; an inactive vCPU keeps no positive credit.
// Caps get a fresh budget of cap x period, less any overrun of the last
// period. Precondition: s.mu held.
func (s *Scheduler) accountLocked() {
	acts := s.acts[:0]
	for _, vm := range s.vms {
		n := 0
		for _, h := range vm.vcpus {
			if h.active() {
				n++
			}
		}
		// The group of the VM's own cpuset holds it to its CPUs too; this
		// also does where maxGroups left that group out.
		can := min(n, vm.allowed.count())
		if can == 0 {
			continue // no active vCPU, or every CPU it could use is reserved
		}
		limit := time.Duration(can) * s.period
		if vm.cap > 0 {
			limit = min(limit, s.capLimit(vm.cap))
		}
		acts = append(acts, act{vm: vm, n: n, limit: limit, w: float64(vm.weight), full: float64(limit) / float64(vm.weight)})
	}
	gs := s.gacc[:0]
	for _, g := range s.groups {
		c := time.Duration(g.count) * s.period
		var charged time.Duration
		for _, vm := range s.vms {
			if vm.allowed.subsetOf(g.mask) {
				charged += vm.periodCharged
			}
		}
		gs = append(gs, gacc{capacity: c + min(charged, c)})
	}
	ng := len(gs)
	member := slices.Grow(s.member[:0], len(acts)*ng)[:len(acts)*ng]
	for i, a := range acts {
		for j, g := range s.groups {
			member[i*ng+j] = a.vm.allowed.subsetOf(g.mask)
		}
	}
	for open := len(acts); open > 0; {
		for j := range gs {
			gs[j].fixed, gs[j].wsum = 0, 0
		}
		for i, a := range acts {
			for j := range gs {
				if !member[i*ng+j] {
					continue
				}
				if a.done {
					gs[j].fixed += a.share
				} else {
					gs[j].wsum += int64(a.vm.weight)
				}
			}
		}
		// The lowest level at which a VM or a group is full.
		level := math.Inf(1)
		for _, a := range acts {
			if !a.done {
				level = min(level, a.full)
			}
		}
		for j := range gs {
			g := &gs[j]
			if g.wsum > 0 {
				g.level = float64(max(g.capacity-g.fixed, 0)) / float64(g.wsum)
				level = min(level, g.level)
			}
		}
		for i := range acts {
			a := &acts[i]
			if a.done {
				continue
			}
			if a.full <= level {
				a.share, a.done = a.limit, true
				open--
				continue
			}
			for j := range gs {
				if member[i*ng+j] && gs[j].wsum > 0 && gs[j].level <= level {
					a.share, a.done = time.Duration(level*a.w), true
					open--
					break
				}
			}
		}
	}
	s.acts, s.gacc, s.member = acts, gs, member
	bound := s.period + s.slice
	for _, a := range acts {
		per := a.share / time.Duration(a.n)
		for _, h := range a.vm.vcpus {
			if h.active() {
				h.credit = min(max(h.credit+per, -bound), bound)
			}
		}
	}
	for _, vm := range s.vms {
		for _, h := range vm.vcpus {
			if !h.active() {
				h.credit = min(h.credit, 0)
			}
			h.periodRun = 0
		}
		vm.periodCharged = 0
		if vm.cap > 0 {
			lim := s.capLimit(vm.cap)
			vm.capBal = min(max(vm.capBal+lim, -lim), lim)
		}
	}
}

// act is one active VM in accountLocked.
type act struct {
	vm    *VM
	n     int           // active vCPUs
	limit time.Duration // most it can use
	share time.Duration
	done  bool
	w     float64 // weight
	full  float64 // level at which it reaches limit: limit / weight
}

// gacc is one group's state in accountLocked.
type gacc struct {
	capacity time.Duration
	fixed    time.Duration // shares of its VMs already fixed
	wsum     int64         // weight of its VMs not fixed yet
	level    float64       // level at which it is full
}

// active reports whether h competes for CPU in this period. A paused
// vCPU never does, even if it ran earlier in the period: it gains no
// credit while paused.
// Precondition: s.mu held.
func (h *Handle) active() bool {
	return h.state == hQueued || h.state == hRunning || h.periodRun > 0 && h.state != hPaused
}

// CPUTime is run time on one worker of the pool.
type CPUTime struct {
	Worker int           // index, as in Scheduler.PoolWorkers
	CPU    int           // host CPU the worker is bound to; -1 if none
	Run    time.Duration // CPU time used on it
}

// VCPUStats is one vCPU's accounting. Run + Steal + Blocked + Paused =
// Elapsed, and Run is the sum of RunOn.
type VCPUStats struct {
	ID      int
	State   string        // "queued", "running", "blocked", "stopped" or "paused"
	Elapsed time.Duration // since AddVCPU (until it stopped)
	Run     time.Duration // CPU time used (a slice in progress counts as run so far)
	Steal   time.Duration // runnable but not running
	Blocked time.Duration // halted, waiting for Wake
	Paused  time.Duration // its VM paused (VM.Pause), off the run queue
	Credit  time.Duration
	Slices  uint64
	Wakes   uint64
	// MaxWakeLatency is the longest time from a Wake to being on a worker.
	MaxWakeLatency time.Duration
	// RunOn is Run per worker, one entry for each worker in order.
	RunOn []CPUTime
}

// VMStats is one VM's accounting.
type VMStats struct {
	Name   string
	Weight int
	Cap    int
	Parked bool          // out of cap budget until the next period
	Paused bool          // VM.Pause, not resumed yet
	CPU    time.Duration // sum of the vCPUs' Run
	// CPUs is the VM's cpuset (VM.SetCPUs), nil if none; Exclusive says
	// whether it is reserved for the VM.
	CPUs      []int
	Exclusive bool
	// RunOn is CPU per worker: the sum of the vCPUs' RunOn.
	RunOn []CPUTime
	// Charged is host CPU time spent for the VM outside its vCPUs
	// (Charge), counted against its cap and weight as CPU is.
	Charged time.Duration
	VCPUs   []VCPUStats
}

// cpuTimes returns one zero CPUTime per worker. Precondition: s.mu held
// (the workers' CPUs are fixed at New, so not strictly).
func (s *Scheduler) cpuTimes() []CPUTime {
	out := make([]CPUTime, len(s.workers))
	for w := range out {
		out[w] = CPUTime{Worker: w, CPU: s.workers[w].cpu}
	}
	return out
}

var stateNames = [...]string{hQueued: "queued", hRunning: "running", hBlocked: "blocked", hStopped: "stopped", hPaused: "paused"}

// Stats returns every VM's accounting, in NewVM order, as of now.
func (s *Scheduler) Stats() []VMStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.tickLocked(now)
	out := make([]VMStats, len(s.vms))
	for i, vm := range s.vms {
		out[i] = vm.statsLocked(now)
	}
	return out
}

// Stats returns the VM's accounting as of now.
func (vm *VM) Stats() VMStats {
	s := vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.tickLocked(now)
	return vm.statsLocked(now)
}

func (vm *VM) statsLocked(now time.Duration) VMStats {
	st := VMStats{Name: vm.name, Weight: vm.weight, Cap: vm.cap, Parked: vm.parked(), Paused: vm.paused, Charged: vm.charged,
		CPUs: slices.Clone(vm.cpus), Exclusive: vm.exclusive, RunOn: vm.s.cpuTimes()}
	for _, h := range vm.vcpus {
		hs := h.statsLocked(now)
		st.CPU += hs.Run
		for w, r := range hs.RunOn {
			st.RunOn[w].Run += r.Run
		}
		st.VCPUs = append(st.VCPUs, hs)
	}
	return st
}

// Stats returns the vCPU's accounting as of now.
func (h *Handle) Stats() VCPUStats {
	s := h.vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return h.statsLocked(s.clock.Now())
}

// Steal returns the time the vCPU was runnable but not running: what a PV
// guest is told as steal time.
func (h *Handle) Steal() time.Duration { return h.Stats().Steal }

func (h *Handle) statsLocked(now time.Duration) VCPUStats {
	st := VCPUStats{
		ID: h.id, State: stateNames[h.state],
		Run: h.run, Steal: h.steal, Blocked: h.blocked, Paused: h.paused,
		Credit: h.credit, Slices: h.slices, Wakes: h.wakes, MaxWakeLatency: h.maxWake,
		RunOn: h.vm.s.cpuTimes(),
	}
	for w, d := range h.runOn {
		st.RunOn[w].Run = d
	}
	end := now
	if h.state == hStopped {
		end = h.since
	}
	d := end - h.since
	switch h.state {
	case hQueued:
		st.Steal += d
	case hRunning:
		st.Run += d
		st.RunOn[h.on].Run += d
	case hBlocked:
		st.Blocked += d
	case hPaused:
		st.Paused += d
	}
	st.Elapsed = end - h.added
	return st
}
