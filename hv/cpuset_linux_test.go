package hv

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// TestConfigCPUs: a VM given Config.CPUs and no scheduler gets one of its
// own, bound to those CPUs, and runs there alone.
func TestConfigCPUs(t *testing.T) {
	allowed, err := sched.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	c := allowed[len(allowed)-1]
	var out bytes.Buffer
	budget := mm.NewBudget(1 << 30)
	vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModePV, Budget: budget, Console: &out,
		CPUs: []int{c}, CPUsExclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := vm.Run(); st.Code != 42 || out.String() != "hello\n" {
		t.Errorf("status %+v, console %q", st, out.String())
	}
	cs := vm.CPUStats()
	want := []sched.CPUTime{{Worker: 0, CPU: c, Run: cs.CPU}}
	if d := cmp.Diff(want, cs.RunOn); d != "" || !slices.Equal(cs.CPUs, []int{c}) || !cs.Exclusive {
		t.Errorf("cpuset %v (exclusive %v); run per CPU (-want +got):\n%s", cs.CPUs, cs.Exclusive, d)
	}
	if budget.Reserved() != 0 {
		t.Errorf("memory not released: %d", budget.Reserved())
	}
}

// TestConfigCPUsRefused: the cpusets New refuses, releasing what it took.
func TestConfigCPUsRefused(t *testing.T) {
	allowed, err := sched.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	budget := mm.NewBudget(1 << 30)
	unbound := sched.New(sched.Config{Workers: 1})
	bound := sched.New(sched.Config{CPUs: []int{allowed[0]}})
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"exclusive without CPUs", Config{CPUsExclusive: true}, "CPUsExclusive without CPUs"},
		{"unbound scheduler", Config{Sched: unbound, CPUs: []int{allowed[0]}}, "not bound to host CPUs"},
		{"CPU without a worker", Config{Sched: bound, CPUs: []int{allowed[0] + 1}}, "no worker is bound to CPU"},
		{"own scheduler, CPU beyond a mask", Config{CPUs: []int{1024}}, "numbered 0 to 1023"},
	}
	for c := range 1024 {
		if !slices.Contains(allowed, c) {
			cases = append(cases, struct {
				name string
				cfg  Config
				want string
			}{"own scheduler, CPU not allowed", Config{CPUs: []int{c}}, "not among this process's allowed CPUs"})
			break
		}
	}
	for _, tc := range cases {
		cfg := tc.cfg
		cfg.Kernel, cfg.MemBytes, cfg.Mode, cfg.Budget = elfImage(helloGuest), 16<<20, cpu.ModePV, budget
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if budget.Reserved() != 0 {
		t.Errorf("refused VMs leaked %d bytes of budget", budget.Reserved())
	}
}
