package snapshot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Tag names a section's content. The table is append-only: a number is
// never reused, and a reader of this Version refuses none of them (the VM
// restore refuses what it does not expect).
type Tag uint32

const (
	TagEnd    Tag = 0 // end marker: length 0, last in the final chunk
	TagMemory Tag = 1 // resident guest memory, memory-section format (WriteMemory)
	TagVM     Tag = 2 // gob: VM-level state (clock, generation ID, lineage flags)
	TagVCPU   Tag = 3 // gob: one vCPU's state, including the engine's hidden state; vCPUs in index order
	TagDevice Tag = 4 // gob: one device's state (legacy PC, event channels, virtio and queues)
	TagMM     Tag = 5 // gob: p2m and balloon state
	TagDisk   Tag = 6 // raw: a disk's copy-on-write overlay
)

var tagNames = [...]string{"end", "memory", "vm", "vcpu", "device", "mm", "disk"}

func (t Tag) String() string {
	if int(t) < len(tagNames) {
		return tagNames[t]
	}
	return fmt.Sprintf("tag(%d)", uint32(t))
}

var zeroPage [PageSize]byte

func isZeroPage(p []byte) bool { return bytes.Equal(p, zeroPage[:]) }

type memRun struct{ first, count uint64 }

// WriteMemory appends the TagMemory section for guest memory ram, which
// must be the header's MemorySize bytes. Only resident pages are written:
// a page for which hole(gfn) is true (ballooned out; hole may be nil) and a
// page of zeros are left out, and restore leaves them zero. The section is
// the page size, the frame count and runs of (first frame, count, pages),
// ascending, each separated from the next by at least one left-out page.
func (w *Writer) WriteMemory(ram []byte, hole func(gfn uint64) bool) error {
	if uint64(len(ram)) != w.hdr.MemorySize {
		return fmt.Errorf("snapshot: memory of %d bytes, header says %d", len(ram), w.hdr.MemorySize)
	}
	frames := uint64(len(ram)) / PageSize
	var runs []memRun
	size := uint64(memoryHeaderLen)
	for gfn := uint64(0); gfn < frames; gfn++ {
		if (hole != nil && hole(gfn)) || isZeroPage(ram[gfn*PageSize:(gfn+1)*PageSize]) {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].first+runs[n-1].count == gfn {
			runs[n-1].count++
		} else {
			runs = append(runs, memRun{first: gfn, count: 1})
			size += memoryRunHeaderLen
		}
		size += PageSize
	}
	if err := w.sectionHeader(TagMemory, size); err != nil {
		return err
	}
	var b [memoryHeaderLen]byte
	binary.LittleEndian.PutUint32(b[0:], PageSize)
	binary.LittleEndian.PutUint64(b[8:], frames)
	if err := w.write(b[:]); err != nil {
		return err
	}
	for _, r := range runs {
		binary.LittleEndian.PutUint64(b[0:], r.first)
		binary.LittleEndian.PutUint64(b[8:], r.count)
		if err := w.write(b[:]); err != nil {
			return err
		}
		if err := w.write(ram[r.first*PageSize : (r.first+r.count)*PageSize]); err != nil {
			return err
		}
	}
	return nil
}

// ReadMemory reads a TagMemory section run by run, calling fn for each page
// in ascending frame order; page is valid only during the call. Every field
// is checked: the page size, a frame count matching the header's memory
// size, runs ascending and within it, and the section's length.
func (s *Section) ReadMemory(fn func(gfn uint64, page []byte) error) error {
	var page [PageSize]byte
	return s.readMemory(func(gfn, count uint64) error {
		for i := uint64(0); i < count; i++ {
			if _, err := io.ReadFull(s, page[:]); err != nil {
				return err
			}
			if err := fn(gfn+i, page[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// LoadMemory reads a TagMemory section straight into ram, which must be the
// header's MemorySize bytes and zero (a fresh mapping): left-out pages are
// not written.
func (s *Section) LoadMemory(ram []byte) error {
	if uint64(len(ram)) != s.r.hdr.MemorySize {
		return fmt.Errorf("snapshot: memory of %d bytes, header says %d", len(ram), s.r.hdr.MemorySize)
	}
	return s.readMemory(func(gfn, count uint64) error {
		_, err := io.ReadFull(s, ram[gfn*PageSize:(gfn+count)*PageSize])
		return err
	})
}

// readMemory validates the section's structure and calls run for each run,
// which must consume exactly count pages from s.
func (s *Section) readMemory(run func(gfn, count uint64) error) error {
	if s.Tag != TagMemory {
		return fmt.Errorf("snapshot: section %v is not memory", s.Tag)
	}
	frames := s.r.hdr.MemorySize / PageSize
	var b [memoryHeaderLen]byte
	if s.Len < memoryHeaderLen {
		return corrupt("memory section of %d bytes", s.Len)
	}
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return err
	}
	if ps := binary.LittleEndian.Uint32(b[0:]); ps != PageSize {
		return corrupt("memory page size %d, not %d", ps, PageSize)
	}
	if r := binary.LittleEndian.Uint32(b[4:]); r != 0 {
		return corrupt("memory section reserved field %#x", r)
	}
	if f := binary.LittleEndian.Uint64(b[8:]); f != frames {
		return corrupt("memory section of %d frames, header says %d", f, frames)
	}
	next := uint64(0) // lowest frame the next run may start at
	for s.remaining > 0 {
		if s.remaining < memoryRunHeaderLen {
			return corrupt("memory section ends inside a run header")
		}
		if _, err := io.ReadFull(s, b[:]); err != nil {
			return err
		}
		first := binary.LittleEndian.Uint64(b[0:])
		count := binary.LittleEndian.Uint64(b[8:])
		if count == 0 || first < next || first >= frames || count > frames-first {
			return corrupt("memory run at frame %d of %d frames is out of order or out of range", first, count)
		}
		if s.remaining/PageSize < count {
			return corrupt("memory run at frame %d overruns its section", first)
		}
		if err := run(first, count); err != nil {
			return err
		}
		next = first + count + 1
	}
	return nil
}
