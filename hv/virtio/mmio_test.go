package virtio

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// mmioRig is a block device behind the MMIO register file, driven through
// its registers only, as Linux's virtio_mmio.c does.
type mmioRig struct {
	t    *testing.T
	mem  *fakeMem
	mmio *MMIO
	irq  chan struct{}
}

func newMMIORig(t *testing.T) *mmioRig {
	t.Helper()
	b, err := OpenBlock(newImage(t), BlockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := &mmioRig{t: t, mem: newFakeMem(rigRAM), irq: make(chan struct{}, 1)}
	r.mmio = NewMMIO(b, r.mem, Options{}, func() {
		select {
		case r.irq <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() {
		r.w(mmioStatus, 0)
		b.Close()
		r.mem.checkGuards(t)
	})
	return r
}

func (r *mmioRig) r(off uint64) uint32    { return uint32(r.mmio.Read(off, 4)) }
func (r *mmioRig) w(off uint64, v uint32) { r.mmio.Write(off, 4, uint64(v)) }

// probe runs virtio_mmio.c's probe and virtio core's bring-up up to
// FEATURES_OK, accepting features; it returns the device features read.
func (r *mmioRig) probe(features uint64) uint64 {
	r.t.Helper()
	for _, c := range []struct {
		off  uint64
		want uint32
	}{{mmioMagicValue, MMIOMagic}, {mmioVersion, 2}, {mmioDeviceID, uint32(TypeBlock)}, {mmioVendorID, MMIOVendor}} {
		if got := r.r(c.off); got != c.want {
			r.t.Fatalf("register %#x = %#x, want %#x", c.off, got, c.want)
		}
	}
	r.w(mmioStatus, 0)
	r.w(mmioStatus, uint32(StatusAcknowledge))
	r.w(mmioStatus, uint32(StatusAcknowledge|StatusDriver))
	r.w(mmioDeviceFeaturesSel, 1)
	dev := uint64(r.r(mmioDeviceFeatures)) << 32
	r.w(mmioDeviceFeaturesSel, 0)
	dev |= uint64(r.r(mmioDeviceFeatures))
	r.w(mmioDriverFeaturesSel, 1)
	r.w(mmioDriverFeatures, uint32(features>>32))
	r.w(mmioDriverFeaturesSel, 0)
	r.w(mmioDriverFeatures, uint32(features))
	r.w(mmioStatus, uint32(StatusAcknowledge|StatusDriver|StatusFeaturesOK))
	if r.r(mmioStatus)&uint32(StatusFeaturesOK) == 0 {
		r.t.Fatalf("FEATURES_OK refused for %#x (device offers %#x)", features, dev)
	}
	return dev
}

// setupQueue programs queue 0 for drv as vm_setup_vq does.
func (r *mmioRig) setupQueue(q QueueState) {
	r.w(mmioQueueSel, 0)
	if r.r(mmioQueueReady) != 0 {
		r.t.Fatal("queue 0 ready before setup")
	}
	if max := r.r(mmioQueueNumMax); max < uint32(q.Size) {
		r.t.Fatalf("QueueNumMax %d", max)
	}
	r.w(mmioQueueNum, uint32(q.Size))
	r.w(mmioQueueDescLow, uint32(q.Desc))
	r.w(mmioQueueDescHigh, uint32(q.Desc>>32))
	r.w(mmioQueueDriverLow, uint32(q.Driver))
	r.w(mmioQueueDriverHigh, uint32(q.Driver>>32))
	r.w(mmioQueueDeviceLow, uint32(q.Device))
	r.w(mmioQueueDeviceHigh, uint32(q.Device>>32))
	r.w(mmioQueueReady, 1)
}

func (r *mmioRig) waitIRQ() {
	r.t.Helper()
	select {
	case <-r.irq:
	case <-time.After(deadline):
		r.t.Fatal("no interrupt")
	}
}

// TestMMIOProbe: the register sequence of Linux's virtio_mmio driver and
// virtio-blk: discovery, features, config, queue setup, a read request,
// its interrupt and acknowledgement, and reset.
func TestMMIOProbe(t *testing.T) {
	r := newMMIORig(t)
	feat := allRing | BlockFeatureFlush
	if dev := r.probe(feat); dev&feat != feat {
		t.Fatalf("device features %#x lack %#x", dev, feat)
	}
	// Capacity (le64 at config 0) as two 32-bit reads, and one byte.
	capacity := uint64(r.r(mmioConfig)) | uint64(r.r(mmioConfig+4))<<32
	if capacity != testSectors {
		t.Errorf("capacity %d, want %d", capacity, testSectors)
	}
	if b := r.mmio.Read(mmioConfig, 1); b != testSectors {
		t.Errorf("config byte 0 = %#x", b)
	}
	gen := r.r(mmioConfigGeneration)
	drv := newDriver(t, r.mem, 0x10000, 16, feat)
	r.setupQueue(drv.q)
	if r.r(mmioQueueReady) != 1 {
		t.Fatal("queue 0 not ready after setup")
	}
	r.w(mmioStatus, uint32(StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK))
	if st := r.r(mmioStatus); st != uint32(StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK) {
		t.Fatalf("status %#x", st)
	}

	q, _ := drv.add([][]byte{blkHeader(blockReqIn, 3)}, []uint32{SectorSize, 1})
	r.w(mmioQueueNotify, 0)
	r.waitIRQ()
	if is := r.r(mmioInterruptStatus); is != InterruptUsedBuffer {
		t.Fatalf("InterruptStatus %#x, want used buffer", is)
	}
	r.w(mmioInterruptACK, InterruptUsedBuffer)
	if is := r.r(mmioInterruptStatus); is != 0 {
		t.Errorf("InterruptStatus %#x after ACK", is)
	}
	head, n, ok := drv.used()
	if !ok || head != q.head || n != SectorSize+1 {
		t.Fatalf("used: head %d n %d ok %v", head, n, ok)
	}
	if got := drv.bytes(q.in[0]); !bytes.Equal(got, sector(3)) {
		t.Errorf("sector 3 read as % x...", got[:8])
	}
	if st := drv.bytes(q.in[1]); st[0] != BlockStatusOK {
		t.Errorf("request status %d", st[0])
	}
	if g := r.r(mmioConfigGeneration); g != gen {
		t.Errorf("config generation moved %d -> %d", gen, g)
	}

	// Reset: status, queue and interrupt status return to zero.
	r.w(mmioStatus, 0)
	for _, off := range []uint64{mmioStatus, mmioQueueReady, mmioInterruptStatus} {
		if v := r.r(off); v != 0 {
			t.Errorf("register %#x = %#x after reset", off, v)
		}
	}
}

// TestMMIOMalformed: register use the specification forbids never fails
// the hypervisor; reads answer all-ones, writes are ignored, and a bad
// queue layout breaks the device (DEVICE_NEEDS_RESET, a config-change
// interrupt).
func TestMMIOMalformed(t *testing.T) {
	const none = ^uint64(0)
	t.Run("access-widths", func(t *testing.T) {
		r := newMMIORig(t)
		cases := []struct {
			off  uint64
			size int
			want uint64
		}{
			{mmioMagicValue, 1, none},
			{mmioMagicValue, 2, none},
			{mmioMagicValue, 8, none},
			{mmioMagicValue + 1, 4, none},
			{mmioVersion + 2, 4, none},
			{mmioQueueNotify, 4, none},   // write-only
			{0x0b0, 4, none},             // reserved
			{0xffc, 4, none},             // past the config space
			{mmioConfig + 1, 2, none},    // unaligned config
			{mmioConfig + 2, 4, none},    // unaligned config
			{mmioConfig, 8, none},        // 64-bit config access
			{mmioConfig + 0x3c, 4, none}, // beyond the block config
			{mmioConfig, 4, testSectors},
			{mmioConfig, 2, testSectors},
		}
		for _, c := range cases {
			if got := r.mmio.Read(c.off, c.size); got != c.want {
				t.Errorf("read %#x/%d = %#x, want %#x", c.off, c.size, got, c.want)
			}
		}
		// Bad writes change nothing.
		r.mmio.Write(mmioStatus, 1, uint64(StatusAcknowledge))
		r.mmio.Write(mmioStatus+1, 4, uint64(StatusAcknowledge))
		r.mmio.Write(mmioStatus, 8, uint64(StatusAcknowledge))
		r.mmio.Write(mmioMagicValue, 4, 0)
		r.mmio.Write(mmioConfig+1, 2, 0xffff)
		if st := r.r(mmioStatus); st != 0 {
			t.Errorf("status %#x after refused writes", st)
		}
		if m := r.r(mmioMagicValue); m != MMIOMagic {
			t.Errorf("magic %#x after a write", m)
		}
	})
	t.Run("queue-out-of-phase", func(t *testing.T) {
		r := newMMIORig(t)
		r.w(mmioStatus, uint32(StatusAcknowledge|StatusDriver))
		// Before FEATURES_OK a queue cannot be set up.
		r.w(mmioQueueNum, 16)
		r.w(mmioQueueReady, 1)
		if r.r(mmioQueueReady) != 0 {
			t.Error("queue ready before FEATURES_OK")
		}
		// A queue that does not exist reads QueueNumMax 0 and ignores writes.
		r.w(mmioQueueSel, 7)
		if m := r.r(mmioQueueNumMax); m != 0 {
			t.Errorf("QueueNumMax of queue 7 = %d", m)
		}
		r.w(mmioQueueReady, 1)
		if r.r(mmioQueueReady) != 0 {
			t.Error("queue 7 ready")
		}
		r.w(mmioQueueNotify, 7)
		r.w(mmioQueueNotify, 0xffffffff)
		r.w(mmioDriverFeaturesSel, 9)
		r.w(mmioDriverFeatures, 0xffffffff)
		if f := r.mmio.Device().DriverFeatures(); f != 0 {
			t.Errorf("driver features %#x after a write to selector 9", f)
		}
		r.w(mmioDeviceFeaturesSel, 2)
		if f := r.r(mmioDeviceFeatures); f != 0 {
			t.Errorf("device features word 2 = %#x", f)
		}
	})
	layouts := []struct {
		name string
		q    QueueState
	}{
		{"desc-outside-ram", QueueState{Size: 16, Desc: 1 << 40, Driver: 0x11000, Device: 0x12000}},
		{"used-outside-ram", QueueState{Size: 16, Desc: 0x10000, Driver: 0x11000, Device: rigRAM - 8}},
		{"desc-misaligned", QueueState{Size: 16, Desc: 0x10008, Driver: 0x11000, Device: 0x12000}},
		{"size-not-power-of-two", QueueState{Size: 12, Desc: 0x10000, Driver: 0x11000, Device: 0x12000}},
		{"size-zero", QueueState{Size: 0, Desc: 0x10000, Driver: 0x11000, Device: 0x12000}},
		{"size-over-max", QueueState{Size: 1024, Desc: 0x10000, Driver: 0x11000, Device: 0x12000}},
		{"address-wraps", QueueState{Size: 16, Desc: 0xfffffffffffffff0, Driver: 0x11000, Device: 0x12000}},
	}
	for _, c := range layouts {
		t.Run(c.name, func(t *testing.T) {
			r := newMMIORig(t)
			r.probe(allRing)
			r.w(mmioQueueSel, 0)
			r.w(mmioQueueNum, uint32(c.q.Size))
			r.w(mmioQueueDescLow, uint32(c.q.Desc))
			r.w(mmioQueueDescHigh, uint32(c.q.Desc>>32))
			r.w(mmioQueueDriverLow, uint32(c.q.Driver))
			r.w(mmioQueueDriverHigh, uint32(c.q.Driver>>32))
			r.w(mmioQueueDeviceLow, uint32(c.q.Device))
			r.w(mmioQueueDeviceHigh, uint32(c.q.Device>>32))
			r.w(mmioQueueReady, 1)
			r.waitIRQ()
			if st := r.r(mmioStatus); st&uint32(StatusDeviceNeedsReset) == 0 {
				t.Fatalf("status %#x, want DEVICE_NEEDS_RESET", st)
			}
			if is := r.r(mmioInterruptStatus); is&InterruptConfigChange == 0 {
				t.Errorf("InterruptStatus %#x, want config change", is)
			}
			var re *RingError
			if err := r.mmio.Device().Err(); !errors.As(err, &re) {
				t.Errorf("Err() = %v, want a RingError", err)
			}
			// DRIVER_OK is refused on a broken device; a reset recovers it.
			r.w(mmioStatus, uint32(StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK))
			if r.r(mmioStatus)&uint32(StatusDriverOK) != 0 {
				t.Error("DRIVER_OK accepted on a broken device")
			}
			r.w(mmioStatus, 0)
			if st, is := r.r(mmioStatus), r.r(mmioInterruptStatus); st != 0 || is != 0 {
				t.Errorf("after reset: status %#x interrupt status %#x", st, is)
			}
			r.probe(allRing)
		})
	}
}
