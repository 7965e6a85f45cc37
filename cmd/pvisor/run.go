package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/pvisor/pvisor/hv/cpu"
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
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	rc := &runConfig{kernel: *kernel, initrd: *initrd, cmdline: *cmdline, vcpus: *vcpus, accel: *accel}
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
	// The VM core (loader, exit loop, devices) is not in this build yet:
	// say so plainly rather than pretend to boot.
	fmt.Fprintf(stderr, "pvisor run: %s: booting guests needs the VM core, which this build does not have yet\n", rc.kernel)
	return 3
}
