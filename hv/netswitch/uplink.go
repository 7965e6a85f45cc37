package netswitch

import "fmt"

// AttachUplink plugs an uplink into segment: a port for the host's side of
// the segment (a TAP device, tap_linux.go), which carries frames from and
// to many addresses. Its frames are not held to one source MAC, but to
// these rules: the source is unicast, and is not the MAC of any VM port of
// the segment (a host behind the uplink cannot take over a VM's address).
// Its sources are learned like any port's, within the segment's bound.
// queueLen 0 is DefaultQueueLen.
func (s *Switch) AttachUplink(segment, owner string, queueLen int) (*Port, error) {
	if err := CheckSegmentName(segment); err != nil {
		return nil, err
	}
	n := queueLen
	if n == 0 {
		n = DefaultQueueLen
	}
	if n < 1 || n > maxQueueLen {
		return nil, fmt.Errorf("segment %s: uplink queue of %d frames: want 1..%d", segment, queueLen, maxQueueLen)
	}
	p := &Port{owner: owner, uplink: true, slots: make([][MaxFrame]byte, n), lens: make([]uint16, n)}
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := s.segments[segment]
	if seg == nil {
		seg = &Segment{name: segment, fdb: map[MAC]*Port{}}
		s.segments[segment] = seg
	}
	seg.mu.Lock()
	defer seg.mu.Unlock()
	p.seg, p.attached = seg, true
	seg.ports = append(seg.ports, p)
	return p, nil
}

// uplinkSourceOK says whether an uplink may send from src: a unicast
// address no VM port of the segment has.
func (seg *Segment) uplinkSourceOK(src MAC) bool {
	if src.Multicast() || src.IsZero() {
		return false
	}
	seg.mu.RLock()
	defer seg.mu.RUnlock()
	for _, p := range seg.ports {
		if !p.uplink && p.mac == src {
			return false
		}
	}
	return true
}
