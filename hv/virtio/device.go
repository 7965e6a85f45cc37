package virtio

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is one device type's behaviour (block, rng; later net) behind the
// transport-independent Device.
type Backend interface {
	// Type is the virtio device ID.
	Type() DeviceType
	// Features are the device-type feature bits (0-23) the backend offers.
	Features() uint64
	// QueueMax gives each queue's maximum size; its length is the number of
	// queues.
	QueueMax() []uint16
	// ConfigSize is the length of the device-specific config space.
	ConfigSize() int
	// ReadConfig and WriteConfig access config bytes [off, off+len(p)).
	// Precondition: the range lies within ConfigSize.
	ReadConfig(off int, p []byte)
	WriteConfig(off int, p []byte)
	// Activate starts the backend with the negotiated features, when the
	// driver sets DRIVER_OK.
	Activate(features uint64)
	// Handle serves one request of queue q on the device goroutine and
	// returns the number of bytes it wrote to the chain's writable
	// buffers. An error means the request breaks the device's rules
	// (DEVICE_NEEDS_RESET); an I/O failure the driver can be told of is a
	// status in the request, not an error.
	Handle(q int, c *Chain) (written uint32, err error)
	// Reset returns the backend to its state before Activate.
	Reset()
}

// Source is implemented by a backend that feeds some of its queues from an
// input of its own (net's receive queue: frames from the switch). The
// device serves such a queue only while Ready says input waits, and the
// backend calls the wake function it was bound to, from any goroutine and
// without blocking, when input arrives. Ready is true for the queues the
// backend does not feed.
type Source interface {
	// Bind gives the backend the function that wakes queue q of a
	// running device (a quiesced one serves it at Unquiesce); NewDevice
	// calls it once.
	Bind(wake func(q int))
	// Ready says whether queue q has input for the device to deliver.
	// It runs on the device goroutine.
	Ready(q int) bool
}

// QueueThrottler is implemented by a backend that rate-limits requests
// per queue itself (net bounds what a VM sends, not what it receives), in
// place of Options.Limits, which bound every queue.
type QueueThrottler interface {
	// Admit charges the request in c of queue q and returns 0, or returns
	// how long to wait before asking again, charging nothing. It runs on
	// the device goroutine, which waits as it does for Options.Limits.
	Admit(q int, c *Chain) time.Duration
}

// InterruptHoldoff is implemented by a backend that wants a queue's
// used-buffer interrupts moderated: when a pass over queue q completed
// requests, the device decides on the interrupt (and raises it if the
// driver asked for one) Holdoff(q) later rather than at once, so that the
// requests completed meanwhile share it. The specification lets a device
// delay an interrupt; it never sends one the driver suppressed. Net holds
// back its transmit queue's: a driver reaps sent frames as it sends more,
// and an interrupt per frame is most of a flooding guest's cost.
type InterruptHoldoff interface {
	// Holdoff is how long queue q's interrupts wait; 0 is not at all.
	Holdoff(q int) time.Duration
}

// Signaller is the transport's interrupt path.
//
// Its methods run on the device goroutine, or on the goroutine calling a
// Device method that breaks the device. They must not call the Device and
// must not wait for a lock a caller of the Device may hold.
type Signaller interface {
	// UsedBuffer tells the driver that queue q has new used buffers.
	UsedBuffer(q int)
	// ConfigChanged tells the driver that the config space or the device
	// status changed (DEVICE_NEEDS_RESET).
	ConfigChanged()
}

// Options are a device's optional settings.
type Options struct {
	// Limits bound the device's requests (block and net); zero values
	// are unlimited.
	Limits Limits
	// Clock is the rate limiter's time source; nil is the system clock.
	Clock Clock
	// Charge, if set, is told the host CPU time the device goroutine
	// used after each of its passes (the thread's CPU clock), so that the VM's scheduler can count it against the
	// VM's cap and weight (sched.VM.Charge). Called on the device
	// goroutine; it must not block.
	Charge func(time.Duration)
}

// State is a device's state as a plain value. While the device goroutine
// runs, the queues' positions live with it (queue.go) and Queues holds
// them as when it started; once it has stopped (Quiesce, FAILED, a
// break) Queues holds them as it left them. DeviceState (persist.go) is
// what Save makes of it.
type State struct {
	Status           uint8
	DriverFeatures   uint64
	ConfigGeneration uint32
	Queues           []QueueState
}

// Device is one virtio device, transport-independent: the status state
// machine, feature negotiation, config space, queue setup, notification,
// and reset. A transport (virtio-mmio, the hypercall transport) calls its
// methods from vCPU goroutines; the device's requests run on its own
// goroutine (event_handler.go).
type Device struct {
	backend  Backend
	mem      Mem
	signal   Signaller
	queueMax []uint16
	limiter  *RateLimiter
	source   Source         // the backend, if it feeds queues of its own
	throttle QueueThrottler // the backend, if it limits queues itself
	holdoff  InterruptHoldoff
	stats    Stats
	charge   func(time.Duration)

	// sleep waits d on the device goroutine or until stop closes (false);
	// tests replace it to run the rate limiter on a fake clock.
	sleep func(d time.Duration, stop <-chan struct{}) bool

	// ctl serialises the driver-side calls that change the device's
	// lifecycle (status writes, reset), so that one reset's wait for the
	// device goroutine is not overtaken by another call.
	ctl sync.Mutex

	// quiet is true from Quiesce to Unquiesce: no device goroutine runs.
	// ctl protects quiet.
	quiet bool

	// mu protects st and lastErr. Lock order: ctl, then mu.
	mu      sync.Mutex
	st      State
	lastErr error

	// notified marks the queues notified (Notify, or a Source's wake-up)
	// and not yet served. It outlives the device goroutine, so that
	// notifications while quiesced are kept; reset and activation clear
	// it. Lock-free: Notify never blocks.
	notified []atomic.Bool

	// run is the device goroutine while the device is live (DRIVER_OK
	// and not broken), for Notify to find without a lock.
	run atomic.Pointer[worker]
}

// NewDevice makes a device in its reset state.
func NewDevice(b Backend, m Mem, s Signaller, o Options) *Device {
	d := &Device{
		backend:  b,
		mem:      m,
		signal:   s,
		queueMax: b.QueueMax(),
		sleep:    sleepTimer,
		charge:   o.Charge,
	}
	d.notified = make([]atomic.Bool, len(d.queueMax))
	for i, n := range d.queueMax {
		if n == 0 || n > MaxQueueSize || n&(n-1) != 0 {
			panic(fmt.Sprintf("virtio: backend queue %d maximum %d is not a power of two in [1, %d]", i, n, MaxQueueSize))
		}
	}
	if t, ok := b.(QueueThrottler); ok {
		d.throttle = t
	} else {
		// Even unlimited, so that SetLimits can bound it later.
		d.limiter = NewRateLimiter(o.Limits, o.Clock)
	}
	if h, ok := b.(InterruptHoldoff); ok {
		d.holdoff = h
	}
	d.st = d.initialState()
	if src, ok := b.(Source); ok {
		d.source = src
		src.Bind(d.wake)
	}
	return d
}

// wake is a Source's way to have queue q served: like Notify, it never
// blocks, but it is not counted as a driver notification.
func (d *Device) wake(q int) {
	if q < 0 || q >= len(d.notified) {
		return
	}
	d.notified[q].Store(true)
	if w := d.run.Load(); w != nil {
		w.kick()
	}
}

func (d *Device) initialState() State {
	st := State{Queues: make([]QueueState, len(d.queueMax))}
	for i, n := range d.queueMax {
		st.Queues[i].Size = n
	}
	return st
}

// Type is the device ID.
func (d *Device) Type() DeviceType { return d.backend.Type() }

// DeviceFeatures are the feature bits the device offers.
func (d *Device) DeviceFeatures() uint64 {
	return d.backend.Features()&(1<<24-1) | ringFeatures
}

// DriverFeatures are the feature bits the driver wrote.
func (d *Device) DriverFeatures() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.DriverFeatures
}

// SetDriverFeatures records the driver's feature bits and reports whether
// it did. Writes are ignored unless the driver has set DRIVER and not yet
// FEATURES_OK (section 3.1.1), and the device is not failed or broken;
// bits the device does not offer are refused when FEATURES_OK is set.
func (d *Device) SetDriverFeatures(f uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.Status&StatusDriver != 0 && d.st.Status&(StatusFeaturesOK|StatusFailed|StatusDeviceNeedsReset) == 0 {
		d.st.DriverFeatures = f
		return true
	}
	return false
}

// Status is the device status byte.
func (d *Device) Status() uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Status
}

// ConfigGeneration changes whenever the device changes its config space
// (no backend does yet: block capacity is fixed at open).
func (d *Device) ConfigGeneration() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.ConfigGeneration
}

// Err is the violation that broke the device, or nil.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

// Stats returns the device's counters.
func (d *Device) Stats() StatsSnapshot { return d.stats.snapshot() }

// SetStatus carries out the driver's write of the status byte (section
// 2.1, 3.1.1). Zero resets the device. Otherwise the driver may only add
// bits, in the order ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, or
// FAILED at any time; any other write is ignored, as is a write to a
// broken device other than reset or FAILED. FEATURES_OK is kept only if
// the driver's features are a subset of the device's and include
// VERSION_1; the driver reads the status back to learn which.
func (d *Device) SetStatus(s uint8) {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	if s == 0 {
		d.reset()
		return
	}
	d.mu.Lock()
	old := d.st.Status
	s = s&^StatusDeviceNeedsReset | old&StatusDeviceNeedsReset // the device's bit: the driver neither sets nor clears it
	add := s &^ old
	ok := old&^s == 0 && statusOrderOK(old, add)
	if ok && old&(StatusFailed|StatusDeviceNeedsReset) != 0 && add != StatusFailed {
		ok = false
	}
	if !ok {
		d.mu.Unlock()
		return
	}
	if add&StatusFeaturesOK != 0 {
		f := d.st.DriverFeatures
		if f&^d.DeviceFeatures() != 0 || f&FeatureVersion1 == 0 {
			s &^= StatusFeaturesOK | StatusDriverOK
			add &^= StatusFeaturesOK | StatusDriverOK
		}
	}
	d.st.Status = s
	var broke error
	if add&StatusDriverOK != 0 {
		broke = d.activateLocked()
	}
	d.mu.Unlock()
	if add&StatusFailed != 0 {
		d.stopWorker()
	}
	if broke != nil {
		d.signal.ConfigChanged()
	}
}

// statusOrderOK says whether the bits add may join old: each of
// DRIVER, FEATURES_OK and DRIVER_OK needs its predecessor, already set or
// set in the same write.
func statusOrderOK(old, add uint8) bool {
	now := old | add
	needs := [...]struct{ bit, after uint8 }{
		{StatusDriver, StatusAcknowledge},
		{StatusFeaturesOK, StatusDriver},
		{StatusDriverOK, StatusFeaturesOK},
	}
	for _, n := range needs {
		if add&n.bit != 0 && now&n.after == 0 {
			return false
		}
	}
	return true
}

// activateLocked starts the backend and, unless the device is quiesced,
// the device goroutine over the ready queues. A ready queue whose rings
// are no longer RAM breaks the device. Notifications before DRIVER_OK are
// forgotten. Precondition: ctl and mu held.
func (d *Device) activateLocked() error {
	f := d.st.DriverFeatures
	for i, qs := range d.st.Queues {
		if !qs.Ready {
			continue
		}
		if why := qs.checkLayout(d.queueMax[i], d.mem, f&FeatureEventIdx != 0); why != "" {
			return d.breakLocked(&RingError{Queue: i, Reason: why})
		}
	}
	d.backend.Activate(f)
	for i := range d.notified {
		d.notified[i].Store(false)
	}
	if !d.quiet {
		d.startLocked()
	}
	return nil
}

// liveLocked says whether the device serves its queues: DRIVER_OK, not
// failed and not broken. Precondition: mu held.
func (d *Device) liveLocked() bool {
	st := d.st.Status
	return st&StatusDriverOK != 0 && st&(StatusFailed|StatusDeviceNeedsReset) == 0
}

// startLocked starts the device goroutine over the ready queues from
// their positions in st, with the notifications recorded meanwhile.
// Precondition: ctl and mu held, the device live and not quiesced, no
// device goroutine.
func (d *Device) startLocked() {
	w := newWorker(d)
	for i, qs := range d.st.Queues {
		if qs.Ready {
			w.queues[i] = newQueue(i, qs, d.queueMax[i], d.mem, d.st.DriverFeatures)
		}
	}
	w.armHeld()
	d.run.Store(w)
	go w.loop()
	w.kick() // for the queues notified before the goroutine could be found
}

// breakLocked marks the device as needing reset because of err. The caller
// signals ConfigChanged once mu is released. Precondition: mu held.
func (d *Device) breakLocked(err error) error {
	d.st.Status |= StatusDeviceNeedsReset
	d.lastErr = err
	d.stats.broken.Add(1)
	return err
}

// reset stops the device goroutine, waiting for the request it is serving,
// and returns everything to its initial state. A quiesced device stays
// quiesced. Precondition: ctl held.
func (d *Device) reset() {
	d.stopWorker()
	d.backend.Reset()
	// The limiter keeps its buckets: a guest cannot buy a fresh burst
	// by resetting its device.
	d.mu.Lock()
	d.st = d.initialState()
	d.lastErr = nil
	d.mu.Unlock()
	for i := range d.notified {
		d.notified[i].Store(false)
	}
}

// stopWorker ends the device goroutine, if any, waits for it, and keeps
// the queues' positions it leaves (a request it was holding back for the
// rate limiter is put back, event_handler.go). Precondition: ctl held.
func (d *Device) stopWorker() {
	w := d.run.Swap(nil)
	if w == nil {
		return
	}
	close(w.stop)
	<-w.done
	d.mu.Lock()
	for i, q := range w.queues {
		if q != nil {
			d.st.Queues[i] = q.QueueState
		}
	}
	d.mu.Unlock()
}

// Quiesce parks the device: when it returns, the device goroutine has
// ended, so no request is in progress or will start, no guest memory is
// touched and no interrupt is signalled. It waits for the request in
// progress to complete, except one the rate limiter is holding back,
// which is put back on its ring (the device has not consumed it: the
// device served after Unquiesce, or a restored one, takes it again). An
// interrupt held back by the backend's holdoff stays held (QueueState.Held),
// and notifications that arrive meanwhile are kept. Status, feature,
// config and queue calls still work; a reset while quiesced resets, and a
// device that reaches DRIVER_OK meanwhile starts at Unquiesce. Quiescing
// a quiesced device does nothing more.
func (d *Device) Quiesce() {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	d.quiet = true
	d.stopWorker()
}

// Unquiesce lets a quiesced device go on: a live one starts its goroutine
// again from the positions it kept (or Restore put back), serves the
// queues notified meanwhile, and decides on held interrupts one holdoff
// later. Unquiescing a device that is not quiesced does nothing.
func (d *Device) Unquiesce() {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	if !d.quiet {
		return
	}
	d.quiet = false
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.liveLocked() {
		d.startLocked()
	}
}

// Quiesced reports whether the device is quiesced.
func (d *Device) Quiesced() bool {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	return d.quiet
}

// Queue configuration errors, returned to the transport (which ignores or
// counts them: a register write does not fail).
var (
	ErrNoQueue    = errors.New("virtio: no such queue")
	ErrQueuePhase = errors.New("virtio: queues are set up after FEATURES_OK and before DRIVER_OK")
	ErrQueueReady = errors.New("virtio: a ready queue's configuration cannot change")
)

// QueueMax is queue q's maximum size, or 0 if there is no queue q.
func (d *Device) QueueMax(q int) uint16 {
	if q < 0 || q >= len(d.queueMax) {
		return 0
	}
	return d.queueMax[q]
}

// NumQueues is the number of queues.
func (d *Device) NumQueues() int { return len(d.queueMax) }

// Queue returns queue q's configuration and positions. While the device
// goroutine runs, the positions are those it started from.
func (d *Device) Queue(q int) (QueueState, bool) {
	if q < 0 || q >= len(d.queueMax) {
		return QueueState{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Queues[q], true
}

// SetQueue sets queue q's size, ring addresses and ready flag (the
// positions in s are ignored: a queue starts at entry 0). It is allowed
// after FEATURES_OK and before DRIVER_OK; a ready queue must be made not
// ready before it changes. Enabling a queue checks its layout, and a bad
// one (size not a power of two up to the maximum, misaligned rings, rings
// outside RAM) breaks the device.
func (d *Device) SetQueue(q int, s QueueState) error {
	if q < 0 || q >= len(d.queueMax) {
		return ErrNoQueue
	}
	d.mu.Lock()
	st := d.st.Status
	if st&StatusFeaturesOK == 0 || st&(StatusDriverOK|StatusFailed|StatusDeviceNeedsReset) != 0 {
		d.mu.Unlock()
		return ErrQueuePhase
	}
	cur := &d.st.Queues[q]
	if cur.Ready && s.Ready && (s.Size != cur.Size || s.Desc != cur.Desc || s.Driver != cur.Driver || s.Device != cur.Device) {
		d.mu.Unlock()
		return ErrQueueReady
	}
	s.clearPositions()
	if s.Ready {
		if why := s.checkLayout(d.queueMax[q], d.mem, d.st.DriverFeatures&FeatureEventIdx != 0); why != "" {
			err := d.breakLocked(&RingError{Queue: q, Reason: why})
			d.mu.Unlock()
			d.signal.ConfigChanged()
			return err
		}
	}
	*cur = s
	d.mu.Unlock()
	return nil
}

// ReadConfig copies config bytes [off, off+len(p)) into p; false (p
// untouched) if the range is not all within the config space.
func (d *Device) ReadConfig(off uint64, p []byte) bool {
	return d.config(off, p, d.backend.ReadConfig)
}

// WriteConfig writes p to config bytes [off, off+len(p)); false (nothing
// written) if the range is not all within the config space.
func (d *Device) WriteConfig(off uint64, p []byte) bool {
	return d.config(off, p, d.backend.WriteConfig)
}

func (d *Device) config(off uint64, p []byte, access func(int, []byte)) bool {
	size := uint64(d.backend.ConfigSize())
	if off > size || uint64(len(p)) > size-off {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	access(int(off), p)
	return true
}

// Notify tells the device that the driver made buffers available on queue
// q. It never blocks: it records the queue and wakes the device goroutine.
// A notification for a queue that does not exist or is not ready, or to a
// device before DRIVER_OK, is ignored; one to a quiesced device is kept
// for Unquiesce.
func (d *Device) Notify(q int) {
	d.stats.notifies.Add(1)
	d.wake(q)
}
