package hv

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
	"github.com/pvisor/pvisor/hypercall"
)

type vcpu struct {
	vm  *VM
	id  int
	cpu cpu.VCPU
	hc  hcalls

	timer    *time.Timer
	deadline uint64 // pvclock ns, 0 = none
	fired    atomic.Bool
	wake     chan struct{}
	yield    bool
}

func newVCPU(vm *VM, id int, c cpu.VCPU) *vcpu {
	v := &vcpu{vm: vm, id: id, cpu: c, wake: make(chan struct{}, 1)}
	v.hc.v = v
	return v
}

// wakeUp ends a block. Safe from any goroutine.
func (v *vcpu) wakeUp() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *vcpu) stopTimer() {
	if v.timer != nil {
		v.timer.Stop()
	}
}

// Kick implements sched.Runnable.
func (v *vcpu) Kick() { v.cpu.Kick(); v.wakeUp() }

// pollEvents turns an expired timer into its VIRQ and requests the upcall;
// it reports whether the timer expired.
func (v *vcpu) pollEvents() (expired bool) {
	if v.fired.Swap(false) || (v.deadline != 0 && v.vm.systemTime() >= v.deadline) {
		v.deadline = 0
		v.vm.raiseVirq(v.id, hypercall.VirqTimer)
		expired = true
	}
	if v.id == 0 && v.vm.in.arrived.Swap(false) {
		v.vm.raiseVirq(0, hypercall.VirqConsole)
	}
	if v.vm.upcallWanted(v.id) && !v.cpu.IRQPending() {
		v.cpu.SetIRQ(int(v.vm.ev.vector))
	}
	v.pollDevices()
	return expired
}

// armTimer arms the one-shot timer at pvclock time deadline (0 cancels).
func (v *vcpu) armTimer(deadline uint64) {
	if v.timer != nil {
		v.timer.Stop()
	}
	v.fired.Store(false)
	v.deadline = deadline
	if deadline == 0 {
		return
	}
	now := v.vm.systemTime()
	if deadline <= now {
		return // pollEvents fires it before the next instruction
	}
	v.timer = time.AfterFunc(time.Duration(deadline-now), func() {
		v.fired.Store(true)
		v.Kick()
	})
}

// block waits until an event is pending for this vCPU — an unmasked
// pending port (whatever upcall_mask says: blocking re-enables delivery, as
// Xen's does) or an expired timer (even if its port is masked or unbound) —
// or the VM stops.
func (v *vcpu) block(hlt bool) {
	for !v.vm.isStopped() {
		if v.pollEvents() || v.vm.upcallPending(v.id) || v.cpu.IRQPending() || v.devicePending() {
			return
		}
		if hlt && v.vm.dev != nil && v.cpu.Regs().RFLAGS&cpu.FlagIF == 0 {
			// HLT with interrupts off: nothing but an NMI could wake it, and
			// there are none. This is how Linux halts after power-off
			// without ACPI.
			v.vm.stop(0, "guest halted with interrupts disabled")
			return
		}
		if v.vm.dev == nil && v.deadline == 0 && len(v.vm.vcpus) == 1 && !v.vm.in.live() {
			// Nothing can ever wake it (no timer armed, no other vCPU, no
			// console input source): stop rather than hang.
			v.vm.stop(ExitCrash, fmt.Sprintf("vCPU %d blocked with no event source armed (no timer, no input)", v.id))
			return
		}
		<-v.wake
	}
}

// RunSlice implements sched.Runnable: it runs the vCPU until budget
// instructions retire or the VM stops.
func (v *vcpu) RunSlice(budget uint64) bool {
	for {
		if v.vm.isStopped() {
			return true
		}
		v.pollEvents()
		e, err := v.cpu.Run(budget)
		if err != nil {
			v.vm.stop(ExitEngineStop, fmt.Sprintf("vCPU %d: engine: %v", v.id, err))
			return true
		}
		switch e.Reason {
		case cpu.ExitBudget:
			return false
		case cpu.ExitKick:
		case cpu.ExitIRQWindow:
			v.irqWindow()
		case cpu.ExitHypercall:
			v.hypercall(e)
			if v.yield {
				v.yield = false
				return false
			}
		case cpu.ExitPrivileged:
			v.privileged(e)
		case cpu.ExitHLT:
			v.block(true)
		case cpu.ExitIO:
			v.vm.stats.mu.Lock()
			v.vm.stats.IOPorts[e.IO.Port]++
			v.vm.stats.mu.Unlock()
			if e.IO.In {
				e.IO.Data = v.vm.io().In(e.IO.Port, int(e.IO.Size))
			} else {
				v.vm.io().Out(e.IO.Port, int(e.IO.Size), e.IO.Data)
			}
		case cpu.ExitMSR:
			if e.MSR.Write && e.MSR.Index == hypercall.MSRHypercallPage {
				if e.MSR.Value%hypercall.PageSize != 0 || !v.vm.guestWrite(e.MSR.Value, hypercallInsn) {
					v.cpu.InjectException(cpu.ExcGP, 0, true)
				}
			} else if !e.MSR.Known {
				v.cpu.InjectException(cpu.ExcGP, 0, true)
			}
		case cpu.ExitCPUID, cpu.ExitCR, cpu.ExitDescTable, cpu.ExitINVLPG:
			// The engine already carried these out (hwassist accounting).
		case cpu.ExitMMIO:
			if !e.MMIO.Write {
				e.MMIO.Data = ^uint64(0)
			}
		case cpu.ExitTripleFault:
			v.vm.stop(ExitTripleFault, fmt.Sprintf("vCPU %d: triple fault at rip %#x: %s", v.id, e.RIP, e.Message))
			return true
		default:
			v.vm.stop(ExitEngineStop, fmt.Sprintf("vCPU %d stopped at rip %#x: %v: %s", v.id, e.RIP, e.Reason, e.Message))
			return true
		}
	}
}

func (v *vcpu) hypercall(e *cpu.Exit) {
	nr := e.Hypercall.Nr
	st := &v.vm.stats
	st.Hypercalls[min(nr, 63)].Add(1)
	args := e.Hypercall.Args
	e.Hypercall.Ret = hypercall.Dispatch(&v.hc, nr, &args)
	if args != e.Hypercall.Args {
		// Out-arguments go back to their registers.
		r := v.cpu.Regs()
		for i, reg := range [5]int{cpu.RDI, cpu.RSI, cpu.RDX, cpu.R10, cpu.R8} {
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
	if gpa%hypercall.PageSize != 0 || !v.vm.guestWrite(gpa, hypercallInsn) {
		v.cpu.InjectException(cpu.ExcGP, 0, true)
		return true
	}
	r.RIP += 2
	v.cpu.SetRegs(r)
	return true
}

func (v *vcpu) privileged(e *cpu.Exit) {
	if v.hypercallPageMSR(e) {
		return
	}
	name, res, err := emul.Emulate(v.cpu, e.Inst[:e.InstLen], v.vm.io(), guestMem{v.vm})
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
		return
	}
	if err != nil {
		v.vm.stop(ExitEngineStop, fmt.Sprintf("vCPU %d at rip %#x: %v", v.id, e.RIP, err))
		return
	}
	if res == emul.Halt {
		v.block(true)
	}
}
