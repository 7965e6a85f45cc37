package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// controllers are the v1 hierarchies a Group uses.
var controllers = []string{"cpu", "cpuacct", "memory", "pids"}

// Group is one VM process's control groups.
type Group struct {
	v2   bool
	dirs map[string]string // v1: controller -> directory; v2: "" -> directory
}

// New makes the groups name (a path of one or more elements) under this
// process's own cgroups.
func New(name string) (*Group, error) {
	if name == "" || strings.Contains(name, "..") || filepath.IsAbs(name) {
		return nil, fmt.Errorf("cgroup: bad group name %q", name)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	g := &Group{dirs: map[string]string{}}
	v1 := true
	for _, c := range controllers {
		if mounts[c] == "" {
			v1 = false
		}
	}
	if !v1 {
		root := mounts["cgroup2"]
		if root == "" {
			return nil, errors.New("cgroup: neither cgroup v1's cpu, cpuacct, memory and pids hierarchies nor cgroup v2 is mounted")
		}
		parent := filepath.Join(root, own[""])
		b, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
		if err != nil {
			return nil, fmt.Errorf("cgroup v2: %v", err)
		}
		have := " " + strings.TrimSpace(string(b)) + " "
		for _, c := range []string{"cpu", "memory", "pids"} {
			if !strings.Contains(have, " "+c+" ") {
				return nil, fmt.Errorf("cgroup v2: the %s controller is not available in %s (controllers: %s)", c, parent, strings.TrimSpace(string(b)))
			}
		}
		if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+cpu +memory +pids"), 0); err != nil {
			return nil, fmt.Errorf("cgroup v2: enabling cpu, memory and pids below %s: %v", parent, err)
		}
		g.v2 = true
		g.dirs[""] = filepath.Join(parent, name)
	} else {
		for _, c := range controllers {
			g.dirs[c] = filepath.Join(mounts[c], own[c], name)
		}
	}
	for _, d := range g.dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			g.Remove()
			return nil, fmt.Errorf("cgroup: %v", err)
		}
	}
	return g, nil
}

// Version is 1 or 2.
func (g *Group) Version() int {
	if g.v2 {
		return 2
	}
	return 1
}

// Dir is the group's directory for controller c (v1), or its one
// directory (v2).
func (g *Group) Dir(c string) string {
	if g.v2 {
		return g.dirs[""]
	}
	return g.dirs[c]
}

func (g *Group) write(c, file, v string) error {
	p := filepath.Join(g.Dir(c), file)
	if err := os.WriteFile(p, []byte(v), 0); err != nil {
		return fmt.Errorf("cgroup: %s = %s: %v", p, v, err)
	}
	return nil
}

// SetCPUWeight sets the share of contended CPU, pvisor's weight w (256
// is the default weight, 1..65535).
func (g *Group) SetCPUWeight(w int) error {
	if w < 1 || w > 65535 {
		return fmt.Errorf("cgroup: CPU weight %d out of 1..65535", w)
	}
	if g.v2 {
		return g.write("cpu", "cpu.weight", strconv.Itoa(max(1, min(10000, w*100/256))))
	}
	return g.write("cpu", "cpu.shares", strconv.Itoa(max(2, w*4)))
}

// SetCPUCap limits the group to pct percent of one CPU (0: no cap).
func (g *Group) SetCPUCap(pct int) error {
	const period = 100000 // µs
	if pct < 0 {
		return fmt.Errorf("cgroup: CPU cap %d%%", pct)
	}
	if g.v2 {
		v := "max " + strconv.Itoa(period)
		if pct > 0 {
			v = fmt.Sprintf("%d %d", pct*period/100, period)
		}
		return g.write("cpu", "cpu.max", v)
	}
	if err := g.write("cpu", "cpu.cfs_period_us", strconv.Itoa(period)); err != nil {
		return err
	}
	q := "-1"
	if pct > 0 {
		q = strconv.Itoa(pct * period / 100)
	}
	return g.write("cpu", "cpu.cfs_quota_us", q)
}

// SetMemoryLimit bounds the group's memory (RAM the guest is given,
// and the VMM's own).
func (g *Group) SetMemoryLimit(bytes uint64) error {
	if g.v2 {
		return g.write("memory", "memory.max", strconv.FormatUint(bytes, 10))
	}
	return g.write("memory", "memory.limit_in_bytes", strconv.FormatUint(bytes, 10))
}

// SetTasks bounds the group's threads.
func (g *Group) SetTasks(n int) error { return g.write("pids", "pids.max", strconv.Itoa(n)) }

// Add moves process pid (every thread of it) into the group.
func (g *Group) Add(pid int) error {
	for _, d := range g.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroup: moving %d into %s: %v", pid, d, err)
		}
	}
	return nil
}

// CPUUsage is the CPU time the group's processes have used.
func (g *Group) CPUUsage() (time.Duration, error) {
	if g.v2 {
		b, err := os.ReadFile(filepath.Join(g.dirs[""], "cpu.stat"))
		if err != nil {
			return 0, err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
				us, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				return time.Duration(us) * time.Microsecond, err
			}
		}
		return 0, errors.New("cgroup: no usage_usec in cpu.stat")
	}
	b, err := os.ReadFile(filepath.Join(g.dirs["cpuacct"], "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(ns), err
}

// Remove deletes the group's directories (once its processes are gone)
// and their empty parents up to the first one still in use.
func (g *Group) Remove() error {
	var first error
	for _, d := range g.dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}

// cgroupMounts maps each v1 controller to its hierarchy's mount point,
// and "cgroup2" to the unified hierarchy's.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		switch fs[2] {
		case "cgroup2":
			if m["cgroup2"] == "" {
				m["cgroup2"] = fs[1]
			}
		case "cgroup":
			for _, o := range strings.Split(fs[3], ",") {
				for _, c := range controllers {
					if o == c {
						m[c] = fs[1]
					}
				}
			}
		}
	}
	return m, sc.Err()
}

// ownCgroups maps each v1 controller (and "" for v2) to this process's
// cgroup path.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			m[c] = f[2]
		}
	}
	return m, nil
}
