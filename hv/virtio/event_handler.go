package virtio

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// worker is a running device's goroutine. It alone touches the queues'
// rings and the backend's request path; vCPUs reach it only through
// Device.notified, a flag per queue, and kick, which wakes it. Its
// queues' QueueState is all it keeps: stopWorker copies it back to the
// Device when it ends.
type worker struct {
	d      *Device
	queues []*queue      // nil where the queue is not ready
	wakeup chan struct{} // capacity 1: a wake-up is never lost, never blocks
	stop   chan struct{} // closed to end the goroutine
	done   chan struct{} // closed when it has ended
	slept  time.Duration // rate-limit waits in the current pass

	// holdoff fires when the queues marked Held (InterruptHoldoff) are
	// to be served again and decided on; nil until first needed, armed
	// while any queue is held.
	holdoff *time.Timer
}

// errStopped ends a pass because the device is being reset or failed.
var errStopped = errors.New("virtio: device stopped")

func newWorker(d *Device) *worker {
	n := len(d.queueMax)
	return &worker{
		d:      d,
		queues: make([]*queue, n),
		wakeup: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// kick wakes the goroutine to look at the notified queues; it never
// blocks.
func (w *worker) kick() {
	select {
	case w.wakeup <- struct{}{}:
	default:
	}
}

// again marks queue q to be served in a later pass.
func (w *worker) again(q int) {
	w.d.notified[q].Store(true)
	w.kick()
}

// armHeld arms the holdoff timer for queues that were held when the
// device last stopped (Quiesce, Restore). Called before the goroutine
// starts.
func (w *worker) armHeld() {
	for _, q := range w.queues {
		if q != nil && q.Held && w.d.holdoff != nil {
			w.holdoff = time.NewTimer(w.d.holdoff.Holdoff(q.index))
			return
		}
	}
}

// loop serves notified queues until stopped or broken. Each pass over a
// queue is bounded (serve); a queue with more work is marked pending
// again, so that every queue and a stop get their turn.
//
// With Options.Charge each pass is measured by the thread's CPU clock.
// A goroutine can change threads when it blocks (a rate-limit wait, a slow
// read); a pass that did is measured by the wall clock instead, less its
// rate-limit waits, which use no CPU.
func (w *worker) loop() {
	defer close(w.done)
	defer func() {
		if w.holdoff != nil {
			w.holdoff.Stop()
		}
	}()
	for {
		var fired <-chan time.Time
		if w.holdoff != nil {
			fired = w.holdoff.C
		}
		select {
		case <-w.stop:
			return
		case <-w.wakeup:
		case <-fired:
			if w.measure(w.release) {
				return
			}
			continue
		}
		if w.measure(w.pass) {
			return
		}
	}
}

// measure runs one piece of the goroutine's work (a pass, a held
// interrupt's release) and charges its CPU time (Options.Charge); it
// returns f's result: true when the goroutine must end.
func (w *worker) measure(f func() bool) bool {
	if w.d.charge == nil {
		return f()
	}
	tid, cpu, wall := unix.Gettid(), threadCPU(), time.Now()
	w.slept = 0
	stop := f()
	used := threadCPU() - cpu
	if unix.Gettid() != tid || used < 0 {
		used = max(time.Since(wall)-w.slept, 0)
	}
	w.d.charge(used)
	return stop
}

// release signals the queues whose interrupts were held back
// (InterruptHoldoff); true when the goroutine must end (stopped, or the
// device broke).
func (w *worker) release() bool {
	if err := w.releaseHeld(); err != nil {
		if !errors.Is(err, errStopped) {
			w.d.fail(err)
		}
		return true
	}
	return false
}

// pass serves each notified queue once; it returns true when the
// goroutine must end (a reset or quiesce, or the device broke). A queue
// not reached keeps its notification.
func (w *worker) pass() (stop bool) {
	for i, q := range w.queues {
		if q == nil {
			continue
		}
		select {
		case <-w.stop: // a reset does not wait for the other queues
			return true
		default:
		}
		if !w.d.notified[i].Swap(false) {
			continue
		}
		more, err := w.serve(q)
		if errors.Is(err, errStopped) {
			return true
		}
		if err != nil {
			w.d.fail(err)
			return true
		}
		if more {
			w.again(i)
		}
	}
	return false
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// serve handles at most Size requests of q, each a chain of at most the
// queue's maximum size of buffers, then interrupts the driver if it asked for it. It returns
// true if requests may remain.
//
// A queue with a holdoff (InterruptHoldoff) that completed requests in this
// pass is held instead: the interrupt decision, and the request for a
// notification (avail_event), wait until the holdoff fires, when the queue
// is served again. A driver that keeps adding requests meanwhile is polled,
// not notified, and interrupted at most once per holdoff.
func (w *worker) serve(q *queue) (more bool, err error) {
	d := w.d
	var holdoff time.Duration
	if d.holdoff != nil {
		holdoff = d.holdoff.Holdoff(q.index)
	}
	published := false
	n := 0
	for {
		if n == int(q.Size) {
			more = true
			break
		}
		if d.source != nil && !d.source.Ready(q.index) {
			break // nothing to deliver: the backend wakes the queue when there is
		}
		ok, err := q.next()
		if err != nil {
			return false, err
		}
		if !ok {
			if holdoff > 0 && n > 0 {
				break // look again when the holdoff fires
			}
			if q.eventIdx && !published {
				// Ask for a notification from the next entry on,
				// then look once more: the driver may have added
				// one before it saw the request.
				if err := q.publishAvailEvent(); err != nil {
					return false, err
				}
				published = true
				continue
			}
			break
		}
		published = false
		n++
		if d.limiter != nil || d.throttle != nil {
			if err := w.throttle(q); err != nil {
				return false, err
			}
		}
		written, err := d.backend.Handle(q.index, &q.chain)
		if err != nil {
			return false, err
		}
		if err := q.push(q.chain.Head, written); err != nil {
			return false, err
		}
		d.stats.requests.Add(1)
		d.stats.bytes.Add(q.chain.readLen + q.chain.writeLen)
	}
	if holdoff > 0 && n > 0 {
		w.hold(q, holdoff)
		return more, nil
	}
	return more, w.interrupt(q)
}

// hold defers q's interrupt decision by h, unless it is already deferred:
// the requests completed meanwhile share the one interrupt.
func (w *worker) hold(q *queue, h time.Duration) {
	armed := false
	for _, x := range w.queues {
		armed = armed || x != nil && x.Held
	}
	q.Held = true
	switch {
	case armed: // the timer runs for a queue held earlier: q joins it
	case w.holdoff == nil:
		w.holdoff = time.NewTimer(h)
	default:
		w.holdoff.Reset(h)
	}
}

// releaseHeld makes the deferred interrupt decisions when the holdoff
// timer fires, and serves the held queues again: one that has requests
// again is held again, one that has none asks for a notification.
func (w *worker) releaseHeld() error {
	for i, q := range w.queues {
		if q == nil || !q.Held {
			continue
		}
		q.Held = false
		more, err := w.serve(q) // with nothing new: asks for a notification and decides on the interrupt
		if err != nil {
			return err // stopped in a rate-limit wait: it decided before waiting
		}
		if q.Held { // held again: decide now all the same, once per holdoff
			if err := w.interrupt(q); err != nil {
				return err
			}
		}
		if more {
			w.again(i)
		}
	}
	return nil
}

// throttle waits, on this goroutine, until the rate limiter (or the
// backend's QueueThrottler) admits the request in q.chain. What was
// completed before is signalled first, so that the driver is not kept
// waiting for it. Stopped while waiting (a reset, Quiesce), it puts the
// request back on its ring, not consumed and still notified, so that the
// device serves it when it runs again, and returns errStopped.
func (w *worker) throttle(q *queue) error {
	d := w.d
	cost := q.chain.readLen + q.chain.writeLen
	for {
		var wait time.Duration
		if d.limiter != nil {
			wait = d.limiter.Take(cost)
		} else {
			wait = d.throttle.Admit(q.index, &q.chain)
		}
		if wait == 0 {
			return nil
		}
		d.stats.throttled.Add(1)
		if err := w.interrupt(q); err != nil {
			return err
		}
		t0 := time.Now()
		ok := d.sleep(wait, w.stop)
		w.slept += time.Since(t0)
		if !ok {
			q.NextAvail--
			d.notified[q.index].Store(true)
			return errStopped
		}
	}
}

func (w *worker) interrupt(q *queue) error {
	need, err := q.needInterrupt()
	if err != nil {
		return err
	}
	if need {
		w.d.stats.interrupts.Add(1)
		w.d.signal.UsedBuffer(q.index)
	}
	return nil
}

// fail marks the device as needing reset because of err, on the device
// goroutine.
func (d *Device) fail(err error) {
	d.mu.Lock()
	d.breakLocked(err)
	d.mu.Unlock()
	d.signal.ConfigChanged()
}

// sleepTimer waits d or until stop closes.
func sleepTimer(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
