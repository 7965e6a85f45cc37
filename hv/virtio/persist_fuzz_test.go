package virtio

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fuzzQueueBytes is one queue's encoding in a FuzzDeviceRestore input:
// size, flags (ready, held, notified), desc, driver, device, and the four
// positions.
const fuzzQueueBytes = 2 + 1 + 3*8 + 4*2

// restoreInput decodes a FuzzDeviceRestore input into a net device's
// state: status, driver features, config generation, two queues, MAC
// and link.
func restoreInput(data []byte) DeviceState {
	var b [1 + 8 + 4 + 2*fuzzQueueBytes + 7]byte
	copy(b[:], data)
	le := binary.LittleEndian
	st := DeviceState{Type: TypeNet, Status: b[0], DriverFeatures: le.Uint64(b[1:]), ConfigGeneration: le.Uint32(b[9:])}
	p := b[13:]
	for range 2 {
		fl := p[2]
		q := QueueState{Size: le.Uint16(p), Ready: fl&1 != 0, Held: fl&2 != 0, Notified: fl&4 != 0,
			Desc: le.Uint64(p[3:]), Driver: le.Uint64(p[11:]), Device: le.Uint64(p[19:]),
			NextAvail: le.Uint16(p[27:]), AvailIdx: le.Uint16(p[29:]), NextUsed: le.Uint16(p[31:]), SignalledUsed: le.Uint16(p[33:])}
		st.Queues = append(st.Queues, q)
		p = p[fuzzQueueBytes:]
	}
	copy(st.Net.MAC[:], p[:6])
	st.Net.LinkUp = p[6]&1 != 0
	if p[6]&2 != 0 {
		st.Err = "broken"
	}
	return st
}

// encodeRestoreInput is restoreInput's inverse, for seeds.
func encodeRestoreInput(st DeviceState) []byte {
	le := binary.LittleEndian
	b := []byte{st.Status}
	b = le.AppendUint64(b, st.DriverFeatures)
	b = le.AppendUint32(b, st.ConfigGeneration)
	for _, q := range st.Queues {
		b = le.AppendUint16(b, q.Size)
		var fl byte
		for i, f := range []bool{q.Ready, q.Held, q.Notified} {
			if f {
				fl |= 1 << i
			}
		}
		b = append(b, fl)
		for _, a := range []uint64{q.Desc, q.Driver, q.Device} {
			b = le.AppendUint64(b, a)
		}
		for _, v := range []uint16{q.NextAvail, q.AvailIdx, q.NextUsed, q.SignalledUsed} {
			b = le.AppendUint16(b, v)
		}
	}
	b = append(b, st.Net.MAC[:]...)
	var fl byte
	if st.Net.LinkUp {
		fl |= 1
	}
	if st.Err != "" {
		fl |= 2
	}
	return append(b, fl)
}

// FuzzDeviceRestore restores hostile states into a quiesced net device:
// Restore never panics; a state it accepts saves back unchanged, and the
// device then runs from it (serving, or breaking on, whatever the rings
// hold) without writing outside RAM; a state it refuses leaves the device
// as it was.
func FuzzDeviceRestore(f *testing.F) {
	// A running device's state, with a frame sent and one received.
	r := newNetRig(f, nil, allRing)
	r.send(append(netHdr(0, 0), ethFrame(60, 1)...))
	r.dev.Quiesce()
	good, err := r.dev.Save()
	if err != nil {
		f.Fatal(err)
	}
	r.dev.SetStatus(0)
	f.Add(encodeRestoreInput(good))
	f.Add(encodeRestoreInput(DeviceState{Type: TypeNet, Queues: make([]QueueState, 2), Net: NetState{MAC: testMAC, LinkUp: true}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newFakeMem(rigRAM)
		copy(m.ram, r.mem.ram) // the rings of the seed's device
		dev := NewDevice(NewNet(&fakePort{mac: testMAC}), m, newSignals(), Options{})
		defer dev.SetStatus(0)
		dev.Quiesce()
		before, err := dev.Save()
		if err != nil {
			t.Fatal(err)
		}
		st := restoreInput(data)
		if err := dev.Restore(st); err != nil {
			after, _ := dev.Save()
			if d := cmp.Diff(before, after); d != "" {
				t.Fatalf("a refused Restore (%v) changed the device:\n%s", err, d)
			}
			return
		}
		got, err := dev.Save()
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(st, got); d != "" {
			t.Fatalf("an accepted state saves back differently:\n%s", d)
		}
		dev.Unquiesce()
		dev.Notify(netRxQueue)
		dev.Notify(netTxQueue)
		dev.Quiesce()
		m.checkGuards(t)
	})
}

// TestFuzzRestoreSeeds: the seed of a running device is accepted.
func TestFuzzRestoreSeeds(t *testing.T) {
	r := newNetRig(t, nil, allRing)
	r.send(append(netHdr(0, 0), ethFrame(60, 1)...))
	r.dev.Quiesce()
	good, err := r.dev.Save()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodeRestoreInput(restoreInput(encodeRestoreInput(good))), encodeRestoreInput(good)) {
		t.Fatalf("the fuzz encoding does not round-trip")
	}
	dev := NewDevice(NewNet(&fakePort{mac: testMAC}), r.mem.clone(), newSignals(), Options{})
	defer dev.SetStatus(0)
	dev.Quiesce()
	if err := dev.Restore(restoreInput(encodeRestoreInput(good))); err != nil {
		t.Fatalf("seed refused: %v", err)
	}
}
