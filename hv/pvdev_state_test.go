package hv

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pvisor/pvisor/hv/cpu"
	"github.com/pvisor/pvisor/hv/netswitch"
	"github.com/pvisor/pvisor/hv/virtio"
	"github.com/pvisor/pvisor/hypercall"
	"github.com/pvisor/pvisor/mm"
)

// slotsVM is a pv-mode VM with a disk (slot 0), the rng (slot 1) and a NIC
// (slot 2), on a switch of its own.
func slotsVM(t *testing.T, img string) (*VM, *hcalls) {
	t.Helper()
	return newPVVM(t, Config{Name: "db", Disks: []Disk{{Path: img}}, RNG: true,
		Switch: netswitch.New(), NICs: []NIC{{Segment: "lan"}}})
}

// rngRequest makes a request for n random bytes available on the rng's
// queue (laid out as runningRngAt does) as entry i, and notifies.
func rngRequest(t *testing.T, vm *VM, h *hcalls, slot uint64, i uint16, n uint32) {
	t.Helper()
	le := binary.LittleEndian
	d, _ := vm.guest(tDesc+16*uint64(i%8), 16)
	le.PutUint64(d, tBuf+0x100*uint64(i%8))
	le.PutUint32(d[8:], n)
	le.PutUint16(d[12:], 2) // VIRTQ_DESC_F_WRITE
	le.PutUint16(d[14:], 0)
	a, _ := vm.guest(tAvail, 4+2*8+2)
	le.PutUint16(a[4+2*(i%8):], i%8)
	le.PutUint16(a[4+2*8:], i) // used_event: an interrupt for this one
	le.PutUint16(a[2:], i+1)
	if e := errOf(h.VirtioNotify(slot, 0)); e != 0 {
		t.Fatalf("notify: %v", e)
	}
}

// runningRngAt brings the rng in slot to DRIVER_OK with one queue of 8
// and binds both its ports to vCPU 0; it returns the queues port.
func runningRngAt(t *testing.T, h *hcalls, slot uint64) uint64 {
	t.Helper()
	if st := bringUp(t, h, slot); st&uint64(virtio.StatusFeaturesOK) == 0 {
		t.Fatalf("status %#x", st)
	}
	if e := errOf(h.VirtioQueueSetup(slot, 0, 8, tDesc, tAvail, tUsed)); e != 0 {
		t.Fatal(e)
	}
	p, e := h.VirtioBind(slot, hypercall.VirtioBindQueues, 0)
	if e != 0 {
		t.Fatal(e)
	}
	if _, e := h.VirtioBind(slot, hypercall.VirtioBindConfig, 0); e != 0 {
		t.Fatal(e)
	}
	if st, _ := h.VirtioSetStatus(slot, 0xf); st != 0xf {
		t.Fatalf("status %#x", st)
	}
	return p
}

// newMMIOVM makes a trap-mode VM that is not run.
func newMMIOVM(t *testing.T, cfg Config) (*VM, *hcalls) {
	t.Helper()
	cfg.Kernel = elfImage(helloGuest)
	cfg.MemBytes = 16 << 20
	cfg.Mode = cpu.ModeTrap
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

func diskImage(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	return img
}

// copyEventPorts binds to's event-channel ports as from's, each virtio
// interrupt to to's device in the same slot, as restoring from's event
// channels into to does.
func copyEventPorts(from, to *VM) {
	for p := range from.ev.ports {
		pt := from.ev.ports[p]
		if pt.dev != nil {
			pt.dev = to.pv.slots[pt.dev.index].Load()
		}
		to.ev.ports[p] = pt
	}
}

// TestPauseQuiescesDevices: Pause quiesces every slot device, one
// attached while paused too, and Resume lets them go; likewise the
// virtio-mmio devices.
func TestPauseQuiescesDevices(t *testing.T) {
	vm, _ := slotsVM(t, diskImage(t))
	if err := vm.Pause(); err != nil {
		t.Fatal(err)
	}
	i, err := vm.AttachDevice("virtio-rng 1", virtio.Rng{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range vm.SlotDevices() {
		if !vm.pv.slots[d.Slot].Load().t.Device().Quiesced() {
			t.Errorf("%s not quiesced while the VM is paused", d)
		}
	}
	if err := vm.Resume(); err != nil {
		t.Fatal(err)
	}
	for _, d := range vm.SlotDevices() {
		if vm.pv.slots[d.Slot].Load().t.Device().Quiesced() {
			t.Errorf("%s quiesced after Resume (slot %d attached while paused)", d, i)
		}
	}

	vm2, _ := newMMIOVM(t, Config{Disks: []Disk{{Path: diskImage(t)}}, RNG: true})
	if err := vm2.Pause(); err != nil {
		t.Fatal(err)
	}
	for _, d := range vm2.mmio {
		if !d.t.Device().Quiesced() {
			t.Errorf("%s not quiesced while the VM is paused", d.name)
		}
	}
	if err := vm2.Resume(); err != nil {
		t.Fatal(err)
	}
	for _, d := range vm2.mmio {
		if d.t.Device().Quiesced() {
			t.Errorf("%s quiesced after Resume", d.name)
		}
	}
}

// TestSlotsRoundTrip saves a paused VM's slots (an rng with a request
// served and its interrupt bits not yet taken, another request notified,
// its ports bound; a disk asked to eject; a NIC), restores them into a
// second VM of the same configuration over a copy of the guest memory,
// and checks that the second VM's slots read and behave as the first's.
func TestSlotsRoundTrip(t *testing.T) {
	img := diskImage(t)
	vm, h := slotsVM(t, img)
	qport := runningRngAt(t, h, 1)
	rngRequest(t, vm, h, 1, 0, 32)
	waitSlots(t, vm)
	if err := vm.EjectDevice(0, false); err != nil {
		t.Fatal(err)
	}
	if err := vm.Pause(); err != nil {
		t.Fatal(err)
	}
	rngRequest(t, vm, h, 1, 1, 16) // notified while paused: kept

	st, err := vm.SaveSlots()
	if err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	if err := gob.NewEncoder(&enc).Encode(st); err != nil {
		t.Fatal(err)
	}
	var dec SlotsState
	if err := gob.NewDecoder(bytes.NewReader(enc.Bytes())).Decode(&dec); err != nil {
		t.Fatal(err)
	}
	if len(st.Slots) != 3 || !st.Changed || !st.Slots[0].EjectRequested || st.Slots[1].Ports[0] != uint32(qport) || st.Slots[1].Device.Pending != 0 {
		t.Fatalf("saved slots %+v", st)
	}
	if q := st.Slots[1].Device.Device.Queues[0]; q.NextUsed != 1 || !q.Notified {
		t.Fatalf("saved rng queue %+v", q)
	}

	vm2, h2 := slotsVM(t, img)
	mem, _ := vm.guest(0, 16<<20)
	mem2, _ := vm2.guest(0, 16<<20)
	copy(mem2, mem)
	if err := vm2.Pause(); err != nil {
		t.Fatal(err)
	}
	copyEventPorts(vm, vm2)
	if err := vm2.RestoreSlots(dec); err != nil {
		t.Fatalf("RestoreSlots: %v", err)
	}
	st2, err := vm2.SaveSlots()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(st, st2); d != "" {
		t.Fatalf("slots after restore differ (-saved +restored):\n%s", d)
	}
	var enc2 bytes.Buffer
	if err := gob.NewEncoder(&enc2).Encode(st2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc.Bytes(), enc2.Bytes()) {
		t.Fatalf("encodings differ after restore")
	}
	for slot := range uint64(3) {
		if a, b := info(t, vm, h, slot), info(t, vm2, h2, slot); a != b {
			t.Errorf("slot %d: virtio_info %+v, restored %+v", slot, a, b)
		}
	}
	if p := vm2.pv.slots[1].Load().ports; p != vm.pv.slots[1].Load().ports || p[hypercall.VirtioBindQueues] != int(qport) {
		t.Fatalf("ports %v after restore, want %v", p, vm.pv.slots[1].Load().ports)
	}
	// Both go on: the pending request is served alike, and its interrupt
	// raises the same port.
	for _, v := range []*VM{vm, vm2} {
		v.setPortBit(int(qport), false, false)
		if err := v.Resume(); err != nil {
			t.Fatal(err)
		}
		waitSlots(t, v)
		if !v.portBit(int(qport), false) {
			t.Errorf("the queues port is not pending after the request")
		}
	}
	for i, hc := range []*hcalls{h, h2} {
		if e := errOf(hc.VirtioRelease(0)); e != 0 {
			t.Errorf("VM %d: virtio_release of the slot asked to eject: %v", i, e)
		}
	}
	u, _ := vm.guest(tUsed, 4+8*8)
	u2, _ := vm2.guest(tUsed, 4+8*8)
	if !bytes.Equal(u, u2) || binary.LittleEndian.Uint16(u[2:]) != 2 {
		t.Fatalf("used rings differ, or the pending request was not served")
	}
}

// TestSlotsRestoreRefuses: each kind of bad slot table is refused, and a
// refusal leaves every slot as it was, the devices restored before the
// bad one included.
func TestSlotsRestoreRefuses(t *testing.T) {
	img := diskImage(t)
	vm, h := slotsVM(t, img)
	runningRngAt(t, h, 1)
	if err := vm.Pause(); err != nil {
		t.Fatal(err)
	}
	good, err := vm.SaveSlots()
	if err != nil {
		t.Fatal(err)
	}
	clone := func() SlotsState {
		st := good
		st.Slots = append([]SlotState(nil), good.Slots...)
		return st
	}
	tests := []struct {
		name   string
		change func(st *SlotsState)
		want   string
	}{
		{"slot beyond the table", func(st *SlotsState) { st.Slots[2].Index = hypercall.VirtioSlots }, "out of range"},
		{"slot twice", func(st *SlotsState) { st.Slots[1].Index = 0 }, "out of range or order"},
		{"slots out of order", func(st *SlotsState) { st.Slots[0], st.Slots[1] = st.Slots[1], st.Slots[0] }, "which the snapshot has not"},
		{"device missing from the snapshot", func(st *SlotsState) { st.Slots = st.Slots[:2] }, "which the snapshot has not"},
		{"device missing from the VM", func(st *SlotsState) { st.Slots = append(st.Slots, SlotState{Index: 5, Name: "virtio-blk 9"}) }, "attach it first"},
		{"another device", func(st *SlotsState) { st.Slots[0].Name = "virtio-blk 7" }, "the VM virtio-blk 0"},
		{"generation 0", func(st *SlotsState) { st.Generations[1] = 0 }, "generation 0"},
		{"port beyond the table", func(st *SlotsState) { st.Slots[1].Ports[0] = hypercall.MaxPorts }, "beyond"},
		{"port not bound", func(st *SlotsState) { st.Slots[0].Ports[0] = 7 }, "do not bind port 7"},
		{"port of a VIRQ", func(st *SlotsState) { st.Slots[0].Ports[0] = 3 }, "do not bind port 3"},
		{"port of another slot", func(st *SlotsState) { st.Slots[0].Ports[1] = st.Slots[1].Ports[1] }, "do not bind"},
		{"port of the other kind", func(st *SlotsState) {
			st.Slots[1].Ports[0], st.Slots[1].Ports[1] = st.Slots[1].Ports[1], st.Slots[1].Ports[0]
		}, "do not bind"},
		{"bound port not named", func(st *SlotsState) { st.Slots[1].Ports[1] = 0 }, "does not name"},
		{"bad device state after a good one", func(st *SlotsState) {
			st.Slots[1].Device.Pending = 4
			st.Slots[0].Device.Device.Status = virtio.StatusAcknowledge // valid: restored, then taken back
		}, "pending"},
		{"device of another type", func(st *SlotsState) { st.Slots[2].Device.Device.Type = virtio.TypeRng }, "device type"},
	}
	vm.ev.ports[3] = port{bound: true, virq: 1} // a VIRQ's port
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := clone()
			tt.change(&st)
			err := vm.RestoreSlots(st)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RestoreSlots: %v, want an error about %q", err, tt.want)
			}
			after, err := vm.SaveSlots()
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(good, after); d != "" {
				t.Fatalf("a refused RestoreSlots changed the slots:\n%s", d)
			}
		})
	}
}

// TestMMIODevicesRoundTrip saves a paused trap-mode VM's virtio-mmio
// devices (registers written, a line raised) and restores them into a
// second VM of the same configuration; a VM with other devices is
// refused, changing nothing.
func TestMMIODevicesRoundTrip(t *testing.T) {
	img := diskImage(t)
	cfg := Config{Disks: []Disk{{Path: img}}, RNG: true}
	vm, _ := newMMIOVM(t, cfg)
	rng := vm.mmio[1]
	rng.t.Write(0x070, 4, uint64(virtio.StatusAcknowledge|virtio.StatusDriver)) // Status
	rng.t.Write(0x030, 4, 1)                                                    // QueueSel
	rng.high = true
	if err := vm.Pause(); err != nil {
		t.Fatal(err)
	}
	st, err := vm.SaveMMIO()
	if err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	if err := gob.NewEncoder(&enc).Encode(st); err != nil {
		t.Fatal(err)
	}
	var dec MMIODevicesState
	if err := gob.NewDecoder(bytes.NewReader(enc.Bytes())).Decode(&dec); err != nil {
		t.Fatal(err)
	}
	vm2, _ := newMMIOVM(t, cfg)
	if err := vm2.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := vm2.RestoreMMIO(dec); err != nil {
		t.Fatalf("RestoreMMIO: %v", err)
	}
	st2, err := vm2.SaveMMIO()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(st, st2); d != "" {
		t.Fatalf("devices after restore differ (-saved +restored):\n%s", d)
	}
	var enc2 bytes.Buffer
	if err := gob.NewEncoder(&enc2).Encode(st2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc.Bytes(), enc2.Bytes()) {
		t.Fatalf("encodings differ after restore")
	}
	if got := vm2.mmio[1].t.Read(0x070, 4); got != uint64(virtio.StatusAcknowledge|virtio.StatusDriver) || !vm2.mmio[1].high {
		t.Fatalf("restored rng: status %#x, line high %v", got, vm2.mmio[1].high)
	}

	vm3, _ := newMMIOVM(t, Config{RNG: true, Disks: []Disk{{Path: img}, {Path: img}}})
	if err := vm3.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := vm3.RestoreMMIO(dec); err == nil {
		t.Fatalf("RestoreMMIO into a VM with other devices succeeded")
	}
	bad := MMIODevicesState{Devices: append([]MMIODeviceState(nil), st.Devices...)}
	bad.Devices[1].MMIO.InterruptStatus = 8
	before, _ := vm2.SaveMMIO()
	if err := vm2.RestoreMMIO(bad); err == nil || !strings.Contains(err.Error(), "interrupt status") {
		t.Fatalf("RestoreMMIO with a bad interrupt status: %v", err)
	}
	if after, _ := vm2.SaveMMIO(); !cmp.Equal(before, after) {
		t.Fatalf("a refused RestoreMMIO changed the devices")
	}
}
