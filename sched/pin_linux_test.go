package sched

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// busy spins for its budget, or until kicked (and kickDelay more, as an
// engine finishes its chunk), on whatever thread runs it, and records on
// which thread and CPU (getcpu) it found itself.
type busy struct {
	kicked    atomic.Bool
	running   atomic.Bool
	runs      atomic.Int64
	kickDelay time.Duration

	mu   sync.Mutex
	seen map[[2]int]int // {tid, cpu} -> samples; mu protects seen
}

func newBusy() *busy { return &busy{seen: map[[2]int]int{}} }

func (b *busy) RunFor(d time.Duration) (time.Duration, State) {
	b.running.Store(true)
	defer b.running.Store(false)
	b.runs.Add(1)
	start := time.Now()
	tid := unix.Gettid()
	end := start.Add(d)
	for i := 0; time.Now().Before(end); i++ {
		if b.kicked.Swap(false) {
			if k := time.Now().Add(b.kickDelay); k.Before(end) {
				end = k
			}
		}
		if i%64 == 0 {
			k := [2]int{tid, getcpu()}
			b.mu.Lock()
			b.seen[k]++
			b.mu.Unlock()
		}
	}
	return time.Since(start), Ready
}

func (b *busy) Kick() { b.kicked.Store(true) }

func (b *busy) samples() map[[2]int]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.seen)
}

// allowedCPUs is the calling thread's affinity (the test process's).
func allowedCPUs(t *testing.T, tid int) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		t.Fatalf("sched_getaffinity(%d): %v", tid, err)
	}
	return cpuList(&set)
}

// twoCPUs returns two CPUs the process may use, or skips the test.
func twoCPUs(t *testing.T) (int, int) {
	cpus := allowedCPUs(t, 0)
	if len(cpus) < 2 {
		t.Skipf("needs 2 host CPUs to bind workers to; this process may use only CPUs %s", FormatCPUs(cpus))
	}
	return cpus[0], cpus[1]
}

// taskStatus returns the field named key of /proc/self/task/TID/status.
func taskStatus(t *testing.T, tid int, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/self/task/%d/status has no %s", tid, key)
	return ""
}

// lastCPU returns field 39 (processor: the CPU it last ran on) of
// /proc/self/task/TID/stat.
func lastCPU(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields 1 and 2 are the pid and "(comm)", which may hold spaces:
	// count from the last ')', after which field 3 comes.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[39-3])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tasks(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPinnedPool runs the real pool bound to two host CPUs: each worker's
// thread has exactly its CPU as affinity (read back through
// sched_getaffinity and /proc), runs there (getcpu inside RunFor, and
// /proc's last CPU while a vCPU runs), no other thread of the process is
// bound, a VM pinned to the second CPU runs and is accounted only there,
// and the bound threads end with Stop.
func TestPinnedPool(t *testing.T) {
	c0, c1 := twoCPUs(t)
	procMask := allowedCPUs(t, 0)
	s, err := NewChecked(Config{CPUs: []int{c0, c1}, Slice: 2 * time.Millisecond, Period: 6 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pinned, free := s.NewVM("pinned"), s.NewVM("free")
	mustSetCPUs(t, pinned, []int{c1}, false)
	bp, bf := newBusy(), newBusy()
	pinned.AddVCPU(bp)
	free.AddVCPU(bf)
	free.AddVCPU(newBusy())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop()
		}
	}()

	ws := s.PoolWorkers()
	cpus := map[int]int{} // tid -> CPU
	for i, w := range ws {
		want := []int{c0, c1}[i]
		if w.Index != i || w.CPU != want || w.TID <= 0 {
			t.Fatalf("worker %d: %+v, want CPU %d and a thread", i, w, want)
		}
		if w.TID == os.Getpid() {
			t.Errorf("worker %d is bound on the process's main thread", i)
		}
		if got := allowedCPUs(t, w.TID); !slices.Equal(got, []int{want}) {
			t.Errorf("worker %d (thread %d): sched_getaffinity gives CPUs %s, want %d", i, w.TID, FormatCPUs(got), want)
		}
		if got := taskStatus(t, w.TID, "Cpus_allowed_list"); got != strconv.Itoa(want) {
			t.Errorf("worker %d (thread %d): Cpus_allowed_list %q, want %d", i, w.TID, got, want)
		}
		cpus[w.TID] = want
	}
	for _, tid := range tasks(t) {
		if _, worker := cpus[tid]; worker {
			continue
		}
		if got := allowedCPUs(t, tid); !slices.Equal(got, procMask) {
			t.Errorf("thread %d, not a worker, has affinity %s; the process's is %s", tid, FormatCPUs(got), FormatCPUs(procMask))
		}
	}

	waitFor(t, "the VMs did not run 50 slices each", func() bool { return bp.runs.Load() >= 50 && bf.runs.Load() >= 50 })
	// While the pinned vCPU runs, its worker's thread is on its CPU.
	seen := 0
	waitFor(t, "the pinned vCPU was never seen running", func() bool {
		if bp.running.Load() {
			if got := lastCPU(t, ws[1].TID); got != c1 {
				t.Fatalf("worker 1's thread last ran on CPU %d while running a vCPU, want %d", got, c1)
			}
			seen++
		}
		return seen >= 10
	})
	if got := lastCPU(t, ws[0].TID); got != c0 {
		t.Errorf("worker 0's thread last ran on CPU %d, want %d", got, c0)
	}
	for _, b := range []*busy{bp, bf} {
		for k, n := range b.samples() {
			tid, cpu := k[0], k[1]
			want, worker := cpus[tid]
			if !worker || cpu != want {
				t.Errorf("a vCPU ran %d samples on thread %d, CPU %d; the workers are %v (thread -> CPU)", n, tid, cpu, cpus)
			}
			if b == bp && cpu != c1 {
				t.Errorf("the vCPU pinned to CPU %d ran on CPU %d", c1, cpu)
			}
		}
	}

	s.Stop()
	stopped = true
	st := pinned.Stats()
	want := []CPUTime{{Worker: 0, CPU: c0}, {Worker: 1, CPU: c1, Run: st.CPU}}
	if d := cmp.Diff(want, st.RunOn); d != "" || st.CPU == 0 {
		t.Errorf("pinned VM's run time per worker (-want +got), CPU %v:\n%s", st.CPU, d)
	}
	t.Logf("pinned: %v; free: %+v", st.RunOn, free.Stats().RunOn)
	for _, w := range s.PoolWorkers() {
		if w.TID != 0 {
			t.Errorf("worker %d still reports thread %d after Stop", w.Index, w.TID)
		}
	}
	waitFor(t, "the bound threads did not end after Stop", func() bool {
		for _, tid := range tasks(t) {
			if _, worker := cpus[tid]; worker {
				return false
			}
		}
		return true
	})
}

// TestBoundWorkersSleepAndWake: with no periodic accounting to wake it
// (a period of an hour), a bound worker with nothing it may run sleeps
// while the other runs a pinned VM slice after slice; and, with both
// idle, a Wake of a vCPU pinned to one worker's CPU wakes that worker:
// the vCPU would never run otherwise.
func TestBoundWorkersSleepAndWake(t *testing.T) {
	c0, c1 := twoCPUs(t)
	s, err := NewChecked(Config{CPUs: []int{c0, c1}, Slice: time.Millisecond, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	spin, sleepy := s.NewVM("spin"), s.NewVM("sleepy")
	mustSetCPUs(t, spin, []int{c1}, false)
	mustSetCPUs(t, sleepy, []int{c0}, false)
	b := newBusy()
	spin.AddVCPU(b)
	w := &waiter{}
	hw := sleepy.AddVCPU(w)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	waitFor(t, "the waiter's first run", func() bool { return w.runs.Load() == 1 })
	waitFor(t, "the waiter blocked", func() bool { return hw.Stats().State == "blocked" })
	before := s.PoolWorkers()[0].Wakeups
	runs := b.runs.Load()
	waitFor(t, "the spinning VM did not run 300 slices", func() bool { return b.runs.Load() >= runs+300 })
	idle := s.PoolWorkers()[0].Wakeups - before
	t.Logf("the idle worker woke %d times in 300 slices of the other", idle)
	if idle > 3 {
		t.Fatalf("the idle worker woke %d times while the other ran 300 slices: it does not sleep", idle)
	}
	select { // both workers idle from here on
	case <-spin.Pause():
	case <-time.After(20 * time.Second):
		t.Fatal("the spinning VM did not pause")
	}
	for i := range 20 {
		hw.Wake()
		waitFor(t, fmt.Sprintf("wake %d: the vCPU pinned to the idle CPU did not run", i+1), func() bool { return w.runs.Load() == int64(i+2) })
		waitFor(t, "the waiter blocked", func() bool { return hw.Stats().State == "blocked" })
	}
	st := sleepy.Stats()
	if st.RunOn[1].Run != 0 || st.VCPUs[0].Slices != 21 {
		t.Fatalf("sleepy VM: %d slices, run per worker %+v", st.VCPUs[0].Slices, st.RunOn)
	}
	if n := s.PoolWorkers()[0].Wakeups - before; n > 20+3 {
		t.Fatalf("the worker woke %d times for 20 Wakes", n)
	}
}

// TestCPUSetChangeOnPool: a cpuset changed while its vCPU runs moves the
// vCPU to its new CPU on the real pool, with no periodic accounting to
// wake the new CPU's idle worker. The kicked vCPU takes 5 ms to return,
// so the new worker, woken by the change, finds it still running and
// sleeps again; the worker that gives the vCPU up must wake it. Back and
// forth, the vCPU's run time grows only where it may run.
func TestCPUSetChangeOnPool(t *testing.T) {
	c0, c1 := twoCPUs(t)
	s, err := NewChecked(Config{CPUs: []int{c0, c1}, Slice: 20 * time.Millisecond, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	vm := s.NewVM("moving")
	mustSetCPUs(t, vm, []int{c0}, false)
	b := newBusy()
	b.kickDelay = 5 * time.Millisecond
	vm.AddVCPU(b)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for i, cpu := range []int{c1, c0, c1} {
		w := 1 - i%2 // the worker of cpu
		waitFor(t, "the vCPU did not run", func() bool { return b.running.Load() })
		mustSetCPUs(t, vm, []int{cpu}, false)
		// Run time on the old worker may grow until the kicked RunFor
		// returns; on the new one it must start growing.
		start := vm.Stats().RunOn[w].Run
		waitFor(t, fmt.Sprintf("move %d: the vCPU did not run on CPU %d", i+1, cpu), func() bool {
			return vm.Stats().RunOn[w].Run > start+5*time.Millisecond
		})
		before := vm.Stats().RunOn[1-w].Run
		runs := b.runs.Load()
		waitFor(t, "the vCPU did not run 20 slices", func() bool { return b.runs.Load() >= runs+20 })
		if after := vm.Stats().RunOn[1-w].Run; after != before {
			t.Fatalf("move %d: the vCPU ran %v on the CPU it left", i+1, after-before)
		}
	}
}

// TestStartRefusesUnavailableCPU: a CPU the process may not use is
// refused by NewChecked, and by Start, which then runs no vCPU at all.
func TestStartRefusesUnavailableCPU(t *testing.T) {
	allowed := allowedCPUs(t, 0)
	bad := 0
	for slices.Contains(allowed, bad) {
		bad++
	}
	cfg := Config{CPUs: []int{allowed[0], bad}, Slice: time.Millisecond, Period: 3 * time.Millisecond}
	if _, err := NewChecked(cfg); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("host CPU %d", bad)) {
		t.Errorf("NewChecked with CPU %d (allowed %s): %v", bad, FormatCPUs(allowed), err)
	} else {
		t.Log(err)
	}
	s := New(cfg)
	b := newBusy()
	s.NewVM("vm").AddVCPU(b)
	for range 2 { // and again: a failed Start leaves the pool stopped
		err := s.Start()
		if err == nil {
			s.Stop()
			t.Fatalf("Start bound a worker to CPU %d, outside the allowed %s", bad, FormatCPUs(allowed))
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("host CPU %d", bad)) {
			t.Errorf("Start's error does not name CPU %d: %v", bad, err)
		}
		t.Log(err)
		if n := b.runs.Load(); n != 0 {
			t.Fatalf("a vCPU ran %d times in a pool whose Start failed", n)
		}
		for _, w := range s.PoolWorkers() {
			if w.TID != 0 {
				t.Errorf("worker %+v after a failed Start", w)
			}
		}
	}
	s.Stop() // a no-op on a stopped pool
}

// mainq carries functions for TestMain to run on the process's main
// thread.
var mainq = make(chan func())

// The main goroutine stays on the main thread (LockOSThread in init), so
// that TestMain can run functions there.
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	done := make(chan int)
	go func() { done <- m.Run() }()
	for {
		select {
		case f := <-mainq:
			f()
		case code := <-done:
			os.Exit(code)
		}
	}
}

// onMainThread runs f on the process's main thread and returns when it
// has.
func onMainThread(f func()) {
	done := make(chan struct{})
	mainq <- func() {
		defer close(done)
		f()
	}
	<-done
}

// TestBoundThreadNotMain: a worker started from the main thread is moved
// to another before it is bound, and its thread ends with it.
func TestBoundThreadNotMain(t *testing.T) {
	ran := make(chan int, 1)
	finish := make(chan struct{})
	onMain := make(chan bool, 1)
	go onMainThread(func() {
		main := mainThread()
		runLocked(func() {
			if mainThread() {
				ran <- -1
			} else {
				ran <- unix.Gettid()
			}
			<-finish
		})
		onMain <- main
	})
	tid := <-ran
	close(finish)
	if !<-onMain {
		t.Fatal("TestMain's functions do not run on the main thread")
	}
	if tid < 0 {
		t.Fatal("runLocked ran its function on the main thread")
	}
	waitFor(t, fmt.Sprintf("thread %d did not end with its locked goroutine", tid), func() bool {
		return !slices.Contains(tasks(t), tid)
	})
}
