// Command tracediff finds where pvisor's engine and QEMU part ways while
// booting the same Linux kernel: it runs QEMU (TCG, single-step, CPU log)
// on the bzImage and pvisor (--trace) on the matching vmlinux, streams both
// traces from the kernel's 64-bit entry point on, and reports the first
// instruction where the instruction pointers (and, with -regs, the general
// registers) differ, with the last few states of each side.
//
// QEMU is a test oracle only: install it with apt (qemu-system-x86); it is
// not a dependency of pvisor.
//
//	go run ./cmd/tracediff -bzimage build/guest/bzImage-native \
//	    -vmlinux build/guest/vmlinux-native -initrd build/guest/initramfs.cpio.gz \
//	    -max 20000000
package main

import (
	"bufio"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// state is one instruction's pre-execution state.
type state struct {
	rip  uint64
	gpr  [16]uint64 // RAX RBX RCX RDX RSI RDI RBP RSP R8..R15
	rfl  uint64
	line string
}

// kernelVirtBase is where x86-64 Linux maps its image (__START_KERNEL_map).
const kernelVirtBase uint64 = 0xffffffff80000000

var gprNames = [16]string{"RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "RSP", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}

// parseFields fills st from "NAME=hex" tokens (QEMU pads R8 as "R8 =").
func parseFields(st *state, line string) {
	line = strings.ReplaceAll(line, " =", "=")
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			continue
		}
		switch k {
		case "RIP":
			st.rip = n
		case "RFL":
			st.rfl = n
		default:
			for i, g := range gprNames {
				if g == k {
					st.gpr[i] = n
				}
			}
		}
	}
}

// qemuStates parses QEMU's -d cpu log: each state is a block of lines
// from "RAX=" through the "RIP=" line.
func qemuStates(r io.Reader, out chan<- state) {
	defer close(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var st state
	var text strings.Builder
	var last uint64
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "RAX=") {
			st = state{}
			text.Reset()
		}
		if strings.HasPrefix(l, "RAX=") || strings.HasPrefix(l, "RSI=") || strings.HasPrefix(l, "R8 =") || strings.HasPrefix(l, "R12=") || strings.HasPrefix(l, "RIP=") {
			parseFields(&st, l)
			text.WriteString(l + "\n")
			if strings.HasPrefix(l, "RIP=") {
				st.line = text.String()
				// QEMU single-steps each iteration of a REP string
				// instruction; pvisor traces the instruction once.
				if st.rip != last {
					out <- st
				}
				last = st.rip
			}
		}
	}
}

// pvisorStates parses pvisor's one-line trace.
func pvisorStates(r io.Reader, out chan<- state) {
	defer close(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<16)
	for sc.Scan() {
		var st state
		parseFields(&st, sc.Text())
		st.line = sc.Text()
		out <- st
	}
}

func main() {
	bz := flag.String("bzimage", "build/guest/bzImage-native", "kernel for QEMU")
	vmlinux := flag.String("vmlinux", "build/guest/vmlinux-native", "the same kernel as an ELF vmlinux, for pvisor")
	initrd := flag.String("initrd", "", "initramfs for both")
	cmdline := flag.String("cmdline", "console=ttyS0 panic=-1", "kernel command line for both")
	maxN := flag.Int("max", 10_000_000, "instructions to compare after the entry point")
	regs := flag.Bool("regs", false, "also compare general registers (they differ from the start in pointers the two loaders chose)")
	qemu := flag.String("qemu", "qemu-system-x86_64", "QEMU binary")
	flag.Parse()

	f, err := elf.Open(*vmlinux)
	if err != nil {
		log.Fatalf("tracediff: %v", err)
	}
	entry := f.Entry
	f.Close()

	qargs := []string{"-M", "pc", "-cpu", "base,+fpu,+pae,+cx8,+cmov,+fxsr,+sse,+sse2,+msr,+lm,+syscall,+pse,+pge,+nx",
		"-m", "256", "-nographic", "-no-reboot", "-kernel", *bz, "-append", *cmdline,
		"-singlestep", "-d", "cpu,nochain", "-D", "/dev/stderr",
		// Log only the kernel's virtual range: the firmware and the
		// decompressor (hundreds of millions of instructions) run unlogged.
		"-dfilter", fmt.Sprintf("%#x..0xffffffffffffffff", kernelVirtBase)}
	if *initrd != "" {
		qargs = append(qargs, "-initrd", *initrd)
	}
	qc := exec.Command(*qemu, qargs...)
	// Children die with tracediff, however it ends (a deferred Kill does
	// not run when a signal ends the process).
	qc.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	qlog, err := qc.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := qc.Start(); err != nil {
		log.Fatalf("tracediff: starting QEMU (apt install qemu-system-x86): %v", err)
	}
	defer qc.Process.Kill()

	pargs := []string{"run", "--mode", "hwassist", "--kernel", *vmlinux, "--cmdline", *cmdline, "--trace", "-"}
	if *initrd != "" {
		pargs = append(pargs, "--initrd", *initrd)
	}
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("pvisor-tracediff-%d", os.Getpid()))
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/pvisor").CombinedOutput(); err != nil {
		log.Fatalf("tracediff: building pvisor: %v\n%s", err, out)
	}
	defer os.Remove(bin)
	pc := exec.Command(bin, pargs...)
	pc.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	plog, err := pc.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		log.Fatal(err)
	}
	defer pc.Process.Kill()

	qs, ps := make(chan state, 4096), make(chan state, 4096)
	go qemuStates(qlog, qs)
	go pvisorStates(plog, ps)

	// Both sides start comparing at their first instruction in the kernel's
	// virtual range (startup_64 runs a few hundred instructions at physical
	// addresses first, which QEMU does not log).
	_ = entry
	var q state
	for q = range qs {
		if q.rip >= kernelVirtBase {
			break
		}
	}
	if q.rip < kernelVirtBase {
		log.Fatalf("tracediff: QEMU never reached the kernel's virtual range")
	}
	var p state
	skipped := 0
	for p = range ps {
		if p.rip >= kernelVirtBase {
			break
		}
		skipped++
	}
	fmt.Printf("aligned at %#x (pvisor skipped %d physical-address instructions); comparing up to %d\n", q.rip, skipped, *maxN)
	first := true
	const keep = 8
	var qhist, phist []state
	for i := 0; i < *maxN; i++ {
		if !first {
			var ok bool
			if p, ok = <-ps; !ok {
				fmt.Printf("pvisor's trace ended after %d instructions (VM stopped)\n", i)
				return
			}
			if q, ok = <-qs; !ok {
				fmt.Printf("QEMU's trace ended after %d instructions\n", i)
				return
			}
		}
		first = false
		qhist = append(qhist, q)
		phist = append(phist, p)
		if len(qhist) > keep {
			qhist, phist = qhist[1:], phist[1:]
		}
		diff := q.rip != p.rip
		if *regs && q.gpr != p.gpr {
			diff = true
		}
		if diff {
			fmt.Printf("first divergence at instruction %d after the entry point\n\n", i)
			fmt.Println("QEMU, last states:")
			for _, s := range qhist {
				fmt.Print(s.line)
			}
			fmt.Println("\npvisor, last states:")
			for _, s := range phist {
				fmt.Println(s.line)
			}
			os.Exit(1)
		}
		if i%1_000_000 == 0 && i > 0 {
			fmt.Printf("%d instructions agree\n", i)
		}
	}
	fmt.Printf("%d instructions agree\n", *maxN)
}
