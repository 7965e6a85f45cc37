package netswitch

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pvisor/pvisor/hv/virtio"
)

// Port is one NIC's place in a segment. It implements hv/virtio's NetPort.
type Port struct {
	owner   string
	mac     MAC                 // zero for an uplink
	uplink  bool                // an uplink (uplink.go): many source addresses, none of its segment's ports
	limiter *virtio.RateLimiter // nil: unlimited (only ports made outside Attach)
	stats   counters
	wake    atomic.Pointer[func()]

	seg *Segment // fixed at Attach

	// attached is true from Attach to Detach. Segment.mu protects it.
	attached bool

	// mu protects the receive queue: a ring of fixed-size slots, each
	// one frame copied in by deliver.
	mu    sync.Mutex
	slots [][MaxFrame]byte
	lens  []uint16
	head  int // oldest frame
	n     int // frames waiting
}

var _ virtio.NetPort = (*Port)(nil)

// MAC implements virtio.NetPort.MAC.
func (p *Port) MAC() [6]byte { return p.mac }

// Owner is the name the port was attached with.
func (p *Port) Owner() string { return p.owner }

// Segment is the name of the port's segment.
func (p *Port) Segment() string { return p.seg.name }

// Stats are the port's counters.
func (p *Port) Stats() Stats { return p.stats.snapshot() }

// SetWake implements virtio.NetPort.SetWake.
func (p *Port) SetWake(f func()) {
	if f == nil {
		p.wake.Store(nil)
		return
	}
	p.wake.Store(&f)
}

// Admit implements virtio.NetPort.Admit.
func (p *Port) Admit(n uint64) time.Duration {
	if p.limiter == nil {
		return 0
	}
	wait := p.limiter.Take(n)
	if wait != 0 {
		p.stats.throttled.Add(1)
		p.seg.stats.throttled.Add(1)
	}
	return wait
}

// SetLimits changes what the port's VM may send from now on (frame
// bytes/s, frames/s; zero is unlimited), keeping held tokens up to the new
// burst and any debt.
func (p *Port) SetLimits(l virtio.Limits) {
	if p.limiter != nil {
		p.limiter.SetLimits(l)
	}
}

// Limits returns the port's limits.
func (p *Port) Limits() virtio.Limits {
	if p.limiter == nil {
		return virtio.Limits{}
	}
	return p.limiter.Limits()
}

// Send implements virtio.NetPort.Send: it checks the frame's length and
// source address, then carries it through the segment. It never keeps
// frame.
func (p *Port) Send(frame []byte) {
	seg := p.seg
	switch {
	case len(frame) < MinFrame || len(frame) > MaxFrame:
		p.stats.badDrops.Add(1)
		seg.stats.badDrops.Add(1)
	case !p.uplink && MAC(frame[6:12]) != p.mac,
		p.uplink && !seg.uplinkSourceOK(MAC(frame[6:12])):
		p.stats.spoofDrops.Add(1)
		seg.stats.spoofDrops.Add(1)
	default:
		seg.send(p, frame)
	}
}

// deliver copies frame into the port's queue, or drops it if the queue is
// full, and wakes the port's device. Precondition: the segment's mu held
// (shared or not).
func (p *Port) deliver(frame []byte) {
	seg := p.seg
	p.mu.Lock()
	if p.n == len(p.slots) {
		p.mu.Unlock()
		p.stats.fullDrops.Add(1)
		seg.stats.fullDrops.Add(1)
		return
	}
	i := (p.head + p.n) % len(p.slots)
	copy(p.slots[i][:], frame)
	p.lens[i] = uint16(len(frame))
	p.n++
	p.mu.Unlock()
	p.stats.rxFrames.Add(1)
	p.stats.rxBytes.Add(uint64(len(frame)))
	seg.stats.rxFrames.Add(1)
	seg.stats.rxBytes.Add(uint64(len(frame)))
	if w := p.wake.Load(); w != nil {
		(*w)()
	}
}

// Receive implements virtio.NetPort.Receive.
func (p *Port) Receive(b []byte) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		return 0, false
	}
	i := p.head
	n := copy(b, p.slots[i][:p.lens[i]])
	p.head = (p.head + 1) % len(p.slots)
	p.n--
	return n, true
}

// Waiting implements virtio.NetPort.Waiting.
func (p *Port) Waiting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n > 0
}

// Detach unplugs the port: it leaves its segment, which forgets the
// addresses learned on it, and frames waiting in its queue are dropped.
// Detaching twice does nothing more.
func (p *Port) Detach() {
	seg := p.seg
	seg.mu.Lock()
	if p.attached {
		for i, q := range seg.ports {
			if q == p {
				seg.ports = append(seg.ports[:i:i], seg.ports[i+1:]...)
				break
			}
		}
		for m, q := range seg.fdb {
			if q == p {
				delete(seg.fdb, m)
			}
		}
		p.attached = false
	}
	seg.mu.Unlock()
	p.mu.Lock()
	p.head, p.n = 0, 0
	p.mu.Unlock()
}
