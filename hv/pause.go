package hv

import (
	"errors"
	"sync"
	"time"

	"github.com/pvisor/pvisor/hv/vclock"
)

// Pause and resume.
//
// VM.Pause stops a VM so that its state can be read while it stands
// still (a snapshot reads it so), in this order:
//
//  1. the scheduler takes the vCPUs off its run queue whatever their
//     state and kicks the running ones (sched.VM.Pause); Pause waits until
//     no vCPU of the VM is inside RunFor, so none is inside the engine's
//     Run;
//  2. every Quiescer added with AddQuiescer is quiesced, in the order
//     added: this is where the parts of a VM that run beside its vCPUs
//     (the virtio backends' goroutines) stop touching guest memory;
//  3. the host timers behind the one-shot timer and the PIT are stopped
//     (they could only wake a vCPU that cannot run);
//  4. the VM's clock stops (vclock.Clock.Pause).
//
// VM.Resume undoes them in reverse: the clock starts again (catching up
// with host time or not, as Config.Clock says), the shared-info wall
// clock is rewritten from the clock's new wall-clock base, the host
// timers are armed again from their deadlines in guest time, the
// Quiescers are let go in reverse order, and the scheduler queues the
// vCPUs again (a Wake that came while paused, from an event channel,
// console input or a device, is kept for then).
//
// While paused (between steps 1 and Resume) no vCPU goroutine runs, so
// Pause and Resume touch vCPU-owned state (timers, the shared-info page)
// from their own goroutine; the scheduler's lock orders those accesses
// after the vCPUs' last RunFor and before their next.

// Quiescer is a part of a VM that runs beside its vCPUs, on goroutines of
// its own (a device backend), and must stand still while the VM is
// paused.
type Quiescer interface {
	// Quiesce returns once the part no longer reads or writes guest
	// memory, raises interrupts or charges CPU time, keeping its state
	// (queued requests wait). It is called with the VM's vCPUs already
	// stopped.
	Quiesce()
	// Unquiesce lets it go on. It is called before the vCPUs run again.
	Unquiesce()
}

// pauseState is VM.Pause's bookkeeping. mu serializes Pause, Resume and
// AddQuiescer and protects the fields.
type pauseState struct {
	mu       sync.Mutex
	paused   bool
	quiesce  []Quiescer
	count    uint64        // pauses so far
	lastSpan time.Duration // host time the last pause lasted
}

// ErrVMStopped is returned by Pause and Resume of a VM that has stopped.
var ErrVMStopped = errors.New("hv: the VM has stopped")

// AddQuiescer adds q to the things Pause quiesces after the vCPUs (and
// Resume lets go of before them). If the VM is paused now, q is quiesced
// at once.
func (vm *VM) AddQuiescer(q Quiescer) {
	p := &vm.pause
	p.mu.Lock()
	defer p.mu.Unlock()
	p.quiesce = append(p.quiesce, q)
	if p.paused {
		q.Quiesce()
	}
}

// Pause stops the VM (see above) and returns once none of its vCPUs is
// inside the engine and every Quiescer has quiesced. Pausing a paused VM
// does nothing. It may be called before Run: the vCPUs then wait for
// Resume from the start.
func (vm *VM) Pause() error {
	vm.pause.mu.Lock()
	defer vm.pause.mu.Unlock()
	return vm.pauseLocked()
}

// pauseLocked is Pause. Precondition: vm.pause.mu held.
func (vm *VM) pauseLocked() error {
	p := &vm.pause
	if vm.Stopped() {
		return ErrVMStopped
	}
	if p.paused {
		return nil
	}
	quiet := vm.svm.Pause()
	if vm.Stopped() {
		// The VM stopped between the look and the scheduler's pause: its
		// vCPUs must be free to run and leave.
		vm.svm.Resume()
		return ErrVMStopped
	}
	<-quiet
	if vm.Stopped() {
		return ErrVMStopped // its vCPUs are leaving (end resumed them)
	}
	p.paused = true
	p.count++
	for _, q := range p.quiesce {
		q.Quiesce()
	}
	for _, v := range vm.vcpus {
		v.stopTimer()
	}
	if d := vm.dev; d != nil && d.timer != nil {
		d.timer.Stop()
	}
	vm.clock.Pause()
	return nil
}

// Resume starts a paused VM again (see above). Resuming a VM that is not
// paused does nothing.
func (vm *VM) Resume() error {
	vm.pause.mu.Lock()
	defer vm.pause.mu.Unlock()
	return vm.resumeLocked()
}

// resumeLocked is Resume. Precondition: vm.pause.mu held.
func (vm *VM) resumeLocked() error {
	p := &vm.pause
	if vm.Stopped() {
		// Its memory may be gone (Run releases it once the vCPUs have
		// left, after waiting for p.mu): touch nothing.
		p.paused = false
		return ErrVMStopped
	}
	if !p.paused {
		return nil
	}
	p.paused = false
	p.lastSpan = vm.clock.Resume()
	vm.writeWallclock()
	for _, v := range vm.vcpus {
		v.rearmTimers()
	}
	for i := len(p.quiesce) - 1; i >= 0; i-- {
		p.quiesce[i].Unquiesce()
	}
	vm.svm.Resume()
	return nil
}

// Paused reports whether the VM is paused.
func (vm *VM) Paused() bool {
	vm.pause.mu.Lock()
	defer vm.pause.mu.Unlock()
	return vm.pause.paused
}

// Clock returns the VM's clock (its policy, guest time, Save/Restore).
func (vm *VM) Clock() *vclock.Clock { return vm.clock }

// rearmTimers arms the vCPU's host timers again from their deadlines in
// guest time, after a resume: a deadline that has passed (the clock
// caught up with host time) wakes the vCPU at once.
// Precondition: the VM is paused or resuming (no RunFor of v runs).
func (v *vcpu) rearmTimers() {
	wake := false
	if v.deadline != 0 {
		now := v.vm.systemTime()
		if v.deadline <= now {
			wake = true
		} else {
			v.resetHostTimer(time.Duration(v.deadline - now))
		}
	}
	if d := v.vm.dev; d != nil && v.id == 0 && d.armed != 0 {
		wait := d.armed - d.clk.Now()
		if wait <= 0 {
			wake = true
		} else if d.timer != nil {
			d.timer.Reset(wait)
		}
	}
	if wake {
		v.notify()
	}
}
