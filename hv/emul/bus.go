package emul

import (
	"fmt"
	"sort"
	"sync"
)

// PortDevice is a device on the port-I/O bus. size is 1, 2 or 4.
type PortDevice interface {
	In(port uint16, size int) uint32
	Out(port uint16, size int, v uint32)
}

// Bus dispatches port I/O to the registered devices; unclaimed reads float
// high and unclaimed writes are dropped, as on a PC. It implements IO.
//
// mu protects ranges; devices serialize their own state.
type Bus struct {
	mu     sync.RWMutex
	ranges []portRange
}

type portRange struct {
	first, last uint16
	name        string
	dev         PortDevice
}

// Register claims [first, last] for dev. Overlaps are refused.
func (b *Bus) Register(name string, first, last uint16, dev PortDevice) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.ranges {
		if first <= r.last && r.first <= last {
			return fmt.Errorf("emul: %s at %#x-%#x overlaps %s at %#x-%#x", name, first, last, r.name, r.first, r.last)
		}
	}
	b.ranges = append(b.ranges, portRange{first, last, name, dev})
	sort.Slice(b.ranges, func(i, j int) bool { return b.ranges[i].first < b.ranges[j].first })
	return nil
}

func (b *Bus) find(port uint16) PortDevice {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].last >= port })
	if i < len(b.ranges) && b.ranges[i].first <= port {
		return b.ranges[i].dev
	}
	return nil
}

// In implements IO.
func (b *Bus) In(port uint16, size int) uint32 {
	if d := b.find(port); d != nil {
		return d.In(port, size)
	}
	return 0xffffffff >> (32 - 8*uint(size))
}

// Out implements IO.
func (b *Bus) Out(port uint16, size int, v uint32) {
	if d := b.find(port); d != nil {
		d.Out(port, size, v)
	}
}

// Devices lists the registered devices as "name first-last" lines.
func (b *Bus) Devices() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var s []string
	for _, r := range b.ranges {
		s = append(s, fmt.Sprintf("%-6s %#06x-%#06x", r.name, r.first, r.last))
	}
	return s
}
