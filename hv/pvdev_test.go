package hv

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/virtio"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
)

// newPVVM makes a pv-mode VM that is not run: the tests call the virtio
// handlers directly, as its vCPU would.
func newPVVM(t *testing.T, cfg Config) (*VM, *hcalls) {
	t.Helper()
	cfg.Kernel = elfImage(helloGuest)
	cfg.MemBytes = 16 << 20
	cfg.Mode = cpu.ModePV
	cfg.Budget = mm.NewBudget(1 << 30)
	vm, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.stopDevices()
		vm.res.Release()
	})
	return vm, &vm.vcpus[0].hc
}

// info reads slot's struct pvisor_virtio_info through virtio_info.
func info(t *testing.T, vm *VM, h *hcalls, slot uint64) hypercall.VirtioInfo {
	t.Helper()
	const buf = 0x500000
	if _, err := h.VirtioInfo(slot, buf); err != 0 {
		t.Fatalf("virtio_info(%d): %v", slot, err)
	}
	b, _ := vm.guest(buf, 48)
	le := binary.LittleEndian
	return hypercall.VirtioInfo{DeviceID: le.Uint32(b), VendorID: le.Uint32(b[4:]), DeviceFeatures: le.Uint64(b[8:]),
		NumQueues: le.Uint32(b[16:]), QueueNumMax: le.Uint32(b[20:]), ConfigLen: le.Uint32(b[24:]),
		ConfigGeneration: le.Uint32(b[28:]), Status: le.Uint32(b[32:]), Generation: le.Uint32(b[36:]), Flags: le.Uint32(b[40:])}
}

func errOf(_ uint64, e hypercall.Errno) hypercall.Errno { return e }

// TestSlotsEmpty: with no device every slot reads empty, and every call on
// a slot answers -ENODEV, or -EINVAL beyond VIRTIO_SLOTS.
func TestSlotsEmpty(t *testing.T) {
	vm, h := newPVVM(t, Config{})
	if got := info(t, vm, h, 0); got != (hypercall.VirtioInfo{}) {
		t.Errorf("empty slot: %+v", got)
	}
	if errOf(h.VirtioInfo(hypercall.VirtioSlots, 0x500000)) != hypercall.EINVAL {
		t.Error("virtio_info(VIRTIO_SLOTS) is not -EINVAL")
	}
	if errOf(h.VirtioInfo(0, 16<<20-8)) != hypercall.EFAULT {
		t.Error("virtio_info straddling the end of RAM is not -EFAULT")
	}
	for slot, want := range map[uint64]hypercall.Errno{0: hypercall.ENODEV, 15: hypercall.ENODEV, 16: hypercall.EINVAL, 1 << 31: hypercall.EINVAL} {
		for name, e := range map[string]hypercall.Errno{
			"set_features": errOf(h.VirtioSetFeatures(slot, virtio.FeatureVersion1)),
			"set_status":   errOf(h.VirtioSetStatus(slot, 1)),
			"config_read":  errOf(h.VirtioConfigRead(slot, 0, 0x500000, 4)),
			"config_write": errOf(h.VirtioConfigWrite(slot, 0, 0x500000, 4)),
			"queue_setup":  errOf(h.VirtioQueueSetup(slot, 0, 8, 0x400000, 0x401000, 0x402000)),
			"notify":       errOf(h.VirtioNotify(slot, 0)),
			"bind":         errOf(h.VirtioBind(slot, hypercall.VirtioBindQueues, 0)),
			"release":      errOf(h.VirtioRelease(slot)),
		} {
			if e != want {
				t.Errorf("virtio_%s on slot %d: %v, want %v", name, slot, e, want)
			}
		}
	}
}

const (
	tDesc  = 0x400000
	tAvail = 0x401000
	tUsed  = 0x402000
	tBuf   = 0x403000
)

// bringUp negotiates VERSION_1 and EVENT_IDX on slot's device, the way
// the guest driver does, and returns the status read back.
func bringUp(t *testing.T, h *hcalls, slot uint64) uint64 {
	t.Helper()
	st, _ := h.VirtioSetStatus(slot, uint64(virtio.StatusAcknowledge|virtio.StatusDriver))
	if st != uint64(virtio.StatusAcknowledge|virtio.StatusDriver) {
		t.Fatalf("status after DRIVER: %#x", st)
	}
	if e := errOf(h.VirtioSetFeatures(slot, virtio.FeatureVersion1|virtio.FeatureEventIdx)); e != 0 {
		t.Fatalf("virtio_set_features: %v", e)
	}
	st, _ = h.VirtioSetStatus(slot, uint64(virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK))
	return st
}

// waitSlots waits for a device interrupt to reach the slots' flag, then
// raises the ports as vCPU 0 does.
func waitSlots(t *testing.T, vm *VM) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a hang, not a speed limit
	for !vm.pv.irq.Load() {
		if time.Now().After(deadline) {
			t.Fatal("no device interrupt")
		}
		time.Sleep(time.Millisecond)
	}
	vm.vcpus[0].pollSlots()
}

// TestSlotRng drives the rng device end to end through the calls: info,
// features, status, queue setup, bind, notify, the port raised, the used
// ring filled with random bytes.
func TestSlotRng(t *testing.T) {
	vm, h := newPVVM(t, Config{RNG: true})
	got := info(t, vm, h, 0)
	want := hypercall.VirtioInfo{DeviceID: uint32(virtio.TypeRng), VendorID: virtio.MMIOVendor,
		DeviceFeatures: virtio.FeatureIndirectDesc | virtio.FeatureEventIdx | virtio.FeatureVersion1,
		NumQueues:      1, QueueNumMax: 256, Generation: 1}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("info (-want +got):\n%s", d)
	}
	if info(t, vm, h, 1).DeviceID != 0 {
		t.Error("slot 1 is not empty")
	}
	if e := errOf(h.VirtioSetFeatures(0, virtio.FeatureVersion1)); e != hypercall.EINVAL {
		t.Errorf("set_features before DRIVER: %v, want -EINVAL", e)
	}
	if e := errOf(h.VirtioQueueSetup(0, 0, 8, tDesc, tAvail, tUsed)); e != hypercall.EINVAL {
		t.Errorf("queue_setup before FEATURES_OK: %v, want -EINVAL", e)
	}
	if st := bringUp(t, h, 0); st&uint64(virtio.StatusFeaturesOK) == 0 {
		t.Fatalf("FEATURES_OK refused: %#x", st)
	}
	if e := errOf(h.VirtioSetFeatures(0, virtio.FeatureVersion1)); e != hypercall.EINVAL {
		t.Errorf("set_features after FEATURES_OK: %v, want -EINVAL", e)
	}
	if e := errOf(h.VirtioQueueSetup(0, 1, 8, tDesc, tAvail, tUsed)); e != hypercall.EINVAL {
		t.Errorf("queue_setup of queue 1: %v, want -EINVAL", e)
	}
	if e := errOf(h.VirtioConfigRead(0, 0, 0x500000, 1)); e != hypercall.EINVAL {
		t.Errorf("config_read beyond the rng's empty config: %v, want -EINVAL", e)
	}
	if e := errOf(h.VirtioQueueSetup(0, 0, 8, tDesc, tAvail, tUsed)); e != 0 {
		t.Fatalf("queue_setup: %v", e)
	}
	if e := errOf(h.VirtioQueueSetup(0, 0, 16, tDesc, tAvail, tUsed)); e != hypercall.EBUSY {
		t.Errorf("changing a ready queue: %v, want -EBUSY", e)
	}
	port, e := h.VirtioBind(0, hypercall.VirtioBindQueues, 0)
	if e != 0 {
		t.Fatalf("virtio_bind: %v", e)
	}
	if e := errOf(h.VirtioBind(0, hypercall.VirtioBindQueues, 0)); e != hypercall.EBUSY {
		t.Errorf("second bind: %v, want -EBUSY", e)
	}
	if e := errOf(h.VirtioBind(0, 2, 0)); e != hypercall.EINVAL {
		t.Errorf("bind kind 2: %v, want -EINVAL", e)
	}
	if e := errOf(h.VirtioBind(0, hypercall.VirtioBindConfig, 1)); e != hypercall.EINVAL {
		t.Errorf("bind to vCPU 1: %v, want -EINVAL", e)
	}
	if st, _ := h.VirtioSetStatus(0, 0xf); st != 0xf {
		t.Fatalf("status after DRIVER_OK: %#x", st)
	}
	// One 64-byte writable buffer.
	le := binary.LittleEndian
	d, _ := vm.guest(tDesc, 16)
	le.PutUint64(d, tBuf)
	le.PutUint32(d[8:], 64)
	le.PutUint16(d[12:], 2) // VIRTQ_DESC_F_WRITE
	a, _ := vm.guest(tAvail, 4+2*8+2)
	le.PutUint16(a[4:], 0)
	le.PutUint16(a[2:], 1)
	if e := errOf(h.VirtioNotify(0, 0)); e != 0 {
		t.Fatalf("notify: %v", e)
	}
	waitSlots(t, vm)
	if !vm.portBit(int(port), false) {
		t.Error("the queues port is not pending after the request")
	}
	u, _ := vm.guest(tUsed, 4+8*8)
	if idx, n := le.Uint16(u[2:]), le.Uint32(u[8:]); idx != 1 || n != 64 {
		t.Errorf("used ring: idx %d len %d, want 1 and 64", idx, n)
	}
	buf, _ := vm.guest(tBuf, 64)
	zero := true
	for _, c := range buf {
		zero = zero && c == 0
	}
	if zero {
		t.Error("the rng wrote no random bytes")
	}
	// A reset returns the device to its initial state; the port stays.
	if st, _ := h.VirtioSetStatus(0, 0); st != 0 {
		t.Errorf("status after reset: %#x", st)
	}
	if q, _ := vm.pv.slots[0].Load().t.Device().Queue(0); q.Ready {
		t.Error("queue ready after reset")
	}
}

// TestSlotMalformedQueue: a bad ring layout breaks the device: -EIO,
// DEVICE_NEEDS_RESET in the status, the config port raised, and a reset
// recovers it.
func TestSlotMalformedQueue(t *testing.T) {
	for name, q := range map[string][4]uint64{
		"size not a power of two": {6, tDesc, tAvail, tUsed},
		"size over the maximum":   {512, tDesc, tAvail, tUsed},
		"size over 16 bits":       {1 << 16, tDesc, tAvail, tUsed},
		"desc misaligned":         {8, tDesc + 8, tAvail, tUsed},
		"used misaligned":         {8, tDesc, tAvail, tUsed + 2},
		"avail outside RAM":       {8, tDesc, 16 << 20, tUsed},
		"desc wrapping":           {8, ^uint64(0) - 15, tAvail, tUsed},
	} {
		vm, h := newPVVM(t, Config{RNG: true})
		cport, e := h.VirtioBind(0, hypercall.VirtioBindConfig, 0)
		if e != 0 {
			t.Fatal(e)
		}
		bringUp(t, h, 0)
		if e := errOf(h.VirtioQueueSetup(0, 0, q[0], q[1], q[2], q[3])); e != hypercall.EIO {
			t.Errorf("%s: queue_setup %v, want -EIO", name, e)
		}
		if st := info(t, vm, h, 0).Status; st&uint32(virtio.StatusDeviceNeedsReset) == 0 {
			t.Errorf("%s: status %#x without DEVICE_NEEDS_RESET", name, st)
		}
		vm.vcpus[0].pollSlots()
		if !vm.portBit(int(cport), false) {
			t.Errorf("%s: the config port is not pending", name)
		}
		if st, _ := h.VirtioSetStatus(0, 0); st != 0 {
			t.Errorf("%s: status after reset %#x", name, st)
		}
		if st := bringUp(t, h, 0); st&uint64(virtio.StatusFeaturesOK) == 0 {
			t.Errorf("%s: no FEATURES_OK after reset: %#x", name, st)
		}
	}
}

// TestSlotPortClose: closing a device's port frees it for a new bind and
// leaves the VIRQ bindings alone.
func TestSlotPortClose(t *testing.T) {
	vm, h := newPVVM(t, Config{RNG: true})
	tport, e := h.EvtchnBindVIRQ(hypercall.VirqTimer, 0)
	if e != 0 {
		t.Fatal(e)
	}
	p, _ := h.VirtioBind(0, hypercall.VirtioBindQueues, 0)
	if e := errOf(h.EvtchnClose(p)); e != 0 {
		t.Fatal(e)
	}
	if vm.ev.virqPort[0][hypercall.VirqTimer] != int(tport) {
		t.Error("closing a virtio port unbound VIRQ_TIMER")
	}
	if _, e := h.VirtioBind(0, hypercall.VirtioBindQueues, 0); e != 0 {
		t.Errorf("bind after close: %v", e)
	}
}

type closeCount struct{ n int }

func (c *closeCount) Close() error { c.n++; return nil }

// TestHotplug: attach fills the first free slot with a new generation and
// raises VIRQ_VIRTIO; an ejection request sets the flag and raises it; the
// slot empties on virtio_release, and at once with force; the backend is
// closed once; calls on the slot then answer -ENODEV.
func TestHotplug(t *testing.T) {
	vm, h := newPVVM(t, Config{})
	vport, e := h.EvtchnBindVIRQ(hypercall.VirqVirtio, 0)
	if e != 0 {
		t.Fatal(e)
	}
	var c1, c2 closeCount
	s, err := vm.AttachDevice("virtio-rng 0", virtio.Rng{}, &c1)
	if err != nil || s != 0 {
		t.Fatalf("attach: slot %d, %v", s, err)
	}
	vm.vcpus[0].pollSlots()
	if !vm.portBit(int(vport), false) {
		t.Error("attach did not raise VIRQ_VIRTIO")
	}
	vm.setPortBit(int(vport), false, false)
	if got := info(t, vm, h, 0); got.DeviceID != uint32(virtio.TypeRng) || got.Generation != 1 {
		t.Errorf("after attach: %+v", got)
	}
	if e := errOf(h.VirtioRelease(0)); e != hypercall.EBUSY {
		t.Errorf("release without an ejection request: %v, want -EBUSY", e)
	}
	if err := vm.EjectDevice(0, false); err != nil {
		t.Fatal(err)
	}
	vm.vcpus[0].pollSlots()
	if !vm.portBit(int(vport), false) {
		t.Error("the ejection request did not raise VIRQ_VIRTIO")
	}
	if got := info(t, vm, h, 0); got.Flags != hypercall.VirtioEjectRequested {
		t.Errorf("flags %#x, want EJECT_REQUESTED", got.Flags)
	}
	if d := vm.SlotDevices(); len(d) != 1 || d[0].String() != "virtio-rng 0 slot 0 (ejection requested)" {
		t.Errorf("listing: %v", d)
	}
	if e := errOf(h.VirtioRelease(0)); e != 0 {
		t.Fatalf("release: %v", e)
	}
	if c1.n != 1 || info(t, vm, h, 0).DeviceID != 0 || errOf(h.VirtioSetStatus(0, 1)) != hypercall.ENODEV {
		t.Errorf("after release: closed %d times, info %+v", c1.n, info(t, vm, h, 0))
	}
	// The slot is reused with a new generation.
	if s, _ := vm.AttachDevice("virtio-rng 1", virtio.Rng{}, &c2); s != 0 || info(t, vm, h, 0).Generation != 2 {
		t.Errorf("reattach: slot %d, %+v", s, info(t, vm, h, 0))
	}
	bringUp(t, h, 0)
	if err := vm.EjectDevice(0, true); err != nil {
		t.Fatal(err)
	}
	if c2.n != 1 || errOf(h.VirtioNotify(0, 0)) != hypercall.ENODEV || vm.SlotDevices() != nil {
		t.Errorf("after a forced ejection: closed %d times, notify %v", c2.n, errOf(h.VirtioNotify(0, 0)))
	}
	if err := vm.EjectDevice(0, true); err == nil {
		t.Error("ejecting an empty slot succeeded")
	}
	if err := vm.EjectDevice(hypercall.VirtioSlots, false); err == nil {
		t.Error("ejecting slot VIRTIO_SLOTS succeeded")
	}
	// Every slot taken: the next attach is refused.
	for i := 0; i < hypercall.VirtioSlots; i++ {
		if _, err := vm.AttachDevice("virtio-rng", virtio.Rng{}, nil); err != nil {
			t.Fatalf("attach %d: %v", i, err)
		}
	}
	if _, err := vm.AttachDevice("virtio-rng", virtio.Rng{}, nil); !errors.Is(err, ErrNoSlot) {
		t.Errorf("attach to a full table: %v", err)
	}
}

// TestHotplugNeedsPV: the other modes have no slots.
func TestHotplugNeedsPV(t *testing.T) {
	vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModeTrap, Budget: mm.NewBudget(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.res.Release()
	if _, err := vm.AttachDevice("virtio-rng", virtio.Rng{}, nil); err == nil {
		t.Error("attach in trap mode succeeded")
	}
}

// TestSlotDisks: --disk in pv mode fills slots in order, and the VM's end
// closes the images.
func TestSlotDisks(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	vm, h := newPVVM(t, Config{Disks: []Disk{{Path: img}, {Path: img, ReadOnly: true}}, RNG: true})
	var names []string
	for _, d := range vm.SlotDevices() {
		names = append(names, d.String())
	}
	if d := cmp.Diff([]string{"virtio-blk 0 slot 0", "virtio-blk 1 slot 1", "virtio-rng 0 slot 2"}, names); d != "" {
		t.Errorf("slots (-want +got):\n%s", d)
	}
	got := info(t, vm, h, 1)
	if got.DeviceID != uint32(virtio.TypeBlock) || got.DeviceFeatures&virtio.BlockFeatureRO == 0 || got.ConfigLen == 0 {
		t.Errorf("read-only disk: %+v", got)
	}
	// Config space: capacity in 512-byte sectors at offset 0.
	if n, e := h.VirtioConfigRead(1, 0, 0x500000, 8); e != 0 || n != 8 {
		t.Fatalf("config_read: %d %v", n, e)
	}
	b, _ := vm.guest(0x500000, 8)
	if c := binary.LittleEndian.Uint64(b); c != 2048 {
		t.Errorf("capacity %d sectors, want 2048", c)
	}
	if e := errOf(h.VirtioConfigRead(1, uint64(got.ConfigLen)-4, 0x500000, 8)); e != hypercall.EINVAL {
		t.Errorf("config_read past config_len: %v", e)
	}
	if e := errOf(h.VirtioConfigRead(1, 0, 16<<20-4, 8)); e != hypercall.EFAULT {
		t.Errorf("config_read into a bad buffer: %v", e)
	}
	if e := errOf(h.VirtioConfigWrite(1, 0, 16<<20-4, 8)); e != hypercall.EFAULT {
		t.Errorf("config_write from a bad buffer: %v", e)
	}
}

// TestSlotsAfterStop: once the VM's devices are closed (its end), the
// slots still list them but no call reaches a closed backend: -ENODEV.
func TestSlotsAfterStop(t *testing.T) {
	vm, h := newPVVM(t, Config{RNG: true})
	bringUp(t, h, 0)
	vm.closeSlots()
	if len(vm.SlotDevices()) != 1 {
		t.Error("the stopped VM's slots are not listed")
	}
	for name, e := range map[string]hypercall.Errno{
		"set_status":   errOf(h.VirtioSetStatus(0, 0)),
		"set_features": errOf(h.VirtioSetFeatures(0, virtio.FeatureVersion1)),
		"queue_setup":  errOf(h.VirtioQueueSetup(0, 0, 8, tDesc, tAvail, tUsed)),
		"config_write": errOf(h.VirtioConfigWrite(0, 0, 0x500000, 0)),
		"bind":         errOf(h.VirtioBind(0, hypercall.VirtioBindQueues, 0)),
	} {
		if e != hypercall.ENODEV {
			t.Errorf("virtio_%s after the devices closed: %v, want -ENODEV", name, e)
		}
	}
}

// runningRng brings the rng in slot 0 to DRIVER_OK with one queue.
func runningRng(t testing.TB, h *hcalls) {
	t.Helper()
	h.VirtioSetStatus(0, uint64(virtio.StatusAcknowledge|virtio.StatusDriver))
	h.VirtioSetFeatures(0, virtio.FeatureVersion1|virtio.FeatureEventIdx)
	h.VirtioSetStatus(0, uint64(virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK))
	if e := errOf(h.VirtioQueueSetup(0, 0, 8, tDesc, tAvail, tUsed)); e != 0 {
		t.Fatal(e)
	}
	if st, _ := h.VirtioSetStatus(0, 0xf); st != 0xf {
		t.Fatalf("status %#x", st)
	}
}

// TestVirtioNotifyAllocs: the doorbell allocates nothing.
func TestVirtioNotifyAllocs(t *testing.T) {
	_, h := newPVVM(t, Config{RNG: true})
	runningRng(t, h)
	if n := testing.AllocsPerRun(1000, func() { h.VirtioNotify(0, 0) }); n != 0 {
		t.Errorf("virtio_notify: %v allocations per call", n)
	}
}

// BenchmarkVirtioNotify is the doorbell's handler cost (the hypercall
// exit around it is the engine's).
func BenchmarkVirtioNotify(b *testing.B) {
	vm, err := New(Config{Kernel: elfImage(helloGuest), MemBytes: 16 << 20, Mode: cpu.ModePV, Budget: mm.NewBudget(1 << 30), RNG: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { vm.stopDevices(); vm.res.Release() }()
	h := &vm.vcpus[0].hc
	runningRng(b, h)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.VirtioNotify(0, 0)
	}
}
