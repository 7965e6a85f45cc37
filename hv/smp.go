package hv

import (
	"encoding/binary"
	"unsafe"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/loader"
	"github.com/pvisor/pvisor/hypercall"
)

// Several vCPUs in pv mode (docs/smp.md). Each vCPU
// runs on a scheduler worker of its own, concurrently with the others, over
// one guest memory (hv/interp's doc.go, "Multiprocessor rules"). vCPU 0
// starts at the loader's entry; the others start down and run once a
// vcpu_up gives them a context. The VM's shared state is under VM.evMu.

// ownCalls are the hypercalls that touch only the calling vCPU's own state
// (its registers, TLB, timer, TSS slot and shared-info slot) or nothing:
// they run without VM.evMu, concurrently on every vCPU. mmu_batch's PTE
// writes are single aligned 8-byte stores, as the guest's own would be.
var ownCalls = func() (own [64]bool) {
	for _, nr := range []uint32{
		hypercall.NrVersion, hypercall.NrFeatures, hypercall.NrTimerSet, hypercall.NrIRQDeliverPending,
		hypercall.NrVCPUBlock, hypercall.NrVCPUYield, hypercall.NrMMUSetCR3, hypercall.NrMMUFlushTLB,
		hypercall.NrMMUInvlpg, hypercall.NrMMUBatch, hypercall.NrLoadGDT, hypercall.NrLoadIDT,
		hypercall.NrSetKernelStack, hypercall.NrSetIST, hypercall.NrSetTSS, hypercall.NrMSRRead,
		hypercall.NrMSRWrite, hypercall.NrMMUFlushTLBMask, hypercall.NrVCPUCount,
	} {
		own[nr] = true
	}
	return own
}()

var sizeVCPUContext = uint64(unsafe.Sizeof(hypercall.VCPUContext{}))

// tssOf is the guest-physical address of vCPU id's TSS in the loader's
// TSS area.
func tssOf(id int) uint64 { return bootTSS + uint64(id)*loader.TSSSize }

func (h *hcalls) VCPUUp(id, ctx uint64) (uint64, hypercall.Errno) {
	vm := h.v.vm
	if id == 0 || id >= uint64(len(vm.vcpus)) {
		return 0, hypercall.EINVAL
	}
	b, ok := vm.guest(ctx, sizeVCPUContext)
	if !ok {
		return 0, hypercall.EFAULT
	}
	le := binary.LittleEndian
	c := hypercall.VCPUContext{RIP: le.Uint64(b), RSP: le.Uint64(b[8:]), RDI: le.Uint64(b[16:]),
		CR3: le.Uint64(b[24:]), GSBase: le.Uint64(b[32:]), Flags: le.Uint64(b[40:])}
	if c.Flags != 0 || !cpu.Canonical(c.RIP) || !cpu.Canonical(c.RSP) || !cpu.Canonical(c.GSBase) || c.CR3%hypercall.PageSize != 0 {
		return 0, hypercall.EINVAL
	}
	if _, ok := vm.guest(c.CR3, hypercall.PageSize); !ok {
		return 0, hypercall.EFAULT
	}
	t := vm.vcpus[id]
	if t.up.Load() {
		return 0, hypercall.EBUSY
	}
	// t is down: no worker runs it (its RunFor returns at once), so its
	// engine is this goroutine's to set until up is stored.
	regs, sregs := vm.bootRegs, vm.bootSRegs
	regs.RIP, regs.GPR[cpu.RSP], regs.GPR[cpu.RDI] = c.RIP, c.RSP, c.RDI
	regs.RFLAGS &^= cpu.FlagIF
	// The control registers the guest set up before its PV start (the
	// FXSR and SSE bits of CR4, say) are the caller's: a pv guest cannot
	// set them on the new vCPU any more.
	own := h.v.cpu.SRegs()
	sregs.CR0, sregs.CR4, sregs.EFER = own.CR0, own.CR4, own.EFER
	sregs.CR3 = c.CR3
	sregs.IDT = cpu.DTable{}
	sregs.TR.Base = tssOf(int(id))
	sregs.GS.Base = c.GSBase
	if err := t.cpu.SetSRegs(sregs); err != nil {
		return 0, hypercall.EINVAL
	}
	t.cpu.SetRegs(regs)
	t.cpu.FlushTLB(true)
	t.up.Store(true)
	t.notify()
	return ok0, nil0
}

func (h *hcalls) VCPUCount() (uint64, hypercall.Errno) { return uint64(len(h.v.vm.vcpus)), nil0 }

func (h *hcalls) EvtchnBindIPI(id uint64) (uint64, hypercall.Errno) {
	vm := h.v.vm
	if id >= uint64(len(vm.vcpus)) {
		return 0, hypercall.EINVAL
	}
	p := vm.allocPort(port{bound: true, virq: -1, vcpu: int(id), ipi: true})
	if p < 0 {
		return 0, hypercall.ENOSPC
	}
	return uint64(p), nil0
}

func (h *hcalls) MMUFlushTLBMask(mask, va, flags uint64) (uint64, hypercall.Errno) {
	vm := h.v.vm
	n := len(vm.vcpus)
	if n < 64 && mask>>uint(n) != 0 || flags&^(hypercall.FlushGlobal|hypercall.FlushPage) != 0 ||
		flags == hypercall.FlushGlobal|hypercall.FlushPage || flags&hypercall.FlushPage != 0 && !cpu.Canonical(va) {
		return 0, hypercall.EINVAL
	}
	page := flags&hypercall.FlushPage != 0
	for i, t := range vm.vcpus {
		if mask&(1<<uint(i)) == 0 {
			continue
		}
		switch {
		case t == h.v && page:
			t.cpu.FlushTLBPage(va)
		case t == h.v:
			t.cpu.FlushTLB(flags&hypercall.FlushGlobal != 0)
		case t.up.Load():
			// Another vCPU drops all it has for a page flush: the
			// engine takes one kind of remote request, and a page's
			// translation may be global.
			t.cpu.RemoteFlushTLB(page || flags&hypercall.FlushGlobal != 0)
		}
	}
	h.v.vm.stats.TLBShootdowns.Add(1)
	return ok0, nil0
}
