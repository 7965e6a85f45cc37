package hv

import (
	"encoding/binary"
	"testing"

	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
)

// TestSharedInfoPageZero: guest-physical page 0 is a page like any other.
// Registered as the shared-info page, events land in it, and it cannot be
// ballooned out from under the hypervisor.
func TestSharedInfoPageZero(t *testing.T) {
	vm, err := New(Config{Kernel: elfImage([]byte{0xf4}), MemBytes: 8 << 20, Mode: cpu.ModePV,
		Budget: mm.NewBudget(1 << 30), DeterministicTSC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.res.Release()
	h := &vm.vcpus[0].hc
	if _, e := h.DeclareVersion(hypercall.Version); e != 0 {
		t.Fatalf("declare_version: %v", e)
	}
	if _, e := h.SharedInfoRegister(0, 0x40); e != 0 {
		t.Fatalf("shared_info_register(0): %v", e)
	}
	port, e := h.EvtchnBindVIRQ(hypercall.VirqTimer, 0)
	if e != 0 {
		t.Fatalf("bind VIRQ_TIMER: %v", e)
	}
	if _, e := h.EvtchnUnmask(port); e != 0 {
		t.Fatalf("unmask: %v", e)
	}
	if !vm.raiseVirq(0, hypercall.VirqTimer) {
		t.Errorf("raiseVirq on a bound, unmasked port reports the event undelivered")
	}
	page, _ := vm.guest(0, hypercall.PageSize)
	pending := binary.LittleEndian.Uint64(page[offPending+port/64*8:])
	if pending&(1<<(port%64)) == 0 {
		t.Errorf("the timer port's pending bit is not in the registered page 0 (word %#x)", pending)
	}
	if page[offUpcallPend] != 1 {
		t.Errorf("upcall_pending of vCPU 0 in page 0 is %d, want 1", page[offUpcallPend])
	}
	if !vm.upcallWanted(0) {
		t.Errorf("the pending, unmasked port wants no upcall")
	}
	// Frame 0 is the array's own page here: the guest asks for frame 0.
	binary.LittleEndian.PutUint64(page[hypercall.PageSize-8:], 0)
	if _, e := h.BalloonOut(hypercall.PageSize-8, 1); e != hypercall.EBUSY {
		t.Errorf("balloon_out of the registered page 0: %v, want EBUSY", e)
	}
}
