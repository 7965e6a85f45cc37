package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// `pvisor bench smp`: guestkit/pvbench's multiprocessor benchmarks (ipi,
// shootdown, futex) on a guest of several vCPUs, and the parallel speedup:
// the same CPU-bound work (par) on one vCPU and on several, side by side in
// each round, in every mode: the patched kernel's vcpu_up and event-channel
// IPIs in pv mode, the unmodified kernel's LAPICs in hwassist and trap.

// smpBenches are the benchmarks run on several vCPUs.
var smpBenches = []string{"ipi", "shootdown", "futex", "par"}

func runBenchSMP(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench smp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pvKernel := fs.String("pv-kernel", "build/guest/vmlinux-pv", "the patched kernel (pv mode)")
	nativeKernel := fs.String("native-kernel", "build/guest/vmlinux-native", "the unpatched kernel (hwassist and trap modes)")
	initrd := fs.String("initrd", "build/guest/initramfs.cpio.gz", "initramfs with /bin/pvbench")
	rounds := fs.Int("rounds", 1, "rounds, modes and vCPU counts interleaved; the table shows medians")
	vcpus := fs.Int("vcpus", 2, "vCPUs of the multiprocessor guest (at least 2)")
	modesFlag := fs.String("modes", "pv,hwassist,trap", "modes to run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rounds < 1 || *vcpus < 2 {
		fmt.Fprintln(stderr, "pvisor bench smp: --rounds must be at least 1 and --vcpus at least 2")
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "pvisor bench smp: unexpected arguments %q: the benchmarks are %s\n", fs.Args(), strings.Join(smpBenches, " "))
		return 2
	}
	modes, err := parseBenchModes(*modesFlag, *pvKernel, *nativeKernel)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench smp: --modes: %v\n", err)
		return 2
	}
	rd, err := readFile("initrd", *initrd, linuxBenchMem)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor bench smp: %v: run `make guest guest-pv`\n", err)
		return 2
	}
	run := modes
	// Columns: each mode on N vCPUs, then on one (par only).
	var cols []linuxBenchMode
	for _, bm := range run {
		n, one := bm, bm
		n.vcpus, one.vcpus = *vcpus, 1
		cols = append(cols, n, one)
	}
	results := make([]map[string][]opResult, len(cols))
	for i := range cols {
		results[i] = map[string][]opResult{}
	}
	for r := 0; r < *rounds; r++ {
		for i, bm := range cols {
			only := smpBenches
			if bm.vcpus == 1 {
				only = []string{"par"}
			}
			fmt.Fprintf(stderr, "pvisor bench smp: round %d/%d, %v on %d vCPU(s) ...\n", r+1, *rounds, bm.mode, bm.vcpus)
			res, err := runLinuxBench(bm, rd, only)
			if err != nil {
				fmt.Fprintf(stderr, "pvisor bench smp: %v\n", err)
				return 1
			}
			for _, o := range res {
				results[i][o.name] = append(results[i][o.name], o)
			}
		}
	}
	printSMPBench(stdout, cols, results, *rounds)
	return 0
}

func printSMPBench(w io.Writer, cols []linuxBenchMode, results []map[string][]opResult, rounds int) {
	fmt.Fprintf(w, "Linux 6.12 under pvisor (engine interp), several vCPUs: guestkit/pvbench, median of %d round(s)\n", rounds)
	fmt.Fprintf(w, "time per operation by the guest's clock; exits and hypercalls per operation (all vCPUs)\n\n")
	fmt.Fprintf(w, "%-10s %-9s %6s %12s %9s %10s  %s\n", "operation", "mode", "vcpus", "time/op", "exits/op", "hcalls/op", "exits by reason")
	for _, op := range smpBenches {
		for i, bm := range cols {
			rs := results[i][op]
			if len(rs) == 0 {
				continue
			}
			m := median(rs)
			total, top := exitSummary(m.exits)
			fmt.Fprintf(w, "%-10s %-9s %6d %12s %9s %10s  %s\n", op, bm.mode, bm.vcpus, fmtNs(m.guestNs), fmtCount(total), fmtCount(m.hcalls), top)
		}
	}
	fmt.Fprintln(w)
	for i := 0; i+1 < len(cols); i += 2 {
		n, one := results[i]["par"], results[i+1]["par"]
		if len(n) == 0 || len(one) == 0 {
			continue
		}
		tn, t1 := median(n).guestNs, median(one).guestNs
		fmt.Fprintf(w, "parallel speedup, %v: par on %d vCPUs %.2fx faster than on 1 (%s against %s per operation)\n",
			cols[i].mode, cols[i].vcpus, t1/tn, fmtNs(tn), fmtNs(t1))
	}
}
