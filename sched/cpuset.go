package sched

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// wset is a set of worker indices, one bit each. A wset held by the
// Scheduler or a VM is never modified once built: recomputeMasksLocked
// makes new ones, so VMs without a cpuset can share one.
type wset []uint64

func newWset(n int) wset { return make(wset, (n+63)/64) }

func (m wset) has(w int) bool { return m[w/64]&(1<<(w%64)) != 0 }
func (m wset) add(w int)      { m[w/64] |= 1 << (w % 64) }

func (m wset) count() int {
	n := 0
	for _, x := range m {
		n += bits.OnesCount64(x)
	}
	return n
}

func (m wset) subsetOf(o wset) bool {
	for i, x := range m {
		if x&^o[i] != 0 {
			return false
		}
	}
	return true
}

func (m wset) intersects(o wset) bool {
	for i, x := range m {
		if x&o[i] != 0 {
			return true
		}
	}
	return false
}

func (m wset) union(o wset) wset {
	u := make(wset, len(m))
	for i := range m {
		u[i] = m[i] | o[i]
	}
	return u
}

// group is a capacity constraint of accountLocked: the VMs whose allowed
// workers are a subset of mask can use at most count workers between them.
type group struct {
	mask  wset
	count int
}

// maxGroups bounds the constraint family recomputeMasksLocked builds by
// closing the VMs' cpusets under union: partially overlapping cpusets
// (chains such as {0,1}, {1,2}, {2,3}, ...) have many unions, and past
// this many the shares are approximated (see accountLocked).
const maxGroups = 256

// SetCPUs restricts the VM's vCPUs to the workers bound to the given host
// CPUs (Config.CPUs). With exclusive, the CPUs are also reserved for the
// VM: no other VM's vCPU runs on them, and VMs without a cpuset run on
// the CPUs no VM reserves. It refuses, changing nothing:
//   - a pool whose workers are not bound to host CPUs (Config.CPUs unset);
//   - an empty list (ClearCPUs removes a cpuset);
//   - a CPU that no worker of the pool is bound to;
//   - a CPU reserved by another VM, and, with exclusive, a CPU in another
//     VM's cpuset (an exclusive cpuset takes CPUs no other VM names, as a
//     CPU belongs to one Xen cpupool);
//   - with exclusive, a reservation that leaves no CPU for another VM that
//     has no cpuset and a vCPU that is not stopped.
//
// It may be called at any time. A vCPU running on a worker it may no
// longer use is kicked and, once its RunFor returns, runs only where
// allowed. The VM's credit follows its new cpuset from the next period.
func (vm *VM) SetCPUs(cpus []int, exclusive bool) error {
	s := vm.s
	if len(cpus) == 0 {
		return fmt.Errorf("sched: cpuset for VM %q: empty; list host CPUs of the pool, or call ClearCPUs to run on the shared ones", vm.name)
	}
	set := slices.Clone(cpus)
	slices.Sort(set)
	set = slices.Compact(set)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cpus == nil {
		return fmt.Errorf("sched: cpuset %s for VM %q: the pool's workers are not bound to host CPUs; set sched.Config.CPUs", FormatCPUs(set), vm.name)
	}
	for _, c := range set {
		if s.workerOf(c) < 0 {
			return fmt.Errorf("sched: cpuset %s for VM %q: no worker is bound to CPU %d; the pool's CPUs are %s", FormatCPUs(set), vm.name, c, FormatCPUs(s.cpus))
		}
	}
	reserved := newWset(len(s.workers))
	for _, o := range s.vms {
		if o == vm || o.cpus == nil {
			continue
		}
		for _, c := range set {
			if !slices.Contains(o.cpus, c) {
				continue
			}
			if o.exclusive {
				return fmt.Errorf("sched: cpuset %s for VM %q: CPU %d is reserved by VM %q", FormatCPUs(set), vm.name, c, o.name)
			}
			if exclusive {
				return fmt.Errorf("sched: exclusive cpuset %s for VM %q: CPU %d is in VM %q's cpuset; an exclusive cpuset takes CPUs no other VM names", FormatCPUs(set), vm.name, c, o.name)
			}
		}
		if o.exclusive {
			for _, c := range o.cpus {
				reserved.add(s.workerOf(c))
			}
		}
	}
	if exclusive {
		for _, c := range set {
			reserved.add(s.workerOf(c))
		}
		if s.all.subsetOf(reserved) {
			if o := vm.strandedLocked(); o != nil {
				return fmt.Errorf("sched: exclusive cpuset %s for VM %q: it would leave VM %q, which has no cpuset, no CPU to run on; give that VM a cpuset first or leave a CPU unreserved", FormatCPUs(set), vm.name, o.name)
			}
		}
	}
	vm.cpus, vm.exclusive = set, exclusive
	s.recomputeMasksLocked()
	s.migrateLocked()
	return nil
}

// ClearCPUs removes the VM's cpuset (and its reservation, if exclusive):
// its vCPUs run on the CPUs no VM reserves again, as a running one does
// once its RunFor returns. There always are some: a cpuset that is not
// exclusive holds none that another VM reserves, and an exclusive one
// frees its own.
func (vm *VM) ClearCPUs() {
	s := vm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if vm.cpus == nil {
		return
	}
	vm.cpus, vm.exclusive = nil, false
	s.recomputeMasksLocked()
	s.migrateLocked()
}

// CPUs returns the VM's cpuset (sorted) and whether it is exclusive; nil
// if it has none.
func (vm *VM) CPUs() (cpus []int, exclusive bool) {
	vm.s.mu.Lock()
	defer vm.s.mu.Unlock()
	return slices.Clone(vm.cpus), vm.exclusive
}

// strandedLocked returns a VM other than vm without a cpuset that has a
// vCPU not stopped, or nil. Precondition: s.mu held.
func (vm *VM) strandedLocked() *VM {
	for _, o := range vm.s.vms {
		if o == vm || o.cpus != nil {
			continue
		}
		for _, h := range o.vcpus {
			if h.state != hStopped {
				return o
			}
		}
	}
	return nil
}

// workerOf returns the index of the worker bound to host CPU cpu, or -1.
// Precondition: s.mu held (s.cpus is fixed at New, so not strictly).
func (s *Scheduler) workerOf(cpu int) int {
	return slices.Index(s.cpus, cpu)
}

// recomputeMasksLocked derives from the VMs' cpusets the workers each VM
// may use (vm.allowed), the unreserved workers and the capacity groups of
// accountLocked: every distinct allowed set, the unreserved set and the
// whole pool, closed under the union of sets that intersect (up to
// maxGroups), so that every set of VMs that can only use some CPUs
// together is held to those CPUs. Precondition: s.mu held.
func (s *Scheduler) recomputeMasksLocked() {
	n := len(s.workers)
	reserved := newWset(n)
	for _, vm := range s.vms {
		if vm.exclusive {
			for _, c := range vm.cpus {
				reserved.add(s.workerOf(c))
			}
		}
	}
	unres := newWset(n)
	for i := range unres {
		unres[i] = s.all[i] &^ reserved[i]
	}
	s.unreserved = unres
	groups := []group{{mask: s.all, count: n}}
	addGroup := func(m wset) {
		if m.count() == 0 || len(groups) >= maxGroups {
			return
		}
		for _, g := range groups {
			if slices.Equal(g.mask, m) {
				return
			}
		}
		groups = append(groups, group{mask: m, count: m.count()})
	}
	addGroup(unres)
	for _, vm := range s.vms {
		if vm.cpus == nil {
			vm.allowed = unres
			continue
		}
		m := newWset(n)
		for _, c := range vm.cpus {
			m.add(s.workerOf(c))
		}
		vm.allowed = m
		addGroup(m)
	}
	for grown := true; grown && len(groups) < maxGroups; {
		grown = false
		for i := 0; i < len(groups); i++ {
			for j := i + 1; j < len(groups); j++ {
				if a, b := groups[i].mask, groups[j].mask; a.intersects(b) && !a.subsetOf(b) && !b.subsetOf(a) {
					before := len(groups)
					addGroup(a.union(b))
					grown = grown || len(groups) > before
				}
			}
		}
	}
	s.groups = groups
}

// migrateLocked kicks every worker running a vCPU that may no longer run
// there, and wakes the idle workers, which may now run queued vCPUs.
// Precondition: s.mu held.
func (s *Scheduler) migrateLocked() {
	for w := range s.workers {
		if wk := &s.workers[w]; wk.cur != nil && !wk.cur.vm.allowed.has(w) && !wk.kicked {
			wk.kicked = true
			s.kick(w)
		}
	}
	s.notifyLocked()
}

// cpuSetSize is the number of host CPUs a CPU mask holds: glibc's
// CPU_SETSIZE, the size of unix.CPUSet (affinity_linux.go checks that
// the two agree). CPUs are numbered 0 to cpuSetSize-1.
const cpuSetSize = 1024

// ParseCPUs parses a list of host CPUs in Linux's cpulist format
// (Cpus_allowed_list in /proc/PID/status, taskset -c): comma-separated
// items, each a CPU number N or an inclusive range N-M, such as "0-3,6".
// It returns the CPUs sorted, each once; FormatCPUs gives the list back
// in canonical form.
//
// The string is an operator's (a flag, a config file) and is checked
// whole: it refuses, naming the item, an empty list or item, anything
// but the digits 0-9, '-' and ',' (no spaces, signs or strides), a range
// whose end is below its start, a CPU from cpuSetSize (1024) up, and a
// CPU listed twice, alone or in overlapping ranges ("0-3,2"), which is
// taken for a mistake rather than merged. Numbers are bounded while they
// are read, so no input overflows, and the work is linear in its length.
// The error names the list; a caller adds where it came from.
func ParseCPUs(s string) ([]int, error) {
	if s == "" {
		return nil, fmt.Errorf("CPU list is empty: list host CPUs such as 0-3,6")
	}
	var seen [cpuSetSize]bool
	var out []int
	for i, item := range strings.Split(s, ",") {
		if item == "" {
			return nil, fmt.Errorf("CPU list %q: item %d is empty: separate CPUs and ranges N-M with single commas, such as 0-3,6", s, i+1)
		}
		lo, hi, isRange := strings.Cut(item, "-")
		first, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: item %q: %v", s, item, err)
		}
		last := first
		if isRange {
			if last, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("CPU list %q: item %q: %v", s, item, err)
			}
			if last < first {
				return nil, fmt.Errorf("CPU list %q: range %q ends below its start: write it %d-%d", s, item, last, first)
			}
		}
		for c := first; c <= last; c++ {
			if seen[c] {
				return nil, fmt.Errorf("CPU list %q: CPU %d is listed twice: name each CPU once", s, c)
			}
			seen[c] = true
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out, nil
}

// parseCPU parses one CPU number of a cpulist: decimal digits only, below
// cpuSetSize.
func parseCPU(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("want a CPU number or a range N-M")
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a CPU number: want decimal digits (a range is N-M)", s)
		}
		if n = n*10 + int(c-'0'); n >= cpuSetSize {
			return 0, fmt.Errorf("CPU %s: host CPUs are numbered 0 to %d", s, cpuSetSize-1)
		}
	}
	return n, nil
}

// FormatCPUs formats a list of host CPUs as Linux's cpulist format does
// (Cpus_allowed_list in /proc/PID/status): sorted, runs as ranges, "0-3,6".
func FormatCPUs(cpus []int) string {
	c := slices.Clone(cpus)
	slices.Sort(c)
	c = slices.Compact(c)
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j+1 < len(c) && c[j+1] == c[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(c[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(c[j]))
		}
		i = j + 1
	}
	return b.String()
}
