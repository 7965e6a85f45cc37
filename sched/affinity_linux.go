package sched

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// maxCPU is one more than the highest CPU number a unix.CPUSet holds.
const maxCPU = len(unix.CPUSet{}) * 64

// The CPUs a unix.CPUSet holds are those ParseCPUs accepts: these two
// array lengths are negative, and the package does not compile, unless
// maxCPU == cpuSetSize.
var (
	_ [maxCPU - cpuSetSize]struct{}
	_ [cpuSetSize - maxCPU]struct{}
)

// bindThread binds the calling thread to host CPU cpu alone and reads the
// binding back; it returns the thread's id. Precondition: the calling
// goroutine is locked to its thread (runtime.LockOSThread).
func bindThread(w, cpu int) (tid int, err error) {
	tid = unix.Gettid()
	if cpu >= maxCPU {
		return tid, fmt.Errorf("sched: worker %d: host CPU %d: CPUs from %d up are not supported", w, cpu, maxCPU)
	}
	var set, got unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return tid, fmt.Errorf("sched: worker %d: binding thread %d to host CPU %d: %w; the CPU must be online and among this process's allowed CPUs (%s)", w, tid, cpu, err, allowedString())
	}
	if err := unix.SchedGetaffinity(0, &got); err != nil {
		return tid, fmt.Errorf("sched: worker %d: reading thread %d's affinity back: %w", w, tid, err)
	}
	if got != set {
		return tid, fmt.Errorf("sched: worker %d: thread %d bound to host CPU %d reads back as CPUs %s", w, tid, cpu, FormatCPUs(cpuList(&got)))
	}
	return tid, nil
}

// mainThread reports whether the calling thread is the process's main
// thread (the thread group leader).
func mainThread() bool { return unix.Gettid() == unix.Getpid() }

// checkHostCPUs returns an error naming the first of cpus that is not in
// the calling thread's allowed CPUs: the process's (its threads are not
// bound, but for the pool's, which run nothing else).
func checkHostCPUs(cpus []int) error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("sched: reading this process's allowed CPUs: %w", err)
	}
	for _, c := range cpus {
		if c >= maxCPU || !set.IsSet(c) {
			return fmt.Errorf("sched: host CPU %d of Config.CPUs is not among this process's allowed CPUs (%s): it is offline, absent or outside the cgroup's cpuset; list CPUs from %s", c, FormatCPUs(cpuList(&set)), FormatCPUs(cpuList(&set)))
		}
	}
	return nil
}

// allowedString is the calling thread's allowed CPUs in cpulist format.
func allowedString() string {
	cpus, err := AllowedCPUs()
	if err != nil {
		return "unknown: " + err.Error()
	}
	return FormatCPUs(cpus)
}

// AllowedCPUs returns the host CPUs the calling thread may run on
// (sched_getaffinity), sorted: the process's, as taskset or its cgroup's
// cpuset narrow them, unless the caller runs on a bound worker's thread.
// They are the CPUs a Config.CPUs may list.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched: reading this process's allowed CPUs: %w", err)
	}
	return cpuList(&set), nil
}

func cpuList(set *unix.CPUSet) []int {
	var out []int
	for c := range maxCPU {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}
