package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/pvisor/pvisor/hv/cpu"
)

func init() {
	register(command{"version", "print the pvisor version", func(args []string, stdout, stderr io.Writer) int {
		fmt.Fprintf(stdout, "pvisor %s\n", version)
		return 0
	}})
	register(command{"cpuid", "print the CPUID leaves every vCPU reports", runCPUID})
	register(command{"exits", "print which instructions exit, per mode", runExits})
}

func runCPUID(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cpuid", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Fprintf(stdout, "%-10s %-8s %-8s %-8s %-8s\n", "leaf", "eax", "ebx", "ecx", "edx")
	maxBasic, _, _, _ := cpu.CPUID(0, 0, 0)
	maxHV, _, _, _ := cpu.CPUID(0x40000000, 0, 0)
	maxExt, _, _, _ := cpu.CPUID(0x80000000, 0, 0)
	for _, r := range [][2]uint32{{0, maxBasic}, {0x40000000, maxHV}, {0x80000000, maxExt}} {
		for l := r[0]; l <= r[1]; l++ {
			a, b, c, d := cpu.CPUID(l, 0, 0)
			fmt.Fprintf(stdout, "0x%08x %08x %08x %08x %08x\n", l, a, b, c, d)
		}
	}
	return 0
}

func runExits(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("exits", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Fprintf(stdout, "%-11s", "class")
	for m := cpu.Mode(0); m < cpu.NumModes; m++ {
		fmt.Fprintf(stdout, " %-10s", m)
	}
	fmt.Fprintln(stdout)
	for c := cpu.Class(0); c < cpu.NumClasses; c++ {
		fmt.Fprintf(stdout, "%-11s", c)
		for m := cpu.Mode(0); m < cpu.NumModes; m++ {
			fmt.Fprintf(stdout, " %-10s", cpu.ExitTable[m][c])
		}
		fmt.Fprintln(stdout)
	}
	return 0
}
