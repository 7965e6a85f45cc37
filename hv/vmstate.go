package hv

import (
	"errors"
	"fmt"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/loader"
	"github.com/pvisor/pvisor/hv/vclock"
	"github.com/pvisor/pvisor/hypercall"
)

// VMState is the VM-level part of a snapshot (section tag vm): the
// configuration a restore needs to rebuild the VM, and the hypervisor's
// own state of the VM that no subsystem keeps. The VM generation ID and
// lineage ID are not in it: they are the snapshot's metadata.
type VMState struct {
	// Mode is the virtualization mode (cpu.Mode: pv, trap, hwassist);
	// the snapshot's metadata names it too, and both must agree.
	Mode uint8
	// MemBytes is the guest memory size; the metadata's memory size and
	// the mm section's must equal it.
	MemBytes uint64
	// VCPUs is the number of vCPUs; one vcpu section follows per vCPU.
	VCPUs uint32
	// Kind is how the kernel booted (loader.Kind: freestanding, vmlinux,
	// bzImage). The guest console follows from Mode: the hypercall
	// console in pv mode, the emulated UART in trap and hwassist mode.
	Kind uint8
	// Strict: a privileged instruction after PV start-up stops the VM.
	Strict bool
	// DeterministicTSC: the TSC counts retired instructions instead of
	// following the VM's clock (Config.DeterministicTSC); the engine
	// state's TSC means one or the other, so it is not the operator's to
	// change at restore.
	DeterministicTSC bool
	// ClockPolicy is what the guest's clock does over a pause
	// (vclock.Policy).
	ClockPolicy uint8
	// Clock is the VM's clock: guest time when it was paused for the
	// snapshot. It is always paused (a snapshot is of a paused VM).
	Clock vclock.ClockState
	// Declared: declare_version has succeeded (every call is open, and a
	// privileged instruction counts as a violation).
	Declared bool
	// Measured is the boot measurement measured_boot reports; its kernel
	// digest is the metadata's.
	Measured hypercall.MeasuredBoot
	// Memmap is the memory map memory_map reports, as the loader planned.
	Memmap []hypercall.MemmapEntry
	// BalloonChanged: a new balloon target waits for VIRQ_BALLOON.
	BalloonChanged bool
	// PatchLevel and Release are the VM's patch level (the metadata's
	// too) and the release the guest declared with it (lineage.go).
	PatchLevel uint64
	Release    string
}

// VCPUState is one vCPU in a snapshot (section tag vcpu): the engine's
// whole state and what the hypervisor keeps per vCPU.
type VCPUState struct {
	// Engine is the engine's state (cpu.VCPU.SaveState), hidden state
	// included.
	Engine cpu.EngineState
	// Deadline is the one-shot timer's deadline in guest nanoseconds (the
	// VM's clock), 0 when none is armed.
	Deadline uint64
	// Fired: the timer expired with no unmasked port to take VIRQ_TIMER,
	// and no halt has consumed the expiry yet.
	Fired bool
	// Blocked is why the vCPU's last slice ended blocked: 0 it did not,
	// 1 vcpu_block, 2 HLT. A restored vCPU looks for a wake-up before it
	// runs, as a woken one does.
	Blocked uint8
	// Steal is the steal time, in ns, the guest has been told so far; the
	// restored vCPU's steal clock goes on from it. At most guest time.
	Steal uint64
}

// maxMemmap bounds a restored memory map (the loader writes a handful of
// entries).
const maxMemmap = 128

// saveVM returns the VM's own state. Precondition: paused.
func (vm *VM) saveVM() VMState {
	st := VMState{
		Mode: uint8(vm.cfg.Mode), MemBytes: vm.res.Size(), VCPUs: uint32(len(vm.vcpus)), Kind: uint8(vm.kind),
		Strict: vm.cfg.Strict, DeterministicTSC: vm.cfg.DeterministicTSC, ClockPolicy: uint8(vm.cfg.Clock),
		Clock: vm.clock.Save(), Declared: vm.declared.Load(), Measured: vm.measured,
		Memmap:         append([]hypercall.MemmapEntry(nil), vm.memmap...),
		BalloonChanged: vm.balloonChanged.Load(),
	}
	l := vm.Lineage()
	st.PatchLevel, st.Release = l.PatchLevel, l.Release
	return st
}

// checkVMState checks a VMState for what saveVM could have produced.
func checkVMState(st *VMState) error {
	if cpu.Mode(st.Mode) >= cpu.NumModes {
		return fmt.Errorf("vm: mode %d", st.Mode)
	}
	if st.VCPUs != 1 {
		return fmt.Errorf("vm: %d vCPUs: this pvisor restores VMs of one vCPU", st.VCPUs)
	}
	if st.MemBytes < loader.MinMem || st.MemBytes%hypercall.PageSize != 0 {
		return fmt.Errorf("vm: memory size %#x: want whole pages, at least %d MiB", st.MemBytes, loader.MinMem>>20)
	}
	switch loader.Kind(st.Kind) {
	case loader.Freestanding, loader.Vmlinux, loader.BzImage:
	default:
		return fmt.Errorf("vm: kernel kind %d", st.Kind)
	}
	if vclock.Policy(st.ClockPolicy) > vclock.Live {
		return fmt.Errorf("vm: clock policy %d", st.ClockPolicy)
	}
	if !st.Clock.Paused {
		return errors.New("vm: the clock was running: a snapshot is of a paused VM")
	}
	if st.Measured.Version != 1 || st.Measured.Algo != hypercall.DigestSHA256 {
		return fmt.Errorf("vm: boot measurement version %d algorithm %d", st.Measured.Version, st.Measured.Algo)
	}
	if st.PatchLevel > MaxPatchLevel || len(st.Release) > hypercall.PatchReleaseMax {
		return fmt.Errorf("vm: patch level %d with a release of %d bytes: want at most %d and %d", st.PatchLevel, len(st.Release), uint64(MaxPatchLevel), hypercall.PatchReleaseMax)
	}
	for _, c := range []byte(st.Release) {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("vm: release %q is not printable ASCII", st.Release)
		}
	}
	if len(st.Memmap) == 0 || len(st.Memmap) > maxMemmap {
		return fmt.Errorf("vm: memory map of %d entries: want 1..%d", len(st.Memmap), maxMemmap)
	}
	for i, e := range st.Memmap {
		if e.Size == 0 || e.Addr+e.Size < e.Addr {
			return fmt.Errorf("vm: memory map entry %d [%#x, +%#x) is empty or wraps", i, e.Addr, e.Size)
		}
	}
	return nil
}

// saveVCPU returns vCPU v's state. Precondition: paused.
func (v *vcpu) save() (VCPUState, error) {
	es, err := v.cpu.SaveState()
	if err != nil {
		return VCPUState{}, fmt.Errorf("vcpu %d: %v", v.id, err)
	}
	st := VCPUState{Engine: es, Deadline: v.deadline, Fired: v.fired, Blocked: uint8(v.blocked), Steal: v.stealBase}
	if h := v.h.Load(); h != nil {
		st.Steal += uint64(h.Steal())
	}
	return st, nil
}

// restore puts a saved vCPU state into v, a vCPU that has not run, after
// the VM's clock has been restored. On error v is unusable (the VM being
// restored is discarded).
func (v *vcpu) restore(st VCPUState) error {
	now := v.vm.systemTime()
	if st.Deadline > uint64(vclock.MaxTime) {
		return fmt.Errorf("vcpu %d: timer deadline %d ns is beyond the clock's range", v.id, st.Deadline)
	}
	if st.Fired && st.Deadline != 0 {
		return fmt.Errorf("vcpu %d: a timer both fired and armed", v.id)
	}
	if blockKind(st.Blocked) > blockedHLT {
		return fmt.Errorf("vcpu %d: blocked kind %d", v.id, st.Blocked)
	}
	if st.Steal > now {
		return fmt.Errorf("vcpu %d: steal time %d ns is more than the guest time %d ns", v.id, st.Steal, now)
	}
	if err := v.cpu.RestoreState(st.Engine); err != nil {
		return fmt.Errorf("vcpu %d: %v", v.id, err)
	}
	// The host timer is armed at Resume (rearmTimers) from the deadline.
	v.deadline, v.fired, v.blocked, v.stealBase = st.Deadline, st.Fired, blockKind(st.Blocked), st.Steal
	return nil
}
