package hv

import (
	"fmt"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/loader"
	"github.com/pvisor/pvisor/hypercall"
)

// bootTSS is the loader's TSS, which set_kernel_stack and set_ist update.
const bootTSS = loader.TSSGPA

// hypercallInsn is what the hypercall page holds on the interpreter:
// vmcall; ret.
var hypercallInsn = []byte{0x0f, 0x01, 0xc1, 0xc3}

// installHypercallPage fills the page at gpa with the hypercall
// instruction, for the loader's plan and for a guest's write of
// MSR_HYPERCALL_PAGE alike. It reports false when gpa is not a page of the
// VM's RAM.
func (vm *VM) installHypercallPage(gpa uint64) bool {
	return gpa%hypercall.PageSize == 0 && vm.guestWrite(gpa, hypercallInsn)
}

// load plans the boot of the configured kernel (hv/loader) and applies the
// plan to the VM's memory.
func (vm *VM) load() error {
	p, err := loader.Load(loader.Config{Kernel: vm.cfg.Kernel, Initrd: vm.cfg.Initrd, Cmdline: vm.cfg.Cmdline,
		MemBytes: vm.res.Size(), VCPUs: vm.cfg.VCPUs})
	if err != nil {
		return err
	}
	for _, s := range p.Segments {
		dst, ok := vm.guest(s.GPA, s.Size)
		if !ok {
			return fmt.Errorf("hv: the loader placed %s at [%#x, %#x), outside the VM's memory", s.What, s.GPA, s.End()) // a broken loader invariant
		}
		clear(dst[copy(dst, s.Data):])
		vm.mem.Invalidate(s.GPA, s.Size)
	}
	if p.HypercallPage != 0 && !vm.installHypercallPage(p.HypercallPage) {
		return fmt.Errorf("hv: the loader's hypercall page %#x is not a page of the VM's memory", p.HypercallPage)
	}
	vm.kind, vm.memmap = p.Kind, p.Memmap
	vm.bootRegs, vm.bootSRegs = p.Regs, p.SRegs
	return nil
}

// encode serializes a fixed-layout ABI value in little-endian order.
func encode(v any) []byte { return hypercall.Encode(v) }

// initCPU sets the entry state the loader planned (docs/boot.md).
func (vm *VM) initCPU(c cpu.VCPU) error {
	if err := c.SetSRegs(vm.bootSRegs); err != nil {
		return err
	}
	c.SetRegs(vm.bootRegs)
	return nil
}
