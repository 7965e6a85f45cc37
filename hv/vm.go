package hv

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/interp"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// Config describes a VM.
type Config struct {
	Kernel   []byte // a freestanding ELF64 guest (see docs/boot.md)
	Initrd   []byte
	Cmdline  string
	MemBytes uint64
	VCPUs    int
	Mode     cpu.Mode
	Budget   *mm.Budget
	Console  io.Writer // guest console output
	// ConsoleIn, if set, feeds console_read; each arrival raises
	// VIRQ_CONSOLE on vCPU 0.
	ConsoleIn io.Reader
	// Strict makes any privileged instruction after PV start-up fatal.
	Strict bool
	// Trace, if set, receives one line of CPU state per guest instruction
	// (the interpreter single-steps): for comparing with QEMU (cmd/tracediff).
	Trace io.Writer
	// DeterministicTSC runs the TSC from retired instructions instead of
	// host time (reproducible runs; pvclock then measures instructions).
	DeterministicTSC bool
}

// ExitStatus is how a VM ended.
type ExitStatus struct {
	Code   int    // the status pvisor run exits with
	Reason string // human-readable
}

// Exit codes for ends other than a guest shutdown.
const (
	ExitCrash       = 1
	ExitTripleFault = 125
	ExitEngineStop  = 126
)

// VM is one virtual machine.
type VM struct {
	cfg   Config
	res   *mm.Reservation
	mem   *interp.Memory
	vcpus []*vcpu
	group *sched.Group
	start time.Time

	layout   bootLayout
	linux    bool // booted through the Linux boot protocol
	measured hypercall.MeasuredBoot
	memmap   []hypercall.MemmapEntry

	ev  events
	in  consoleIn
	dev *devices // legacy PC; nil in pv mode

	mu      sync.Mutex
	stopped bool // mu protects stopped and status
	status  ExitStatus
	done    chan struct{}

	stats Stats
}

// Stats are counters readable from outside the guest.
type Stats struct {
	mu         sync.Mutex
	Hypercalls [64]atomic.Uint64 // by number (beyond 63: counted in [63]); no lock
	Privileged map[string]uint64 // privileged-instruction exits after PV start, by mnemonic
	PrivBefore uint64            // privileged-instruction exits before PV start
	IOPorts    map[uint16]uint64 // port I/O exits by port (trap and hwassist)
	PVStarted  bool
}

// New creates a VM: admits its memory, loads the guest, prepares vCPUs.
func New(cfg Config) (*VM, error) {
	if cfg.VCPUs < 1 {
		cfg.VCPUs = 1
	}
	if cfg.VCPUs > 1 {
		return nil, errors.New("hv: more than one vCPU is not supported yet")
	}
	if cfg.Budget == nil {
		return nil, errors.New("hv: no memory budget")
	}
	if cfg.Console == nil {
		cfg.Console = io.Discard
	}
	if cfg.MemBytes < minMem {
		return nil, fmt.Errorf("hv: %d MiB of memory is too little: at least %d MiB", cfg.MemBytes>>20, minMem>>20)
	}
	res, err := cfg.Budget.Reserve(cfg.MemBytes)
	if err != nil {
		return nil, err
	}
	vm := &VM{cfg: cfg, res: res, mem: interp.NewMemory(res.RAM()), done: make(chan struct{}), start: time.Now()}
	vm.stats.Privileged = map[string]uint64{}
	vm.stats.IOPorts = map[uint16]uint64{}
	vm.measured = hypercall.MeasuredBoot{Version: 1, Algo: hypercall.DigestSHA256,
		Kernel: sha256.Sum256(cfg.Kernel), Cmdline: sha256.Sum256([]byte(cfg.Cmdline))}
	if cfg.Initrd != nil {
		vm.measured.Initrd = sha256.Sum256(cfg.Initrd)
	}
	entry, err := vm.load()
	if err != nil {
		res.Release()
		return nil, err
	}
	vm.ev.init()
	for i := 0; i < cfg.VCPUs; i++ {
		c, err := interp.New(interp.Config{Mem: vm.mem, Mode: cfg.Mode, ID: uint32(i), TSCHostClock: !cfg.DeterministicTSC})
		if err != nil {
			res.Release()
			return nil, err
		}
		if cfg.Trace != nil && i == 0 {
			c.SetTrace(cfg.Trace)
		}
		v := newVCPU(vm, i, c)
		if err := vm.initCPU(v.cpu, entry); err != nil {
			res.Release()
			return nil, err
		}
		vm.vcpus = append(vm.vcpus, v)
	}
	vm.initDevices()
	return vm, nil
}

// Run starts the vCPUs and waits until the VM stops.
func (vm *VM) Run() ExitStatus {
	vm.in.start(vm.cfg.ConsoleIn, vm)
	vm.group = sched.NewGroup()
	for _, v := range vm.vcpus {
		vm.group.Start(v)
	}
	<-vm.done
	vm.group.Stop()
	for _, v := range vm.vcpus {
		if t, ok := v.cpu.(interface{ FlushTrace() }); ok {
			t.FlushTrace()
		}
	}
	for _, v := range vm.vcpus {
		v.stopTimer()
	}
	vm.stopDevices()
	vm.res.Release()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.status
}

// Stop stops the VM from outside with the given status.
func (vm *VM) Stop(code int, reason string) { vm.stop(code, reason) }

func (vm *VM) stop(code int, reason string) {
	vm.mu.Lock()
	if vm.stopped {
		vm.mu.Unlock()
		return
	}
	vm.stopped = true
	vm.status = ExitStatus{Code: code, Reason: reason}
	vm.mu.Unlock()
	close(vm.done)
	for _, v := range vm.vcpus {
		v.wakeUp()
		v.cpu.Kick()
	}
}

func (vm *VM) isStopped() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.stopped
}

// EngineStats returns the engine counters of vCPU i.
func (vm *VM) EngineStats(i int) cpu.Stats { return vm.vcpus[i].cpu.Stats() }

// StatsSnapshot returns a copy of the hypervisor counters.
func (vm *VM) StatsSnapshot() (hcalls [64]uint64, priv map[string]uint64, before uint64, pvStarted bool) {
	vm.stats.mu.Lock()
	defer vm.stats.mu.Unlock()
	priv = map[string]uint64{}
	for k, v := range vm.stats.Privileged {
		priv[k] = v
	}
	for i := range hcalls {
		hcalls[i] = vm.stats.Hypercalls[i].Load()
	}
	return hcalls, priv, vm.stats.PrivBefore, vm.stats.PVStarted
}

// IOPortCounts returns port I/O exits by port.
func (vm *VM) IOPortCounts() map[uint16]uint64 {
	vm.stats.mu.Lock()
	defer vm.stats.mu.Unlock()
	m := make(map[uint16]uint64, len(vm.stats.IOPorts))
	for k, v := range vm.stats.IOPorts {
		m[k] = v
	}
	return m
}

// guest returns guest-physical [gpa, gpa+n) or false.
func (vm *VM) guest(gpa, n uint64) ([]byte, bool) { return vm.res.Slice(gpa, n) }

// guestWrite copies b to guest-physical gpa (the caller checked the range)
// and tells the engine, so decoded code there is dropped.
func (vm *VM) guestWrite(gpa uint64, b []byte) bool {
	dst, ok := vm.guest(gpa, uint64(len(b)))
	if !ok {
		return false
	}
	copy(dst, b)
	vm.mem.Invalidate(gpa, uint64(len(b)))
	return true
}
