package netswitch

import (
	"fmt"
	"sort"
	"sync"

	"github.com/pvisor/pvisor/hv/virtio"
)

// Frame sizes the switch carries: an Ethernet header and at most an MTU of
// payload, without FCS (the virtio-net device's bounds).
const (
	MinFrame = virtio.EthHeaderSize
	MaxFrame = virtio.EthMaxFrame
)

// DefaultQueueLen is a port's receive queue, in frames, unless its
// configuration says otherwise: as many as a Linux guest's receive ring
// holds (256 buffers).
const DefaultQueueLen = 256

// maxQueueLen bounds PortConfig.QueueLen (4096 frames, 6 MiB).
const maxQueueLen = 4096

// maxLearned bounds a segment's learning table; past it, new addresses are
// not learned and frames to them flood.
const maxLearned = 4096

// maxSegmentName is the longest segment name.
const maxSegmentName = 64

// Switch is a set of named segments. VMs whose NICs attach to the same
// Switch and segment share that segment; nothing crosses segments.
type Switch struct {
	mu       sync.Mutex // protects segments
	segments map[string]*Segment
}

// New returns a switch with no segments. A segment exists from the first
// port attached to it on.
func New() *Switch { return &Switch{segments: map[string]*Segment{}} }

// Segment is one learning switch: its ports and the addresses it learned.
type Segment struct {
	name  string
	stats counters

	mu    sync.RWMutex // protects ports and fdb
	ports []*Port
	fdb   map[MAC]*Port // source addresses seen, and the port they came from
}

// CheckSegmentName is the rule for segment names: 1 to 64 letters, digits,
// '.', '_' or '-', starting with a letter or digit.
func CheckSegmentName(name string) error {
	ok := name != "" && len(name) <= maxSegmentName
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = ok && (alnum || i > 0 && (c == '.' || c == '_' || c == '-'))
	}
	if !ok {
		return fmt.Errorf("segment %q: want 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", name, maxSegmentName)
	}
	return nil
}

// PortConfig configures a port.
type PortConfig struct {
	// Owner names the port in listings ("web/net0").
	Owner string
	// MAC is the port's address: the only source address its frames may
	// carry. It must be unicast, not zero, and unique in the segment.
	MAC MAC
	// Limits bound what the port's VM sends (bytes of frames, frames);
	// zero values are unlimited.
	Limits virtio.Limits
	// Clock is the rate limiter's time source; nil is the system clock.
	Clock virtio.Clock
	// QueueLen is the receive queue's length in frames, 0 for
	// DefaultQueueLen.
	QueueLen int
}

// Attach plugs a new port into segment (creating the segment if it does
// not exist yet).
func (s *Switch) Attach(segment string, c PortConfig) (*Port, error) {
	if err := CheckSegmentName(segment); err != nil {
		return nil, err
	}
	if c.MAC.Multicast() || c.MAC.IsZero() {
		return nil, fmt.Errorf("segment %s: MAC %s is not a unicast address", segment, c.MAC)
	}
	n := c.QueueLen
	if n == 0 {
		n = DefaultQueueLen
	}
	if n < 1 || n > maxQueueLen {
		return nil, fmt.Errorf("segment %s: receive queue of %d frames: want 1..%d", segment, c.QueueLen, maxQueueLen)
	}
	p := &Port{owner: c.Owner, mac: c.MAC, slots: make([][MaxFrame]byte, n), lens: make([]uint16, n)}
	// Even unlimited, so that SetLimits can bound it later.
	p.limiter = virtio.NewRateLimiter(c.Limits, c.Clock)
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := s.segments[segment]
	if seg == nil {
		seg = &Segment{name: segment, fdb: map[MAC]*Port{}}
		s.segments[segment] = seg
	}
	seg.mu.Lock()
	defer seg.mu.Unlock()
	for _, q := range seg.ports {
		if q.mac == c.MAC {
			return nil, fmt.Errorf("segment %s: MAC %s is already %s's: give each NIC of a segment its own mac=", segment, c.MAC, q.owner)
		}
	}
	p.seg, p.attached = seg, true
	seg.ports = append(seg.ports, p)
	return p, nil
}

// SegmentInfo describes a segment for listings.
type SegmentInfo struct {
	Name  string
	Ports []string // the owners of its ports, in attach order
	Stats
}

// Segments lists the switch's segments by name, with their counters.
func (s *Switch) Segments() []SegmentInfo {
	s.mu.Lock()
	segs := make([]*Segment, 0, len(s.segments))
	for _, seg := range s.segments {
		segs = append(segs, seg)
	}
	s.mu.Unlock()
	sort.Slice(segs, func(i, j int) bool { return segs[i].name < segs[j].name })
	out := make([]SegmentInfo, len(segs))
	for i, seg := range segs {
		seg.mu.RLock()
		info := SegmentInfo{Name: seg.name, Stats: seg.stats.snapshot()}
		for _, p := range seg.ports {
			info.Ports = append(info.Ports, p.owner)
		}
		seg.mu.RUnlock()
		out[i] = info
	}
	return out
}

// send carries frame, from port from, through the segment: learn its
// source, then deliver a copy to the port its destination was learned on,
// or to every other port for group and unknown addresses.
// Precondition: the frame's length and source were checked.
func (seg *Segment) send(from *Port, frame []byte) {
	var dst, src MAC
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	seg.mu.RLock()
	if seg.fdb[src] != from {
		seg.mu.RUnlock()
		seg.learn(src, from)
		seg.mu.RLock()
	}
	if !from.attached {
		seg.mu.RUnlock()
		return
	}
	from.stats.txFrames.Add(1)
	from.stats.txBytes.Add(uint64(len(frame)))
	seg.stats.txFrames.Add(1)
	seg.stats.txBytes.Add(uint64(len(frame)))
	if to := seg.fdb[dst]; to != nil && !dst.Multicast() {
		if to != from { // a frame to its own sender goes nowhere
			to.deliver(frame)
		}
	} else {
		for _, to := range seg.ports {
			if to != from {
				to.deliver(frame)
			}
		}
	}
	seg.mu.RUnlock()
}

// learn records that src is reached through port p, within the table's
// bound.
func (seg *Segment) learn(src MAC, p *Port) {
	seg.mu.Lock()
	defer seg.mu.Unlock()
	if !p.attached {
		return
	}
	if _, ok := seg.fdb[src]; ok || len(seg.fdb) < maxLearned {
		seg.fdb[src] = p
	}
}
