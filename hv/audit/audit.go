package audit

import (
	"fmt"
	"sort"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/pvisor/pvisor/hv/sandbox"
)

// Counters per process: one per syscall number below Overflow, and one
// for every number at or above it.
const (
	Overflow = 512
	Counters = Overflow + 1
	MaxProcs = 256
)

// Counts are one process's system calls by number; Counts[Overflow]
// sums the numbers at or above it.
type Counts [Counters]uint64

// Total is the number of calls counted.
func (c *Counts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// Name is the x86-64 name of syscall nr ("nr_N" for an unnamed number,
// "nr>=512" for the overflow counter).
func Name(nr int) string {
	if nr == Overflow {
		return fmt.Sprintf("nr>=%d", Overflow)
	}
	if n, ok := arch.X86_64.SyscallNumbers[nr]; ok {
		return n
	}
	return fmt.Sprintf("nr_%d", nr)
}

// Entry is one syscall's count.
type Entry struct {
	Nr    int    `json:"nr"`
	Name  string `json:"name"`
	Count uint64 `json:"count"`
	// Outside says the call is not in the VMM's profile.
	Outside bool `json:"outside_profile,omitempty"`
}

// Entries lists the non-zero counts, most frequent first.
func (c *Counts) Entries() []Entry {
	var e []Entry
	for nr, v := range c {
		if v != 0 {
			e = append(e, Entry{Nr: nr, Name: Name(nr), Count: v, Outside: !InProfile(nr)})
		}
	}
	sort.Slice(e, func(i, j int) bool {
		if e[i].Count != e[j].Count {
			return e[i].Count > e[j].Count
		}
		return e[i].Nr < e[j].Nr
	})
	return e
}

// inProfile marks the numbers of hv/sandbox.Profile.
var inProfile = func() (m [Counters]bool) {
	for _, c := range sandbox.Profile {
		if nr, ok := arch.X86_64.SyscallNames[c.Name]; ok && nr < Overflow {
			m[nr] = true
		}
	}
	return m
}()

// InProfile says whether syscall nr is one the VMM's profile allows.
func InProfile(nr int) bool { return nr >= 0 && nr < Overflow && inProfile[nr] }

// Violations are the calls in now, above base, that the profile does
// not allow.
func Violations(base, now *Counts) []Entry {
	var v []Entry
	for nr := range now {
		if !InProfile(nr) && now[nr] > base[nr] {
			v = append(v, Entry{Nr: nr, Name: Name(nr), Count: now[nr] - base[nr], Outside: true})
		}
	}
	return v
}
