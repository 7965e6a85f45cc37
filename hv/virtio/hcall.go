package virtio

import "sync/atomic"

// The hypercall transport (pv mode): the same Device reached through the
// virtio_* hypercalls of ABI 2 (hypercall/table.go) instead of a register
// window. hv holds one Hcall per slot and maps its results to errnos; the
// methods here are what the calls do to the device. Interrupts are event
// channels: the device goroutine only sets Pending bits atomically and
// calls the notify function given to NewHcall, and the vCPU takes the bits
// (TakeInterrupts) and raises the ports bound to them.

// Hcall is one device behind the hypercall transport. Its driver-side
// methods are called from vCPU goroutines, serialised per device by hv;
// UsedBuffer and ConfigChanged run on the device goroutine.
type Hcall struct {
	dev     *Device
	notify  func()
	pending atomic.Uint32 // InterruptUsedBuffer | InterruptConfigChange
}

// NewHcall builds a device over backend b, guest memory m and options o,
// with the hypercall transport as its Signaller. notify is called (from
// the device goroutine, or the vCPU's on a break) whenever the pending
// bits gain one; it must not block.
func NewHcall(b Backend, m Mem, o Options, notify func()) *Hcall {
	t := &Hcall{notify: notify}
	t.dev = NewDevice(b, m, t, o)
	return t
}

// Device is the device behind the transport.
func (t *Hcall) Device() *Device { return t.dev }

// UsedBuffer implements Signaller.
func (t *Hcall) UsedBuffer(q int) { t.interrupt(InterruptUsedBuffer) }

// ConfigChanged implements Signaller.
func (t *Hcall) ConfigChanged() { t.interrupt(InterruptConfigChange) }

func (t *Hcall) interrupt(bit uint32) {
	t.pending.Or(bit)
	t.notify()
}

// TakeInterrupts returns and clears the pending interrupt bits
// (InterruptUsedBuffer, InterruptConfigChange).
func (t *Hcall) TakeInterrupts() uint32 { return t.pending.Swap(0) }

// HcallInfo is what virtio_info reports of a device.
type HcallInfo struct {
	DeviceID         DeviceType
	DeviceFeatures   uint64
	NumQueues        int
	QueueNumMax      uint16 // the largest size every queue takes
	ConfigLen        int
	ConfigGeneration uint32
	Status           uint8
}

// Info describes the device.
func (t *Hcall) Info() HcallInfo {
	d := t.dev
	qmax := uint16(0)
	for i, n := range d.queueMax {
		if i == 0 || n < qmax {
			qmax = n
		}
	}
	return HcallInfo{
		DeviceID:         d.Type(),
		DeviceFeatures:   d.DeviceFeatures(),
		NumQueues:        d.NumQueues(),
		QueueNumMax:      qmax,
		ConfigLen:        d.backend.ConfigSize(),
		ConfigGeneration: d.ConfigGeneration(),
		Status:           d.Status(),
	}
}

// SetStatus writes the status byte (Device.SetStatus; 0 resets, waiting
// for the request in progress) and returns the status read back. A reset
// also drops interrupts not yet taken.
func (t *Hcall) SetStatus(s uint8) uint8 {
	t.dev.SetStatus(s)
	if s == 0 {
		t.pending.Store(0)
	}
	return t.dev.Status()
}

// SetupQueue sets up queue q with size entries and the three ring
// addresses and makes it ready, or, with size 0, makes it not ready. The
// errors are Device.SetQueue's: ErrNoQueue, ErrQueuePhase, ErrQueueReady,
// or a *RingError when the layout broke the device.
func (t *Hcall) SetupQueue(q int, size uint32, desc, avail, used uint64) error {
	s := QueueState{}
	if size != 0 {
		// Sizes beyond 16 bits become 0xffff, not a power of two: the
		// layout check refuses it.
		s = QueueState{Size: uint16(min(size, 0xffff)), Desc: desc, Driver: avail, Device: used, Ready: true}
	}
	return t.dev.SetQueue(q, s)
}
