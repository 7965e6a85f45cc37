package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/sched"
)

// cpusOf is each VM's name, cpuset and exclusivity, for cmp.Diff.
type cpusOf struct {
	Name      string
	CPUs      []int
	Exclusive bool
}

func vmCPUs(specs []vmSpec) []cpusOf {
	var out []cpusOf
	for _, s := range specs {
		out = append(out, cpusOf{s.name, s.cpus, s.cpusExclusive})
	}
	return out
}

// TestCPUsFlags: --cpus and --cpus-exclusive, cpus= and cpus-exclusive=
// in --vm specs (the list keeps its commas) and in config files, and the
// pool they give the run's scheduler.
func TestCPUsFlags(t *testing.T) {
	allowed, err := sched.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "vms.toml")
	if err := os.WriteFile(cfg, []byte(`[[vm]]
name = "db"
cpus = "0,2-3"
cpus-exclusive = true
[[vm]]
name = "web"
cpus = 1
cpus_exclusive = false
[[vm]]
name = "free"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []cpusOf
	}{
		{[]string{"--cpus", "1"}, []cpusOf{{"guest", []int{1}, false}}},
		{[]string{"--cpus", "3,0-1", "--cpus-exclusive"}, []cpusOf{{"guest", []int{0, 1, 3}, true}}},
		{[]string{"--vm", "name=a,cpus=0,2-3,mem=16M", "--vm", "name=b,cpus=1,cpus-exclusive=true,cmdline=spin", "--vm", "name=c"},
			[]cpusOf{{"a", []int{0, 2, 3}, false}, {"b", []int{1}, true}, {"c", nil, false}}},
		{[]string{"--vm", "name=a,mem=16M,cpus=0,1"}, []cpusOf{{"a", []int{0, 1}, false}}},
		// --cpus is the default of every --vm, which may override it.
		{[]string{"--cpus", "1", "--vm", "name=a", "--vm", "name=b,cpus=0,cpus-exclusive=true"},
			[]cpusOf{{"a", []int{1}, false}, {"b", []int{0}, true}}},
		{[]string{"--config", cfg}, []cpusOf{{"db", []int{0, 2, 3}, true}, {"web", []int{1}, false}, {"free", nil, false}}},
		{[]string{"--restore", "main.go", "--cpus", "1-2", "--cpus-exclusive"}, []cpusOf{{"", []int{1, 2}, true}}},
		{[]string{"--vm", "name=a"}, []cpusOf{{"a", nil, false}}},
	} {
		var errb bytes.Buffer
		rc, err := parseRun(runArgs(tc.args), &errb)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if d := cmp.Diff(tc.want, vmCPUs(rc.vms)); d != "" {
			t.Errorf("%v: cpusets (-want +got):\n%s", tc.args, d)
		}
		var wantPool []int
		for _, c := range tc.want {
			if c.CPUs != nil {
				wantPool = allowed
			}
		}
		if d := cmp.Diff(wantPool, rc.poolCPUs); d != "" {
			t.Errorf("%v: pool (-want +got):\n%s", tc.args, d)
		}
		if rc.poolCPUs == nil && rc.workers != 0 {
			t.Errorf("%v: workers %d without a cpuset, want the default 0", tc.args, rc.workers)
		}
	}
	if len(mustParseRun(t, "--cpus", "0", "--workers", "0").poolCPUs) != len(allowed) {
		t.Errorf("--workers 0 does not give one bound worker per allowed CPU")
	}
}

// runArgs is args after --kernel and --mem, unless args restore a
// snapshot (which says both).
func runArgs(args []string) []string {
	if args[0] == "--restore" {
		return args
	}
	return append([]string{"--kernel", "main.go", "--mem", "32M"}, args...)
}

func mustParseRun(t *testing.T, args ...string) *runConfig {
	t.Helper()
	var errb bytes.Buffer
	r, err := parseRun(append([]string{"--kernel", "main.go"}, args...), &errb)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return r
}

// TestCPUsRefused: the cpusets and worker counts pvisor run refuses, with
// a message naming what is wrong.
func TestCPUsRefused(t *testing.T) {
	allowed, err := sched.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(body string) string {
		p := filepath.Join(t.TempDir(), "vms.toml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--cpus", "3-1"}, "--cpus: CPU list \"3-1\": range \"3-1\" ends below its start"},
		{[]string{"--cpus", "x"}, `"x" is not a CPU number`},
		{[]string{"--cpus", "0,0"}, "CPU 0 is listed twice"},
		{[]string{"--cpus", "1024"}, "numbered 0 to 1023"},
		{[]string{"--cpus", "-1"}, "want a CPU number or a range"},
		{[]string{"--cpus", " 1"}, "not a CPU number"},
		{[]string{"--cpus-exclusive"}, "--cpus-exclusive reserves the CPUs of --cpus: give --cpus too"},
		{[]string{"--vm", "name=a,cpus=0,,1"}, "item 2 is empty"},
		{[]string{"--vm", "name=a,cpus=0,ro"}, `"ro" is not a CPU number`},
		{[]string{"--vm", "name=a,cpus="}, "CPU list is empty"},
		{[]string{"--vm", "name=a,cpus=0+1"}, `"0+1" is not a CPU number`},
		{[]string{"--vm", "name=a,cpus=0,cpus-exclusive=yes"}, `cpus-exclusive "yes": want true or false`},
		{[]string{"--vm", "name=a,cpus-exclusive=true"}, "a: cpus-exclusive reserves the VM's cpus: give cpus= (or --cpus) too"},
		{[]string{"--config", cfg("[[vm]]\ncpus = [0, 1]\n")}, "cpus: want a string or an integer, not a list"},
		{[]string{"--config", cfg("[[vm]]\ncpus = \"0-\"\n")}, "want a CPU number or a range"},
		{[]string{"--config", cfg("[[vm]]\ncpus = -1\n")}, "want a CPU number or a range"},
		{[]string{"--config", cfg("[[vm]]\ncpus = \"0\"\ncpus-exclusive = \"maybe\"\n")}, "want true or false"},
		{[]string{"--isolate", "--vm", "name=a,cpus=0,cpus-exclusive=true"}, "--isolate: not with an exclusive cpuset"},
		{[]string{"--restore", "main.go", "--cpus-exclusive"}, "give --cpus too"},
		{[]string{"--restore", "main.go", "--cpus", "2-1"}, "ends below its start"},
	}
	// A bound pool has one worker per CPU this process may use: any other
	// --workers is refused (this host allows len(allowed) CPUs; --workers
	// is at most that many).
	if len(allowed) > 1 {
		cases = append(cases, struct {
			args []string
			want string
		}{[]string{"--cpus", "0", "--workers", "1"}, "--workers 1 (or workers = in a config file): with a cpuset"})
	}
	for _, tc := range cases {
		var errb bytes.Buffer
		_, err := parseRun(runArgs(tc.args), &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// TestPoolCPUs: the bound pool of a run with cpusets, on made-up hosts.
func TestPoolCPUs(t *testing.T) {
	host := func(cpus ...int) func() ([]int, error) { return func() ([]int, error) { return cpus, nil } }
	pinned := func(name string, excl bool, cpus ...int) vmSpec {
		return vmSpec{name: name, cpus: cpus, cpusExclusive: excl}
	}
	free := vmSpec{name: "free"}
	for _, tc := range []struct {
		name    string
		specs   []vmSpec
		workers int
		host    func() ([]int, error)
		want    []int
		err     string
	}{
		{name: "no cpuset, unbound", specs: []vmSpec{free}, workers: 3, host: host(0, 1), want: nil},
		{name: "every allowed CPU", specs: []vmSpec{pinned("a", false, 1), free}, host: host(0, 1, 4), want: []int{0, 1, 4}},
		{name: "workers equal", specs: []vmSpec{pinned("a", false, 1)}, workers: 3, host: host(0, 1, 4), want: []int{0, 1, 4}},
		{name: "workers differ", specs: []vmSpec{pinned("a", false, 1)}, workers: 2, host: host(0, 1, 4),
			err: "--workers 2 (or workers = in a config file): with a cpuset (--cpus or cpus=) the scheduler has one worker bound to each host CPU this process may use, 0-1,4: leave it out or give 3"},
		{name: "exclusive leaves a CPU", specs: []vmSpec{pinned("a", true, 0), free}, host: host(0, 1), want: []int{0, 1}},
		{name: "exclusive takes all, all pinned", specs: []vmSpec{pinned("a", true, 0), pinned("b", true, 1)}, host: host(0, 1), want: []int{0, 1}},
		{name: "exclusive strands a VM", specs: []vmSpec{pinned("a", true, 0), pinned("b", true, 1), free}, host: host(0, 1),
			err: "free has no cpuset, but the exclusive cpusets of a, b reserve every CPU this process may use (0-1), so it would never run"},
		{name: "exclusive without cpus", specs: []vmSpec{{name: "x", cpusExclusive: true}}, host: host(0),
			err: "x: cpus-exclusive reserves the VM's cpus"},
	} {
		got, err := poolCPUs(tc.specs, tc.workers, tc.host)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, %v; want an error saying %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s: pool (-want +got):\n%s", tc.name, d)
		}
	}
}
