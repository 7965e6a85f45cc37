// Package sched runs vCPUs on host workers.
//
// # Credit scheduler
//
// Scheduler is a credit scheduler after Xen's: it holds every VM to its
// weight and cap on a pool of host workers.
//
//   - A VM has a weight (default 256: its share under contention, relative
//     to the other VMs') and a cap (percent of one host CPU; 0 = none), both
//     changeable at run time. Weight is per VM: a VM's share is split evenly
//     among its runnable vCPUs.
//   - A worker runs one vCPU at a time for at most one slice (default
//     10 ms) through VCPU.RunFor, which an engine implements with its budget
//     exit; Kick cuts a slice short.
//   - Every period (default 30 ms) the host's capacity, workers × period,
//     is handed out as credit to the active VMs (a vCPU runnable or having
//     run in the period) in proportion to weight, water-filled so that no
//     VM gets more than its active vCPUs, its cap or the workers it may
//     run on can use, and no set of VMs more than the workers they may run
//     on between them (see Host CPUs). Running debits the CPU time used.
//     Credit is kept within ±(period + slice).
//   - Priorities: BOOST (just woken) > UNDER (credit left) > OVER; first
//     come first served within one. The scheduler is work-conserving: OVER
//     vCPUs run when nothing else wants to.
//   - A capped VM may use cap × period per period. Its slice is shortened
//     to what is left, an overrun is carried into the next period, and once
//     the budget is spent the VM is parked until the next period even when
//     workers are idle.
//   - A vCPU that halts returns Blocked and costs nothing until
//     Handle.Wake (its event or timer). Wake gives it BOOST unless it is more
//     than a slice in debt, and kicks a worker running a lower-priority vCPU
//     if none is idle. So a spinning VM delays another VM's wake by at most
//     one slice (preemption makes it shorter still); a VM that wakes itself
//     constantly to abuse BOOST falls into debt and gets only its weight.
//   - A VM can be paused (VM.Pause): its vCPUs leave the run queue
//     whatever their state (a running one is kicked and leaves at the end
//     of its RunFor), are never picked, use no CPU and accumulate neither
//     steal nor credit. A Wake while paused is remembered; VM.Resume
//     queues again every vCPU that was runnable or was woken. Pause's
//     channel tells when no vCPU of the VM is on a worker any more, so
//     that its state can be read still.
//
// # Host CPUs
//
// Config.CPUs binds the pool to host CPUs: one worker per CPU, whose
// goroutine Start locks to an OS thread (never the process's main thread)
// and binds to that CPU alone with sched_setaffinity, reading the binding
// back. Start returns an error, and runs no vCPU, if any binding fails
// (the CPU is offline, or outside the process's allowed CPUs such as its
// cgroup's cpuset); NewChecked finds such a CPU before a Scheduler is
// made. The bound threads end with Stop. PoolWorkers lists each worker's
// CPU and thread. Without Config.CPUs the workers are not bound, as
// before, and no VM has a cpuset. ParseCPUs reads an operator's list of
// CPUs in Linux's cpulist syntax ("0-3,6", as taskset -c takes it),
// refusing anything else; FormatCPUs writes one.
//
// A VM's cpuset (VM.SetCPUs) restricts its vCPUs to the workers of those
// CPUs; an exclusive one reserves them, after Xen's cpupools: no other
// VM's vCPU runs there, and VMs without a cpuset run on the unreserved
// CPUs. A CPU is reserved by at most one VM, and an exclusive cpuset
// takes no CPU another VM's cpuset names. A reservation that would leave
// no CPU to a VM without a cpuset that has a live vCPU is refused; a VM
// made later, without a cpuset, while every CPU is reserved waits (its
// time counts as steal) until a CPU is freed or it is given a cpuset.
// Changing a cpuset kicks a vCPU running where it may no longer run.
//
// Pick takes, on worker w, the best queued vCPU (priority, then FIFO)
// among those that may run on w. Wake tickles only workers the vCPU may
// run on: one of them idle, else the one running the lowest-priority
// vCPU, so that a pinned vCPU does not wait while its own CPU runs a
// lower priority, whatever the other CPUs do. A worker that leaves queued
// vCPUs it may not take wakes the idle workers that may; a worker with
// nothing it may run sleeps.
//
// The accounting holds weights within cpusets by water-filling with a
// capacity constraint per group of CPUs: every distinct cpuset, the
// unreserved CPUs and the whole pool, closed under the union of groups
// that intersect. A group's VMs (those whose allowed CPUs lie within it)
// share at most its workers × period. This is weighted max-min fairness:
// VMs on one CPU share it by weight, an exclusive VM gets its CPUs
// wholly, and VMs free to run anywhere get their weight's share of what
// the pinned ones leave. It is exact for cpusets that are disjoint or
// nested, and for partial overlaps while the union closure has at most
// maxGroups sets (beyond, shares are approximate). A cap above 100
// (percent of one CPU) holds across the VM's vCPUs on its cpuset.
//
// Accounting: per vCPU, Run (CPU time used, as reported by RunFor and
// clamped to the wall time of the slice), Steal (runnable but not
// running: queued, parked by the cap, or the part of a slice's wall time
// not reported as used), Blocked and Paused always add up to the time
// since AddVCPU, and RunOn splits Run per worker (and so per host CPU).
// Per VM, CPU is the sum of its vCPUs' Run, RunOn of their RunOn. Stats
// reads them from outside the guest; Handle.Steal is what a PV guest is
// told.
//
// Invariants: a vCPU is on at most one worker, and is picked only by a
// worker its VM may run on; a vCPU is in exactly one of
// queued, running, blocked, paused, stopped; a stopped vCPU never runs
// again; a parked VM's vCPUs are not picked; a paused VM's vCPUs are not
// queued and, once its Pause channel is closed, none is running; the
// numbers above add up at every instant.
//
// Concurrency: one mutex (Scheduler.mu) protects all scheduler state.
// Pick, Finish, Wake, SetWeight, SetCap, SetCPUs, ClearCPUs, AddVCPU,
// Pause, Resume, Stats and PoolWorkers may be called from any goroutine. VCPU.Kick is called with the mutex held and must not
// call back into the Scheduler. The core never starts goroutines and reads
// time only from its Clock: Sim drives it as a deterministic discrete-event
// simulation on a FakeClock (RunFor returns at once with the time it would
// have used), which is how the tests check shares, caps and latencies.
// Start/Stop add the real pool: Workers() goroutines looping Pick, RunFor,
// Finish, sleeping when idle until a Wake, a new vCPU, a settings change or
// the next period. Start and Stop are not called concurrently.
//
// hv runs every VM's vCPUs on a Scheduler (hv.Config.Sched; a VM given
// none gets one of its own). sched depends on no engine: it sees vCPUs only
// through VCPU.
package sched
