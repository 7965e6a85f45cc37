package hv

import (
	"errors"
	"fmt"
	"io"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
	"github.com/pvisor/pvisor/hv/interp"
	"github.com/pvisor/pvisor/hv/loader"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/snapshot"
	"github.com/pvisor/pvisor/hv/vclock"
	"github.com/pvisor/pvisor/mm"
	"github.com/pvisor/pvisor/sched"
)

// Snapshot and restore (docs/snapshot.md, "VM sections").
//
// A snapshot's sections, in this order (Restore refuses any other):
//
//	vm       VMState: configuration and the VM's own state, the clock
//	vcpu     VCPUState, one per vCPU in index order
//	device   EventsState: the event channels
//	device   pv mode: SlotsState, the hypercall transport's slots and
//	         their virtio devices; trap and hwassist mode: emul.PCState,
//	         the legacy PC, then MMIODevicesState, the virtio-mmio devices
//	mm       mm.MemState: size, balloon target, ballooned-out frames
//	memory   the resident guest pages
//	disk     one per configured disk, in order (diskstate.go): an overlay
//	         disk's delta from its base; a read-only disk, or a writable
//	         one without an overlay (not captured), only its kind
//
// A restore reopens the virtio devices' backends from RestoreConfig (the
// same disks, rng and NICs, in the same order, as the snapshotted VM was
// configured with; hot-plugged devices are not reattached, and a snapshot
// with one is refused at restore): an overlay disk gets a new overlay over
// the same base, filled with the snapshot's clusters; a disk the snapshot
// did not capture is the image as it is at the restore (RestoreWarnings
// says so).
//
// Not saved: console input not yet read by the guest (the restored VM
// reads its own input source from the start), the counters of Stats and
// EngineStats (they start from zero, except that PV start-up stays
// declared), the scheduler's accounting (steal time excepted, see
// VCPUState.Steal), and host resources (timers are re-armed from their
// deadlines).

// SnapshotOptions say how Snapshot writes a snapshot.
type SnapshotOptions struct {
	// File is how the container protects it (digest, HMAC or encrypted,
	// the key, the chunk size).
	File snapshot.Options
	// LeavePaused leaves the VM paused afterwards; otherwise a VM that
	// was running is resumed (a paused one stays paused).
	LeavePaused bool
	// Written, if set, receives the snapshot's header (its ID, patch
	// level) once it is written.
	Written *snapshot.Header
}

// Snapshot writes the VM's whole state to w: it pauses the VM (if it is
// not paused), flushes the console's buffered output to the console's
// writer, writes the sections above and resumes the VM unless it was
// paused or opt.LeavePaused. On error the partial output must be
// discarded. Safe from any goroutine; not while another Snapshot, Pause
// or Resume of the VM runs (they wait for it).
func (vm *VM) Snapshot(w io.Writer, opt SnapshotOptions) error {
	if len(vm.vcpus) > 1 {
		// A restore takes one vCPU (checkVMState): a snapshot that
		// could not be restored is refused before anything is written.
		return fmt.Errorf("hv: snapshot of a VM with %d vCPUs: snapshots hold VMs of one vCPU", len(vm.vcpus))
	}
	p := &vm.pause
	p.mu.Lock()
	defer p.mu.Unlock()
	if vm.Stopped() {
		return ErrVMStopped
	}
	was := p.paused
	if err := vm.pauseLocked(); err != nil {
		return err
	}
	err := vm.writeSnapshot(w, opt.File, opt.Written)
	if err == nil && vm.Stopped() {
		// Stopped meanwhile (Stop lets the vCPUs run to leave): what was
		// read may not be one instant's state.
		err = ErrVMStopped
	}
	if !was && !opt.LeavePaused {
		if rerr := vm.resumeLocked(); err == nil {
			err = rerr
		}
	}
	return err
}

// writeSnapshot writes the snapshot of a paused VM.
// Precondition: vm.pause.mu held, paused.
func (vm *VM) writeSnapshot(w io.Writer, fo snapshot.Options, written *snapshot.Header) error {
	vm.out.flush()
	md := snapshot.Metadata{Name: vm.cfg.Name, Mode: vm.cfg.Mode.String(), MemorySize: vm.res.Size(),
		KernelDigest: vm.measured.Kernel, GenerationID: vm.genID, LineageID: vm.lineage,
		PatchLevel: vm.Lineage().PatchLevel}
	sw, err := snapshot.NewWriter(w, md, fo)
	if err != nil {
		return err
	}
	if written != nil {
		*written = sw.Header()
	}
	if err := sw.WriteGob(snapshot.TagVM, vm.saveVM()); err != nil {
		return err
	}
	for _, v := range vm.vcpus {
		st, err := v.save()
		if err != nil {
			return err
		}
		if err := sw.WriteGob(snapshot.TagVCPU, st); err != nil {
			return err
		}
	}
	if err := sw.WriteGob(snapshot.TagDevice, vm.saveEvents()); err != nil {
		return err
	}
	if vm.dev == nil {
		slots, err := vm.SaveSlots()
		if err != nil {
			return err
		}
		if err := sw.WriteGob(snapshot.TagDevice, slots); err != nil {
			return err
		}
	} else {
		if err := sw.WriteGob(snapshot.TagDevice, vm.dev.pc.Save()); err != nil {
			return err
		}
		mmio, err := vm.SaveMMIO()
		if err != nil {
			return err
		}
		if err := sw.WriteGob(snapshot.TagDevice, mmio); err != nil {
			return err
		}
	}
	ms, err := vm.res.Save()
	if err != nil {
		return err
	}
	if err := sw.WriteGob(snapshot.TagMM, ms); err != nil {
		return err
	}
	if err := sw.WriteMemory(vm.res.RAM(), holeFunc(ms.Holes)); err != nil {
		return err
	}
	if err := vm.writeDisks(sw); err != nil {
		return err
	}
	return sw.Close()
}

// holeFunc reports the frames of holes (ascending runs) as holes; it is
// called with ascending frame numbers.
func holeFunc(holes []mm.FrameRange) func(uint64) bool {
	i := 0
	return func(gfn uint64) bool {
		for i < len(holes) && holes[i].First+holes[i].Count <= gfn {
			i++
		}
		return i < len(holes) && gfn >= holes[i].First
	}
}

// RestoreConfig is what a restore takes from the operator rather than
// from the snapshot.
type RestoreConfig struct {
	// Budget is the host memory budget the VM's memory is reserved from.
	Budget *mm.Budget
	// JIT is Config.JIT for the restored VM: an engine choice of this
	// host, not part of the VM's state.
	JIT bool
	// Name names the restored VM; empty keeps the snapshot's name.
	Name string
	// Key opens a keyed (HMAC or encrypted) snapshot; with a key, a
	// digest-only snapshot is refused.
	Key *snapshot.Key
	// Console, ConsoleIn, Sched, CPUWeight, CPUCap, CPUs and
	// CPUsExclusive are as in Config: a cpuset is the host's, not the
	// snapshot's.
	Console       io.Writer
	ConsoleIn     io.Reader
	Sched         *sched.Scheduler
	CPUWeight     int
	CPUCap        int
	CPUs          []int
	CPUsExclusive bool
	// Paused leaves the restored VM paused when Run starts it, until
	// Resume.
	Paused bool
	// Disks, RNG, NICs and Switch are the VM's virtio devices, as in
	// Config: the same as the snapshotted VM's configuration, in the same
	// order (a disk: the same image). Restore checks each device's name
	// and state against the snapshot's. A disk the snapshot captured
	// (it had an overlay) needs an Overlay here too, a new file or an
	// empty one, which the restore fills with the snapshot's clusters (and
	// removes if the restore fails).
	Disks  []Disk
	RNG    bool
	NICs   []NIC
	Switch *netswitch.Switch

	// OverwriteOverlays lets the restore replace non-empty overlay files
	// of Disks (filled under a temporary name and renamed over them once
	// the restore succeeds: a failed restore leaves them as they were);
	// otherwise it refuses them.
	OverwriteOverlays bool
	// Guard, if set, decides on the snapshot's authenticated header
	// before anything is restored: an error refuses the restore (the
	// rollback guard: lineage.go).
	Guard func(h *snapshot.Header) (RestoreLineage, error)
}

// RestoreLineage is the rollback guard's answer for a restore it allows.
type RestoreLineage struct {
	// Recorder keeps the restored VM's lineage record; nil: none.
	Recorder LineageRecorder
	// Highest is the record's highest patch level.
	Highest uint64
	// RolledBack: the snapshot's level is below Highest and the operator
	// allowed it (--allow-rollback); the guest sees LINEAGE_ROLLED_BACK.
	RolledBack bool
}

// restoreParts are a snapshot's sections, decoded; the memory is loaded
// straight into the new VM's reservation.
type restoreParts struct {
	vm     VMState
	vcpus  []VCPUState
	events EventsState
	slots  SlotsState       // pv mode
	pc     emul.PCState     // trap and hwassist mode
	mmio   MMIODevicesState // trap and hwassist mode
	mem    mm.MemState
}

// Restore builds a VM from the snapshot in r, without the loader: it
// reserves the VM's memory from cfg.Budget, reads and checks every
// section (a snapshot is operator input and may be hostile: every part's
// fields, and the parts against each other and the header), and only once
// the whole file has been authenticated puts the parts back in order: mm,
// clock, vCPUs, event channels, the legacy PC. The restored VM has a new
// VM generation ID; it keeps the snapshot's lineage. It is ready to Run,
// which resumes it where it was (unless cfg.Paused).
func Restore(r io.Reader, cfg RestoreConfig) (*VM, error) {
	vm, err := restore(r, cfg)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return vm, nil
}

func restore(r io.Reader, cfg RestoreConfig) (*VM, error) {
	if cfg.Budget == nil {
		return nil, errors.New("hv: no memory budget")
	}
	sr, err := snapshot.NewReader(r, snapshot.ReaderOptions{Key: cfg.Key})
	if err != nil {
		return nil, err
	}
	hdr := sr.Header()
	// The rollback guard sees the header once it is authentic, before
	// anything of the VM is built.
	var rl RestoreLineage
	if cfg.Guard != nil {
		if rl, err = cfg.Guard(&hdr); err != nil {
			return nil, err
		}
	}
	mode, err := cpu.ParseMode(hdr.Mode)
	if err != nil {
		return nil, fmt.Errorf("the snapshot's mode: %v", err)
	}
	var parts restoreParts
	sec, err := nextSection(sr, snapshot.TagVM)
	if err != nil {
		return nil, err
	}
	if err := sec.DecodeGob(&parts.vm); err != nil {
		return nil, err
	}
	st := &parts.vm
	if err := checkVMState(st); err != nil {
		return nil, err
	}
	switch {
	case cpu.Mode(st.Mode) != mode:
		return nil, fmt.Errorf("the VM section's mode %v is not the header's %v", cpu.Mode(st.Mode), mode)
	case st.MemBytes != hdr.MemorySize:
		return nil, fmt.Errorf("the VM section's memory size %d is not the header's %d", st.MemBytes, hdr.MemorySize)
	case st.Measured.Kernel != hdr.KernelDigest:
		return nil, errors.New("the VM section's kernel digest is not the header's")
	case st.PatchLevel != hdr.PatchLevel:
		return nil, fmt.Errorf("the VM section's patch level %d is not the header's %d", st.PatchLevel, hdr.PatchLevel)
	}
	if cfg.Name == "" {
		cfg.Name = hdr.Name
	}
	disks, renames, err := claimOverlays(cfg.Disks, cfg.OverwriteOverlays)
	if err != nil {
		return nil, err
	}
	cfg.Disks = disks
	vm, err := newRestoredVM(cfg, st)
	if err != nil {
		removeOverlays(cfg.Disks)
		return nil, err
	}
	vm.lineage = hdr.LineageID
	vm.lin.rec = rl.Recorder
	vm.lin.cur = Lineage{PatchLevel: st.PatchLevel, Release: st.Release, Highest: max(rl.Highest, st.PatchLevel),
		Restored: true, RolledBack: rl.RolledBack}
	vm.genChanged.Store(true)
	fail := func(err error) (*VM, error) {
		vm.discard()
		removeOverlays(cfg.Disks)
		return nil, err
	}
	for i := 0; i < int(st.VCPUs); i++ {
		sec, err := nextSection(sr, snapshot.TagVCPU)
		if err != nil {
			return fail(err)
		}
		var vs VCPUState
		if err := sec.DecodeGob(&vs); err != nil {
			return fail(err)
		}
		parts.vcpus = append(parts.vcpus, vs)
	}
	if sec, err = nextSection(sr, snapshot.TagDevice); err != nil {
		return fail(err)
	}
	if err := sec.DecodeGob(&parts.events); err != nil {
		return fail(err)
	}
	devices := []any{&parts.slots}
	if mode != cpu.ModePV {
		devices = []any{&parts.pc, &parts.mmio}
	}
	for _, d := range devices {
		if sec, err = nextSection(sr, snapshot.TagDevice); err != nil {
			return fail(err)
		}
		if err := sec.DecodeGob(d); err != nil {
			return fail(err)
		}
	}
	if sec, err = nextSection(sr, snapshot.TagMM); err != nil {
		return fail(err)
	}
	if err := sec.DecodeGob(&parts.mem); err != nil {
		return fail(err)
	}
	if sec, err = nextSection(sr, snapshot.TagMemory); err != nil {
		return fail(err)
	}
	if err := sec.LoadMemory(vm.res.RAM()); err != nil {
		return fail(err)
	}
	// The disks' deltas go straight into their new overlays: a restore
	// that fails from here on removes them.
	if err := vm.readDisks(sr); err != nil {
		return fail(err)
	}
	if sec, err := sr.Next(); err != io.EOF {
		switch {
		case err == nil && sec.Tag == snapshot.TagDisk:
			err = fmt.Errorf("the snapshot has more disks than the %d given: give the snapshotted VM's --disk again (virtio-blk %d)", len(cfg.Disks), len(cfg.Disks))
		case err == nil:
			err = fmt.Errorf("unexpected %v section after the memory and disk sections", sec.Tag)
		}
		return fail(err)
	}
	// The whole file is authentic from here on; what is left is checking
	// the parts against each other as they go back.
	if err := vm.restoreParts(&parts); err != nil {
		return fail(err)
	}
	if err := vm.commitOverlays(renames); err != nil {
		return fail(err)
	}
	return vm, nil
}

// nextSection reads the next section and refuses any but tag t.
func nextSection(sr *snapshot.Reader, t snapshot.Tag) (*snapshot.Section, error) {
	s, err := sr.Next()
	if err == io.EOF {
		return nil, fmt.Errorf("the snapshot ends where a %v section should be", t)
	}
	if err != nil {
		return nil, err
	}
	if s.Tag != t {
		return nil, fmt.Errorf("a %v section where a %v section should be", s.Tag, t)
	}
	return s, nil
}

// newRestoredVM builds the empty VM a snapshot described by st is restored
// into: its memory reserved (zero), its vCPUs created, its legacy PC in
// trap and hwassist mode, its place in the scheduler, paused.
func newRestoredVM(rc RestoreConfig, st *VMState) (*VM, error) {
	cfg := Config{Name: rc.Name, MemBytes: st.MemBytes, VCPUs: int(st.VCPUs), Mode: cpu.Mode(st.Mode), Budget: rc.Budget, JIT: rc.JIT,
		Console: rc.Console, ConsoleIn: rc.ConsoleIn, Strict: st.Strict, DeterministicTSC: st.DeterministicTSC,
		Clock: vclock.Policy(st.ClockPolicy), Sched: rc.Sched, CPUWeight: rc.CPUWeight, CPUCap: rc.CPUCap,
		CPUs: rc.CPUs, CPUsExclusive: rc.CPUsExclusive,
		Disks: rc.Disks, RNG: rc.RNG, NICs: rc.NICs, Switch: rc.Switch}
	if cfg.Console == nil {
		cfg.Console = io.Discard
	}
	if cfg.CPUWeight < 0 || cfg.CPUWeight > sched.MaxWeight {
		return nil, fmt.Errorf("hv: cpu weight %d: want 1..%d (0 for the default %d)", cfg.CPUWeight, sched.MaxWeight, sched.DefaultWeight)
	}
	if cfg.CPUCap < 0 {
		return nil, fmt.Errorf("hv: cpu cap %d%%: want 0 (none) or more", cfg.CPUCap)
	}
	if err := checkDisks(&cfg); err != nil {
		return nil, err
	}
	gen, err := newGenerationID()
	if err != nil {
		return nil, err
	}
	res, err := cfg.Budget.Reserve(cfg.MemBytes)
	if err != nil {
		return nil, err
	}
	vm := &VM{res: res, mem: interp.NewMemory(res.RAM()), done: make(chan struct{}), clock: vclock.New(cfg.Clock), genID: gen}
	vm.out = newConsoleOut(cfg.Console, func(reason string) { vm.stop(ExitEngineStop, reason) })
	cfg.Console = vm.out
	vm.cfg = cfg
	vm.stats.Privileged = map[string]uint64{}
	vm.stats.IOPorts = map[uint16]uint64{}
	vm.kind = loader.Kind(st.Kind)
	if err := vm.openDisks(); err != nil {
		res.Release()
		return nil, err
	}
	vm.ev.init()
	fail := func(err error) (*VM, error) {
		vm.closeMMIO()
		vm.closeSlots()
		res.Release()
		return nil, err
	}
	if err := vm.addVCPUs(false); err != nil {
		return fail(err)
	}
	vm.initDevices()
	if err := vm.initAPICs(false); err != nil {
		return nil, err
	}
	if err := vm.joinScheduler(); err != nil {
		return fail(err)
	}
	if err := vm.Pause(); err != nil {
		vm.discard()
		return nil, err
	}
	vm.resumeOnRun = !rc.Paused
	return vm, nil
}

// discard releases a VM that never ran (a restore that failed).
func (vm *VM) discard() {
	vm.mu.Lock()
	vm.stopped = true
	vm.mu.Unlock()
	for _, v := range vm.vcpus {
		v.stopTimer()
	}
	vm.stopDevices()
	if vm.svm != nil {
		vm.svm.Resume() // it has no vCPUs: it stays in the scheduler's lists, idle
	}
	vm.res.Release()
}

// restoreParts puts the decoded parts back into a VM built by
// newRestoredVM, whose memory holds the snapshot's pages, in dependency
// order.
func (vm *VM) restoreParts(p *restoreParts) error {
	// mm: the holes must be frames the memory section left out (zero),
	// then they go out of the reservation and out of the engine's view.
	for _, h := range p.mem.Holes {
		if h.Count == 0 || h.First+h.Count < h.First || h.First+h.Count > vm.res.Frames() {
			return fmt.Errorf("mm: hole [%#x, +%#x) beyond the %d frames", h.First, h.Count, vm.res.Frames())
		}
		ram := vm.res.RAM()[h.First*mm.FrameSize : (h.First+h.Count)*mm.FrameSize]
		for i, b := range ram {
			if b != 0 {
				return fmt.Errorf("memory: the memory section has contents for frame %#x, ballooned out in the mm section", h.First+uint64(i)/mm.FrameSize)
			}
		}
	}
	if err := vm.res.Restore(p.mem); err != nil {
		return err
	}
	for _, h := range p.mem.Holes {
		vm.mem.SetHoles(h.First, h.Count, true)
	}
	st := &p.vm
	// The clock before the vCPUs (their TSC offsets) and the PIT.
	if err := vm.clock.Restore(st.Clock); err != nil {
		return err
	}
	for i, v := range vm.vcpus {
		if err := v.restore(p.vcpus[i]); err != nil {
			return err
		}
		v.cpu.FlushTLB(true)
	}
	// The event channels before the slots, whose ports they bind.
	if err := vm.restoreEvents(p.events, func(i int) *pvSlot { return vm.pv.slots[i].Load() }); err != nil {
		return err
	}
	if vm.dev == nil {
		if err := vm.RestoreSlots(p.slots); err != nil {
			return err
		}
	} else {
		if err := vm.dev.pc.Restore(p.pc); err != nil {
			return fmt.Errorf("legacy PC: %v", err)
		}
		// The PIT's host timer is armed from its deadline at the first
		// poll: nothing is armed yet.
		vm.dev.armed = 0
		if err := vm.RestoreMMIO(p.mmio); err != nil {
			return err
		}
	}
	vm.measured = st.Measured
	vm.memmap = st.Memmap
	vm.declared.Store(st.Declared)
	vm.stats.PVStarted = st.Declared
	vm.balloonChanged.Store(st.BalloonChanged)
	return nil
}
