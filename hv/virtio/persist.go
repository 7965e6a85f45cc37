package virtio

import (
	"errors"
	"fmt"
	"slices"
)

// Save and restore of a device and its transports, while the device is
// quiesced (Device.Quiesce). The states are plain values (docs/snapshot.md
// is assembled from their doc comments). Host resources are not state: the
// caller builds the restored device over a backend it opened itself (the
// same image, a port with the same address), and Restore checks that the
// backend matches what was saved. The rate limiter is not saved either:
// its limits are the operator's and its buckets count host time; a
// device keeps the buckets it has through Restore (a new device's are
// full).

// ErrNotQuiesced is returned by Save and Restore of a device that is not
// quiesced.
var ErrNotQuiesced = errors.New("virtio: the device must be quiesced to save or restore it")

// DeviceState is a device's whole state (Device.Save).
type DeviceState struct {
	// Type is the device ID; Restore refuses a backend of another type.
	Type DeviceType
	// Status is the device status byte (section 2.1): the driver's bits
	// in the order the device accepts them, DEVICE_NEEDS_RESET if the
	// device broke.
	Status uint8
	// DriverFeatures are the feature bits the driver wrote; once
	// FEATURES_OK is set, a subset of the device's that includes
	// VERSION_1.
	DriverFeatures uint64
	// ConfigGeneration is the config-space generation (0: no backend
	// changes its config space yet).
	ConfigGeneration uint32
	// Queues are the device's queues, one per queue of the backend: their
	// configuration and the device's positions in their rings.
	Queues []QueueState
	// Err is the violation that broke the device, set exactly when Status
	// has DEVICE_NEEDS_RESET.
	Err string
	// Block is a block device's state; zero for other types.
	Block BlockState
	// Net is a net device's state; zero for other types.
	Net NetState
}

// BlockState is what a block device's guest has seen of its disk. The
// image itself is the caller's (a path, a delta): the restored device
// must be opened over an image of the same capacity with the same options.
type BlockState struct {
	// Capacity is the disk's size in 512-byte sectors.
	Capacity uint64
	// ReadOnly says VIRTIO_BLK_F_RO is offered and writes are refused.
	ReadOnly bool
	// ID is the serial GET_ID returns, NUL-padded.
	ID [blockIDSize]byte
}

// NetState is what a net device's guest has seen of its NIC. Frames
// waiting at the switch port for the guest are not state: Save drops them
// (Net.SaveDrops counts them), as a real network may drop frames at any
// time, and the protocols above retransmit.
type NetState struct {
	// MAC is the address in the config space; the restored device's port
	// must have the same.
	MAC [6]byte
	// LinkUp is the config space's VIRTIO_NET_S_LINK_UP status bit (the
	// device always reports the link up).
	LinkUp bool
}

// persistent is implemented by the backends whose state Save keeps.
type persistent interface {
	// saveState fills in the backend's part of st. It runs while the
	// device is quiesced.
	saveState(st *DeviceState)
	// checkState refuses a state whose backend part this backend could
	// not have produced, or that does not match it.
	checkState(st *DeviceState) error
}

// Save returns the device's state. Precondition: the device is quiesced
// (ErrNotQuiesced otherwise); the state is then the one Unquiesce would
// go on from. A net device drops the frames waiting at its port (NetState).
func (d *Device) Save() (DeviceState, error) {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	if !d.quiet {
		return DeviceState{}, ErrNotQuiesced
	}
	p, ok := d.backend.(persistent)
	if !ok {
		return DeviceState{}, fmt.Errorf("virtio: a device of type %d over %T cannot be saved", d.Type(), d.backend)
	}
	d.mu.Lock()
	st := DeviceState{
		Type:             d.Type(),
		Status:           d.st.Status,
		DriverFeatures:   d.st.DriverFeatures,
		ConfigGeneration: d.st.ConfigGeneration,
		Queues:           slices.Clone(d.st.Queues),
	}
	if d.lastErr != nil {
		st.Err = d.lastErr.Error()
		if st.Err == "" {
			st.Err = "virtio: broken"
		}
	}
	d.mu.Unlock()
	if st.Status&StatusDriverOK != 0 {
		for i := range st.Queues {
			st.Queues[i].Notified = st.Queues[i].Ready && d.notified[i].Load()
		}
	}
	p.saveState(&st)
	return st, nil
}

// Restore puts back a state from Save, or refuses it, changing nothing,
// when a field holds what this device could not have produced (bad status
// bit combinations, features it does not offer, queue sizes or alignments
// it refuses, rings that are not RAM through its Mem, positions no
// sequence of requests leads to) or that does not match its backend.
// Precondition: the device is quiesced (ErrNotQuiesced otherwise); it
// goes on from the state at Unquiesce, serving the queues that were
// notified and the requests put back at Quiesce.
func (d *Device) Restore(st DeviceState) error {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	if !d.quiet {
		return ErrNotQuiesced
	}
	p, ok := d.backend.(persistent)
	if !ok {
		return fmt.Errorf("virtio: a device of type %d over %T cannot be restored", d.Type(), d.backend)
	}
	if err := d.check(&st); err != nil {
		return fmt.Errorf("virtio: restore: %w", err)
	}
	if err := p.checkState(&st); err != nil {
		return fmt.Errorf("virtio: restore: %w", err)
	}
	d.backend.Reset()
	d.mu.Lock()
	d.st = State{
		Status:           st.Status,
		DriverFeatures:   st.DriverFeatures,
		ConfigGeneration: st.ConfigGeneration,
		Queues:           slices.Clone(st.Queues),
	}
	for i := range d.st.Queues {
		d.st.Queues[i].Notified = false // kept in d.notified
		d.notified[i].Store(st.Queues[i].Notified)
	}
	d.lastErr = nil
	if st.Err != "" {
		d.lastErr = errors.New(st.Err)
	}
	if st.Status&StatusDriverOK != 0 {
		d.backend.Activate(st.DriverFeatures)
	}
	d.mu.Unlock()
	return nil
}

// statusBits are the status bits a device can hold.
const statusBits = StatusAcknowledge | StatusDriver | StatusFeaturesOK | StatusDriverOK | StatusDeviceNeedsReset | StatusFailed

// check refuses a state this device could not have produced.
func (d *Device) check(st *DeviceState) error {
	s := st.Status
	switch {
	case st.Type != d.Type():
		return fmt.Errorf("device type %d, but the backend is of type %d", st.Type, d.Type())
	case s&^statusBits != 0:
		return fmt.Errorf("status %#x has bits no device sets", s)
	case !statusOrderOK(0, s&^(StatusDeviceNeedsReset|StatusFailed)):
		return fmt.Errorf("status %#x has a bit without its predecessor (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK)", s)
	case s&StatusDeviceNeedsReset != 0 && s&StatusFeaturesOK == 0:
		return fmt.Errorf("status %#x: a device breaks only once its queues can be set up (FEATURES_OK)", s)
	case (s&StatusDeviceNeedsReset != 0) != (st.Err != ""):
		return fmt.Errorf("status %#x with error %q: DEVICE_NEEDS_RESET goes with the error that set it", s, st.Err)
	case s&StatusDriver == 0 && st.DriverFeatures != 0:
		return fmt.Errorf("driver features %#x without DRIVER in status %#x", st.DriverFeatures, s)
	case s&StatusFeaturesOK != 0 && st.DriverFeatures&^d.DeviceFeatures() != 0:
		return fmt.Errorf("driver features %#x beyond the device's %#x with FEATURES_OK", st.DriverFeatures, d.DeviceFeatures())
	case s&StatusFeaturesOK != 0 && st.DriverFeatures&FeatureVersion1 == 0:
		return fmt.Errorf("driver features %#x without VERSION_1 with FEATURES_OK", st.DriverFeatures)
	case st.ConfigGeneration != 0:
		return fmt.Errorf("config generation %d: the device never changes its config space", st.ConfigGeneration)
	case len(st.Queues) != len(d.queueMax):
		return fmt.Errorf("%d queues, the device has %d", len(st.Queues), len(d.queueMax))
	}
	for i := range st.Queues {
		if err := d.checkQueue(i, &st.Queues[i], st); err != nil {
			return fmt.Errorf("queue %d: %w", i, err)
		}
	}
	return nil
}

// checkQueue refuses a queue state this device could not have produced.
func (d *Device) checkQueue(i int, q *QueueState, st *DeviceState) error {
	started := st.Status&StatusDriverOK != 0 // a device goroutine may have served the queue
	broken := st.Status&StatusDeviceNeedsReset != 0
	idle := q.NextAvail == 0 && q.AvailIdx == 0 && q.NextUsed == 0 && q.SignalledUsed == 0 && !q.Held && !q.Notified
	if !q.Ready || !started {
		if !idle {
			return errors.New("positions, held interrupt or notification on a queue the device never served")
		}
		if !q.Ready {
			return nil // the driver may write any configuration before it enables the queue
		}
	}
	if st.Status&StatusFeaturesOK == 0 {
		return errors.New("ready before FEATURES_OK")
	}
	why := q.checkLayout(d.queueMax[i], d.mem, st.DriverFeatures&FeatureEventIdx != 0)
	if broken {
		// Rings that stopped being RAM break a device at DRIVER_OK
		// and stay in its state; it serves nothing until reset.
		why = q.checkShape(d.queueMax[i])
	}
	if why != "" {
		return errors.New(why)
	}
	switch {
	case q.AvailIdx-q.NextAvail > q.Size:
		return fmt.Errorf("avail idx %d read is more than the size %d ahead of entry %d", q.AvailIdx, q.Size, q.NextAvail)
	case !broken && q.NextUsed != q.NextAvail:
		return fmt.Errorf("used entry %d, available entry %d: a working quiesced device has completed every request it took", q.NextUsed, q.NextAvail)
	case broken && q.NextAvail-q.NextUsed > 1:
		return fmt.Errorf("used entry %d, available entry %d: at most the request that broke the device is not completed", q.NextUsed, q.NextAvail)
	case !broken && !q.Held && q.SignalledUsed != q.NextUsed:
		return fmt.Errorf("interrupt decided at used entry %d, not at %d, and none held", q.SignalledUsed, q.NextUsed)
	case q.Held && (d.holdoff == nil || d.holdoff.Holdoff(i) <= 0):
		return errors.New("an interrupt held on a queue without a holdoff")
	}
	return nil
}

// onlyBackend refuses backend parts of st other than the one a backend of
// type t fills in.
func onlyBackend(st *DeviceState, t DeviceType) error {
	if t != TypeBlock && st.Block != (BlockState{}) {
		return errors.New("block state for a device that is not a block device")
	}
	if t != TypeNet && st.Net != (NetState{}) {
		return errors.New("net state for a device that is not a net device")
	}
	return nil
}

func (b *Block) saveState(st *DeviceState) {
	st.Block = BlockState{Capacity: b.capacity, ReadOnly: b.ro, ID: b.id}
}

func (b *Block) checkState(st *DeviceState) error {
	if err := onlyBackend(st, TypeBlock); err != nil {
		return err
	}
	want := BlockState{Capacity: b.capacity, ReadOnly: b.ro, ID: b.id}
	switch {
	case st.Block.Capacity != want.Capacity:
		return fmt.Errorf("block: capacity %d sectors, the image has %d: restore over the same image", st.Block.Capacity, want.Capacity)
	case st.Block.ReadOnly != want.ReadOnly:
		return fmt.Errorf("block: read-only %v, the disk is opened with read-only %v", st.Block.ReadOnly, want.ReadOnly)
	case st.Block.ID != want.ID:
		return fmt.Errorf("block: serial %q, the disk has %q", st.Block.ID, want.ID)
	}
	return nil
}

func (Rng) saveState(*DeviceState) {}

func (Rng) checkState(st *DeviceState) error { return onlyBackend(st, TypeRng) }

// saveState records the address and link status, and drops the frames
// waiting at the port (NetState).
func (n *Net) saveState(st *DeviceState) {
	st.Net = NetState{MAC: n.mac, LinkUp: true}
	for {
		if _, ok := n.port.Receive(n.rx[netHdrSize:]); !ok {
			break
		}
		n.saveDrops.Add(1)
	}
}

func (n *Net) checkState(st *DeviceState) error {
	if err := onlyBackend(st, TypeNet); err != nil {
		return err
	}
	switch {
	case st.Net.MAC != n.mac:
		return fmt.Errorf("net: MAC % x, the port has % x: restore onto a port with the same address", st.Net.MAC, n.mac)
	case !st.Net.LinkUp:
		return errors.New("net: link down, which the device never reports")
	}
	return nil
}

// SaveDrops is the number of frames waiting at the port that Save
// dropped.
func (n *Net) SaveDrops() uint64 { return n.saveDrops.Load() }

// MMIOState is a virtio-mmio device's state (MMIO.Save): the device and
// the transport's registers.
type MMIOState struct {
	// Device is the device behind the window.
	Device DeviceState
	// DeviceFeaturesSel, DriverFeaturesSel and QueueSel are the selector
	// registers as the driver last wrote them (any value).
	DeviceFeaturesSel, DriverFeaturesSel, QueueSel uint32
	// InterruptStatus is the InterruptStatus register: used-buffer (1)
	// and config-change (2) bits not yet acknowledged.
	InterruptStatus uint32
}

// interruptBits are the bits InterruptStatus and the hypercall
// transport's pending interrupts can hold.
const interruptBits = InterruptUsedBuffer | InterruptConfigChange

// Save returns the transport's and the device's state. Precondition: the
// device is quiesced, and no register access runs (the vCPUs are
// stopped).
func (t *MMIO) Save() (MMIOState, error) {
	ds, err := t.dev.Save()
	if err != nil {
		return MMIOState{}, err
	}
	return MMIOState{
		Device:            ds,
		DeviceFeaturesSel: t.devFeatSel,
		DriverFeaturesSel: t.drvFeatSel,
		QueueSel:          t.queueSel,
		InterruptStatus:   t.intStatus.Load(),
	}, nil
}

// Restore puts back a state from Save (Device.Restore's checks, and
// interrupt bits the transport has), or refuses it, changing nothing.
// It does not call the notify function: the caller restores the
// interrupt line with the interrupt controller.
func (t *MMIO) Restore(st MMIOState) error {
	if st.InterruptStatus&^interruptBits != 0 {
		return fmt.Errorf("virtio-mmio: restore: interrupt status %#x has bits the transport never sets", st.InterruptStatus)
	}
	if err := t.dev.Restore(st.Device); err != nil {
		return err
	}
	t.devFeatSel, t.drvFeatSel, t.queueSel = st.DeviceFeaturesSel, st.DriverFeaturesSel, st.QueueSel
	t.intStatus.Store(st.InterruptStatus)
	return nil
}

// HcallState is a hypercall-transport device's state (Hcall.Save).
type HcallState struct {
	// Device is the device in the slot.
	Device DeviceState
	// Pending are the interrupt bits (used buffer 1, config change 2) not
	// yet taken by the vCPU that raises the event channels.
	Pending uint32
}

// Save returns the transport's and the device's state. Precondition: the
// device is quiesced and no virtio_* call runs on it.
func (t *Hcall) Save() (HcallState, error) {
	ds, err := t.dev.Save()
	if err != nil {
		return HcallState{}, err
	}
	return HcallState{Device: ds, Pending: t.pending.Load()}, nil
}

// Restore puts back a state from Save, or refuses it, changing nothing.
// It does not call the notify function: the caller polls the pending bits
// when the VM runs again.
func (t *Hcall) Restore(st HcallState) error {
	if st.Pending&^interruptBits != 0 {
		return fmt.Errorf("virtio hypercall transport: restore: pending interrupts %#x have bits the transport never sets", st.Pending)
	}
	if err := t.dev.Restore(st.Device); err != nil {
		return err
	}
	t.pending.Store(st.Pending)
	return nil
}
