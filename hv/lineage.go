package hv

import (
	"fmt"
	"sync"

	"github.com/pvisor/pvisor/hypercall"
)

// The rollback guard's part in hv (docs/snapshot.md, "Rollback guard").
//
// A VM belongs to a lineage: the VM as booted and every VM restored from
// its snapshots, clones included. The lineage's record on the host (kept
// by the caller behind LineageRecorder; cmd/pvisor keeps it in its state
// directory) holds the highest patch level the lineage has run at. The
// guest declares its level with patch_level, the operator sets it with
// SetPatchLevel; either raises the record at once, before the call
// returns, so a snapshot older than the fix cannot be restored silently
// afterwards. The check itself is the caller's, at restore
// (RestoreConfig.Guard), against the snapshot's authenticated header.

// LineageRecorder keeps the host's record of a VM's lineage.
type LineageRecorder interface {
	// Raise records that the VM runs at patch level level, declared with
	// release (empty when the operator set it): the record's highest
	// level becomes the larger of the two, durably. It returns the
	// highest level after it. On error the record is unchanged.
	Raise(level uint64, release string) (highest uint64, err error)
}

// MaxPatchLevel is the highest patch level a guest or an operator can
// declare (2^62: room above any real numbering, and far from overflow).
const MaxPatchLevel = 1 << 62

// Lineage is a VM's place in its lineage, as ctl list and vm_lineage show
// it.
type Lineage struct {
	ID         [16]byte
	PatchLevel uint64 // the VM's level: the last declared or set, 0 if none
	Highest    uint64 // the highest level the lineage has seen
	Release    string // the release the guest declared with its level
	Restored   bool   // restored from a snapshot
	RolledBack bool   // restored below the lineage's highest level (--allow-rollback)
}

// lineageState is the VM's lineage (VM.lin).
type lineageState struct {
	mu       sync.Mutex
	rec      LineageRecorder // nil: nothing is recorded on the host
	cur      Lineage
	declares int // patch_level calls since boot or restore
}

// Lineage returns the VM's lineage.
func (vm *VM) Lineage() Lineage {
	vm.lin.mu.Lock()
	defer vm.lin.mu.Unlock()
	l := vm.lin.cur
	l.ID = vm.lineage
	return l
}

// SetPatchLevel is the operator's `pvisor ctl patch-level VM N`: the VM's
// patch level becomes level (which may be below the lineage's highest:
// the record never goes down), and the lineage record is raised to it.
func (vm *VM) SetPatchLevel(level uint64) error {
	if level == 0 || level > MaxPatchLevel {
		return fmt.Errorf("patch level %d: want 1 to %d", level, uint64(MaxPatchLevel))
	}
	return vm.raisePatchLevel(level, "", false)
}

// raisePatchLevel sets the VM's level and raises its record; guest says
// the guest declared it (and counts against PATCH_DECLARE_MAX).
func (vm *VM) raisePatchLevel(level uint64, release string, guest bool) error {
	l := &vm.lin
	l.mu.Lock()
	defer l.mu.Unlock()
	if guest {
		if l.declares >= hypercall.PatchDeclareMax {
			return errDeclareMax
		}
		l.declares++
	}
	highest := max(l.cur.Highest, level)
	if l.rec != nil {
		h, err := l.rec.Raise(level, release)
		if err != nil {
			return fmt.Errorf("recording patch level %d: %w", level, err)
		}
		highest = max(highest, h)
	}
	l.cur.PatchLevel, l.cur.Highest = level, highest
	if guest {
		l.cur.Release = release
	}
	return nil
}

var errDeclareMax = fmt.Errorf("patch_level declared %d times", hypercall.PatchDeclareMax)

func (h *hcalls) PatchLevel(level, release, n uint64) (uint64, hypercall.Errno) {
	if level == 0 || level > MaxPatchLevel || n > hypercall.PatchReleaseMax {
		return 0, hypercall.EINVAL
	}
	b, ok := h.v.vm.guest(release, n)
	if !ok && n > 0 {
		return 0, hypercall.EFAULT
	}
	rel := make([]byte, n)
	copy(rel, b) // copied once: the guest may change its buffer meanwhile
	for _, c := range rel {
		if c < 0x20 || c > 0x7e {
			return 0, hypercall.EINVAL
		}
	}
	switch err := h.v.vm.raisePatchLevel(level, string(rel), true); {
	case err == errDeclareMax:
		return 0, hypercall.EBUSY
	case err != nil:
		return 0, hypercall.EIO
	}
	return 0, nil0
}

func (h *hcalls) VmLineage(buf uint64) (uint64, hypercall.Errno) {
	l := h.v.vm.Lineage()
	out := hypercall.Lineage{PatchLevel: l.PatchLevel, Highest: l.Highest}
	if l.Restored {
		out.Flags |= hypercall.LineageRestored
	}
	if l.RolledBack {
		out.Flags |= hypercall.LineageRolledBack
	}
	if !h.v.vm.guestWrite(buf, encode(out)) {
		return 0, hypercall.EFAULT
	}
	return 0, nil0
}
