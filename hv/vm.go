package hv

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/interp"
	"github.com/pvisor/pvisor/hv/loader"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/vclock"
	"github.com/pvisor/pvisor/hv/virtio"
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
	// Console receives guest console output, on a goroutine of its own: a
	// writer that blocks never blocks the guest or its stop; what it does
	// not take in time is dropped and counted in ExitStatus.ConsoleDropped.
	Console io.Writer
	// ConsoleIn, if set, feeds console_read; each arrival raises
	// VIRQ_CONSOLE on vCPU 0.
	ConsoleIn io.Reader
	// Strict makes any privileged instruction after PV start-up fatal.
	Strict bool
	// JIT turns the interpreter's binary translator on (hv/interp,
	// jit.go): hot blocks run as host code, the rest in the interpreter.
	// Ignored where the host cannot run translated code.
	JIT bool
	// Trace, if set, receives one line of CPU state per guest instruction
	// (the interpreter single-steps): for comparing with QEMU (cmd/tracediff).
	Trace io.Writer
	// DeterministicTSC runs the TSC from retired instructions instead of
	// the VM's clock (reproducible runs; pvclock then measures
	// instructions).
	DeterministicTSC bool
	// Clock chooses what the guest's clock does over a pause (Pause,
	// Resume): vclock.Frozen (the default, `--clock paused`) stops it, so
	// the guest sees no jump; vclock.Live (`--clock host`) lets it catch
	// up with host time at Resume. Either way the wall clock the guest is
	// given reads the host's date after a resume (vclock).
	Clock vclock.Policy

	// Name identifies the VM in the scheduler's accounting and in messages.
	Name string
	// Sched runs the vCPUs. VMs that share one are held to their weights
	// and caps against each other; nil gives the VM a scheduler of its own
	// (one worker per host CPU, or per CPU of CPUs), started and stopped
	// by Run.
	Sched *sched.Scheduler
	// CPUWeight is the VM's share under contention (0 = sched.DefaultWeight);
	// CPUCap its ceiling in percent of one host CPU (0 = none).
	CPUWeight int
	CPUCap    int
	// CPUs is the VM's cpuset on its scheduler (sched.VM.SetCPUs): its
	// vCPUs run only on the workers bound to these host CPUs, which the
	// scheduler must have (sched.Config.CPUs); nil runs them on the CPUs
	// no VM reserves. With Sched nil, the VM's own scheduler has one
	// bound worker per CPU listed. CPUsExclusive also reserves the CPUs
	// for the VM: no other VM's vCPU runs on them. New returns the
	// scheduler's refusal (a CPU without a worker, one another VM
	// reserves, and the like).
	CPUs          []int
	CPUsExclusive bool

	// Disks are virtio-blk devices: on the virtio-mmio transport in trap
	// and hwassist mode (mmiodev.go), in hypercall-transport slots in pv
	// mode (pvdev.go).
	Disks []Disk
	// RNG adds a virtio-rng device after the disks, on the same transport.
	RNG bool
	// NICs are virtio-net devices on the same transport, after the disks,
	// each a port of Switch on its segment (netdev.go).
	NICs []NIC
	// Switch carries the NICs' frames: VMs given the same Switch share
	// its segments. Required with NICs.
	Switch *netswitch.Switch

	// Lineage records the VM's patch level on the host (lineage.go); nil
	// records nothing. LineageID names the lineage (zero: a new one, the
	// VM's first generation ID) and LineageHighest is its record's
	// highest patch level so far.
	Lineage        LineageRecorder
	LineageID      [16]byte
	LineageHighest uint64
}

// ExitStatus is how a VM ended.
type ExitStatus struct {
	Code   int    // the status pvisor run exits with
	Reason string // human-readable
	// External: stopped from outside (Stop), not by the guest or a fault.
	External bool
	// ConsoleDropped counts console output bytes lost because the
	// console's writer did not take them (see Config.Console).
	ConsoleDropped uint64
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
	sched *sched.Scheduler
	own   bool // the scheduler is the VM's own
	svm   *sched.VM
	// clock is the VM's time: every guest-visible time source (pvclock,
	// the TSC, timer deadlines, the PIT, the RTC, the wall clock) reads
	// it, and Pause stops it.
	clock *vclock.Clock

	kind      loader.Kind // how the kernel booted
	bootRegs  cpu.Regs    // the vCPU's entry state, from the boot plan
	bootSRegs cpu.SRegs
	measured  hypercall.MeasuredBoot
	memmap    []hypercall.MemmapEntry

	ev events
	// evMu serializes what the vCPUs do to the VM's shared state: every
	// hypercall but those on the caller's own state (ownCalls), and the
	// raising of events; ev is under it.
	evMu sync.Mutex
	in   consoleIn
	out  *consoleOut // carries cfg.Console's output

	balloonChanged atomic.Bool  // SetMemTarget: raise VIRQ_BALLOON on vCPU 0
	declared       atomic.Bool  // declare_version succeeded: every call is open
	dev            *devices     // legacy PC; nil in pv mode
	mmioMu         sync.Mutex   // serializes the virtio-mmio windows' accesses and lines (mmiodev.go)
	apic           *apics       // LAPICs, ACPI tables, AP start-up (apic.go); nil with one vCPU or in pv mode
	mmio           []*mmioDev   // virtio-mmio devices (mmiodev.go)
	pv             pvDevices    // hypercall-transport slots (pvdev.go)
	hotNICs        atomic.Int32 // NICs hot-plugged so far, for their derived MACs (hotplug.go)
	// disks are the backends of cfg.Disks, in order (diskstate.go).
	disks []*virtio.Block
	// restoreWarnings are what a restore could not bring back as it was.
	restoreWarnings []string

	mu      sync.Mutex
	stopped bool // mu protects stopped and status
	status  ExitStatus
	done    chan struct{}

	pause pauseState // Pause and Resume (pause.go)

	// genID is the VM generation ID (vm_generation); lineage names the
	// line of snapshots and restores the VM belongs to: a booted VM starts
	// one (with its first generation ID), a restored VM keeps its
	// snapshot's.
	genID, lineage [16]byte
	// resumeOnRun: a restored VM waits paused until Run starts it.
	resumeOnRun bool
	// lin is the VM's patch level and lineage (lineage.go).
	lin lineageState
	// genChanged: the generation ID is new (a restore): raise
	// VIRQ_GENERATION on vCPU 0.
	genChanged atomic.Bool
	// intro is the VM's introspection grants, as a monitor and as a
	// target (introspect.go).
	intro introState

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
	// Refused counts hypercalls the hypervisor refused outright: an
	// unknown or retired number (-ENOSYS), a call before declare_version
	// (-EPROTO), a call the VM has no right to (-EPERM). No lock.
	Refused atomic.Uint64
	// TLBShootdowns counts mmu_flush_tlb_mask calls. No lock.
	TLBShootdowns atomic.Uint64
}

// New creates a VM: admits its memory, loads the guest, prepares vCPUs.
func New(cfg Config) (*VM, error) {
	if cfg.VCPUs < 1 {
		cfg.VCPUs = 1
	}
	if cfg.VCPUs > hypercall.MaxVCPUs {
		return nil, fmt.Errorf("hv: %d vCPUs: at most %d", cfg.VCPUs, hypercall.MaxVCPUs)
	}
	if err := cfg.checkAPICs(); err != nil {
		return nil, err
	}
	if cfg.Budget == nil {
		return nil, errors.New("hv: no memory budget")
	}
	if cfg.Console == nil {
		cfg.Console = io.Discard
	}
	if cfg.MemBytes < loader.MinMem {
		return nil, fmt.Errorf("%d MiB of guest memory is too little: give at least --mem %dM", cfg.MemBytes>>20, loader.MinMem>>20)
	}
	if cfg.CPUWeight < 0 || cfg.CPUWeight > sched.MaxWeight {
		return nil, fmt.Errorf("hv: cpu weight %d: want 1..%d (0 for the default %d)", cfg.CPUWeight, sched.MaxWeight, sched.DefaultWeight)
	}
	if cfg.CPUCap < 0 {
		return nil, fmt.Errorf("hv: cpu cap %d%%: want 0 (none) or more", cfg.CPUCap)
	}
	if cfg.Name == "" {
		cfg.Name = "vm"
	}
	if err := checkDisks(&cfg); err != nil {
		return nil, err
	}
	res, err := cfg.Budget.Reserve(cfg.MemBytes)
	if err != nil {
		return nil, err
	}
	if cfg.Clock > vclock.Live {
		res.Release()
		return nil, fmt.Errorf("hv: clock policy %d: want vclock.Frozen or vclock.Live", cfg.Clock)
	}
	gen, err := newGenerationID()
	if err != nil {
		res.Release()
		return nil, err
	}
	vm := &VM{res: res, mem: interp.NewMemory(res.RAM()), done: make(chan struct{}), clock: vclock.New(cfg.Clock), genID: gen, lineage: gen}
	if cfg.LineageID != ([16]byte{}) {
		vm.lineage = cfg.LineageID
	}
	vm.lin.rec, vm.lin.cur.Highest = cfg.Lineage, cfg.LineageHighest
	vm.out = newConsoleOut(cfg.Console, func(reason string) { vm.stop(ExitEngineStop, reason) })
	cfg.Console = vm.out
	vm.cfg = cfg
	if err := vm.openDisks(); err != nil {
		res.Release()
		return nil, err
	}
	vm.cfg.Cmdline += vm.mmioCmdline()
	cfg = vm.cfg
	fail := func(err error) (*VM, error) {
		vm.closeMMIO()
		vm.closeSlots()
		res.Release()
		return nil, err
	}
	vm.stats.Privileged = map[string]uint64{}
	vm.stats.IOPorts = map[uint16]uint64{}
	vm.measured = Measure(cfg.Kernel, cfg.Initrd, cfg.Cmdline)
	if err := vm.load(); err != nil {
		return fail(err)
	}
	vm.ev.init()
	if err := vm.addVCPUs(true); err != nil {
		return fail(err)
	}
	vm.initDevices()
	if err := vm.initAPICs(true); err != nil {
		return fail(err)
	}
	if err := vm.joinScheduler(); err != nil {
		return fail(err)
	}
	return vm, nil
}

// newGenerationID returns a fresh random VM generation ID.
func newGenerationID() ([16]byte, error) {
	var id [16]byte
	if _, err := io.ReadFull(rand.Reader, id[:]); err != nil {
		return id, fmt.Errorf("hv: no random VM generation ID: %v", err)
	}
	return id, nil
}

// Measure is the boot measurement of a VM booted from kernel, initrd (nil:
// none) and cmdline, as measured_boot gives it to the guest: the SHA-256
// of each, the initrd's zero when there is none.
func Measure(kernel, initrd []byte, cmdline string) hypercall.MeasuredBoot {
	m := hypercall.MeasuredBoot{Version: 1, Algo: hypercall.DigestSHA256,
		Kernel: sha256.Sum256(kernel), Cmdline: sha256.Sum256([]byte(cmdline))}
	if initrd != nil {
		m.Initrd = sha256.Sum256(initrd)
	}
	return m
}

// GenerationID returns the VM generation ID: random for a booted VM, new
// for every restore of a snapshot (vm_generation gives it to the guest).
func (vm *VM) GenerationID() [16]byte { return vm.genID }

// addVCPUs creates the configured vCPUs on the engine; boot puts the
// loader's entry state in them (a restore puts the saved state instead).
func (vm *VM) addVCPUs(boot bool) error {
	cfg := &vm.cfg
	for i := 0; i < cfg.VCPUs; i++ {
		icfg := interp.Config{Mem: vm.mem, Mode: cfg.Mode, ID: uint32(i), CPUID: cpu.CPUIDConfig{APIC: cfg.hasAPICs()}, JIT: cfg.JIT}
		if !cfg.DeterministicTSC {
			icfg.TSCClock = vm.clock
		}
		c, err := interp.New(icfg)
		if err != nil {
			return err
		}
		if cfg.Trace != nil && i == 0 {
			c.SetTrace(cfg.Trace)
		}
		v := newVCPU(vm, i, c)
		if boot {
			if err := vm.initCPU(v.cpu); err != nil {
				return err
			}
		}
		vm.vcpus = append(vm.vcpus, v)
	}
	return nil
}

// joinScheduler gives the VM its place in the scheduler (its own one if
// the configuration names none, bound to cfg.CPUs if set), with its
// weight, cap and cpuset.
func (vm *VM) joinScheduler() error {
	cfg := &vm.cfg
	if cfg.CPUsExclusive && len(cfg.CPUs) == 0 {
		return errors.New("hv: CPUsExclusive without CPUs: list the host CPUs to reserve for the VM")
	}
	switch {
	case cfg.Sched != nil:
		vm.sched = cfg.Sched
	case len(cfg.CPUs) > 0:
		sc, err := sched.NewChecked(sched.Config{CPUs: cfg.CPUs})
		if err != nil {
			return err
		}
		vm.sched, vm.own = sc, true
	default:
		vm.sched, vm.own = sched.New(sched.Config{}), true
	}
	vm.svm = vm.sched.NewVM(cfg.Name)
	if cfg.CPUWeight != 0 {
		if err := vm.svm.SetWeight(cfg.CPUWeight); err != nil {
			return err
		}
	}
	if err := vm.svm.SetCap(cfg.CPUCap); err != nil {
		return err
	}
	if len(cfg.CPUs) > 0 {
		return vm.svm.SetCPUs(cfg.CPUs, cfg.CPUsExclusive)
	}
	return nil
}

// Run starts the vCPUs and waits until the VM stops. If the VM's own
// scheduler (Config.Sched nil) cannot start, because a worker cannot be
// bound to its host CPU (Config.CPUs; the CPU went offline since New),
// no vCPU runs and the VM stops at once with ExitEngineStop and a reason
// that says why.
func (vm *VM) Run() ExitStatus {
	vm.in.start(vm.cfg.ConsoleIn, vm)
	vm.out.start()
	started := true
	if vm.own {
		if err := vm.sched.Start(); err != nil {
			vm.stop(ExitEngineStop, fmt.Sprintf("the VM's scheduler did not start, so no vCPU ran: %v", err))
			started = false
		}
	}
	if started {
		for _, v := range vm.vcpus {
			v.publish() // a monitor sees the entry (or restored) state until the first slice ends
			v.h.Store(vm.svm.AddVCPU(v))
		}
		if vm.resumeOnRun {
			vm.resumeOnRun = false
			vm.Resume() // an error means it has stopped already
		}
		<-vm.done
		// Memory is released only once no worker runs a vCPU of this VM:
		// each returns Stopped from its next RunFor (stop woke the blocked
		// ones).
		for _, v := range vm.vcpus {
			<-v.exited
		}
	}
	if vm.own {
		vm.sched.Stop()
	}
	for _, v := range vm.vcpus {
		if t, ok := v.cpu.(interface{ FlushTrace() }); ok {
			t.FlushTrace()
		}
	}
	// A Pause or Resume in progress finishes before the memory goes;
	// later ones see the VM stopped and touch nothing.
	vm.pause.mu.Lock()
	vm.pause.mu.Unlock()
	for _, v := range vm.vcpus {
		v.stopTimer()
	}
	vm.stopDevices()
	vm.releaseIntrospection()
	vm.res.Release()
	dropped := vm.out.close()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.status.ConsoleDropped = dropped
	return vm.status
}

// RunAll runs the VMs at once (typically on one shared scheduler) and
// returns their statuses once every one has stopped.
func RunAll(vms []*VM) []ExitStatus {
	out := make([]ExitStatus, len(vms))
	var wg sync.WaitGroup
	for i, vm := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = vm.Run()
		}()
	}
	wg.Wait()
	return out
}

// Stop stops the VM from outside with the given status.
func (vm *VM) Stop(code int, reason string) {
	vm.end(ExitStatus{Code: code, Reason: reason, External: true})
}

func (vm *VM) stop(code int, reason string) { vm.end(ExitStatus{Code: code, Reason: reason}) }

// end stops the VM with status st, unless it has already stopped.
func (vm *VM) end(st ExitStatus) {
	vm.mu.Lock()
	if vm.stopped {
		vm.mu.Unlock()
		return
	}
	vm.stopped = true
	vm.status = st
	vm.mu.Unlock()
	vm.dropGrants() // a grant never outlives either of its VMs
	close(vm.done)
	// A paused VM's vCPUs must run once more to see the stop and leave
	// (Run waits for them): the scheduler takes them back.
	if vm.svm != nil {
		vm.svm.Resume()
	}
	for _, v := range vm.vcpus {
		v.notify()
	}
}

// Done is closed when the VM stops.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Stopped reports whether the VM has stopped (or is stopping).
func (vm *VM) Stopped() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.stopped
}

// CPUStats returns the scheduler's accounting of the VM: CPU time used,
// steal and blocked time, per vCPU and in total.
func (vm *VM) CPUStats() sched.VMStats { return vm.svm.Stats() }

// SetCPUWeight changes the VM's weight while it runs.
func (vm *VM) SetCPUWeight(w int) error { return vm.svm.SetWeight(w) }

// SetCPUCap changes the VM's cap (percent of one host CPU, 0 = none) while
// it runs.
func (vm *VM) SetCPUCap(pct int) error { return vm.svm.SetCap(pct) }

// Kind returns how the VM's kernel boots.
func (vm *VM) Kind() loader.Kind { return vm.kind }

// Name returns the VM's name.
func (vm *VM) Name() string { return vm.cfg.Name }

// EngineStats returns the engine counters of vCPU i. Only once the VM
// has stopped, or from the vCPU's own goroutine; LiveEngineStats is for
// any time.
func (vm *VM) EngineStats(i int) cpu.Stats { return vm.vcpus[i].cpu.Stats() }

// LiveEngineStats returns the engine counters of vCPU i as of the end of
// its last slice (at most one slice old; exact while the VM is paused or
// stopped). Safe from any goroutine.
func (vm *VM) LiveEngineStats(i int) cpu.Stats {
	v := vm.vcpus[i]
	v.statsMu.Lock()
	defer v.statsMu.Unlock()
	return v.statsPub
}

// RefusedHypercalls is Stats.Refused.
func (vm *VM) RefusedHypercalls() uint64 { return vm.stats.Refused.Load() }

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

// Mode returns the VM's virtualization mode.
func (vm *VM) Mode() cpu.Mode { return vm.cfg.Mode }
