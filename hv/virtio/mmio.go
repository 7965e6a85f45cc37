package virtio

import (
	"encoding/binary"
	"sync/atomic"
)

// The virtio-mmio transport (virtio 1.1 section 4.2), version 2 (no legacy
// interface): a 4 KiB window of 32-bit registers and the device's config
// space at 0x100. Each guest access is an MMIO exit that hv hands to
// MMIO.Read or MMIO.Write on the vCPU goroutine; the interrupt status is
// set from the device goroutine through the Signaller methods.

// MMIOSize is the size of one device's register window.
const MMIOSize = 0x1000

// Register offsets (section 4.2.2, table "MMIO Device Register Layout").
const (
	mmioMagicValue        = 0x000
	mmioVersion           = 0x004
	mmioDeviceID          = 0x008
	mmioVendorID          = 0x00c
	mmioDeviceFeatures    = 0x010
	mmioDeviceFeaturesSel = 0x014
	mmioDriverFeatures    = 0x020
	mmioDriverFeaturesSel = 0x024
	mmioQueueSel          = 0x030
	mmioQueueNumMax       = 0x034
	mmioQueueNum          = 0x038
	mmioQueueReady        = 0x044
	mmioQueueNotify       = 0x050
	mmioInterruptStatus   = 0x060
	mmioInterruptACK      = 0x064
	mmioStatus            = 0x070
	mmioQueueDescLow      = 0x080
	mmioQueueDescHigh     = 0x084
	mmioQueueDriverLow    = 0x090
	mmioQueueDriverHigh   = 0x094
	mmioQueueDeviceLow    = 0x0a0
	mmioQueueDeviceHigh   = 0x0a4
	mmioConfigGeneration  = 0x0fc
	mmioConfig            = 0x100
)

// Register values.
const (
	MMIOMagic   = 0x74726976 // "virt", little-endian
	MMIOVersion = 2          // the virtio 1.x register layout
	// MMIOVendor is pvisor's vendor ID: the bytes "PVSR".
	MMIOVendor = 0x52535650
)

// Interrupt status bits (section 4.2.2, InterruptStatus).
const (
	InterruptUsedBuffer   uint32 = 1
	InterruptConfigChange uint32 = 2
)

// MMIO is one device behind the virtio-mmio register file. Read and Write
// are called by one vCPU at a time (hv serialises them per device); the
// Signaller side (UsedBuffer, ConfigChanged) runs on the device goroutine,
// only sets InterruptStatus bits atomically and calls the notify function
// given to NewMMIO, which must not block.
//
// Accesses the specification does not allow never fail the hypervisor:
// registers take 32-bit aligned accesses only, config space 8-, 16- and
// 32-bit naturally aligned ones inside its size. Any other read, and a
// read of a write-only or reserved register, returns all-ones (as an
// empty bus); any other write is ignored.
type MMIO struct {
	dev    *Device
	notify func()

	intStatus atomic.Uint32

	// Driver-side selectors (vCPU goroutine only).
	devFeatSel uint32
	drvFeatSel uint32
	queueSel   uint32
}

// NewMMIO builds a device over backend b, guest memory m and options o,
// with the MMIO transport as its Signaller. notify is called (from the
// device goroutine, or the vCPU's on a break) whenever InterruptStatus
// gains a bit; hv then raises the device's interrupt line on the vCPU.
func NewMMIO(b Backend, m Mem, o Options, notify func()) *MMIO {
	t := &MMIO{notify: notify}
	t.dev = NewDevice(b, m, t, o)
	return t
}

// Device is the device behind the transport.
func (t *MMIO) Device() *Device { return t.dev }

// InterruptStatus is the InterruptStatus register: non-zero while the
// device's interrupt line should be asserted.
func (t *MMIO) InterruptStatus() uint32 { return t.intStatus.Load() }

// UsedBuffer implements Signaller.
func (t *MMIO) UsedBuffer(q int) { t.interrupt(InterruptUsedBuffer) }

// ConfigChanged implements Signaller.
func (t *MMIO) ConfigChanged() { t.interrupt(InterruptConfigChange) }

func (t *MMIO) interrupt(bit uint32) {
	t.intStatus.Or(bit)
	t.notify()
}

// Read returns the value of the size-byte read at offset off of the
// window.
func (t *MMIO) Read(off uint64, size int) uint64 {
	const none = ^uint64(0)
	if off >= mmioConfig {
		var b [4]byte
		if !configAccessOK(off, size) || !t.dev.ReadConfig(off-mmioConfig, b[:size]) {
			return none
		}
		return uint64(binary.LittleEndian.Uint32(b[:]))
	}
	if size != 4 || off&3 != 0 {
		return none
	}
	d := t.dev
	switch off {
	case mmioMagicValue:
		return MMIOMagic
	case mmioVersion:
		return MMIOVersion
	case mmioDeviceID:
		return uint64(d.Type())
	case mmioVendorID:
		return MMIOVendor
	case mmioDeviceFeatures:
		return uint64(half(d.DeviceFeatures(), t.devFeatSel))
	case mmioQueueNumMax:
		return uint64(d.QueueMax(int(t.queueSel)))
	case mmioQueueReady:
		if q, ok := d.Queue(int(t.queueSel)); ok && q.Ready {
			return 1
		}
		return 0
	case mmioInterruptStatus:
		return uint64(t.intStatus.Load())
	case mmioStatus:
		return uint64(d.Status())
	case mmioConfigGeneration:
		return uint64(d.ConfigGeneration())
	}
	return none
}

// Write carries out the size-byte write of v at offset off of the window.
// It reports whether the interrupt status lost bits (an InterruptACK or a
// reset), so that the caller can lower or re-raise the line.
func (t *MMIO) Write(off uint64, size int, v uint64) (acked bool) {
	if off >= mmioConfig {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(v))
		if configAccessOK(off, size) {
			t.dev.WriteConfig(off-mmioConfig, b[:size])
		}
		return false
	}
	if size != 4 || off&3 != 0 {
		return false
	}
	d, w := t.dev, uint32(v)
	switch off {
	case mmioDeviceFeaturesSel:
		t.devFeatSel = w
	case mmioDriverFeatures:
		if t.drvFeatSel < 2 {
			f := d.DriverFeatures()
			shift := 32 * t.drvFeatSel
			d.SetDriverFeatures(f&^(0xffffffff<<shift) | uint64(w)<<shift)
		}
	case mmioDriverFeaturesSel:
		t.drvFeatSel = w
	case mmioQueueSel:
		t.queueSel = w
	case mmioQueueNum:
		t.setQueue(func(q *QueueState) { q.Size = uint16(min(w, 0xffff)) })
	case mmioQueueReady:
		t.setQueue(func(q *QueueState) { q.Ready = w&1 != 0 })
	case mmioQueueDescLow, mmioQueueDescHigh:
		t.setQueue(func(q *QueueState) { q.Desc = setHalf(q.Desc, off == mmioQueueDescHigh, w) })
	case mmioQueueDriverLow, mmioQueueDriverHigh:
		t.setQueue(func(q *QueueState) { q.Driver = setHalf(q.Driver, off == mmioQueueDriverHigh, w) })
	case mmioQueueDeviceLow, mmioQueueDeviceHigh:
		t.setQueue(func(q *QueueState) { q.Device = setHalf(q.Device, off == mmioQueueDeviceHigh, w) })
	case mmioQueueNotify:
		if w < 0x10000 {
			d.Notify(int(w))
		}
	case mmioInterruptACK:
		t.intStatus.And(^w)
		return true
	case mmioStatus:
		d.SetStatus(uint8(w))
		if w == 0 {
			// A reset returns the transport's registers too; the device
			// no longer signals, so nothing sets a bit after this.
			t.devFeatSel, t.drvFeatSel, t.queueSel = 0, 0, 0
			t.intStatus.Store(0)
			return true
		}
	}
	return false
}

// setQueue applies one register write to the selected queue. A write the
// device refuses (no such queue, outside queue setup, changing a ready
// queue) is ignored; enabling a queue with a bad layout breaks the device
// (Device.SetQueue), which the driver sees as DEVICE_NEEDS_RESET.
func (t *MMIO) setQueue(change func(*QueueState)) {
	q := int(t.queueSel)
	s, ok := t.dev.Queue(q)
	if !ok {
		return
	}
	change(&s)
	_ = t.dev.SetQueue(q, s) // refusals are the ignored writes described above
}

// configAccessOK says whether a config-space access of size bytes at
// window offset off is one the specification allows: 1, 2 or 4 bytes,
// naturally aligned.
func configAccessOK(off uint64, size int) bool {
	switch size {
	case 1, 2, 4:
		return off&uint64(size-1) == 0
	}
	return false
}

// half returns the 32-bit half sel (0 low, 1 high) of a 64-bit feature
// word; other selectors read as zero (no features beyond bit 63).
func half(f uint64, sel uint32) uint32 {
	if sel > 1 {
		return 0
	}
	return uint32(f >> (32 * sel))
}

// setHalf replaces the low or high 32 bits of x with w.
func setHalf(x uint64, high bool, w uint32) uint64 {
	if high {
		return x&0xffffffff | uint64(w)<<32
	}
	return x&^0xffffffff | uint64(w)
}
