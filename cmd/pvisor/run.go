package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/lineage"
	"github.com/pvisor/pvisor/hv/loader"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/vclock"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

func init() {
	register(command{"run", "boot a guest kernel", runRun})
}

// runConfig is what `pvisor run` was asked to do, validated.
type runConfig struct {
	vms           []vmSpec
	multi         bool // --vm or --config: several VMs, prefixed consoles
	workers       int  // scheduler workers, 0 = one per host CPU
	duration      time.Duration
	control       string // control socket path, "" = none
	memBudget     uint64 // bytes all VMs may reserve
	accel         string
	stats, strict bool
	trace         string
	guestCmd      []string      // run in the guest by /init (after --)
	clock         vclock.Policy // what a paused guest's clock does (--clock)
	uplinks       []uplink      // TAP interfaces connected to segments
	// restore is a snapshot to restore instead of booting a kernel
	// (--restore), opened with the key of keyFile or passFile.
	restore, keyFile, passFile string
	// allowRollback restores a snapshot below its lineage's patch level
	// (--allow-rollback); stateDir holds the lineage records.
	allowRollback bool
	stateDir      string
	paused        bool // --paused: the restored VM waits for ctl resume
	// overwriteOverlay lets the restore replace non-empty overlay files
	// (--overwrite-overlay).
	overwriteOverlay bool
	// expect is the launch policy (--expect-measurements), nil: none.
	expect     *expectedMeasurements
	expectPath string
	// sandbox is how the VMM confines itself once set up (--sandbox,
	// --seccomp, --sandbox-allow).
	sandbox sandboxPlan
	// isolate runs each VM in a process of its own (--isolate).
	isolate bool
	// poolCPUs are the host CPUs the scheduler binds its workers to, one
	// each, when a VM has a cpuset (poolCPUs); nil: unbound workers.
	poolCPUs []int
}

// specList collects repeated --vm flags.
type specList []string

func (l *specList) String() string     { return strings.Join(*l, " ") }
func (l *specList) Set(v string) error { *l = append(*l, v); return nil }

func parseRun(args []string, stderr io.Writer) (*runConfig, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "", "guest kernel (ELF vmlinux or bzImage)")
	initrd := fs.String("initrd", "", "initramfs image")
	cmdline := fs.String("cmdline", "", "kernel command line")
	mem := fs.String("mem", "256M", "guest memory (K, M or G suffix)")
	vcpus := fs.Int("vcpus", 1, "number of vCPUs")
	mode := fs.String("mode", "pv", "virtualization mode: pv, trap or hwassist")
	name := fs.String("name", "guest", "the VM's name (single VM)")
	weight := fs.Int("cpu-weight", 0, "CPU weight: share under contention (default 256)")
	capPct := fs.Int("cpu-cap", 0, "CPU cap: percent of one host CPU (0 = none)")
	cpus := fs.String("cpus", "", "pin the vCPUs to these host CPUs, in Linux's list syntax (0-3,6, as taskset -c); the scheduler then binds one worker to each\nhost CPU this process may use, and --workers must be 0 or their number (docs/sched.md)")
	cpusExcl := fs.Bool("cpus-exclusive", false, "with --cpus: reserve those CPUs for the VM, so that no other VM's vCPU runs there")
	var diskFlags specList
	fs.Var(&diskFlags, "disk", "attach an image file as a virtio-blk disk (PATH[,ro][,bw=BYTES/s][,iops=N/s]; an encrypted image (pvisor disk) with ,key=FILE or ,passphrase=FILE): virtio-mmio in trap and hwassist mode, a hypercall-transport slot in pv mode;\nPATH,overlay=FILE writes a copy-on-write overlay FILE (created if new) and only reads PATH, and a snapshot then holds the disk; repeatable")
	rng := fs.Bool("rng", false, "attach a virtio-rng device (after the disks, on the same transport)")
	var netFlags specList
	fs.Var(&netFlags, "net", "attach a virtio-net NIC to a segment of pvisor's switch, on the same transport as disks:\nsegment=NAME[,mac=MAC][,bw=BYTES/s][,ops=N/s]; repeatable")
	var uplinkFlags specList
	fs.Var(&uplinkFlags, "uplink", "connect a segment to the host through a TAP interface (created if needed; needs CAP_NET_ADMIN):\nsegment=NAME,tap=IFNAME; repeatable")
	var vmFlags specList
	fs.Var(&vmFlags, "vm", "add a VM: comma-separated key=value over the flags above\n(name, kernel, initrd, mem, vcpus, mode, cpu-weight, cpu-cap, cpus=LIST, cpus-exclusive=true|false, disk=PATH[,ro][,overlay=FILE], net=segment=NAME[,mac=..][,bw=..][,ops=..], cmdline=REST);\nthe items after cpus= that are not key=value continue its list, as in cpus=0,2-3,mem=16M; repeatable")
	config := fs.String("config", "", "TOML file with workers = N and a [[vm]] table per VM (keys as in --vm)")
	workers := fs.Int("workers", 0, "scheduler workers (host threads running vCPUs; 0 = one per host CPU)")
	duration := fs.Duration("duration", 0, "stop every VM after this long (0 = run until they stop)")
	control := fs.String("control", "", "listen for `pvisor ctl` requests on this Unix socket")
	memBudget := fs.String("mem-budget", "", "host memory all VMs together may reserve (K, M or G suffix; default three quarters of host RAM)")
	accel := fs.String("accel", "auto", "engine: auto, interp, jit (the interpreter with its binary translator) or kvm")
	stats := fs.Bool("stats", false, "print exit, hypercall, privileged-instruction and CPU-time counts when the VM stops")
	strict := fs.Bool("strict", false, "pv mode: stop the VM at the first privileged instruction after PV start-up")
	clock := fs.String("clock", "paused", "guest clock over a pause (pvisor ctl pause): paused (it stops, no jump on resume) or host (it catches up with host time on resume)")
	trace := fs.String("trace", "", "write one line of CPU state per guest instruction to this file (- for stderr); slow")
	restore := fs.String("restore", "", "restore the VM of this snapshot (pvisor ctl snapshot) instead of booting a kernel: the snapshot says the mode, memory and vCPUs;\ngive the snapshotted VM's --disk, --rng and --net again, in the same order")
	keyFile := fs.String("key-file", "", "--restore: the snapshot's 32-byte key file (mode 0600)")
	passFile := fs.String("passphrase-file", "", "--restore: a file whose first line is the snapshot's passphrase")
	paused := fs.Bool("paused", false, "--restore: leave the restored VM paused until `pvisor ctl resume`")
	allowRollback := fs.Bool("allow-rollback", false, "--restore: restore a snapshot whose patch level is below its lineage's highest (the VM runs flagged as rolled back, and the event is logged)")
	stateDir := fs.String("state-dir", defaultStateDir(), stateDirUsage)
	expect := fs.String("expect-measurements", "", "launch policy: refuse to boot a VM whose kernel, initramfs or command line measures otherwise than this file (pvisor measure) says")
	fs.Bool("overwrite-overlay", false, "--restore: replace a --disk's overlay=FILE that is not empty (otherwise refused)")
	sbox := addSandboxFlags(fs)
	isolate := fs.Bool("isolate", false, "run each VM in a pvisor run process of its own, confined as any, held by control groups to its CPU weight and cap and its memory (docs/security.md)")
	only := fs.String("isolated-vm", "", "(internal to --isolate) keep only the VM of this name")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	plan, err := sbox.plan()
	if err != nil {
		return nil, err
	}
	if *restore != "" {
		rc, err := parseRestore(fs, *restore, *keyFile, *passFile)
		if err == nil {
			rc.allowRollback, rc.stateDir, rc.paused, rc.sandbox = *allowRollback, *stateDir, *paused, plan
		}
		return rc, err
	}
	if *allowRollback || *paused {
		return nil, errors.New("--allow-rollback and --paused go with --restore")
	}
	if *keyFile != "" || *passFile != "" {
		return nil, errors.New("--key-file and --passphrase-file open a snapshot: they go with --restore")
	}
	clockPolicy, err := vclock.ParsePolicy(*clock)
	if err != nil {
		return nil, fmt.Errorf("--clock: %v", err)
	}
	var guestCmd []string
	if rest := fs.Args(); len(rest) > 0 {
		if fs.NArg() > 0 && args[len(args)-fs.NArg()-1] != "--" {
			return nil, fmt.Errorf("unexpected argument %q: put a command to run in the guest after --", rest[0])
		}
		guestCmd = rest
	}
	rc := &runConfig{guestCmd: guestCmd, accel: *accel, stats: *stats, strict: *strict, trace: *trace,
		workers: *workers, duration: *duration, control: *control, clock: clockPolicy, stateDir: *stateDir, sandbox: plan}
	if *expect != "" {
		if rc.expect, err = loadExpected(*expect); err != nil {
			return nil, fmt.Errorf("--expect-measurements: %v", err)
		}
		rc.expectPath = *expect
	}
	base := vmSpec{kernel: *kernel, initrd: *initrd, cmdline: *cmdline, vcpus: *vcpus, rng: *rng}
	if err := base.set("name", *name); err != nil {
		return nil, fmt.Errorf("--%v", err)
	}
	if base.mode, err = cpu.ParseMode(*mode); err != nil {
		return nil, err
	}
	if base.memBytes, err = parseSize(*mem); err != nil {
		return nil, fmt.Errorf("--mem: %v", err)
	}
	if base.vcpus < 1 {
		return nil, errors.New("--vcpus must be at least 1")
	}
	for _, v := range diskFlags {
		d, err := parseDisk(v)
		if err != nil {
			return nil, err
		}
		base.disks = append(base.disks, d)
	}
	for _, v := range uplinkFlags {
		u, err := parseUplink(v)
		if err != nil {
			return nil, err
		}
		rc.uplinks = append(rc.uplinks, u)
	}
	for _, v := range netFlags {
		n, err := parseNIC(v)
		if err != nil {
			return nil, err
		}
		base.nics = append(base.nics, n)
	}
	if *weight != 0 {
		if err := base.set("cpu-weight", strconv.Itoa(*weight)); err != nil {
			return nil, fmt.Errorf("--%v", err)
		}
	}
	if err := base.set("cpu-cap", strconv.Itoa(*capPct)); err != nil {
		return nil, fmt.Errorf("--%v", err)
	}
	if err := setCPUFlags(&base, *cpus, *cpusExcl); err != nil {
		return nil, err
	}
	rc.memBudget = hostBudget()
	if *memBudget != "" {
		if rc.memBudget, err = parseSize(*memBudget); err != nil {
			return nil, fmt.Errorf("--mem-budget: %v", err)
		}
	}
	if err := checkWorkers(rc.workers); err != nil {
		return nil, fmt.Errorf("--workers: %v", err)
	}
	if rc.duration < 0 {
		return nil, errors.New("--duration must not be negative")
	}
	switch rc.accel {
	case "auto", "interp", "jit", "kvm":
	default:
		return nil, fmt.Errorf("unknown --accel %q: want auto, interp, jit or kvm", rc.accel)
	}
	if *config != "" {
		w, specs, err := loadConfig(*config, base)
		if err != nil {
			return nil, fmt.Errorf("--config: %v", err)
		}
		if rc.workers == 0 {
			rc.workers = w
		}
		rc.vms, rc.multi = specs, true
	}
	for _, v := range vmFlags {
		b := base
		b.name = fmt.Sprintf("vm%d", len(rc.vms))
		s, err := parseVMSpec(v, b)
		if err != nil {
			return nil, err
		}
		rc.vms, rc.multi = append(rc.vms, s), true
	}
	if !rc.multi {
		rc.vms = []vmSpec{base}
	} else if len(base.disks) > 0 {
		return nil, errors.New("--disk attaches to the single VM of --kernel: not with --vm or --config (give disk= in each VM's spec)")
	} else if base.rng {
		return nil, errors.New("--rng attaches to the single VM of --kernel: not with --vm or --config")
	} else if len(base.nics) > 0 {
		return nil, errors.New("--net attaches to the single VM of --kernel: not with --vm or --config (give net= in each VM's spec)")
	}
	if rc.multi && rc.trace != "" {
		return nil, errors.New("--trace follows one VM: not with --vm or --config")
	}
	if err := checkSpecs(rc.vms); err != nil {
		return nil, err
	}
	rc.isolate = *isolate
	if *only != "" {
		var keep []vmSpec
		for _, s := range rc.vms {
			if s.name == *only {
				keep = append(keep, s)
			}
		}
		if len(keep) != 1 {
			return nil, fmt.Errorf("--isolated-vm %q: no such VM", *only)
		}
		rc.vms = keep
	}
	if rc.isolate && slices.ContainsFunc(rc.vms, func(s vmSpec) bool { return s.cpusExclusive }) {
		return nil, errors.New("--isolate: not with an exclusive cpuset: each VM process has a scheduler of its own, which cannot reserve a CPU from the others (leave cpus-exclusive out; cpus= pins a VM in its process)")
	}
	if rc.poolCPUs, err = poolCPUs(rc.vms, rc.workers, sched.AllowedCPUs); err != nil {
		return nil, err
	}
	return rc, nil
}

// setCPUFlags sets --cpus and --cpus-exclusive on base.
func setCPUFlags(base *vmSpec, cpus string, exclusive bool) error {
	if cpus != "" {
		if err := base.set("cpus", cpus); err != nil {
			return fmt.Errorf("--%v", err)
		}
	}
	if exclusive {
		if cpus == "" {
			return errors.New("--cpus-exclusive reserves the CPUs of --cpus: give --cpus too")
		}
		base.cpusExclusive = true
	}
	return nil
}

// poolCPUs returns the host CPUs a run's scheduler binds its workers to,
// one each: nil when no VM has a cpuset, so that the workers are not
// bound, as without --cpus; else every CPU this process may use (allowed
// returns them: its affinity, narrowed by taskset or its cgroup's
// cpuset), so that the VMs without a cpuset keep every CPU no VM
// reserves, as they would unpinned. workers (--workers) must then be 0
// or their number.
//
// It refuses a VM whose cpuset is exclusive but empty, and exclusive
// cpusets that reserve every CPU while a VM has no cpuset: that VM would
// never run (the scheduler refuses such a reservation only once the VM
// has vCPUs, and a run adds them after every VM has its cpuset). Whether
// each cpuset fits the pool and the others is the scheduler's to say
// (sched.VM.SetCPUs, when hv.New joins the VM).
func poolCPUs(specs []vmSpec, workers int, allowed func() ([]int, error)) ([]int, error) {
	pinned := false
	for _, s := range specs {
		if s.cpusExclusive && len(s.cpus) == 0 {
			return nil, fmt.Errorf("%s: cpus-exclusive reserves the VM's cpus: give cpus= (or --cpus) too", s.name)
		}
		pinned = pinned || len(s.cpus) > 0
	}
	if !pinned {
		return nil, nil
	}
	pool, err := allowed()
	if err != nil {
		return nil, err
	}
	if workers != 0 && workers != len(pool) {
		return nil, fmt.Errorf("--workers %d (or workers = in a config file): with a cpuset (--cpus or cpus=) the scheduler has one worker bound to each host CPU this process may use, %s: leave it out or give %d", workers, sched.FormatCPUs(pool), len(pool))
	}
	reserved := map[int]bool{}
	var owners []string
	for _, s := range specs {
		if s.cpusExclusive {
			owners = append(owners, s.name)
			for _, c := range s.cpus {
				reserved[c] = true
			}
		}
	}
	if !slices.ContainsFunc(pool, func(c int) bool { return !reserved[c] }) {
		for _, s := range specs {
			if len(s.cpus) == 0 {
				return nil, fmt.Errorf("%s has no cpuset, but the exclusive cpusets of %s reserve every CPU this process may use (%s), so it would never run: give %s cpus= too, or leave a CPU unreserved",
					s.name, strings.Join(owners, ", "), sched.FormatCPUs(pool), s.name)
			}
		}
	}
	return pool, nil
}

// restoreFlags are the run flags that go with --restore; the others
// describe what the snapshot already says (kernel, mode, memory, vCPUs,
// devices) or follow a boot (a guest command, --trace).
var restoreFlags = map[string]bool{"restore": true, "key-file": true, "passphrase-file": true, "name": true,
	"cpu-weight": true, "cpu-cap": true, "cpus": true, "cpus-exclusive": true, "workers": true, "duration": true, "control": true, "mem-budget": true,
	"accel": true, "stats": true, "disk": true, "rng": true, "net": true, "uplink": true,
	"allow-rollback": true, "state-dir": true, "paused": true, "overwrite-overlay": true,
	"sandbox": true, "seccomp": true, "sandbox-allow": true}

// parseRestore is parseRun for --restore.
func parseRestore(fs *flag.FlagSet, path, keyFile, passFile string) (*runConfig, error) {
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if !restoreFlags[f.Name] {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s with --restore: the snapshot says the kernel, mode, memory, vCPUs and clock; leave %s out", strings.Join(bad, ", "), strings.Join(bad, ", "))
	}
	if fs.NArg() > 0 {
		return nil, errors.New("--restore: a guest command runs only in a VM that boots")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--restore: no snapshot at %s (%v): pass the path pvisor ctl snapshot wrote", path, err)
	}
	if err := checkFile("snapshot", path, fi, math.MaxInt64); err != nil {
		return nil, fmt.Errorf("--restore: %v", err)
	}
	get := func(n string) string { return fs.Lookup(n).Value.String() }
	rc := &runConfig{restore: path, keyFile: keyFile, passFile: passFile, accel: get("accel"), control: get("control")}
	rc.stats = get("stats") == "true"
	rc.overwriteOverlay = get("overwrite-overlay") == "true"
	var spec vmSpec
	named := false
	fs.Visit(func(f *flag.Flag) { named = named || f.Name == "name" })
	if named {
		if err := spec.set("name", get("name")); err != nil {
			return nil, fmt.Errorf("--%v", err)
		}
	}
	for _, k := range []string{"cpu-weight", "cpu-cap"} {
		if v := get(k); v != "0" {
			if err := spec.set(k, v); err != nil {
				return nil, fmt.Errorf("--%v", err)
			}
		}
	}
	if err := setCPUFlags(&spec, get("cpus"), get("cpus-exclusive") == "true"); err != nil {
		return nil, err
	}
	if rc.workers, err = strconv.Atoi(get("workers")); err != nil {
		return nil, err
	}
	if err := checkWorkers(rc.workers); err != nil {
		return nil, fmt.Errorf("--workers: %v", err)
	}
	if rc.duration, err = time.ParseDuration(get("duration")); err != nil || rc.duration < 0 {
		return nil, errors.New("--duration must not be negative")
	}
	rc.memBudget = hostBudget()
	if v := get("mem-budget"); v != "" {
		if rc.memBudget, err = parseSize(v); err != nil {
			return nil, fmt.Errorf("--mem-budget: %v", err)
		}
	}
	switch rc.accel {
	case "auto", "interp", "jit", "kvm":
	default:
		return nil, fmt.Errorf("unknown --accel %q: want auto, interp, jit or kvm", rc.accel)
	}
	// The devices: the snapshotted VM's, in the same order (Restore
	// checks them against the snapshot's).
	for _, v := range *fs.Lookup("disk").Value.(*specList) {
		d, err := parseDisk(v)
		if err != nil {
			return nil, err
		}
		spec.disks = append(spec.disks, d)
	}
	for _, v := range *fs.Lookup("net").Value.(*specList) {
		n, err := parseNIC(v)
		if err != nil {
			return nil, err
		}
		spec.nics = append(spec.nics, n)
	}
	for _, v := range *fs.Lookup("uplink").Value.(*specList) {
		u, err := parseUplink(v)
		if err != nil {
			return nil, err
		}
		rc.uplinks = append(rc.uplinks, u)
	}
	spec.rng = get("rng") == "true"
	for _, d := range spec.disks {
		fi, err := os.Stat(d.Path)
		if err != nil {
			return nil, fmt.Errorf("--disk %s: %v", d.Path, err)
		}
		if err := checkFile("disk", d.Path, fi, math.MaxUint64); err != nil {
			return nil, err
		}
	}
	rc.vms = []vmSpec{spec}
	if rc.poolCPUs, err = poolCPUs(rc.vms, rc.workers, sched.AllowedCPUs); err != nil {
		return nil, err
	}
	return rc, nil
}

// restoreVM restores the VM of rc.restore.
func restoreVM(rc *runConfig, spec vmSpec, st *lineage.Store, out **vmLineage, budget *mm.Budget, sc *sched.Scheduler, sw *netswitch.Switch, console io.Writer, in io.Reader) (*hv.VM, error) {
	key, err := loadKey(rc.keyFile, rc.passFile)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(rc.restore)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return hv.Restore(bufio.NewReaderSize(f, 1<<20), hv.RestoreConfig{Budget: budget, Name: spec.name, Key: key, JIT: rc.accel == "jit",
		Console: console, ConsoleIn: in, Sched: sc, CPUWeight: spec.weight, CPUCap: spec.cap,
		CPUs: spec.cpus, CPUsExclusive: spec.cpusExclusive,
		Disks: spec.disks, OverwriteOverlays: rc.overwriteOverlay, RNG: spec.rng, NICs: spec.nics, Switch: sw,
		Paused: rc.paused, Guard: restoreGuard(st, rc.restore, spec.name, rc.allowRollback, out)})
}

// checkWorkers bounds the scheduler's workers (--workers, workers = in a
// config file) to the host's CPUs: a worker is a host thread running
// vCPUs, and more of them than CPUs only adds contention.
func checkWorkers(n int) error {
	if n < 0 || n > runtime.NumCPU() {
		return fmt.Errorf("%d workers: want 0 (one per host CPU) to %d, this host's CPUs", n, runtime.NumCPU())
	}
	return nil
}

// parseSize parses a byte count with an optional K, M or G suffix. It is
// the one size parser of every flag, config key and ctl request.
func parseSize(s string) (uint64, error) {
	in, mult := s, uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil && errors.Is(err, strconv.ErrRange) || err == nil && n > math.MaxUint64/mult {
		return 0, fmt.Errorf("size %q is more than 2^64 bytes: give a smaller size", in)
	}
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad size %q: want a positive number with an optional K, M or G suffix", in)
	}
	return n * mult, nil
}

func runRun(args []string, stdout, stderr io.Writer) int {
	rc, err := parseRun(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "pvisor run: %v\n", err)
		}
		return 2
	}
	if rc.accel == "kvm" {
		fmt.Fprintln(stderr, "pvisor run: the kvm engine is not in this build: use --accel interp")
		return 2
	}
	if rc.isolate {
		return runIsolated(rc, args, stderr)
	}
	var traceW io.Writer
	switch rc.trace {
	case "":
	case "-":
		traceW = stderr
	default:
		f, err := os.Create(rc.trace)
		if err != nil {
			fmt.Fprintf(stderr, "pvisor run: --trace: %v\n", err)
			return 2
		}
		defer f.Close()
		traceW = f
	}
	// Every VM shares one memory budget and one scheduler, bound to host
	// CPUs when a VM has a cpuset.
	budget := mm.NewBudget(rc.memBudget)
	scfg := sched.Config{Workers: rc.workers}
	if rc.poolCPUs != nil {
		scfg = sched.Config{CPUs: rc.poolCPUs}
	}
	sc, err := sched.NewChecked(scfg)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor run: --cpus: %v\n", err)
		return 2
	}
	sw := netswitch.New() // the VMs' NICs share its segments
	for _, u := range rc.uplinks {
		tap, err := sw.ConnectTAP(u.segment, u.tap)
		if err != nil {
			fmt.Fprintf(stderr, "pvisor run: --uplink: %v\n", err)
			return 2
		}
		defer tap.Close()
	}
	vms := make([]*hv.VM, len(rc.vms))
	lins := make([]*vmLineage, len(rc.vms))
	scans := make([]*exitScanner, len(rc.vms))
	store, err := lineage.Open(rc.stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor run: --state-dir: %v\n", err)
		return 2
	}
	stopAll := func(code int, reason string) {
		for _, vm := range vms {
			if vm != nil {
				vm.Stop(code, reason)
			}
		}
	}
	// A single VM on an interactive terminal gets it raw, so keys reach
	// the guest; Ctrl-] stops the VM. Several VMs get no console input.
	var in io.Reader
	if !rc.multi {
		in = os.Stdin
		if restore, ok := rawTerminal(int(os.Stdin.Fd())); ok {
			defer restore()
			in = &escapeReader{r: os.Stdin, quit: func() { stopAll(0, "stopped from the console (Ctrl-])") }}
			fmt.Fprintln(stderr, "pvisor: console attached; Ctrl-] stops the VM\r")
		}
	}
	var outMu sync.Mutex
	if rc.restore != "" {
		t0 := time.Now()
		vm, err := restoreVM(rc, rc.vms[0], store, &lins[0], budget, sc, sw, stdout, in)
		if err != nil {
			fmt.Fprintf(stderr, "pvisor run: --restore %s: %v\n", rc.restore, err)
			return 2
		}
		for _, w := range vm.RestoreWarnings() {
			fmt.Fprintf(stderr, "pvisor run: warning: %s\n", w)
		}
		if rc.stats {
			fmt.Fprintf(stderr, "pvisor: restored %s (%v, %d MiB) in %v, generation %s\n", vm.Name(), vm.Mode(), vm.MemStats().Reserved>>20, time.Since(t0).Round(time.Microsecond), generation(vm))
		}
		vms[0] = vm
	}
	for i, spec := range rc.vms {
		if rc.restore != "" {
			break
		}
		kernel, err := readFile("kernel", spec.kernel, spec.memBytes)
		if err != nil {
			fmt.Fprintf(stderr, "pvisor run: %v\n", err)
			return 2
		}
		var initrd []byte
		if spec.initrd != "" {
			if initrd, err = readFile("initrd", spec.initrd, spec.memBytes); err != nil {
				fmt.Fprintf(stderr, "pvisor run: %v\n", err)
				return 2
			}
		}
		cmdline := spec.cmdline
		console := io.Writer(stdout)
		if rc.multi {
			console = &prefixWriter{w: stdout, mu: &outMu, prefix: spec.name + "| "}
		}
		if len(rc.guestCmd) > 0 {
			cmdline = strings.TrimSpace(cmdline + " pvisor.cmd=" + base64.StdEncoding.EncodeToString([]byte(shellJoin(rc.guestCmd))))
			scans[i] = &exitScanner{w: console}
			console = scans[i]
		}
		if rc.expect != nil {
			if err := rc.expect.check(hv.Measure(kernel, initrd, cmdline)); err != nil {
				fmt.Fprintf(stderr, "pvisor run: %s: refused by the launch policy (%s): %v\n", spec.name, rc.expectPath, err)
				return 2
			}
		}
		cfg := hv.Config{Trace: traceW, Name: spec.name, Sched: sc,
			CPUWeight: spec.weight, CPUCap: spec.cap, CPUs: spec.cpus, CPUsExclusive: spec.cpusExclusive,
			Kernel: kernel, Initrd: initrd, Cmdline: cmdline, MemBytes: spec.memBytes, VCPUs: spec.vcpus,
			Mode: spec.mode, Budget: budget, Console: console, ConsoleIn: in, Strict: rc.strict,
			Disks: spec.disks, RNG: spec.rng, Clock: rc.clock, NICs: spec.nics, Switch: sw,
			JIT: rc.accel == "jit",
		}
		if lins[i], err = bootLineage(store, &cfg); err != nil {
			fmt.Fprintf(stderr, "pvisor run: %s: %v\n", spec.name, err)
			return 2
		}
		vms[i], err = hv.New(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "pvisor run: %s: %s: %v\n", spec.name, spec.kernel, err)
			return 2
		}
		if w := consoleWarning(vms[i].Kind(), spec.mode, cmdline); w != "" {
			fmt.Fprintf(stderr, "pvisor run: %s: warning: %s\n", spec.name, w)
		}
	}
	if rc.control != "" {
		cs, err := listenControl(rc.control, vms)
		if cs != nil {
			cs.lins = lins
		}
		if err != nil {
			fmt.Fprintf(stderr, "pvisor run: --control: %v\n", err)
			return 2
		}
		defer cs.Close()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if s, ok := <-sigs; ok {
			code := 130
			if s == syscall.SIGTERM {
				code = 143
			}
			stopAll(code, "stopped by "+s.String())
		}
	}()
	if rc.duration > 0 {
		t := time.AfterFunc(rc.duration, func() { stopAll(0, fmt.Sprintf("stopped by --duration %v", rc.duration)) })
		defer t.Stop()
	}
	if rc.sandbox.on {
		st, err := confine(rc.sandbox, rc.stateDir, rc.control, rc.vms, lins)
		if err != nil {
			stopAll(2, "the sandbox could not be applied")
			fmt.Fprintf(stderr, "pvisor run: %v\n", err)
			return 2
		}
		if rc.stats {
			fmt.Fprintf(stderr, "pvisor: %s\n", st)
		}
	}
	start := time.Now()
	if err := sc.Start(); err != nil {
		// A worker could not be bound to its host CPU (one taken offline
		// since NewChecked looked): no vCPU has run.
		fmt.Fprintf(stderr, "pvisor run: the scheduler did not start, so no VM ran: %v\n", err)
		return 2
	}
	statuses := hv.RunAll(vms)
	sc.Stop()
	wall := time.Since(start)
	code := 0
	for i, vm := range vms {
		who := "pvisor: "
		if rc.multi {
			who = "pvisor: " + vm.Name() + ": "
		}
		if rc.stats {
			if rc.multi {
				fmt.Fprintf(stderr, "== %s\n", vm.Name())
			}
			printStats(stderr, vm, wall)
		}
		if rc.stats && i == len(vms)-1 {
			printSegments(stderr, sw)
		}
		if n := statuses[i].ConsoleDropped; n > 0 {
			fmt.Fprintf(stderr, "%s%d bytes of console output dropped: nothing read pvisor's output fast enough (a full pipe?): read or redirect it\n", who, n)
		}
		c := vmExitCode(stderr, who, statuses[i], scans[i])
		if code == 0 {
			code = c
		}
	}
	return code
}

// vmExitCode is a VM's exit status: the guest command's if it ran one
// (a VM stopped from outside before it reported has the VM's), else the
// VM's. It reports an abnormal end, and any stop from outside, on
// stderr. A stop from outside keeps the status it was given: 0 for
// --duration and pvisor ctl stop, 128+signal for SIGINT and SIGTERM.
func vmExitCode(stderr io.Writer, who string, st hv.ExitStatus, scan *exitScanner) int {
	if scan != nil && st.Code == 0 && !(st.External && !scan.seen) {
		if code, ok := scan.status(); ok {
			return code
		}
		fmt.Fprintln(stderr, who+"the guest stopped without reporting the command's status (pvisor-exit)")
		return 1
	}
	if st.Code != 0 || st.External {
		fmt.Fprintf(stderr, "%sVM stopped: %s (status %d)\n", who, st.Reason, st.Code)
	}
	return st.Code
}

// consoleWarning says when the command line names a console the VM does
// not have, so that the guest would boot silently: a pv-mode VM has only
// the hypercall console (Linux's hvc0), a trap or hwassist VM only the
// emulated UART (ttyS0). It returns "" when the consoles match or the
// command line names none.
func consoleWarning(kind loader.Kind, mode cpu.Mode, cmdline string) string {
	if !kind.Linux() {
		return ""
	}
	want := "ttyS"
	if mode == cpu.ModePV {
		want = "hvc"
	}
	var named []string
	for _, f := range strings.Fields(cmdline) {
		if c, ok := strings.CutPrefix(f, "console="); ok {
			if strings.HasPrefix(c, want) {
				return ""
			}
			named = append(named, c)
		}
	}
	if len(named) == 0 {
		return ""
	}
	return fmt.Sprintf("the command line names console %s, but a %v-mode VM has no such device and the guest will boot silently: its only console is %s0: pass console=%s0",
		strings.Join(named, ", "), mode, want, want)
}

// prefixWriter prefixes each line with a VM's name, whole lines at a time
// so that several VMs' consoles interleave readably.
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex // shared by every VM's writer
	prefix string
	line   []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		if c == '\r' {
			continue
		}
		p.line = append(p.line, c)
		if c == '\n' || len(p.line) >= 4096 {
			p.mu.Lock()
			_, err := fmt.Fprintf(p.w, "%s%s", p.prefix, p.line)
			p.mu.Unlock()
			p.line = p.line[:0]
			if err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}

// shellJoin quotes args for sh -c.
func shellJoin(args []string) string {
	if len(args) == 1 {
		return args[0] // a single argument is taken as a shell command line
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// exitScanner passes console output through and remembers the status the
// guest's /init reports on a line "pvisor-exit: N".
type exitScanner struct {
	w    io.Writer
	line []byte
	code int
	seen bool
}

func (s *exitScanner) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			l := strings.TrimSpace(string(s.line))
			if v, ok := strings.CutPrefix(l, "pvisor-exit: "); ok {
				if n, err := strconv.Atoi(v); err == nil {
					s.code, s.seen = n, true
				}
			}
			s.line = s.line[:0]
		} else if len(s.line) < 256 {
			s.line = append(s.line, b)
		}
	}
	return s.w.Write(p)
}

func (s *exitScanner) status() (int, bool) { return s.code, s.seen }

// hostBudget is the memory pvisor may give VMs: three quarters of the host's.
func hostBudget() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 1 << 30
	}
	return uint64(si.Totalram) * uint64(si.Unit) / 4 * 3
}

func printStats(w io.Writer, vm *hv.VM, wall time.Duration) {
	es := vm.LiveEngineStats(0)
	hc, priv, before, started := vm.StatsSnapshot()
	fmt.Fprintf(w, "generation: %s\n", generation(vm))
	fmt.Fprintf(w, "instructions: %d\n", es.Instructions)
	for r, n := range es.Exits {
		if n != 0 {
			fmt.Fprintf(w, "exits %-13s %d\n", cpu.ExitReason(r).String()+":", n)
		}
	}
	for nr, n := range hc {
		if n != 0 && nr < len(hypercall.Table) {
			fmt.Fprintf(w, "hypercall %-22s %d\n", hypercall.Table[nr].Name+":", n)
		}
	}
	ports := vm.IOPortCounts()
	pl := make([]int, 0, len(ports))
	for p := range ports {
		pl = append(pl, int(p))
	}
	sort.Ints(pl)
	for _, p := range pl {
		fmt.Fprintf(w, "io port %#06x: %d\n", p, ports[uint16(p)])
	}
	inv := vm.Inventory()
	fmt.Fprintf(w, "devices: %d\n", len(inv))
	for _, d := range inv {
		fmt.Fprintf(w, "devices: %s\n", d)
	}
	for _, d := range vm.MMIODevices() {
		fmt.Fprintf(w, "device %s: %d notifies, %d requests, %d bytes, %d interrupts, %d breaks\n",
			d, d.Notifies, d.Requests, d.Bytes, d.Interrupts, d.Broken)
		if d.Net != nil {
			fmt.Fprintf(w, "device %s: %v\n", d.Name, *d.Net)
		}
		if d.Err != nil {
			fmt.Fprintf(w, "device %s: needs reset: %v\n", d.Name, d.Err)
		}
	}
	for _, d := range vm.SlotDevices() {
		fmt.Fprintf(w, "device %s: %d notifies, %d requests, %d bytes, %d interrupts, %d breaks\n",
			d, d.Notifies, d.Requests, d.Bytes, d.Interrupts, d.Broken)
		if d.Net != nil {
			fmt.Fprintf(w, "device %s: %v\n", d.Name, *d.Net)
		}
		if d.Err != nil {
			fmt.Fprintf(w, "device %s: needs reset: %v\n", d.Name, d.Err)
		}
	}
	fmt.Fprintf(w, "privileged exits before pv start: %d\n", before)
	var after uint64
	names := make([]string, 0, len(priv))
	for k, n := range priv {
		after += n
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "  after pv start: %s %d\n", k, priv[k])
	}
	if !started {
		fmt.Fprintln(w, "pv start: never declared")
	}
	fmt.Fprintf(w, "privileged exits after pv start: %d\n", after)
	cs := vm.CPUStats()
	capS := "none"
	if cs.Cap > 0 {
		capS = fmt.Sprintf("%d%%", cs.Cap)
	}
	fmt.Fprintf(w, "cpu: weight %d, cap %s, %.3f s used over %.3f s (%.1f%% of one host CPU)\n",
		cs.Weight, capS, cs.CPU.Seconds(), wall.Seconds(), 100*cs.CPU.Seconds()/wall.Seconds())
	if cs.CPUs != nil {
		kind := "shared"
		if cs.Exclusive {
			kind = "exclusive"
		}
		fmt.Fprintf(w, "cpu: cpuset %s (%s)\n", sched.FormatCPUs(cs.CPUs), kind)
	}
	for _, r := range cs.RunOn {
		// On a bound pool: the VM's time on each CPU of its cpuset, and
		// on any other CPU it ran on (for a pinned VM, none).
		if r.CPU >= 0 && (r.Run > 0 || slices.Contains(cs.CPUs, r.CPU)) {
			fmt.Fprintf(w, "cpu: host CPU %d: run %.3f s\n", r.CPU, r.Run.Seconds())
		}
	}
	if cs.Charged > 0 {
		fmt.Fprintf(w, "cpu: devices: %.3f s of host CPU outside the vCPUs, counted against the cap and weight\n", cs.Charged.Seconds())
	}
	for _, v := range cs.VCPUs {
		fmt.Fprintf(w, "cpu: vcpu %d: run %.3f s, steal %.3f s, blocked %.3f s, %d slices, %d wakes, longest wake-up %v\n",
			v.ID, v.Run.Seconds(), v.Steal.Seconds(), v.Blocked.Seconds(), v.Slices, v.Wakes, v.MaxWakeLatency.Round(time.Microsecond))
	}
}
