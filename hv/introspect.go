package hv

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
)

// Introspection: a monitor VM reads another VM's memory and registers
// under the operator's grant (docs/security.md, "Introspection").
//
// A grant is a triple (monitor, target, handle). Grant makes one, Revoke
// ends it, and so does the stop of either VM (VM.end): a grant never
// outlives its target. Handles count up from 1 per monitor and are never
// reused, so a handle that has ended never reaches another target. The
// monitor reaches the target only through the introspect_* calls, which
// copy from the target and never write it; no call lets the monitor pass
// its grant on.
//
// Concurrency.
//   - grantsMu protects every VM's intro.held, intro.watchers, intro.next
//     and intro.ended (the grants of all VMs of the process: a grant
//     links two VMs, and one lock for both ends keeps them consistent).
//   - A target's intro.memMu guards its memory against release: a read
//     (on the monitor's vCPU goroutine) holds it shared while it copies,
//     and re-checks its grant under it; the target's Run takes it
//     exclusively and sets intro.released before it releases the memory,
//     and Revoke takes it exclusively once after ending the grant. So
//     once Revoke or the stop has returned, no read of that grant is in
//     progress and none begins.
//   - A vCPU's registers belong to its goroutine. It publishes a copy at
//     the end of every RunFor into vcpu.pub (its own mutex), and
//     introspect_vcpu reads that copy, never the engine: the copy is at
//     most one time slice old.
//   - Lock order: grantsMu is never held while taking a memMu or a pub.mu.
//
// Cost: a read copies at most INTROSPECT_READ_MAX bytes on the monitor's
// vCPU, inside its time slice: it is charged to the monitor, bounded per
// call, and holds the target's memMu shared only for the copy.

// grantsMu protects the grant tables of every VM (see above).
var grantsMu sync.Mutex

// Why a grant ended (grant.end).
const (
	grantLive int32 = iota
	grantRevoked
	grantTargetStopped
	grantMonitorStopped
)

// grant is one monitor's read access to one target.
type grant struct {
	handle          uint32
	monitor, target *VM
	// end is grantLive until the grant ends, then why; it is set under
	// grantsMu and read under the target's memMu without grantsMu.
	end atomic.Int32
}

// introState is a VM's part in introspection (VM.intro).
type introState struct {
	// As a monitor. grantsMu protects held, next and ended.
	held  []*grant // live grants, oldest first
	next  uint32   // the last handle given out (0: none yet)
	ended endedRing

	// As a target. grantsMu protects watchers.
	watchers []*grant

	memMu    sync.RWMutex
	released bool // memMu protects released: the VM's memory is gone
}

// endedRing remembers the handles whose grant ended with its target's
// stop, so that the monitor gets -ENOENT rather than -EPERM for them. Old
// entries are overwritten: such a handle then answers -EPERM, which is
// just as closed.
type endedRing struct {
	h [hypercall.IntrospectMaxGrants]uint32
	i int
}

func (r *endedRing) add(h uint32) {
	r.h[r.i] = h
	r.i = (r.i + 1) % len(r.h)
}

func (r *endedRing) has(h uint32) bool {
	for _, x := range r.h {
		if x == h && h != 0 {
			return true
		}
	}
	return false
}

// GrantInfo describes a grant a VM holds.
type GrantInfo struct {
	Handle uint32
	Target *VM
}

// Errors of Grant and Revoke, for callers that tell them apart.
var (
	ErrGrantSelf    = errors.New("hv: a VM cannot be granted introspection of itself")
	ErrGrantStopped = errors.New("hv: the VM has stopped")
	ErrGrantExists  = errors.New("hv: the grant exists already")
	ErrGrantLimit   = fmt.Errorf("hv: the monitor holds %d grants, the most it may", hypercall.IntrospectMaxGrants)
	ErrNoGrant      = errors.New("hv: no such grant")
)

// Grant gives monitor read-only introspection of target: its memory, its
// memory map and its vCPUs' registers, through the introspect_* calls. It
// returns the grant's handle, which monitor's guest finds with
// introspect_targets. The grant lasts until Revoke or until either VM
// stops. It is refused for the same VM, for a VM that has stopped, for a
// pair that has a grant already, and beyond INTROSPECT_MAX_GRANTS grants
// held by the monitor.
func Grant(monitor, target *VM) (uint32, error) {
	if monitor == nil || target == nil {
		return 0, errors.New("hv: Grant needs a monitor and a target")
	}
	if monitor == target {
		return 0, ErrGrantSelf
	}
	grantsMu.Lock()
	defer grantsMu.Unlock()
	// Checked under grantsMu: a VM's end drops its grants under it after
	// marking the VM stopped, so a grant made here before that is
	// dropped by it, and none is made after.
	for _, vm := range []*VM{monitor, target} {
		if vm.Stopped() {
			return 0, fmt.Errorf("%s: %w", vm.Name(), ErrGrantStopped)
		}
	}
	m := &monitor.intro
	for _, g := range m.held {
		if g.target == target {
			return 0, fmt.Errorf("%s may read %s already (handle %d): %w", monitor.Name(), target.Name(), g.handle, ErrGrantExists)
		}
	}
	if len(m.held) >= hypercall.IntrospectMaxGrants {
		return 0, fmt.Errorf("%s: %w: revoke one first", monitor.Name(), ErrGrantLimit)
	}
	if m.next == ^uint32(0) {
		return 0, fmt.Errorf("%s has used every grant handle: restart it", monitor.Name())
	}
	m.next++
	g := &grant{handle: m.next, monitor: monitor, target: target}
	m.held = append(m.held, g)
	target.intro.watchers = append(target.intro.watchers, g)
	return g.handle, nil
}

// Revoke ends the grant monitor holds on target. When it returns, no
// read under the grant is in progress and none can begin: the handle
// answers -EPERM from then on.
func Revoke(monitor, target *VM) error {
	if monitor == nil || target == nil {
		return errors.New("hv: Revoke needs a monitor and a target")
	}
	grantsMu.Lock()
	var found *grant
	for _, g := range monitor.intro.held {
		if g.target == target {
			found = g
			break
		}
	}
	if found != nil {
		endGrant(found, grantRevoked)
	}
	grantsMu.Unlock()
	if found == nil {
		return fmt.Errorf("%s holds no introspection grant on %s: %w", monitor.Name(), target.Name(), ErrNoGrant)
	}
	// A read that looked the grant up before it ended finishes before
	// this returns; one that takes memMu later sees the grant ended.
	target.intro.memMu.Lock()
	target.intro.memMu.Unlock()
	return nil
}

// endGrant removes g from both VMs' tables. Precondition: grantsMu held.
func endGrant(g *grant, why int32) {
	g.end.Store(why)
	g.monitor.intro.held = removeGrant(g.monitor.intro.held, g)
	g.target.intro.watchers = removeGrant(g.target.intro.watchers, g)
	if why == grantTargetStopped {
		g.monitor.intro.ended.add(g.handle)
	}
}

func removeGrant(gs []*grant, g *grant) []*grant {
	for i, x := range gs {
		if x == g {
			return append(gs[:i:i], gs[i+1:]...)
		}
	}
	return gs
}

// Grants returns the grants vm holds as a monitor, oldest first.
func (vm *VM) Grants() []GrantInfo {
	grantsMu.Lock()
	defer grantsMu.Unlock()
	out := make([]GrantInfo, 0, len(vm.intro.held))
	for _, g := range vm.intro.held {
		out = append(out, GrantInfo{Handle: g.handle, Target: g.target})
	}
	return out
}

// Watchers returns the VMs that hold a grant on vm.
func (vm *VM) Watchers() []*VM {
	grantsMu.Lock()
	defer grantsMu.Unlock()
	out := make([]*VM, 0, len(vm.intro.watchers))
	for _, g := range vm.intro.watchers {
		out = append(out, g.monitor)
	}
	return out
}

// dropGrants ends every grant vm holds or is the target of; the VM is
// stopping (end).
func (vm *VM) dropGrants() {
	grantsMu.Lock()
	for len(vm.intro.held) > 0 {
		endGrant(vm.intro.held[0], grantMonitorStopped)
	}
	for len(vm.intro.watchers) > 0 {
		endGrant(vm.intro.watchers[0], grantTargetStopped)
	}
	grantsMu.Unlock()
}

// releaseIntrospection marks the VM's memory gone for introspection,
// once no read of it is in progress. Run calls it before it releases
// the memory.
func (vm *VM) releaseIntrospection() {
	vm.intro.memMu.Lock()
	vm.intro.released = true
	vm.intro.memMu.Unlock()
}

// lookupGrant finds the live grant handle names among the calling VM's.
func (vm *VM) lookupGrant(handle uint64) (*grant, hypercall.Errno) {
	grantsMu.Lock()
	defer grantsMu.Unlock()
	for _, g := range vm.intro.held {
		if uint64(g.handle) == handle {
			return g, nil0
		}
	}
	if vm.intro.ended.has(uint32(handle)) {
		return nil, hypercall.ENOENT
	}
	return nil, hypercall.EPERM
}

// withTarget runs f on the target of the calling VM's grant handle, with
// the target's memory held against release and the grant checked live
// under that hold.
func (vm *VM) withTarget(handle uint64, f func(t *VM) (uint64, hypercall.Errno)) (uint64, hypercall.Errno) {
	g, err := vm.lookupGrant(handle)
	if err != 0 {
		return 0, err
	}
	t := g.target
	t.intro.memMu.RLock()
	defer t.intro.memMu.RUnlock()
	switch g.end.Load() {
	case grantLive:
	case grantTargetStopped:
		return 0, hypercall.ENOENT
	default:
		return 0, hypercall.EPERM
	}
	if t.intro.released {
		return 0, hypercall.ENOENT
	}
	return f(t)
}

// regsPub is a vCPU's published registers (vcpu.pub): written by the
// vCPU's goroutine at the end of each RunFor, read by introspect_vcpu.
type regsPub struct {
	mu      sync.Mutex // protects the fields
	seq     uint64     // publications so far; 0: none yet
	regs    cpu.Regs
	sregs   cpu.SRegs
	blocked bool
}

// publish copies the vCPU's architectural registers for introspection.
// It runs on the vCPU's goroutine, between engine runs.
func (v *vcpu) publish() {
	r, s := v.cpu.Regs(), v.cpu.SRegs()
	p := &v.pub
	p.mu.Lock()
	p.seq++
	p.regs, p.sregs, p.blocked = r, s, v.blocked != notBlocked
	p.mu.Unlock()
}

// published returns the vCPU's last published registers as the ABI
// shows them, and false if it has published none.
func (v *vcpu) published() (hypercall.IntrospectVCPU, bool) {
	p := &v.pub
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seq == 0 {
		return hypercall.IntrospectVCPU{}, false
	}
	out := hypercall.IntrospectVCPU{
		GPR: p.regs.GPR, RIP: p.regs.RIP, RFLAGS: p.regs.RFLAGS,
		CR0: p.sregs.CR0, CR2: p.sregs.CR2, CR3: p.sregs.CR3, CR4: p.sregs.CR4, EFER: p.sregs.EFER,
		FSBase: p.sregs.FS.Base, GSBase: p.sregs.GS.Base, Seq: p.seq,
		CS: uint32(p.sregs.CS.Selector), SS: uint32(p.sregs.SS.Selector), CPL: uint32(p.sregs.CS.Selector & 3),
	}
	if p.blocked {
		out.Flags |= hypercall.IntrospectVCPUBlocked
	}
	return out, true
}

func (h *hcalls) IntrospectTargets(buf, cap uint64) (uint64, hypercall.Errno) {
	held := h.v.vm.Grants()
	n := min(cap, uint64(len(held)))
	out := make([]hypercall.IntrospectTarget, n)
	for i := range out {
		t := held[i].Target
		out[i] = hypercall.IntrospectTarget{Handle: held[i].Handle, VCPUs: uint32(len(t.vcpus)), MemSize: t.res.Size(), Mode: uint32(t.cfg.Mode)}
		copy(out[i].Name[:], t.Name())
	}
	if n > 0 && !h.v.vm.guestWrite(buf, encode(out)) {
		return 0, hypercall.EFAULT
	}
	return uint64(len(held)), nil0
}

func (h *hcalls) IntrospectMemmap(handle, buf, cap uint64) (uint64, hypercall.Errno) {
	m := h.v.vm
	return m.withTarget(handle, func(t *VM) (uint64, hypercall.Errno) {
		n := min(cap, uint64(len(t.memmap)))
		if n > 0 && !m.guestWrite(buf, encode(t.memmap[:n])) {
			return 0, hypercall.EFAULT
		}
		return uint64(len(t.memmap)), nil0
	})
}

func (h *hcalls) IntrospectRead(handle, gpa, buf, n uint64) (uint64, hypercall.Errno) {
	m := h.v.vm
	return m.withTarget(handle, func(t *VM) (uint64, hypercall.Errno) {
		if n > hypercall.IntrospectReadMax {
			return 0, hypercall.EINVAL
		}
		if end := gpa + n; end < gpa || end > t.res.Size() {
			return 0, hypercall.EINVAL
		}
		dst, ok := m.guest(buf, n)
		if !ok {
			return 0, hypercall.EFAULT
		}
		t.copyRAM(dst, gpa)
		m.mem.Invalidate(buf, n)
		return n, nil0
	})
}

// copyRAM copies guest-physical [gpa, gpa+len(dst)) of vm into dst, a
// frame at a time: frames given back with balloon_out read as zeros.
// Precondition: the range is inside vm's RAM, and vm.intro.memMu is held.
func (vm *VM) copyRAM(dst []byte, gpa uint64) {
	for len(dst) > 0 {
		n := min(uint64(len(dst)), hypercall.PageSize-gpa%hypercall.PageSize)
		if src, ok := vm.guest(gpa, n); ok {
			copy(dst[:n], src)
		} else {
			clear(dst[:n])
		}
		dst, gpa = dst[n:], gpa+n
	}
}

func (h *hcalls) IntrospectVCPU(handle, vcpu, buf uint64) (uint64, hypercall.Errno) {
	m := h.v.vm
	return m.withTarget(handle, func(t *VM) (uint64, hypercall.Errno) {
		if vcpu >= uint64(len(t.vcpus)) {
			return 0, hypercall.EINVAL
		}
		r, ok := t.vcpus[vcpu].published()
		if !ok {
			return 0, hypercall.EAGAIN
		}
		if !m.guestWrite(buf, encode(r)) {
			return 0, hypercall.EFAULT
		}
		return 0, nil0
	})
}
