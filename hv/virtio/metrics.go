package virtio

import "sync/atomic"

// Stats are a device's counters, updated on the device goroutine and read
// from anywhere.
type Stats struct {
	notifies   atomic.Uint64
	requests   atomic.Uint64
	bytes      atomic.Uint64
	interrupts atomic.Uint64
	throttled  atomic.Uint64
	broken     atomic.Uint64
}

// StatsSnapshot is Stats at one moment.
type StatsSnapshot struct {
	Notifies   uint64 // driver notifications
	Requests   uint64 // chains completed
	Bytes      uint64 // buffer bytes of completed chains (readable and writable)
	Interrupts uint64 // used-buffer interrupts raised
	Throttled  uint64 // waits imposed by the rate limiter
	Broken     uint64 // times the device was marked DEVICE_NEEDS_RESET
}

func (s *Stats) snapshot() StatsSnapshot {
	return StatsSnapshot{
		Notifies:   s.notifies.Load(),
		Requests:   s.requests.Load(),
		Bytes:      s.bytes.Load(),
		Interrupts: s.interrupts.Load(),
		Throttled:  s.throttled.Load(),
		Broken:     s.broken.Load(),
	}
}
