package hv

import (
	"fmt"

	"github.com/pvisor/pvisor/hv/virtio"
)

// MMIODevicesState is the virtio-mmio devices' state (VM.SaveMMIO), in
// window order. The backends are the caller's: the VM restored into has
// the same devices in the same windows (its configuration), and
// RestoreMMIO checks that it does.
type MMIODevicesState struct {
	Devices []MMIODeviceState
}

// MMIODeviceState is one device window.
type MMIODeviceState struct {
	// Name is the device's name in listings ("virtio-blk 0"); the
	// restored VM's device in the window must have the same.
	Name string
	// LineHigh is the level the device last drove its PIC line to (the
	// PIC's own state holds the line as the PIC saw it).
	LineHigh bool
	// MMIO is the register file's and the device's state.
	MMIO virtio.MMIOState
}

// SaveMMIO returns the virtio-mmio devices' state. Precondition: the VM is
// paused (its devices quiesced: the devices' Save refuses otherwise).
func (vm *VM) SaveMMIO() (MMIODevicesState, error) {
	var st MMIODevicesState
	for _, d := range vm.mmio {
		ms, err := d.t.Save()
		if err != nil {
			return MMIODevicesState{}, fmt.Errorf("hv: %s: %w", d.name, err)
		}
		st.Devices = append(st.Devices, MMIODeviceState{Name: d.name, LineHigh: d.high, MMIO: ms})
	}
	return st, nil
}

// RestoreMMIO puts back a state from SaveMMIO into a paused VM with the
// same devices in the same windows, or refuses it, changing nothing: a
// device missing, extra or of another name, and every device's state as
// virtio.MMIO.Restore checks it.
func (vm *VM) RestoreMMIO(st MMIODevicesState) error {
	if vm.Stopped() {
		return ErrVMStopped // its devices are closed
	}
	if len(st.Devices) != len(vm.mmio) {
		return fmt.Errorf("hv: restore virtio-mmio: %d devices, the VM has %d", len(st.Devices), len(vm.mmio))
	}
	for i, ds := range st.Devices {
		if ds.Name != vm.mmio[i].name {
			return fmt.Errorf("hv: restore virtio-mmio: window %d holds %s, the snapshot %s", i, vm.mmio[i].name, ds.Name)
		}
	}
	before := make([]virtio.MMIOState, 0, len(vm.mmio))
	for i, ds := range st.Devices {
		d := vm.mmio[i]
		old, err := d.t.Save()
		if err == nil {
			err = d.t.Restore(ds.MMIO)
		}
		if err != nil {
			for j, o := range before {
				vm.mmio[j].t.Restore(o) // a state Save made: taken back
			}
			return fmt.Errorf("hv: restore %s: %w", d.name, err)
		}
		before = append(before, old)
	}
	for i, ds := range st.Devices {
		vm.mmio[i].high = ds.LineHigh
	}
	return nil
}
