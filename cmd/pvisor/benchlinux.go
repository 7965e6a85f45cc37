package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
)

// `pvisor bench linux`: the same Linux 6.12 workload (guestkit/pvbench, in
// the initramfs as /bin/pvbench) in every mode — the patched kernel in pv
// mode, the unpatched one in hwassist and trap — and one table of time per
// operation, exits and hypercalls per operation, and the ratio to pv.

// linuxBenchMode is one column of the comparison: a mode and its kernel.
type linuxBenchMode struct {
	mode    cpu.Mode
	kernel  string
	console string // the kernel's console
	disks   []hv.Disk
	vcpus   int // 0 or 1: one
}

// counters is what the host counts for a VM at one instant.
type counters struct {
	at     time.Time
	insns  uint64
	exits  [cpu.NumExitReasons]uint64
	hcalls uint64
}

// With one vCPU it runs on that vCPU's goroutine (the console writer's) and
// reads its counters exactly; with more, the console line may come from
// any vCPU, so it sums their published counters, each at most one slice
// old.
func readCounters(vm *hv.VM, vcpus int) counters {
	c := counters{at: time.Now()}
	if vcpus <= 1 {
		es := vm.EngineStats(0)
		c.insns, c.exits = es.Instructions, es.Exits
	} else {
		for i := 0; i < vcpus; i++ {
			es := vm.LiveEngineStats(i)
			c.insns += es.Instructions
			for r, n := range es.Exits {
				c.exits[r] += n
			}
		}
	}
	hc, _, _, _ := vm.StatsSnapshot()
	for _, n := range hc {
		c.hcalls += n
	}
	return c
}

// opResult is one benchmark in one mode, one round.
type opResult struct {
	name     string
	iters    uint64
	guestNs  float64 // per operation, by the guest's clock
	insns    float64 // per operation
	exits    [cpu.NumExitReasons]float64
	hcalls   float64
	bootWall time.Duration // for the "boot" row: host time to pvbench-start
	hostNs   float64       // per operation, by the host's clock (begin to end marker)
}

// linuxBenchMem is the memory of a Linux benchmark's VM.
const linuxBenchMem = 256 << 20

var (
	pvbenchBeginRE = regexp.MustCompile(`^pvbench-begin (\S+)$`)
	pvbenchEndRE   = regexp.MustCompile(`^pvbench-end (\S+) iters=(\d+) ns=(\d+)$`)
)

// markerWriter is the console of a benchmark VM: it snapshots the VM's
// counters at each pvbench marker line. It runs on the vCPU's goroutine
// (console output is synchronous), so a snapshot is exact.
type markerWriter struct {
	vm      *hv.VM
	vcpus   int
	start   time.Time
	line    []byte
	begin   counters
	results []opResult
	tail    []byte // the last console output, for error messages
	err     error
}

func (m *markerWriter) Write(p []byte) (int, error) {
	m.tail = append(m.tail, p...)
	if len(m.tail) > 4096 {
		m.tail = m.tail[len(m.tail)-4096:]
	}
	for _, b := range p {
		if b != '\n' {
			if len(m.line) < 256 {
				m.line = append(m.line, b)
			}
			continue
		}
		l := strings.TrimRight(string(m.line), "\r")
		m.line = m.line[:0]
		switch {
		case l == "pvbench-start":
			c := readCounters(m.vm, m.vcpus)
			m.results = append(m.results, opResult{name: "boot", iters: 1, insns: float64(c.insns),
				bootWall: c.at.Sub(m.start), hcalls: float64(c.hcalls)})
			for r := range c.exits {
				m.results[len(m.results)-1].exits[r] = float64(c.exits[r])
			}
		case pvbenchBeginRE.MatchString(l):
			m.begin = readCounters(m.vm, m.vcpus)
		default:
			if s := pvbenchEndRE.FindStringSubmatch(l); s != nil {
				c := readCounters(m.vm, m.vcpus)
				n, _ := strconv.ParseUint(s[2], 10, 64)
				ns, _ := strconv.ParseFloat(s[3], 64)
				if n == 0 {
					continue
				}
				r := opResult{name: s[1], iters: n, guestNs: ns / float64(n),
					hostNs: float64(c.at.Sub(m.begin.at)) / float64(n),
					insns:  float64(c.insns-m.begin.insns) / float64(n),
					hcalls: float64(c.hcalls-m.begin.hcalls) / float64(n)}
				for i := range c.exits {
					r.exits[i] = float64(c.exits[i]-m.begin.exits[i]) / float64(n)
				}
				m.results = append(m.results, r)
			}
		}
	}
	return len(p), nil
}

// runLinuxBench boots one mode's kernel with /bin/pvbench as the command
// and returns its results.
func runLinuxBench(bm linuxBenchMode, initrd []byte, only []string) ([]opResult, error) {
	k, err := readFile("kernel", bm.kernel, linuxBenchMem)
	if err != nil {
		return nil, err
	}
	cmd := strings.TrimSpace("/bin/pvbench " + strings.Join(only, " "))
	cmdline := fmt.Sprintf("console=%s panic=-1 quiet pvisor.cmd=%s", bm.console, base64.StdEncoding.EncodeToString([]byte(cmd)))
	mw := &markerWriter{vcpus: bm.vcpus}
	vm, err := hv.New(hv.Config{Kernel: k, Initrd: initrd, Cmdline: cmdline, MemBytes: linuxBenchMem, Mode: bm.mode,
		Budget: mm.NewBudget(1 << 30), Console: mw, Name: bm.mode.String(), Disks: bm.disks, VCPUs: bm.vcpus})
	if err != nil {
		return nil, err
	}
	mw.vm, mw.start = vm, time.Now()
	timer := time.AfterFunc(10*time.Minute, func() { vm.Stop(124, "benchmark took over 10 minutes") })
	st := vm.Run()
	timer.Stop()
	tail := string(mw.tail)
	if st.Code != 0 || !strings.Contains(tail, "pvisor-exit: 0") {
		return nil, fmt.Errorf("%v: guest failed (status %d: %s); console ends:\n%s", bm.mode, st.Code, st.Reason, tail)
	}
	return mw.results, nil
}

// parseBenchModes reads a --modes list: each mode with its kernel (the
// patched one for pv, the unpatched one otherwise) and console.
func parseBenchModes(list, pvKernel, nativeKernel string) ([]linuxBenchMode, error) {
	var modes []linuxBenchMode
	for _, name := range strings.Split(list, ",") {
		m, err := cpu.ParseMode(name)
		if err != nil {
			return nil, err
		}
		bm := linuxBenchMode{mode: m, kernel: nativeKernel, console: "ttyS0"}
		if m == cpu.ModePV {
			bm.kernel, bm.console = pvKernel, "hvc0"
		}
		modes = append(modes, bm)
	}
	return modes, nil
}

func runBenchLinux(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench linux", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pvKernel := fs.String("pv-kernel", "build/guest/vmlinux-pv", "the patched kernel (pv mode)")
	nativeKernel := fs.String("native-kernel", "build/guest/vmlinux-native", "the unpatched kernel (hwassist and trap modes)")
	initrd := fs.String("initrd", "build/guest/initramfs.cpio.gz", "initramfs with /bin/pvbench")
	rounds := fs.Int("rounds", 1, "rounds, modes interleaved; the table shows medians")
	modesFlag := fs.String("modes", "pv,hwassist,trap", "modes to compare, the first is the base of the ratios")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rounds < 1 {
		fmt.Fprintln(stderr, "pvisor bench linux: --rounds must be at least 1")
		return 2
	}
	modes, err := parseBenchModes(*modesFlag, *pvKernel, *nativeKernel)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench linux: --modes: %v\n", err)
		return 2
	}
	rd, err := readFile("initrd", *initrd, linuxBenchMem)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench linux: %v: run `make guest guest-pv`\n", err)
		return 2
	}
	// results[mode][op] holds one result per round.
	results := make([]map[string][]opResult, len(modes))
	var order []string
	for i := range modes {
		results[i] = map[string][]opResult{}
	}
	for r := 0; r < *rounds; r++ {
		for i, bm := range modes {
			fmt.Fprintf(stderr, "pvisor bench linux: round %d/%d, %v ...\n", r+1, *rounds, bm.mode)
			res, err := runLinuxBench(bm, rd, fs.Args())
			if err != nil {
				fmt.Fprintf(stderr, "pvisor bench linux: %v\n", err)
				return 1
			}
			for _, o := range res {
				if !slices.Contains(order, o.name) {
					order = append(order, o.name)
				}
				results[i][o.name] = append(results[i][o.name], o)
			}
		}
	}
	printLinuxBench(stdout, modes, results, order, *rounds)
	return 0
}

// median returns the result of median guest time (median boot wall time
// for the boot row).
func median(rs []opResult) opResult {
	s := slices.Clone(rs)
	sort.Slice(s, func(i, j int) bool {
		return s[i].guestNs+float64(s[i].bootWall) < s[j].guestNs+float64(s[j].bootWall)
	})
	return s[len(s)/2]
}

// exitSummary names the exits per operation, largest first, leaving out
// the engine's scheduling exits (budget, kick).
func exitSummary(e [cpu.NumExitReasons]float64) (total float64, top string) {
	type kv struct {
		r cpu.ExitReason
		n float64
	}
	var l []kv
	for r, n := range e {
		if cpu.ExitReason(r) == cpu.ExitBudget || cpu.ExitReason(r) == cpu.ExitKick || n == 0 {
			continue
		}
		total += n
		l = append(l, kv{cpu.ExitReason(r), n})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n })
	var parts []string
	for i, x := range l {
		if i == 3 || x.n < total/100 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s", x.r, fmtCount(x.n)))
	}
	if len(parts) == 0 {
		return total, "-"
	}
	return total, strings.Join(parts, ", ")
}

func fmtCount(n float64) string {
	switch {
	case n >= 100:
		return fmt.Sprintf("%.0f", n)
	case n >= 1:
		return fmt.Sprintf("%.1f", n)
	}
	return fmt.Sprintf("%.2f", n)
}

func printLinuxBench(w io.Writer, modes []linuxBenchMode, results []map[string][]opResult, order []string, rounds int) {
	fmt.Fprintf(w, "Linux 6.12 under pvisor (engine interp): guestkit/pvbench, median of %d round(s)\n", rounds)
	fmt.Fprintf(w, "time per operation by the guest's clock (boot: host wall time to /bin/pvbench); exits and hypercalls per operation\n\n")
	fmt.Fprintf(w, "%-10s %-9s %12s %10s %9s %10s  %s\n", "operation", "mode", "time/op", "vs "+modes[0].mode.String(), "exits/op", "hcalls/op", "exits by reason")
	for _, op := range order {
		var base float64
		for i, bm := range modes {
			rs := results[i][op]
			if len(rs) == 0 {
				continue
			}
			m := median(rs)
			t := m.guestNs
			if op == "boot" {
				t = float64(m.bootWall)
			}
			if i == 0 {
				base = t
			}
			ratio := "-"
			if base > 0 && i > 0 {
				ratio = fmt.Sprintf("%.2fx", t/base)
			}
			total, top := exitSummary(m.exits)
			fmt.Fprintf(w, "%-10s %-9s %12s %10s %9s %10s  %s\n", op, bm.mode, fmtNs(t), ratio, fmtCount(total), fmtCount(m.hcalls), top)
		}
	}
}

func fmtNs(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
