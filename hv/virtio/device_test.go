package virtio

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	ack = StatusAcknowledge
	drv = StatusDriver
	fok = StatusFeaturesOK
	dok = StatusDriverOK
)

func TestStatusTransitions(t *testing.T) {
	tests := []struct {
		name     string
		features uint64 // written after DRIVER is set
		writes   []uint8
		want     uint8
	}{
		{"acknowledge", 0, []uint8{ack}, ack},
		{"driver before acknowledge", 0, []uint8{drv}, 0},
		{"all at once, features still zero", FeatureVersion1, []uint8{ack | drv | fok | dok}, ack | drv},
		{"in order", FeatureVersion1, []uint8{ack, ack | drv, ack | drv | fok, ack | drv | fok | dok}, ack | drv | fok | dok},
		{"acknowledge and driver together", FeatureVersion1, []uint8{ack | drv}, ack | drv},
		{"features without VERSION_1", FeatureIndirectDesc, []uint8{ack, ack | drv, ack | drv | fok}, ack | drv},
		{"features not offered", FeatureVersion1 | 1<<23, []uint8{ack, ack | drv, ack | drv | fok}, ack | drv},
		{"features refused with DRIVER_OK in the same write", 1 << 23, []uint8{ack, ack | drv, ack | drv | fok | dok}, ack | drv},
		{"driver ok without features ok", FeatureVersion1, []uint8{ack, ack | drv, ack | drv | dok}, ack | drv},
		{"clearing a bit", FeatureVersion1, []uint8{ack, ack | drv, ack}, ack | drv},
		{"driver cannot set needs-reset", FeatureVersion1, []uint8{ack, ack | drv, ack | drv | StatusDeviceNeedsReset}, ack | drv},
		{"failed", FeatureVersion1, []uint8{ack, ack | drv, ack | drv | StatusFailed}, ack | drv | StatusFailed},
		{"writes after failed", FeatureVersion1, []uint8{ack, ack | drv | StatusFailed, ack | drv | StatusFailed | fok}, ack | drv | StatusFailed},
		{"reset", FeatureVersion1, []uint8{ack, ack | drv, ack | drv | fok, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDevice(&echo{max: 4}, newFakeMem(1<<16), newSignals(), Options{})
			defer d.SetStatus(0)
			for _, s := range tt.writes {
				d.SetStatus(s)
				if d.Status()&drv != 0 && d.Status()&fok == 0 {
					d.SetDriverFeatures(tt.features)
				}
			}
			if got := d.Status(); got != tt.want {
				t.Fatalf("status %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestFeatures(t *testing.T) {
	d := NewDevice(&Block{ro: true}, newFakeMem(1<<16), newSignals(), Options{})
	want := BlockFeatureSegMax | BlockFeatureBlkSize | BlockFeatureFlush | BlockFeatureRO | FeatureIndirectDesc | FeatureEventIdx | FeatureVersion1
	if got := d.DeviceFeatures(); got != want {
		t.Fatalf("device features %#x, want %#x", got, want)
	}
	d.SetDriverFeatures(FeatureVersion1) // before DRIVER: ignored
	if got := d.DriverFeatures(); got != 0 {
		t.Fatalf("driver features %#x written before DRIVER", got)
	}
	d.SetStatus(ack | drv)
	d.SetDriverFeatures(FeatureVersion1 | BlockFeatureFlush)
	d.SetStatus(ack | drv | fok)
	d.SetDriverFeatures(FeatureVersion1) // after FEATURES_OK: ignored
	if got := d.DriverFeatures(); got != FeatureVersion1|BlockFeatureFlush {
		t.Fatalf("driver features %#x after FEATURES_OK, want %#x", got, FeatureVersion1|BlockFeatureFlush)
	}
}

func TestQueueSetup(t *testing.T) {
	good := QueueState{Size: 8, Ready: true, Desc: 0x1000, Driver: 0x2000, Device: 0x3000}
	tests := []struct {
		name   string
		status uint8
		q      int
		s      QueueState
		err    error // nil: a *RingError if broken, else success
		broken bool
	}{
		{"ok", ack | drv | fok, 0, good, nil, false},
		{"not ready, anything goes", ack | drv | fok, 0, QueueState{Size: 3, Desc: 1}, nil, false},
		{"no such queue", ack | drv | fok, 1, good, ErrNoQueue, false},
		{"negative queue", ack | drv | fok, -1, good, ErrNoQueue, false},
		{"before FEATURES_OK", ack | drv, 0, good, ErrQueuePhase, false},
		{"after DRIVER_OK", ack | drv | fok | dok, 0, good, ErrQueuePhase, false},
		{"size not a power of two", ack | drv | fok, 0, QueueState{Size: 6, Ready: true, Desc: 0x1000, Driver: 0x2000, Device: 0x3000}, nil, true},
		{"size zero", ack | drv | fok, 0, QueueState{Size: 0, Ready: true, Desc: 0x1000, Driver: 0x2000, Device: 0x3000}, nil, true},
		{"size above the maximum", ack | drv | fok, 0, QueueState{Size: 16, Ready: true, Desc: 0x1000, Driver: 0x2000, Device: 0x3000}, nil, true},
		{"misaligned descriptor table", ack | drv | fok, 0, QueueState{Size: 8, Ready: true, Desc: 0x1008, Driver: 0x2000, Device: 0x3000}, nil, true},
		{"misaligned used ring", ack | drv | fok, 0, QueueState{Size: 8, Ready: true, Desc: 0x1000, Driver: 0x2000, Device: 0x3002}, nil, true},
		{"used ring past RAM", ack | drv | fok, 0, QueueState{Size: 8, Ready: true, Desc: 0x1000, Driver: 0x2000, Device: 0xfff0}, nil, true},
		{"descriptor table wraps", ack | drv | fok, 0, QueueState{Size: 8, Ready: true, Desc: ^uint64(0) - 15, Driver: 0x2000, Device: 0x3000}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := newSignals()
			d := NewDevice(&echo{max: 8}, newFakeMem(1<<16), sig, Options{})
			defer d.SetStatus(0)
			d.SetStatus(ack)
			d.SetStatus(ack | drv)
			d.SetDriverFeatures(allRing)
			for _, s := range []uint8{ack | drv | fok, ack | drv | fok | dok} {
				if s&^tt.status == 0 {
					d.SetStatus(s)
				}
			}
			err := d.SetQueue(tt.q, tt.s)
			var re *RingError
			switch {
			case tt.broken:
				if !errors.As(err, &re) || d.Status()&StatusDeviceNeedsReset == 0 || len(sig.config) != 1 {
					t.Fatalf("err %v, status %#x, %d config interrupts: want a RingError and DEVICE_NEEDS_RESET", err, d.Status(), len(sig.config))
				}
			case err != tt.err:
				t.Fatalf("err %v, want %v", err, tt.err)
			case err == nil:
				got, _ := d.Queue(tt.q)
				if diff := cmp.Diff(tt.s, got); diff != "" {
					t.Fatalf("queue (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestReadyQueueIsFixed(t *testing.T) {
	d := NewDevice(&echo{max: 8}, newFakeMem(1<<16), newSignals(), Options{})
	defer d.SetStatus(0)
	d.SetStatus(ack | drv)
	d.SetDriverFeatures(FeatureVersion1)
	d.SetStatus(ack | drv | fok)
	q := QueueState{Size: 8, Ready: true, Desc: 0x1000, Driver: 0x2000, Device: 0x3000}
	if err := d.SetQueue(0, q); err != nil {
		t.Fatal(err)
	}
	moved := q
	moved.Desc = 0x4000
	if err := d.SetQueue(0, moved); err != ErrQueueReady {
		t.Fatalf("moving a ready queue: %v, want ErrQueueReady", err)
	}
	moved.Ready = false
	if err := d.SetQueue(0, moved); err != nil {
		t.Fatalf("disabling a queue: %v", err)
	}
}

func TestConfigBounds(t *testing.T) {
	b := &Block{capacity: 0x1122334455}
	d := NewDevice(b, newFakeMem(1<<16), newSignals(), Options{})
	tests := []struct {
		off  uint64
		n    int
		ok   bool
		want []byte
	}{
		{0, 8, true, []byte{0x55, 0x44, 0x33, 0x22, 0x11, 0, 0, 0}},
		{12, 4, true, []byte{254, 0, 0, 0}},
		{20, 4, true, []byte{0, 2, 0, 0}},
		{23, 1, true, []byte{0}},
		{24, 0, true, []byte{}},
		{23, 2, false, nil},
		{24, 1, false, nil},
		{^uint64(0), 2, false, nil},
	}
	for _, tt := range tests {
		p := make([]byte, tt.n)
		ok := d.ReadConfig(tt.off, p)
		if ok != tt.ok || ok && !cmp.Equal(p, tt.want) {
			t.Errorf("ReadConfig(%d, %d) = %x, %v; want %x, %v", tt.off, tt.n, p, ok, tt.want, tt.ok)
		}
		if ok := d.WriteConfig(tt.off, p); ok != tt.ok {
			t.Errorf("WriteConfig(%d, %d) = %v, want %v", tt.off, tt.n, ok, tt.ok)
		}
	}
}

func TestResetRestoresInitialState(t *testing.T) {
	r := newRig(t, &echo{max: 8, fill: 1}, allRing, 8, Options{})
	r.do(nil, []uint32{4})
	badRings[0].set(r.mem, r.drv.q) // a loop: the device breaks
	r.mem.put16(r.drv.q.Driver+2, r.drv.availIdx+1)
	r.dev.Notify(0)
	r.broken()
	r.dev.SetStatus(0)
	want := NewDevice(&echo{max: 8}, r.mem, r.sig, Options{})
	if diff := cmp.Diff(want.st, r.dev.st); diff != "" {
		t.Fatalf("state after reset (-want +got):\n%s", diff)
	}
	if r.dev.Err() != nil {
		t.Fatalf("error %v after reset", r.dev.Err())
	}
	r.bringUp(allRing, 8)
	if n, _ := r.do(nil, []uint32{3}); n != 3 {
		t.Fatalf("after reset: used len %d, want 3", n)
	}
}

func TestNotifyIgnored(t *testing.T) {
	sig := newSignals()
	d := NewDevice(&echo{max: 8}, newFakeMem(1<<16), sig, Options{})
	for _, q := range []int{-1, 0, 1, 1 << 30} {
		d.Notify(q) // not running
	}
	r := newRig(t, &echo{max: 8}, allRing, 8, Options{})
	for _, q := range []int{-1, 1, 1 << 30} {
		r.dev.Notify(q)
	}
	if n, _ := r.do(nil, []uint32{1}); n != 1 {
		t.Fatalf("used len %d, want 1", n)
	}
	if got := r.dev.Stats(); got.Requests != 1 || got.Broken != 0 {
		t.Fatalf("stats %+v, want 1 request", got)
	}
}

func TestResetDuringThrottle(t *testing.T) {
	r := newRig(t, &echo{max: 8}, allRing, 8, Options{Limits: Limits{OpsPerSec: 1, OpsBurst: 1}})
	r.do(nil, []uint32{1}) // takes the only token
	r.drv.add(nil, []uint32{1})
	r.dev.Notify(0)
	start := time.Now()
	for r.dev.Stats().Throttled == 0 {
		if time.Since(start) > deadline {
			t.Fatalf("second request never throttled")
		}
		time.Sleep(time.Millisecond)
	}
	r.dev.SetStatus(0) // must not wait out the second's refill
	if r.dev.Status() != 0 {
		t.Fatalf("status %#x after reset", r.dev.Status())
	}
}
