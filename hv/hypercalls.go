package hv

import (
	"encoding/binary"
	"unsafe"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/emul"
	"github.com/pvisor/pvisor/hypercall"
)

// hcalls implements hypercall.Handlers for one vCPU: every method runs on
// that vCPU's goroutine, with the vCPU stopped at its VMCALL.
type hcalls struct{ v *vcpu }

var _ hypercall.Handlers = (*hcalls)(nil)

const (
	ok0  = uint64(0)
	nil0 = hypercall.Errno(0)
)

func (h *hcalls) Version() (uint64, hypercall.Errno) { return hypercall.Version, nil0 }

func (h *hcalls) Features(word uint64) (uint64, hypercall.Errno) {
	if word != 0 {
		return 0, hypercall.EINVAL
	}
	return hypercall.Features, nil0
}

func (h *hcalls) DeclareVersion(version uint64) (uint64, hypercall.Errno) {
	if version < hypercall.MinVersion || version > hypercall.Version {
		return 0, hypercall.EPROTO
	}
	st := &h.v.vm.stats
	st.mu.Lock()
	st.PVStarted = true
	st.mu.Unlock()
	h.v.vm.declared.Store(true)
	return ok0, nil0
}

func (h *hcalls) ConsoleWrite(buf, n uint64) (uint64, hypercall.Errno) {
	if n > hypercall.ConsoleMax {
		return 0, hypercall.EINVAL
	}
	b, ok := h.v.vm.guest(buf, n)
	if !ok {
		return 0, hypercall.EFAULT
	}
	h.v.vm.cfg.Console.Write(b)
	return n, nil0
}

func (h *hcalls) ConsoleRead(buf, cap uint64) (uint64, hypercall.Errno) {
	if cap > hypercall.ConsoleMax {
		return 0, hypercall.EINVAL
	}
	dst, ok := h.v.vm.guest(buf, cap)
	if !ok {
		return 0, hypercall.EFAULT
	}
	n := h.v.vm.in.take(dst)
	h.v.vm.mem.Invalidate(buf, uint64(n))
	return uint64(n), nil0
}

func (h *hcalls) SharedInfoRegister(page, vector uint64) (uint64, hypercall.Errno) {
	if page%hypercall.PageSize != 0 || vector < 32 || vector > 255 {
		return 0, hypercall.EINVAL
	}
	if _, ok := h.v.vm.guest(page, hypercall.PageSize); !ok {
		return 0, hypercall.EFAULT
	}
	h.v.vm.registerShared(page, uint8(vector), h.v)
	return ok0, nil0
}

func (h *hcalls) TimerSet(deadline uint64) (uint64, hypercall.Errno) {
	h.v.armTimer(deadline)
	return ok0, nil0
}

func (h *hcalls) EvtchnBindVIRQ(virq, vcpu uint64) (uint64, hypercall.Errno) {
	vm := h.v.vm
	if virq >= hypercall.NumVirqs || vcpu >= uint64(len(vm.vcpus)) {
		return 0, hypercall.EINVAL
	}
	if vm.ev.virqPort[vcpu][virq] > 0 {
		return 0, hypercall.EBUSY
	}
	p := vm.allocPort(port{bound: true, virq: int(virq), vcpu: int(vcpu)})
	if p < 0 {
		return 0, hypercall.ENOSPC
	}
	vm.ev.virqPort[vcpu][virq] = p
	return uint64(p), nil0
}

func (h *hcalls) bound(p uint64) hypercall.Errno {
	if !h.v.vm.ev.ports[p].bound {
		return hypercall.ENOENT
	}
	return nil0
}

func (h *hcalls) EvtchnSend(p uint64) (uint64, hypercall.Errno) {
	if err := h.bound(p); err != 0 {
		return 0, err
	}
	h.v.vm.setPending(int(p))
	return ok0, nil0
}

func (h *hcalls) EvtchnMask(p uint64) (uint64, hypercall.Errno) {
	if err := h.bound(p); err != 0 {
		return 0, err
	}
	h.v.vm.setPortBit(int(p), true, true)
	return ok0, nil0
}

func (h *hcalls) EvtchnUnmask(p uint64) (uint64, hypercall.Errno) {
	if err := h.bound(p); err != 0 {
		return 0, err
	}
	vm := h.v.vm
	vm.setPortBit(int(p), true, false)
	if vm.portBit(int(p), false) {
		vm.flagUpcall(vm.ev.ports[p].vcpu, int(p)/64)
	}
	return ok0, nil0
}

func (h *hcalls) EvtchnClose(p uint64) (uint64, hypercall.Errno) {
	if err := h.bound(p); err != 0 {
		return 0, err
	}
	vm := h.v.vm
	pt := vm.ev.ports[p]
	switch {
	case pt.dev != nil:
		pt.dev.ports[pt.kind] = 0
	case pt.ipi:
	default:
		vm.ev.virqPort[pt.vcpu][pt.virq] = -1
	}
	vm.ev.ports[p] = port{}
	vm.setPortBit(int(p), false, false)
	vm.setPortBit(int(p), true, true)
	return ok0, nil0
}

func (h *hcalls) IRQDeliverPending() (uint64, hypercall.Errno) {
	v := h.v
	if !v.vm.upcallWanted(v.id) || v.cpu.Regs().RFLAGS&cpu.FlagIF == 0 {
		return 0, nil0
	}
	if !v.cpu.IRQPending() {
		v.cpu.SetIRQ(int(v.vm.ev.vector))
	}
	return 1, nil0
}

func (h *hcalls) VCPUBlock() (uint64, hypercall.Errno) {
	h.v.blockReq = true // RunFor blocks once the call has completed
	r := h.v.cpu.Regs()
	r.RFLAGS |= cpu.FlagIF
	h.v.cpu.SetRegs(r)
	return ok0, nil0
}

func (h *hcalls) VCPUYield() (uint64, hypercall.Errno) {
	h.v.yield = true
	return ok0, nil0
}

func (h *hcalls) Shutdown(reason, code uint64) (uint64, hypercall.Errno) {
	switch reason {
	case hypercall.ShutdownPoweroff:
		h.v.vm.stop(int(code&0xff), "guest powered off")
	case hypercall.ShutdownReboot:
		h.v.vm.stop(int(code&0xff), "guest asked to reboot")
	case hypercall.ShutdownCrash:
		h.v.vm.stop(ExitCrash, "guest crashed")
	default:
		return 0, hypercall.EINVAL
	}
	return ok0, nil0
}

func (h *hcalls) MMUSetCR3(pml4 uint64) (uint64, hypercall.Errno) {
	if pml4%hypercall.PageSize != 0 {
		return 0, hypercall.EINVAL
	}
	if _, ok := h.v.vm.guest(pml4, hypercall.PageSize); !ok {
		return 0, hypercall.EFAULT
	}
	s := h.v.cpu.SRegs()
	s.CR3 = pml4
	if err := h.v.cpu.SetSRegs(s); err != nil {
		return 0, hypercall.EINVAL
	}
	return ok0, nil0
}

func (h *hcalls) MMUFlushTLB(flags uint64) (uint64, hypercall.Errno) {
	if flags&^hypercall.FlushGlobal != 0 {
		return 0, hypercall.EINVAL
	}
	h.v.cpu.FlushTLB(flags&hypercall.FlushGlobal != 0)
	return ok0, nil0
}

func (h *hcalls) MMUInvlpg(va uint64) (uint64, hypercall.Errno) {
	if !cpu.Canonical(va) {
		return 0, hypercall.EINVAL
	}
	h.v.cpu.FlushTLBPage(va)
	return ok0, nil0
}

var sizeMMUOp = uint64(unsafe.Sizeof(hypercall.MMUOp{}))

func (h *hcalls) MMUBatch(ops, count uint64) (uint64, hypercall.Errno) {
	if count > hypercall.MMUBatchMax {
		return 0, hypercall.EINVAL
	}
	arr, ok := h.v.vm.guest(ops, count*sizeMMUOp)
	if !ok {
		return 0, hypercall.EFAULT
	}
	le := binary.LittleEndian
	for i := uint64(0); i < count; i++ {
		op := arr[i*sizeMMUOp : (i+1)*sizeMMUOp]
		kind, a, b := le.Uint32(op), le.Uint64(op[8:]), le.Uint64(op[16:])
		var err hypercall.Errno
		switch kind {
		case hypercall.MMUOpWritePTE:
			if a%8 != 0 {
				err = hypercall.EINVAL
			} else if pte, ok := h.v.vm.guest(a, 8); !ok {
				err = hypercall.EFAULT
			} else {
				le.PutUint64(pte, b)
				h.v.vm.mem.Invalidate(a, 8)
			}
		case hypercall.MMUOpInvlpg:
			_, err = h.MMUInvlpg(a)
		case hypercall.MMUOpFlushTLB:
			_, err = h.MMUFlushTLB(a)
		case hypercall.MMUOpSetCR3:
			_, err = h.MMUSetCR3(a)
		default:
			err = hypercall.EINVAL
		}
		le.PutUint32(op[4:], uint32(-int32(err)))
		h.v.vm.mem.Invalidate(ops+i*sizeMMUOp, sizeMMUOp)
		if err != 0 {
			return i, nil0
		}
	}
	return count, nil0
}

func (h *hcalls) loadDT(base, limit uint64, idt bool) (uint64, hypercall.Errno) {
	if !cpu.Canonical(base) || limit > 0xffff {
		return 0, hypercall.EINVAL
	}
	s := h.v.cpu.SRegs()
	t := cpu.DTable{Base: base, Limit: uint16(limit)}
	if idt {
		s.IDT = t
	} else {
		s.GDT = t
	}
	if err := h.v.cpu.SetSRegs(s); err != nil {
		return 0, hypercall.EINVAL
	}
	return ok0, nil0
}

func (h *hcalls) LoadGDT(base, limit uint64) (uint64, hypercall.Errno) {
	return h.loadDT(base, limit, false)
}
func (h *hcalls) LoadIDT(base, limit uint64) (uint64, hypercall.Errno) {
	return h.loadDT(base, limit, true)
}

// The TSS is the loader's, vCPU i's at guest-physical tssOf(i) (smp.go);
// the guest keeps it identity-mapped (docs/boot.md).
// tssWrite writes a field of the calling vCPU's TSS; the page may have
// been ballooned out by the guest (-EFAULT).
func (h *hcalls) tssWrite(off, v uint64) hypercall.Errno {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	if !h.v.vm.guestWrite(tssOf(h.v.id)+off, b[:]) {
		return hypercall.EFAULT
	}
	return nil0
}

func (h *hcalls) SetKernelStack(rsp0 uint64) (uint64, hypercall.Errno) {
	if !cpu.Canonical(rsp0) {
		return 0, hypercall.EINVAL
	}
	return ok0, h.tssWrite(4, rsp0)
}

func (h *hcalls) SetIST(index, rsp uint64) (uint64, hypercall.Errno) {
	if index < 1 || index > 7 || !cpu.Canonical(rsp) {
		return 0, hypercall.EINVAL
	}
	return ok0, h.tssWrite(36+(index-1)*8, rsp)
}

func (h *hcalls) SetTSS(base, limit uint64) (uint64, hypercall.Errno) {
	if !cpu.Canonical(base) || limit < 0x67 || limit > 0xffff {
		return 0, hypercall.EINVAL
	}
	s := h.v.cpu.SRegs()
	s.TR = cpu.Segment{Selector: s.TR.Selector, Base: base, Limit: uint32(limit), Attr: 0xb | cpu.SegAttrP}
	if err := h.v.cpu.SetSRegs(s); err != nil {
		return 0, hypercall.EINVAL
	}
	return ok0, nil0
}

// msrAllowed is the set of MSRs the msr hypercalls reach.
func msrAllowed(idx uint64) bool {
	switch idx {
	case cpu.MSREFER, cpu.MSRSTAR, cpu.MSRLSTAR, cpu.MSRCSTAR, cpu.MSRSFMASK, cpu.MSRFSBase,
		cpu.MSRGSBase, cpu.MSRKernelGSBase, cpu.MSRPAT, cpu.MSRTSCAux,
		cpu.MSRSysenterCS, cpu.MSRSysenterESP, cpu.MSRSysenterEIP:
		return true
	}
	return false
}

func (h *hcalls) MSRRead(index uint64) (uint64, uint64, hypercall.Errno) {
	if !msrAllowed(index) {
		return 0, 0, hypercall.EPERM
	}
	v, _ := emul.ReadMSR(h.v.cpu, uint32(index))
	return v, ok0, nil0
}

func (h *hcalls) MSRWrite(index, value uint64) (uint64, hypercall.Errno) {
	if !msrAllowed(index) {
		return 0, hypercall.EPERM
	}
	if !emul.WriteMSR(h.v.cpu, uint32(index), value) {
		return 0, hypercall.EINVAL
	}
	return ok0, nil0
}

var sizeMemmapEntry = uint64(unsafe.Sizeof(hypercall.MemmapEntry{}))

func (h *hcalls) MemoryMap(buf, cap uint64) (uint64, hypercall.Errno) {
	mm := h.v.vm.memmap
	n := min(cap, uint64(len(mm)))
	if !h.v.vm.guestWrite(buf, encode(mm[:n])) {
		return 0, hypercall.EFAULT
	}
	return uint64(len(mm)), nil0
}

func (h *hcalls) MeasuredBoot(buf, size uint64) (uint64, hypercall.Errno) {
	b := encode(h.v.vm.measured)
	if size < uint64(len(b)) {
		return 0, hypercall.EINVAL
	}
	if !h.v.vm.guestWrite(buf, b) {
		return 0, hypercall.EFAULT
	}
	return uint64(len(b)), nil0
}

func (h *hcalls) VmGeneration(buf uint64) (uint64, hypercall.Errno) {
	id := h.v.vm.GenerationID()
	if !h.v.vm.guestWrite(buf, id[:]) {
		return 0, hypercall.EFAULT
	}
	return uint64(len(id)), nil0
}
