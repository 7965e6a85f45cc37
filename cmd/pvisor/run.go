package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
)

func init() {
	register(command{"run", "boot a guest kernel", runRun})
}

// runConfig is what `pvisor run` was asked to do, validated.
type runConfig struct {
	kernel, initrd, cmdline string
	memBytes                uint64
	vcpus                   int
	mode                    cpu.Mode
	accel                   string
	stats, strict           bool
	trace                   string
	guestCmd                []string // run in the guest by /init (after --)
}

func parseRun(args []string, stderr io.Writer) (*runConfig, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kernel := fs.String("kernel", "", "guest kernel (ELF vmlinux or bzImage)")
	initrd := fs.String("initrd", "", "initramfs image")
	cmdline := fs.String("cmdline", "", "kernel command line")
	mem := fs.String("mem", "256M", "guest memory (K, M or G suffix)")
	vcpus := fs.Int("vcpus", 1, "number of vCPUs")
	mode := fs.String("mode", "pv", "virtualization mode: pv, trap or hwassist")
	accel := fs.String("accel", "auto", "engine: auto, interp or kvm")
	stats := fs.Bool("stats", false, "print exit, hypercall and privileged-instruction counts when the VM stops")
	strict := fs.Bool("strict", false, "pv mode: stop the VM at the first privileged instruction after PV start-up")
	trace := fs.String("trace", "", "write one line of CPU state per guest instruction to this file (- for stderr); slow")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var guestCmd []string
	if rest := fs.Args(); len(rest) > 0 {
		if fs.NArg() > 0 && args[len(args)-fs.NArg()-1] != "--" {
			return nil, fmt.Errorf("unexpected argument %q: put a command to run in the guest after --", rest[0])
		}
		guestCmd = rest
	}
	rc := &runConfig{guestCmd: guestCmd, kernel: *kernel, initrd: *initrd, cmdline: *cmdline, vcpus: *vcpus, accel: *accel, stats: *stats, strict: *strict, trace: *trace}
	var err error
	if rc.mode, err = cpu.ParseMode(*mode); err != nil {
		return nil, err
	}
	if rc.memBytes, err = parseSize(*mem); err != nil {
		return nil, fmt.Errorf("--mem: %v", err)
	}
	if rc.vcpus < 1 {
		return nil, errors.New("--vcpus must be at least 1")
	}
	switch rc.accel {
	case "auto", "interp", "kvm":
	default:
		return nil, fmt.Errorf("unknown --accel %q: want auto, interp or kvm", rc.accel)
	}
	if rc.kernel == "" {
		return nil, errors.New("no kernel given: pass --kernel FILE")
	}
	if _, err := os.Stat(rc.kernel); err != nil {
		return nil, fmt.Errorf("kernel not found at %s: build the guest or pass --kernel", rc.kernel)
	}
	if rc.initrd != "" {
		if _, err := os.Stat(rc.initrd); err != nil {
			return nil, fmt.Errorf("initrd not found at %s", rc.initrd)
		}
	}
	return rc, nil
}

// parseSize parses a byte count with an optional K, M or G suffix.
func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad size %q: want a positive number with an optional K, M or G suffix", s)
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
	kernel, err := os.ReadFile(rc.kernel)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor run: %v\n", err)
		return 2
	}
	var initrd []byte
	if rc.initrd != "" {
		if initrd, err = os.ReadFile(rc.initrd); err != nil {
			fmt.Fprintf(stderr, "pvisor run: %v\n", err)
			return 2
		}
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
	cmdline := rc.cmdline
	console := io.Writer(stdout)
	var exitScan *exitScanner
	if len(rc.guestCmd) > 0 {
		cmdline = strings.TrimSpace(cmdline + " pvisor.cmd=" + base64.StdEncoding.EncodeToString([]byte(shellJoin(rc.guestCmd))))
		exitScan = &exitScanner{w: stdout}
		console = exitScan
	}
	// An interactive terminal goes raw so keys reach the guest; Ctrl-]
	// stops the VM. (vm is assigned below, before any input is read.)
	var vm *hv.VM
	in := io.Reader(os.Stdin)
	if restore, ok := rawTerminal(int(os.Stdin.Fd())); ok {
		defer restore()
		in = &escapeReader{r: os.Stdin, quit: func() { vm.Stop(0, "stopped from the console (Ctrl-])") }}
		fmt.Fprintln(stderr, "pvisor: console attached; Ctrl-] stops the VM\r")
	}
	vm, err = hv.New(hv.Config{Trace: traceW,
		Kernel: kernel, Initrd: initrd, Cmdline: cmdline, MemBytes: rc.memBytes, VCPUs: rc.vcpus,
		Mode: rc.mode, Budget: mm.NewBudget(hostBudget()), Console: console, ConsoleIn: in, Strict: rc.strict,
	})
	if err != nil {
		fmt.Fprintf(stderr, "pvisor run: %s: %v\n", rc.kernel, err)
		return 2
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
			vm.Stop(code, "stopped by "+s.String())
		}
	}()
	st := vm.Run()
	if rc.stats {
		printStats(stderr, vm)
	}
	if exitScan != nil {
		if code, ok := exitScan.status(); ok && st.Code == 0 {
			return code
		} else if !ok && st.Code == 0 {
			fmt.Fprintln(stderr, "pvisor: the guest stopped without reporting the command's status (pvisor-exit)")
			return 1
		}
	}
	if st.Code != 0 {
		fmt.Fprintf(stderr, "pvisor: VM stopped: %s (status %d)\n", st.Reason, st.Code)
	}
	return st.Code
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

func printStats(w io.Writer, vm *hv.VM) {
	es := vm.EngineStats(0)
	hc, priv, before, started := vm.StatsSnapshot()
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
}
