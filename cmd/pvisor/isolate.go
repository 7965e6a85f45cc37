package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pvisor/pvisor/sched/cgroup"
	"golang.org/x/sys/unix"
)

// isolateOverhead is the memory a VM process may use beyond its guest's
// RAM (the Go runtime, decoded-code caches, device buffers), added to
// its memory cgroup's limit.
const isolateOverhead = 256 << 20

// checkIsolate refuses the run flags that assume one process.
func checkIsolate(rc *runConfig) error {
	switch {
	case rc.restore != "":
		return errors.New("--isolate boots VMs: not with --restore (restore each VM in a pvisor run of its own)")
	case rc.control != "":
		return errors.New("--isolate: not with --control yet (each VM is a process of its own; give each a pvisor run with --control)")
	case rc.trace != "":
		return errors.New("--isolate: not with --trace (trace one VM in a pvisor run of its own)")
	case len(rc.uplinks) > 0:
		return errors.New("--isolate: not with --uplink: the switch's segments do not span processes yet")
	}
	for _, s := range rc.vms {
		if len(s.nics) > 0 {
			return fmt.Errorf("--isolate: %s has a NIC: the switch's segments do not span processes yet", s.name)
		}
	}
	var sum uint64
	for _, s := range rc.vms {
		sum += s.memBytes
	}
	if sum > rc.memBudget {
		return fmt.Errorf("the VMs' memory (%d MiB) exceeds --mem-budget (%d MiB)", sum>>20, rc.memBudget>>20)
	}
	return nil
}

// isolatedVM is one VM's process under pvisor run --isolate.
type isolatedVM struct {
	spec vmSpec
	cmd  *exec.Cmd
	cg   *cgroup.Group
	err  error // how it ended
	cpu  time.Duration
}

// runIsolated runs each VM of rc in a pvisor run process of its own
// (which confines itself as any pvisor run does), held by control groups
// to the VM's CPU weight and cap and memory. args are this run's
// arguments; each child gets them again with --isolated-vm NAME, which
// keeps that one VM. One VM's process dying stops only that VM.
func runIsolated(rc *runConfig, args []string, stderr io.Writer) int {
	if err := checkIsolate(rc); err != nil {
		fmt.Fprintf(stderr, "pvisor run: %v\n", err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "pvisor run: --isolate: %v\n", err)
		return 2
	}
	var childArgs []string
	for i, a := range args {
		if a == "--" {
			childArgs = append(childArgs, args[i:]...)
			break
		}
		if a == "--isolate" || a == "-isolate" || strings.HasPrefix(a, "--isolate=") || strings.HasPrefix(a, "-isolate=") {
			continue
		}
		childArgs = append(childArgs, a)
	}
	runGroup := fmt.Sprintf("pvisor-run-%d", os.Getpid())
	parent, err := cgroup.New(runGroup)
	if err != nil {
		fmt.Fprintf(stderr, "pvisor run: --isolate: %v\n", err)
		return 2
	}
	defer parent.Remove()
	vms := make([]*isolatedVM, len(rc.vms))
	defer func() {
		for _, v := range vms {
			if v != nil && v.cg != nil {
				v.cg.Remove()
			}
		}
	}()
	for i, s := range rc.vms {
		v := &isolatedVM{spec: s}
		vms[i] = v
		if v.cg, err = vmGroup(runGroup+"/"+s.name, s); err != nil {
			fmt.Fprintf(stderr, "pvisor run: --isolate: %s: %v\n", s.name, err)
			killAll(vms)
			return 2
		}
		v.cmd = exec.Command(exe, append([]string{"run", "--isolated-vm", s.name}, childArgs...)...)
		v.cmd.Stdout, v.cmd.Stderr = os.Stdout, os.Stderr
		// A VM process outlives no parent: were this process killed, its
		// VMs stop.
		v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := v.cmd.Start(); err != nil {
			fmt.Fprintf(stderr, "pvisor run: --isolate: %s: %v\n", s.name, err)
			killAll(vms)
			return 2
		}
		if err := v.cg.Add(v.cmd.Process.Pid); err != nil {
			fmt.Fprintf(stderr, "pvisor run: --isolate: %s: %v\n", s.name, err)
			killAll(vms)
			return 2
		}
		capText := "no cap"
		if s.cap > 0 {
			capText = fmt.Sprintf("cap %d%%", s.cap)
		}
		fmt.Fprintf(stderr, "pvisor: %s: VM process %d (cgroup v%d: weight %d, %s, memory %d MiB)\n", s.name, v.cmd.Process.Pid,
			v.cg.Version(), weightOf(s), capText, (s.memBytes+isolateOverhead)>>20)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			for _, v := range vms {
				v.cmd.Process.Signal(s)
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, v := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := v.cmd.Wait()
			cpu, _ := v.cg.CPUUsage()
			mu.Lock()
			defer mu.Unlock()
			v.err, v.cpu = err, cpu
			if _, sig := processEnd(err); sig != 0 {
				fmt.Fprintf(stderr, "pvisor: %s: %s: this VM stopped, the others run on\n", v.spec.name, killedReason(v.cmd.Process.Pid, sig))
			}
		}()
	}
	wg.Wait()
	code := 0
	for _, v := range vms {
		if rc.stats {
			fmt.Fprintf(stderr, "pvisor: %s: host CPU %.3f s (its cgroup)\n", v.spec.name, v.cpu.Seconds())
		}
		c, _ := processEnd(v.err)
		if code == 0 {
			code = c
		}
	}
	return code
}

func weightOf(s vmSpec) int {
	if s.weight == 0 {
		return 256
	}
	return s.weight
}

// vmGroup makes the VM's control groups with its bounds.
func vmGroup(name string, s vmSpec) (*cgroup.Group, error) {
	g, err := cgroup.New(name)
	if err != nil {
		return nil, err
	}
	err = g.SetCPUWeight(weightOf(s))
	if err == nil {
		err = g.SetCPUCap(s.cap)
	}
	if err == nil {
		err = g.SetMemoryLimit(s.memBytes + isolateOverhead)
	}
	if err == nil {
		err = g.SetTasks(1024)
	}
	if err != nil {
		g.Remove()
		return nil, err
	}
	return g, nil
}

func killAll(vms []*isolatedVM) {
	for _, v := range vms {
		if v != nil && v.cmd != nil && v.cmd.Process != nil {
			v.cmd.Process.Kill()
			v.cmd.Wait()
		}
	}
}

// processEnd is how a child ended, from its Wait: its exit status (128
// + the signal for one killed by a signal, 1 for a Wait that failed)
// and the signal, if one killed it.
func processEnd(err error) (code int, sig syscall.Signal) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), ws.Signal()
		}
		return ee.ExitCode(), 0
	}
	return 1, 0
}

// killedReason says that VM process pid was killed by sig, and what a
// SIGSYS means.
func killedReason(pid int, sig syscall.Signal) string {
	r := fmt.Sprintf("the VM's process %d was killed by %s", pid, unix.SignalName(sig))
	if sig == syscall.SIGSYS {
		r += ": its seccomp filter stopped a system call outside its profile"
	}
	return r
}
