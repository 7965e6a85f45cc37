package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pvisor/pvisor/hv/audit"
	"github.com/pvisor/pvisor/hv/lineage"
)

func init() {
	register(command{"audit", "watch VMM processes' system calls from outside (eBPF): live counts, and calls outside the VMM's profile logged as violations", runAudit})
}

// auditSample is how often pvisor audit reads the counts at most: a
// violation is logged within about this long.
const auditSample = 200 * time.Millisecond

// auditedProc is one VMM process pvisor audit watches.
type auditedProc struct {
	pid      int
	vms      []string // the VM names it runs (its --name and --vm name=)
	stateDir string   // where their lineage logs are
	// confined says the process was seen with its seccomp filter on;
	// base is the counts then (or when first seen, for a VMM run with
	// --sandbox=false, which never confines itself), reported what
	// violations were logged since. Until a sandboxed VMM confines
	// itself it is setting up, and its calls are not violations.
	confined    bool
	unsandboxed bool // --sandbox=false
	isVMM       bool // its arguments are pvisor run's
	baseSet     bool
	base        audit.Counts
	reported    audit.Counts
	last        audit.Counts
	gone        bool
}

func runAudit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	interval := fs.Duration("interval", time.Second, "how often to print the live table (counts are read, and violations and new VMMs looked for, every 200ms or more often)")
	once := fs.Bool("once", false, "print the counts once and exit")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted, or until every PID given has exited)")
	jsonOut := fs.Bool("json", false, "on exit, print each process's counts as JSON instead of the live table")
	top := fs.Int("top", 12, "calls per process in the live table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pvisor audit [--interval D] [--once] [--duration D] [--json] [PID...]\n"+
			"Counts the system calls of pvisor VMM processes (the PIDs given, else every `pvisor run` on the host,\n"+
			"found as they start) with an eBPF program on sys_enter. A call outside the VMM's profile\n"+
			"(docs/security.md) after the VMM confined itself is a violation: printed, and logged in the VM's\n"+
			"event log in its state directory. Needs root (CAP_BPF and CAP_PERFMON).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *interval <= 0 || *top < 1 {
		fmt.Fprintln(stderr, "pvisor audit: --interval and --top must be positive")
		return 2
	}
	var pids []int
	for _, a := range fs.Args() {
		p, err := strconv.Atoi(a)
		if err != nil || p <= 0 {
			fmt.Fprintf(stderr, "pvisor audit: %q is not a process ID\n", a)
			return 2
		}
		pids = append(pids, p)
	}
	m, err := audit.Open()
	if err != nil {
		fmt.Fprintf(stderr, "pvisor audit: %v (it needs root, and a kernel with CONFIG_BPF_EVENTS)\n", err)
		return 1
	}
	defer m.Close()
	procs := map[int]*auditedProc{}
	watch := func(pid int) {
		if _, ok := procs[pid]; ok {
			return
		}
		p := describeVMM(pid)
		if err := m.Watch(pid); err != nil {
			fmt.Fprintf(stderr, "pvisor audit: %d: %v\n", pid, err)
			return
		}
		procs[pid] = p
	}
	for _, p := range pids {
		watch(p)
	}
	if len(pids) == 0 {
		for _, p := range findVMMs() {
			watch(p)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var end <-chan time.Time
	if *duration > 0 {
		end = time.After(*duration)
	}
	every := min(*interval, auditSample)
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastTable := time.Time{}
	// With --json, stdout is the counts alone: violations go to stderr.
	vout := stdout
	if *jsonOut {
		vout = stderr
	}
	for {
		sample(m, procs, vout, stderr)
		if *once {
			printAuditTable(stdout, procs, *top)
			return 0
		}
		if !*jsonOut && time.Since(lastTable) >= *interval-every/2 {
			printAuditTable(stdout, procs, *top)
			lastTable = time.Now()
		}
		if len(pids) > 0 && allGone(procs) {
			break
		}
		stop := false
		select {
		case <-tick.C:
		case <-sigs:
			stop = true
		case <-end:
			stop = true
		}
		if stop {
			sample(m, procs, vout, stderr)
			break
		}
		if len(pids) == 0 {
			for _, p := range findVMMs() {
				watch(p)
			}
		}
	}
	if *jsonOut {
		type procCounts struct {
			PID   int           `json:"pid"`
			VMs   []string      `json:"vms"`
			Calls []audit.Entry `json:"calls"`
			Total uint64        `json:"total"`
		}
		var out []procCounts
		for _, p := range sortedProcs(procs) {
			out = append(out, procCounts{PID: p.pid, VMs: p.vms, Calls: p.last.Entries(), Total: p.last.Total()})
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
	}
	return 0
}

func allGone(procs map[int]*auditedProc) bool {
	for _, p := range procs {
		if !p.gone {
			return false
		}
	}
	return true
}

// sample reads every live process's counts and logs the violations
// since the last sample. A process that has exited keeps its last
// counts and is no longer watched (its thread-group ID may be reused).
func sample(m *audit.Monitor, procs map[int]*auditedProc, stdout, stderr io.Writer) {
	for _, p := range procs {
		if v := p.step(m); len(v) > 0 {
			logViolations(p, v, stdout, stderr)
		}
	}
}

// step reads p's counts and returns the violations since the last step:
// calls outside the profile after the VMM confined itself (or, for one
// run with --sandbox=false, after it was first seen).
func (p *auditedProc) step(m *audit.Monitor) []audit.Entry {
	if p.gone {
		return nil
	}
	c, err := m.Counts(p.pid)
	if err != nil {
		return nil
	}
	alive, confined := processSeccomp(p.pid)
	if !alive {
		// Its last calls (exit_group) may have come after the previous
		// read: keep this read, then stop watching.
		p.gone = true
		m.Unwatch(p.pid)
	}
	p.last = c
	if !p.isVMM {
		// A PID given before its exec of pvisor run: read its arguments
		// again.
		if d := describeVMM(p.pid); d.isVMM {
			p.vms, p.stateDir, p.unsandboxed, p.isVMM = d.vms, d.stateDir, d.unsandboxed, true
		}
	}
	if !p.confined && confined {
		// The VMM has just confined itself: what it did before was
		// set-up, outside the profile by design.
		p.confined, p.baseSet, p.base, p.reported = true, true, c, c
		return nil
	}
	if !p.baseSet {
		if !p.unsandboxed {
			return nil // still setting up
		}
		p.baseSet, p.base, p.reported = true, c, c
	}
	v := audit.Violations(&p.reported, &c)
	if len(v) > 0 {
		p.reported = c
	}
	return v
}

// violationDetail is the event text for v found in p.
func violationDetail(p *auditedProc, v []audit.Entry) string {
	var parts []string
	for _, e := range v {
		parts = append(parts, fmt.Sprintf("%s x%d", e.Name, e.Count))
	}
	state := "confined"
	if !p.confined {
		state = "not confined"
	}
	return fmt.Sprintf("VMM process %d (%s) made system calls outside its profile: %s", p.pid, state, strings.Join(parts, ", "))
}

// logViolations prints v and appends an event to each of the process's
// VMs' logs.
func logViolations(p *auditedProc, v []audit.Entry, stdout, stderr io.Writer) {
	detail := violationDetail(p, v)
	fmt.Fprintf(stdout, "VIOLATION %s: %s\n", strings.Join(p.vms, ","), detail)
	if p.stateDir == "" || len(p.vms) == 0 {
		return
	}
	// The directory comes from the watched process's arguments: any
	// local user can start a process named pvisor with any --state-dir.
	// The monitor (root) writes only into a state directory that exists
	// and belongs to the process's own user.
	if err := stateDirOf(p.pid, p.stateDir); err != nil {
		fmt.Fprintf(stderr, "pvisor audit: %d: the violation is not logged: %v\n", p.pid, err)
		return
	}
	st, err := lineage.Open(p.stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor audit: %d: the violation is not logged: %v\n", p.pid, err)
		return
	}
	for _, name := range p.vms {
		l, err := st.ForName(name)
		if err == nil {
			err = l.Log(lineage.Event{VM: name, Event: "syscall-violation", Detail: detail})
		}
		if err != nil {
			fmt.Fprintf(stderr, "pvisor audit: %d: %s: the violation is not logged: %v\n", p.pid, name, err)
		}
	}
}

func printAuditTable(w io.Writer, procs map[int]*auditedProc, top int) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %d VMM processes\n", time.Now().Format("15:04:05.000"), len(procs))
	for _, p := range sortedProcs(procs) {
		state := "confined"
		switch {
		case p.gone:
			state = "exited"
		case !p.confined && !p.unsandboxed:
			state = "setting up"
		case !p.confined:
			state = "not confined"
		}
		fmt.Fprintf(&b, "pid %d  vms %s  %s  calls %d  outside profile %d\n", p.pid, strings.Join(p.vms, ","), state,
			p.last.Total(), outsideTotal(p))
		for i, e := range p.last.Entries() {
			if i == top {
				break
			}
			mark := ""
			if e.Outside {
				mark = "  outside profile"
			}
			fmt.Fprintf(&b, "  %-18s %10d%s\n", e.Name, e.Count, mark)
		}
	}
	w.Write(b.Bytes())
}

func outsideTotal(p *auditedProc) uint64 {
	var n uint64
	for _, e := range audit.Violations(&p.base, &p.last) {
		n += e.Count
	}
	return n
}

func sortedProcs(procs map[int]*auditedProc) []*auditedProc {
	var s []*auditedProc
	for _, p := range procs {
		s = append(s, p)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].pid < s[j].pid })
	return s
}

// processSeccomp reads /proc/PID/status: whether the process lives, and
// whether it runs under a seccomp filter.
func processSeccomp(pid int) (alive, filtered bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			switch k {
			case "State":
				if strings.HasPrefix(strings.TrimSpace(v), "Z") {
					return false, false
				}
			case "Seccomp":
				filtered = strings.TrimSpace(v) == "2"
			}
		}
	}
	return true, filtered
}

// findVMMs lists the host's `pvisor run` processes: an executable named
// pvisor (or pvisor.*) with "run" as its first argument.
func findVMMs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		argv := procArgs(pid)
		if len(argv) < 2 || argv[1] != "run" {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		if b := filepath.Base(strings.TrimSuffix(exe, " (deleted)")); b == "pvisor" || strings.HasPrefix(b, "pvisor.") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func procArgs(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// describeVMM reads a VMM's VM names and state directory from its
// arguments (and its environment's PVISOR_STATE_DIR), as pvisor run
// reads them. A process that is not a pvisor run is still watched, as a
// VMM still setting up, whose calls are not violations.
func describeVMM(pid int) *auditedProc {
	p := &auditedProc{pid: pid}
	argv := procArgs(pid)
	if len(argv) < 2 || argv[1] != "run" {
		return p
	}
	p.isVMM = true
	name := "guest"
	multi := false
	var vmNames []string
	for i := 2; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			break
		}
		key, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			continue
		}
		if !hasVal && i+1 < len(argv) {
			switch key {
			case "name", "state-dir", "vm", "config", "seccomp", "sandbox-allow":
				i++
				val = argv[i]
			}
		}
		switch key {
		case "name":
			name = val
		case "state-dir":
			p.stateDir = val
		case "config":
			multi = true
		case "sandbox":
			if on, err := strconv.ParseBool(val); hasVal && err == nil && !on {
				p.unsandboxed = true
			}
		case "vm":
			multi = true
			n := fmt.Sprintf("vm%d", len(vmNames))
			for _, kv := range strings.Split(val, ",") {
				if k, v, ok := strings.Cut(kv, "="); ok && k == "name" {
					n = v
				}
			}
			vmNames = append(vmNames, n)
		}
	}
	if multi {
		p.vms = vmNames
	} else {
		p.vms = []string{name}
	}
	if p.stateDir == "" {
		p.stateDir = vmmStateDir(pid)
	}
	if p.stateDir != "" && !filepath.IsAbs(p.stateDir) {
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
			p.stateDir = filepath.Join(cwd, p.stateDir)
		}
	}
	return p
}

// stateDirOf checks that dir is an existing directory (not a symbolic
// link) owned by process pid's effective user.
func stateDirOf(pid int, dir string) error {
	var uid = -1
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 1 {
					uid, _ = strconv.Atoi(f[1])
				}
			}
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("state directory: %v", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || uid < 0 || int(st.Uid) != uid {
		return fmt.Errorf("state directory %s is not a directory of the VMM's user (uid %d)", dir, uid)
	}
	return nil
}

// vmmStateDir is the default state directory of process pid: its
// PVISOR_STATE_DIR, else /var/lib/pvisor when it runs as root.
func vmmStateDir(pid int) string {
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil {
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "PVISOR_STATE_DIR="); ok && v != "" {
				return v
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 1 && f[1] == "0" {
					return "/var/lib/pvisor"
				}
			}
		}
	}
	return ""
}
