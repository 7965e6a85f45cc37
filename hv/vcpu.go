package hv

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
	"github.com/pvisor/pvisor/hv/lapic"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/sched"
)

type vcpu struct {
	vm  *VM
	id  int
	cpu cpu.VCPU
	hc  hcalls
	h   atomic.Pointer[sched.Handle] // set when the VM starts running

	timer     *time.Timer // one host timer, re-armed with Reset: no allocation per timer_set
	deadline  uint64      // pvclock ns (the VM's clock), 0 = none
	fired     bool        // the timer expired, no unmasked port took its VIRQ, and no halt has consumed it
	blocked   blockKind   // why the last slice ended Blocked; a wake-up is checked against it
	preempt   atomic.Bool // the scheduler wants the worker back
	yield     bool        // vcpu_yield: end the slice
	devDirty  atomic.Bool // the legacy PC needs a poll: a port access, a device timer, a kick
	blockReq  bool        // vcpu_block: block once the hypercall completes
	up        atomic.Bool // the vCPU runs: vCPU 0 from boot, the others from vcpu_up (smp.go)
	stealBase uint64      // steal time (ns) accounted before a restore: the guest's count goes on from it
	exited    chan struct{}

	// The LAPIC of a trap- or hwassist-mode VM with several vCPUs (nil
	// otherwise; apic.go) and the host timer of its timer, armed for
	// apicArmed on the VM clock (0: none). The timer fields are the vCPU
	// goroutine's.
	lapic     *lapic.LAPIC
	apicTimer *time.Timer
	apicArmed time.Duration
	pub       regsPub // the registers as last published for introspection (introspect.go)

	// statsPub is the engine's counters as of the end of the last slice,
	// for readers on other goroutines (VM.LiveEngineStats); the engine's
	// own are the vCPU goroutine's alone.
	statsMu  sync.Mutex
	statsPub cpu.Stats
}

// publishStats copies the engine's counters for other goroutines. On the
// vCPU's goroutine, once per slice.
func (v *vcpu) publishStats() {
	s := v.cpu.Stats()
	v.statsMu.Lock()
	v.statsPub = s
	v.statsMu.Unlock()
}

// chunk is the instruction budget of one engine run inside a slice: RunFor
// looks at the clock after every exit, so at the latest between chunks
// (~0.1-0.5 ms on the interpreter).
const chunk = 1 << 16

// blockKind is what a blocked vCPU waits in.
type blockKind uint8

const (
	notBlocked  blockKind = iota
	blockedCall           // vcpu_block
	blockedHLT            // HLT
)

// exitsPerClock: between budget exits RunFor reads the clock once every
// exitsPerClock exits. Reading it costs about as much as a fast exit
// (~20-100 ns), and a fast exit costs ~0.1-1 µs on the interpreter, so a
// guest that exits constantly overruns its slice by some 10-60 µs at
// most, far below a slice; the overrun is still charged to it.
const exitsPerClock = 64

func newVCPU(vm *VM, id int, c cpu.VCPU) *vcpu {
	v := &vcpu{vm: vm, id: id, cpu: c, exited: make(chan struct{})}
	v.hc.v = v
	v.devDirty.Store(true)
	v.up.Store(id == 0) // the others wait for vcpu_up
	return v
}

// notify tells the vCPU that an event (timer, event channel, console
// input, device interrupt) may be pending: a running vCPU polls at once, a
// blocked one is made runnable. Safe from any goroutine that does not hold
// the scheduler's lock.
func (v *vcpu) notify() {
	v.devDirty.Store(true)
	v.cpu.Kick()
	if h := v.h.Load(); h != nil {
		h.Wake()
	}
}

func (v *vcpu) stopTimer() {
	if v.timer != nil {
		v.timer.Stop()
	}
}

// Kick implements sched.VCPU: the scheduler preempts the vCPU. Called with
// the scheduler's lock held.
func (v *vcpu) Kick() {
	v.preempt.Store(true)
	v.cpu.Kick()
}

// pollEvents turns an expired timer into its VIRQ and requests the upcall;
// it reports whether the timer expired.
func (v *vcpu) pollEvents() (expired bool) {
	// The host timer only wakes the vCPU; expiry is decided here, so a
	// stale firing of an earlier deadline cannot raise the VIRQ early.
	// Event state is the VM's, under evMu (other vCPUs change it in their
	// hypercalls); it is taken only when there is an event to raise.
	if v.deadline != 0 && v.vm.systemTime() >= v.deadline {
		v.deadline = 0
		// An expiry that no unmasked port takes (VIRQ_TIMER unbound or
		// masked) is kept until a halt consumes it: the ABI's "an expired
		// timer ends vcpu_block" must hold even when this poll, not the
		// halt's, saw the deadline pass.
		v.vm.evMu.Lock()
		if !v.vm.raiseVirq(v.id, hypercall.VirqTimer) {
			v.fired = true
		}
		v.vm.evMu.Unlock()
		expired = true
	}
	if v.id == 0 {
		v.pollVM()
	}
	if v.vm.upcallWanted(v.id) && !v.cpu.IRQPending() {
		v.cpu.SetIRQ(int(v.vm.ev.vector))
	}
	// The legacy PC is polled only when something may have changed it (a
	// port access, its host timer, a notify), not on every exit: as a
	// hardware-assisted hypervisor's device models run on their own
	// events, not on each VM exit.
	if v.devDirty.Swap(false) {
		v.pollDevices()
	}
	return expired
}

// pollVM raises the VM's own events (console input, balloon target,
// generation, the virtio slots) on vCPU 0, which takes them all.
func (v *vcpu) pollVM() {
	vm := v.vm
	in, bal := vm.in.arrived.Load(), vm.balloonChanged.Load()
	gen, slots := vm.genChanged.Load(), vm.pv.changed.Load() || vm.pv.irq.Load()
	if !in && !bal && !gen && !slots {
		return
	}
	vm.evMu.Lock()
	defer vm.evMu.Unlock()
	if vm.in.arrived.Swap(false) {
		vm.raiseVirq(0, hypercall.VirqConsole)
	}
	if vm.balloonChanged.Swap(false) {
		vm.raiseVirq(0, hypercall.VirqBalloon)
	}
	// Kept until the guest has bound the VIRQ (a driver that binds later
	// reads the new ID then anyway).
	if vm.genChanged.Load() && vm.ev.virqPort[0][hypercall.VirqGeneration] > 0 {
		vm.raiseVirq(0, hypercall.VirqGeneration)
		vm.genChanged.Store(false)
	}
	if slots {
		v.pollSlots()
	}
}

// armTimer arms the one-shot timer at pvclock time deadline (0 cancels).
func (v *vcpu) armTimer(deadline uint64) {
	if v.timer != nil {
		v.timer.Stop()
	}
	v.deadline = deadline
	v.fired = false // arming replaces the earlier deadline and its expiry
	if deadline == 0 {
		return
	}
	now := v.vm.systemTime()
	if deadline <= now {
		return // pollEvents fires it before the next instruction
	}
	v.resetHostTimer(time.Duration(deadline - now))
}

// resetHostTimer makes the host timer notify the vCPU after d.
func (v *vcpu) resetHostTimer(d time.Duration) {
	if v.timer == nil {
		v.timer = time.AfterFunc(d, v.notify)
	} else {
		v.timer.Reset(d)
	}
}

// mayBlock decides what a halt (HLT, or vcpu_block once it has completed)
// does: it reports true if nothing is pending, so the vCPU gives up its
// worker until notify — an unmasked pending port (whatever upcall_mask
// says: blocking re-enables delivery, as Xen's does), an expired timer (even
// if its port is masked or unbound), a device interrupt or the VM's end. A
// halt that nothing can ever end stops the VM.
func (v *vcpu) mayBlock(hlt bool) bool {
	if v.vm.Stopped() || v.pollEvents() || v.vm.upcallPending(v.id) || v.cpu.IRQPending() || v.devicePending() {
		return false
	}
	if v.fired {
		v.fired = false
		return false
	}
	if hlt && v.vm.dev != nil && v.cpu.Regs().RFLAGS&cpu.FlagIF == 0 {
		// HLT with interrupts off: nothing but an NMI could wake it, and
		// there are none. This is how Linux halts after power-off without
		// ACPI. On the boot vCPU it ends the VM; an AP halts so for good
		// while the others run on (Linux's stop_this_cpu).
		if v.id != 0 {
			return true
		}
		v.vm.stop(0, "guest halted with interrupts disabled")
		return false
	}
	if v.vm.dev == nil && v.deadline == 0 && len(v.vm.vcpus) == 1 && !v.vm.in.live() && v.vm.ev.virqPort[0][hypercall.VirqBalloon] <= 0 && !v.vm.pvCanWake() {
		// Nothing can ever wake it (no timer armed, no other vCPU, no
		// console input source, no balloon target to wait for, no virtio
		// device and no hot-plug to wait for): stop rather than hang.
		v.vm.stop(ExitCrash, fmt.Sprintf("vCPU %d blocked with no event source armed (no timer, no input)", v.id))
		return false
	}
	return true
}

// RunFor implements sched.VCPU: it runs the vCPU for about d of host time,
// in chunks of instructions, and returns early when the vCPU halts with
// nothing pending (Blocked), yields or is preempted (Ready), or the VM
// stops (Stopped, for good).
func (v *vcpu) RunFor(d time.Duration) (used time.Duration, st sched.State) {
	start := time.Now()
	if !v.up.Load() {
		// Down until vcpu_up, which wakes it; only the VM's end runs it.
		// Nothing here touches the engine: vcpu_up may be setting it up
		// on another goroutine right now.
		if v.vm.Stopped() {
			close(v.exited)
			return time.Since(start), sched.Stopped
		}
		return time.Since(start), sched.Blocked
	}
	defer v.publishStats()
	defer func() {
		// A fault of the hypervisor's own code while serving this vCPU
		// stops this VM, not the process and its other VMs.
		if r := recover(); r != nil {
			v.vm.stop(ExitEngineStop, fmt.Sprintf("vCPU %d: internal error: %v\n%s", v.id, r, debug.Stack()))
			close(v.exited)
			used, st = time.Since(start), sched.Stopped
			return
		}
		// Every slice ends by publishing the registers it leaves behind,
		// for a monitor's introspect_vcpu (introspect.go). A stopped vCPU
		// has no monitor left (its VM's grants ended with the stop), and
		// Run may be tearing the engine down.
		if st != sched.Stopped {
			v.publish()
		}
	}()
	v.vm.writeSteal(v)
	if v.blocked != notBlocked {
		// Woken: by an event, or by a stale host timer, a kick meant for
		// an earlier state, the scheduler's own wake. A halt ends only on
		// an event, so look again before running the guest.
		if v.mayBlock(v.blocked == blockedHLT) {
			return time.Since(start), sched.Blocked
		}
		v.blocked = notBlocked
	}
	exits := 0
	for {
		if v.vm.Stopped() {
			close(v.exited)
			return time.Since(start), sched.Stopped
		}
		v.pollEvents()
		e, err := v.cpu.Run(chunk)
		if err != nil {
			v.vm.stop(ExitEngineStop, fmt.Sprintf("vCPU %d: engine: %v", v.id, err))
			continue
		}
		halt := notBlocked
		switch e.Reason {
		case cpu.ExitBudget, cpu.ExitKick:
			// The slice and preemption checks below see to these.
		case cpu.ExitIRQWindow:
			v.irqWindow()
			v.devDirty.Store(true)
		case cpu.ExitHypercall:
			v.hypercall(e)
			if v.yield {
				v.yield = false
				return time.Since(start), sched.Ready
			}
			if v.blockReq && v.mayBlock(false) {
				halt = blockedCall
			}
			v.blockReq = false
		case cpu.ExitPrivileged:
			if v.privileged(e) && v.mayBlock(true) {
				halt = blockedHLT
			}
		case cpu.ExitHLT:
			if v.mayBlock(true) {
				halt = blockedHLT
			}
		case cpu.ExitIO:
			v.vm.stats.mu.Lock()
			v.vm.stats.IOPorts[e.IO.Port]++
			v.vm.stats.mu.Unlock()
			if e.IO.In {
				e.IO.Data = v.io().In(e.IO.Port, int(e.IO.Size))
			} else {
				v.io().Out(e.IO.Port, int(e.IO.Size), e.IO.Data)
			}
		case cpu.ExitMSR:
			if val, ok, gp := v.apicMSR(e.MSR.Index, e.MSR.Write, e.MSR.Value); ok {
				if gp {
					v.cpu.InjectException(cpu.ExcGP, 0, true)
				} else if !e.MSR.Write {
					e.MSR.Value = val
				}
			} else if e.MSR.Write && e.MSR.Index == hypercall.MSRHypercallPage {
				if !v.vm.installHypercallPage(e.MSR.Value) {
					v.cpu.InjectException(cpu.ExcGP, 0, true)
				}
			} else if !e.MSR.Known {
				v.cpu.InjectException(cpu.ExcGP, 0, true)
			}
		case cpu.ExitCPUID, cpu.ExitCR, cpu.ExitDescTable, cpu.ExitINVLPG:
			// The engine already carried these out (hwassist accounting).
		case cpu.ExitShadowFault:
			// Trap mode's shadow MMU: the guest wrote one of its page
			// tables. The engine's walks read the guest tables directly,
			// so there is no copy to update; running again completes the
			// write. The exit itself is the cost being modelled.
		case cpu.ExitMMIO:
			// A virtio-mmio window, or nothing: reads of the empty bus
			// answer all-ones, writes are dropped.
			if !v.apicMMIO(e) && !v.mmioExit(e) && !e.MMIO.Write {
				e.MMIO.Data = ^uint64(0)
			}
		case cpu.ExitTripleFault:
			v.vm.stop(ExitTripleFault, fmt.Sprintf("vCPU %d: triple fault at rip %#x: %s", v.id, e.RIP, e.Message))
		default:
			v.vm.stop(ExitEngineStop, fmt.Sprintf("vCPU %d stopped at rip %#x: %v: %s", v.id, e.RIP, e.Reason, e.Message))
		}
		if halt != notBlocked {
			v.blocked = halt
			return time.Since(start), sched.Blocked
		}
		// After every exit, whatever its reason: a guest that exits more
		// often than once a chunk must still give its worker back when its
		// slice is used or the scheduler wants it. The time used is always
		// read from the clock, so accounting is exact; only how often the
		// clock is read is rationed (see exitsPerClock).
		if v.preempt.Load() && v.preempt.Swap(false) {
			return time.Since(start), sched.Ready
		}
		if exits++; exits%exitsPerClock == 0 || e.Reason == cpu.ExitBudget || e.Reason == cpu.ExitKick {
			if used := time.Since(start); used >= d {
				return used, sched.Ready
			}
		}
	}
}

func (v *vcpu) hypercall(e *cpu.Exit) {
	nr := e.Hypercall.Nr
	st := &v.vm.stats
	st.Hypercalls[min(nr, 63)].Add(1)
	args := e.Hypercall.Args
	if !v.vm.declared.Load() && !hypercall.CallableBeforeDeclare(nr) {
		e.Hypercall.Ret = hypercall.EPROTO.Ret()
		st.Refused.Add(1)
		return
	}
	if nr >= uint64(len(ownCalls)) || !ownCalls[nr] {
		// The call may touch the VM's state (event channels, devices,
		// memory): one vCPU at a time. Calls on the vCPU's own state
		// alone (ownCalls) run concurrently.
		v.vm.evMu.Lock()
		defer v.vm.evMu.Unlock()
	}
	e.Hypercall.Ret = hypercall.Dispatch(&v.hc, nr, &args)
	switch e.Hypercall.Ret {
	case hypercall.ENOSYS.Ret(), hypercall.EPERM.Ret():
		st.Refused.Add(1)
	}
	if args != e.Hypercall.Args {
		// Out-arguments go back to their registers.
		r := v.cpu.Regs()
		for i, reg := range [6]int{cpu.RDI, cpu.RSI, cpu.RDX, cpu.R10, cpu.R8, cpu.R9} {
			r.GPR[reg] = args[i]
		}
		v.cpu.SetRegs(r)
	}
}

// guestMem gives the emulator the VM's memory.
type guestMem struct{ vm *VM }

func (g guestMem) Slice(gpa, n uint64) ([]byte, bool) { return g.vm.guest(gpa, n) }
func (g guestMem) Invalidate(gpa, n uint64)           { g.vm.mem.Invalidate(gpa, n) }

// noDevices is the port-I/O bus of a VM with no emulated device.
type noDevices struct{}

func (noDevices) In(port uint16, size int) uint32     { return 0xffffffff }
func (noDevices) Out(port uint16, size int, v uint32) {}

// hypercallPageMSR handles WRMSR to MSR_HYPERCALL_PAGE: it returns true if
// the instruction was that write (done or faulted).
func (v *vcpu) hypercallPageMSR(e *cpu.Exit) bool {
	if e.InstLen != 2 || e.Inst[0] != 0x0f || e.Inst[1] != 0x30 {
		return false
	}
	r := v.cpu.Regs()
	if uint32(r.GPR[cpu.RCX]) != hypercall.MSRHypercallPage {
		return false
	}
	gpa := r.GPR[cpu.RDX]<<32 | r.GPR[cpu.RAX]&0xffffffff
	if !v.vm.installHypercallPage(gpa) {
		v.cpu.InjectException(cpu.ExcGP, 0, true)
		return true
	}
	r.RIP += 2
	v.cpu.SetRegs(r)
	return true
}

// privileged emulates a privileged instruction; it reports whether the
// instruction was a halt.
func (v *vcpu) privileged(e *cpu.Exit) (halt bool) {
	var (
		name string
		res  emul.Result
		err  error
	)
	if v.hypercallPageMSR(e) {
		name = "wrmsr" // counted like any other privileged instruction
	} else if v.apicMSRInst(e) {
		name = "rdmsr"
		if e.Inst[1] == 0x30 {
			name = "wrmsr"
		}
	} else {
		name, res, err = emul.Emulate(v.cpu, e.Inst[:e.InstLen], v.io(), guestMem{v.vm})
	}
	st := &v.vm.stats
	st.mu.Lock()
	if st.PVStarted {
		st.Privileged[name]++
	} else {
		st.PrivBefore++
	}
	strict := st.PVStarted && v.vm.cfg.Strict && v.vm.cfg.Mode == cpu.ModePV
	st.mu.Unlock()
	if strict {
		v.vm.stop(ExitCrash, fmt.Sprintf("strict PV: privileged instruction %s (% x) at rip %#x after PV start", name, e.Inst[:e.InstLen], e.RIP))
		return false
	}
	if errors.Is(err, emul.ErrNotEmulated) {
		// An instruction the emulator does not carry out: #UD, as on a
		// CPU without it, never a stopped VM.
		v.cpu.InjectException(cpu.ExcUD, 0, false)
		return false
	}
	if err != nil {
		v.vm.stop(ExitEngineStop, fmt.Sprintf("vCPU %d at rip %#x: %v", v.id, e.RIP, err))
		return false
	}
	return res == emul.Halt
}
