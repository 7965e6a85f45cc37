package mm

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

const pageSize = 4096

// Budget is the host memory pVisor may give to VMs.
type Budget struct {
	mu       sync.Mutex
	total    uint64 // mu protects reserved
	reserved uint64
}

// NewBudget returns a budget of total bytes.
func NewBudget(total uint64) *Budget { return &Budget{total: total} }

// Reserved returns the bytes currently reserved.
func (b *Budget) Reserved() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reserved
}

// Total returns the budget.
func (b *Budget) Total() uint64 { return b.total }

// Reservation is one VM's guest RAM.
type Reservation struct {
	budget *Budget
	ram    []byte
	once   sync.Once
}

// ErrTooSmall is returned for reservations below one page.
var ErrTooSmall = errors.New("mm: a VM needs at least one page of memory")

// Reserve admits a VM of size bytes (rounded up to a page) or refuses it.
func (b *Budget) Reserve(size uint64) (*Reservation, error) {
	if size < pageSize {
		return nil, ErrTooSmall
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
	return &Reservation{budget: b, ram: ram}, nil
}

// RAM returns the VM's memory, guest-physical 0 upward. Engines map it;
// the hypervisor uses Slice.
func (r *Reservation) RAM() []byte { return r.ram }

// Size returns the reservation's size in bytes.
func (r *Reservation) Size() uint64 { return uint64(len(r.ram)) }

// Slice returns guest-physical [gpa, gpa+n) or false if any of it lies
// outside the VM's RAM (including on overflow).
func (r *Reservation) Slice(gpa, n uint64) ([]byte, bool) {
	end := gpa + n
	if end < gpa || end > uint64(len(r.ram)) {
		return nil, false
	}
	return r.ram[gpa:end:end], true
}

// Release returns the memory to the host and the budget. Safe to call more
// than once.
func (r *Reservation) Release() {
	r.once.Do(func() {
		n := uint64(len(r.ram))
		_ = unix.Munmap(r.ram)
		r.ram = nil
		r.budget.mu.Lock()
		r.budget.reserved -= n
		r.budget.mu.Unlock()
	})
}
