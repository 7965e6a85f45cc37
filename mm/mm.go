package mm

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// pageSize is the guest frame size; see FrameSize.
const pageSize = FrameSize

// Budget is the host memory pVisor may give to VMs: a pool of
// Total()/FrameSize host frames shared by every VM of the process.
type Budget struct {
	total uint64 // immutable

	// mu protects reserved, resident, live and every live Reservation's
	// resident count and populated bitmap changes (see p2m).
	mu       sync.Mutex
	reserved uint64 // bytes held by live reservations
	resident uint64 // frames mapped by live p2ms
	live     map[*Reservation]struct{}
}

// NewBudget returns a budget of total bytes.
func NewBudget(total uint64) *Budget {
	return &Budget{total: total, live: make(map[*Reservation]struct{})}
}

// Reserved returns the bytes currently reserved.
func (b *Budget) Reserved() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reserved
}

// Total returns the budget.
func (b *Budget) Total() uint64 { return b.total }

// Reservation is one VM's guest RAM: frames guest frames backed by one
// anonymous private mapping, gfn i at ram[i*FrameSize:]. The p2m says which
// of them are populated (usable); the others are ballooned out.
type Reservation struct {
	budget *Budget
	ram    []byte // immutable until Release
	size   uint64 // bytes; immutable
	frames uint64 // size / FrameSize; immutable
	base   HFN    // host frame of gfn 0; immutable
	p2m    p2m

	// mu serialises balloon operations and Release on this VM.
	mu       sync.Mutex
	released bool
	target   uint64 // bytes; mu protects target

	resident uint64 // populated frames; budget.mu protects resident
	once     sync.Once
}

// ErrTooSmall is returned for reservations below one page.
var ErrTooSmall = errors.New("mm: a VM needs at least one page of memory")

// Reserve admits a VM of size bytes (rounded up to a page) or refuses it.
// The VM starts with every frame populated: resident == reservation.
func (b *Budget) Reserve(size uint64) (*Reservation, error) {
	if size < pageSize {
		return nil, ErrTooSmall
	}
	if size > ^uint64(0)-(pageSize-1) {
		return nil, fmt.Errorf("mm: cannot reserve %d bytes: the host budget is %d MiB", size, b.total>>20)
	}
	size = (size + pageSize - 1) &^ (pageSize - 1)
	b.mu.Lock()
	if b.reserved+size > b.total || b.reserved+size < b.reserved {
		free := b.total - b.reserved
		b.mu.Unlock()
		return nil, fmt.Errorf("mm: cannot reserve %d MiB: the host budget is %d MiB and %d MiB of it is free",
			size>>20, b.total>>20, free>>20)
	}
	b.reserved += size
	b.mu.Unlock()
	ram, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		b.mu.Lock()
		b.reserved -= size
		b.mu.Unlock()
		return nil, fmt.Errorf("mm: mapping %d MiB of guest memory: %w", size>>20, err)
	}
	frames := size / FrameSize
	r := &Reservation{budget: b, ram: ram, size: size, frames: frames, base: hfnOf(ram), target: size}
	r.p2m.init(frames)
	b.mu.Lock()
	r.resident = frames
	b.resident += frames
	b.live[r] = struct{}{}
	b.mu.Unlock()
	return r, nil
}

// RAM returns the VM's memory, guest-physical 0 upward, holes included:
// reading a ballooned-out frame through it yields zeros and writing one
// dirties only this VM's own reservation. Engines map it and are told which
// frames are holes (interp.Memory.SetHoles, with a soft-TLB flush) when
// frames leave; the hypervisor uses Slice.
func (r *Reservation) RAM() []byte { return r.ram }

// Size returns the reservation's size in bytes.
func (r *Reservation) Size() uint64 { return r.size }

// Slice returns guest-physical [gpa, gpa+n) or false if any of it lies
// outside the VM's RAM (including on overflow) or in a ballooned-out frame.
// An empty range is valid anywhere in [0, Size()].
func (r *Reservation) Slice(gpa, n uint64) ([]byte, bool) {
	end := gpa + n
	if end < gpa || end > r.size {
		return nil, false
	}
	if n == 0 {
		return []byte{}, true
	}
	if !r.p2m.populatedRange(gpa/FrameSize, (end-1)/FrameSize) {
		return nil, false
	}
	return r.ram[gpa:end:end], true
}

// Release returns the memory to the host and the budget. Safe to call more
// than once. Precondition: no engine or hypercall uses the memory any more.
func (r *Reservation) Release() {
	r.once.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.released = true
		b := r.budget
		b.mu.Lock()
		r.p2m.clearRange(0, r.frames-1)
		b.resident -= r.resident
		r.resident = 0
		b.reserved -= r.size
		delete(b.live, r)
		b.mu.Unlock()
		// munmap returns the frames to the kernel, which zeroes them
		// before any other mapping sees them.
		_ = unix.Munmap(r.ram)
		r.ram = nil
	})
}
