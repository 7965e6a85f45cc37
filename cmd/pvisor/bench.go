package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/pvisor/pvisor/hv"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/mm"
)

func init() {
	register(command{"bench", "run benchmarks: bench linux (Linux workloads per mode), bench io (virtio devices per transport), bench snapshot, bench hypercall", runBench})
}

// hypercallBench is one row of `pvisor bench hypercall`: a test-guest bench
// mode run in one virtualization mode.
type hypercallBench struct {
	name  string // what is measured
	guest string // the test guest's bench= mode
	mode  cpu.Mode
}

// benchMem is the memory of a hypercall benchmark's VM.
const benchMem = 64 << 20

var hypercallBenches = []hypercallBench{
	{"null hypercall", "hypercall", cpu.ModePV},
	{"cpuid", "cpuid", cpu.ModePV},
	{"cpuid", "cpuid", cpu.ModeTrap},
	{"cpuid", "cpuid", cpu.ModeHWAssist},
	{"out 0x80", "out", cpu.ModeTrap},
	{"out 0x80", "out", cpu.ModeHWAssist},
	{"mov cr3", "cr3", cpu.ModeTrap},
	{"mov cr3", "cr3", cpu.ModeHWAssist},
	{"pte update", "ptebatch", cpu.ModePV},
	{"pte update", "pte", cpu.ModeTrap},
	{"pte update", "pte", cpu.ModeHWAssist},
}

var benchLineRE = regexp.MustCompile(`bench (\S+) iters=(\d+) tsc=(\d+)`)

// benchResult is one measured row.
type benchResult struct {
	hypercallBench
	iters      uint64
	nsPerOp    float64
	exitsPerOp float64
	topExit    string
	insPerOp   float64
}

func runBench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "linux" {
		return runBenchLinux(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "io" {
		return runBenchIO(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "smp" {
		return runBenchSMP(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "snapshot" {
		return runBenchSnapshot(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "hypercall" {
		fmt.Fprintln(stderr, "usage: pvisor bench linux [--rounds N] [--modes pv,hwassist,trap] [BENCH...]\n"+
			"       pvisor bench io [--rounds N] [--modes pv,hwassist,trap] [--qemu=false] [BENCH...]\n"+
			"       pvisor bench smp [--rounds N] [--vcpus N] [--modes pv,hwassist,trap]\n"+
			"       pvisor bench snapshot [--rounds N]\n"+
			"       pvisor bench hypercall [--iters N] [--kernel build/testguest.elf]")
		return 2
	}
	fs := flag.NewFlagSet("bench hypercall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iters := fs.Uint64("iters", 100000, "iterations per benchmark")
	kernel := fs.String("kernel", "build/testguest.elf", "the test guest")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	img, err := readFile("kernel", *kernel, benchMem)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench: %v: run `make testguest` or pass --kernel\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "engine interp, %d iterations each; ns/op from the guest's TSC (1 GHz, host clock)\n\n", *iters)
	fmt.Fprintf(stdout, "%-15s %-9s %10s %9s %-11s %9s\n", "operation", "mode", "ns/op", "exits/op", "exit", "insns/op")
	var base float64
	for _, b := range hypercallBenches {
		r, err := measure(img, b, *iters)
		if err != nil {
			fmt.Fprintf(stderr, "pvisor bench: %s in %v: %v\n", b.name, b.mode, err)
			return 1
		}
		if b.guest == "hypercall" {
			base = r.nsPerOp
		}
		ratio := ""
		if base > 0 && b.guest != "hypercall" {
			ratio = fmt.Sprintf("  %.1fx null hypercall", r.nsPerOp/base)
		}
		fmt.Fprintf(stdout, "%-15s %-9s %10.1f %9.2f %-11s %9.1f%s\n", r.name, r.mode, r.nsPerOp, r.exitsPerOp, r.topExit, r.insPerOp, ratio)
	}
	return 0
}

// measure boots the test guest in bench mode and reads its result line and
// the engine's exit counters.
func measure(img []byte, b hypercallBench, iters uint64) (benchResult, error) {
	var out bytes.Buffer
	vm, err := hv.New(hv.Config{Kernel: img, Cmdline: fmt.Sprintf("bench=%s iters=%d", b.guest, iters),
		MemBytes: benchMem, Mode: b.mode, Budget: mm.NewBudget(1 << 30), Console: &out})
	if err != nil {
		return benchResult{}, err
	}
	st := vm.Run()
	m := benchLineRE.FindSubmatch(out.Bytes())
	if st.Code != 0 || m == nil {
		return benchResult{}, fmt.Errorf("guest did not report (status %d: %s)", st.Code, st.Reason)
	}
	n, _ := strconv.ParseUint(string(m[2]), 10, 64)
	tsc, _ := strconv.ParseUint(string(m[3]), 10, 64)
	es := vm.EngineStats(0)
	var total, top uint64
	topName := "-"
	for r, c := range es.Exits {
		if cpu.ExitReason(r) == cpu.ExitBudget || cpu.ExitReason(r) == cpu.ExitKick {
			continue
		}
		total += c
		if c > top {
			top, topName = c, cpu.ExitReason(r).String()
		}
	}
	if float64(top) < 0.5*float64(n) {
		topName = "-"
	}
	return benchResult{hypercallBench: b, iters: n, nsPerOp: float64(tsc) / float64(n),
		exitsPerOp: float64(total) / float64(n), topExit: topName,
		insPerOp: float64(es.Instructions) / float64(n)}, nil
}
