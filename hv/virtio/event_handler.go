package virtio

import (
	"errors"
	"sync/atomic"
	"time"
)

// worker is a running device's goroutine. It alone touches the queues'
// rings and the backend's request path; vCPUs reach it only through
// notify, which sets a flag and wakes it.
type worker struct {
	d       *Device
	queues  []*queue      // nil where the queue is not ready
	pending []atomic.Bool // queue notified and not yet served
	kick    chan struct{} // capacity 1: a wake-up is never lost, never blocks
	stop    chan struct{} // closed to end the goroutine
	done    chan struct{} // closed when it has ended
}

// errStopped ends a pass because the device is being reset or failed.
var errStopped = errors.New("virtio: device stopped")

func newWorker(d *Device) *worker {
	n := len(d.queueMax)
	return &worker{
		d:       d,
		queues:  make([]*queue, n),
		pending: make([]atomic.Bool, n),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

func (w *worker) notify(q int) {
	if q < 0 || q >= len(w.queues) || w.queues[q] == nil {
		return
	}
	w.pending[q].Store(true)
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// loop serves notified queues until stopped or broken. Each pass over a
// queue is bounded (serve); a queue with more work is marked pending
// again, so that every queue and a stop get their turn.
func (w *worker) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case <-w.kick:
		}
		for i, q := range w.queues {
			if q == nil || !w.pending[i].Swap(false) {
				continue
			}
			select {
			case <-w.stop: // a reset does not wait for the other queues
				return
			default:
			}
			more, err := w.serve(q)
			if errors.Is(err, errStopped) {
				return
			}
			if err != nil {
				w.d.fail(err)
				return
			}
			if more {
				w.notify(i)
			}
		}
	}
}

// serve handles at most Size requests of q, each a chain of at most the
// queue's maximum size of buffers, then interrupts the driver if it asked for it. It returns
// true if requests may remain.
func (w *worker) serve(q *queue) (more bool, err error) {
	d := w.d
	published := false
	for n := 0; ; {
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
	return more, w.interrupt(q)
}

// throttle waits, on this goroutine, until the rate limiter (or the
// backend's QueueThrottler) admits the request in q.chain. What was
// completed before is signalled first, so that the driver is not kept
// waiting for it.
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
		if !d.sleep(wait, w.stop) {
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
