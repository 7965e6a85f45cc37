package virtio

import "testing"

// resubmit makes the chain at head available again (the driver reusing a
// request it built once), so that a benchmark's driver side allocates
// nothing.
func (d *driver) resubmit(head uint16) {
	d.mem.put16(d.q.Driver+4+2*uint64(d.availIdx%d.q.Size), head)
	d.availIdx++
	d.mem.put16(d.q.Driver+2, d.availIdx)
}

// benchRequest serves one prepared request per iteration on the calling
// goroutine: avail ring, chain walk, backend, used ring, interrupt
// decision.
func benchRequest(b *testing.B, be Backend, features uint64, out [][]byte, in []uint32) {
	s := newSyncQueue(b, be, features, 16, 0)
	be.Activate(features)
	r, _ := s.drv.add(out, in)
	if _, err := s.w.serve(s.q); err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, o := range out {
		bytes += int64(len(o))
	}
	for _, n := range in {
		bytes += int64(n)
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.drv.resubmit(r.head)
		if _, err := s.w.serve(s.q); err != nil {
			b.Fatal(err)
		}
		if len(s.sig.used) > 0 {
			<-s.sig.used
		}
	}
}

func benchBlock(b *testing.B, typ uint32, features uint64) {
	blk, err := OpenBlock(newImage(b), BlockOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer blk.Close()
	out, in := [][]byte{blkHeader(typ, 8)}, []uint32{1}
	switch typ {
	case blockReqIn:
		in = []uint32{4096, 1}
	case blockReqOut:
		out = append(out, make([]byte, 4096))
	}
	benchRequest(b, blk, features, out, in)
}

func BenchmarkBlockRead4K(b *testing.B)  { benchBlock(b, blockReqIn, allRing|BlockFeatureFlush) }
func BenchmarkBlockWrite4K(b *testing.B) { benchBlock(b, blockReqOut, allRing|BlockFeatureFlush) }

func BenchmarkBlockReadIndirect4K(b *testing.B) {
	benchBlock(b, blockReqIn, FeatureVersion1|FeatureIndirectDesc|BlockFeatureFlush)
}

func BenchmarkRng64(b *testing.B) { benchRequest(b, Rng{}, allRing, nil, []uint32{64}) }

func BenchmarkRateLimiterTake(b *testing.B) {
	r := NewRateLimiter(Limits{BytesPerSec: 1 << 40, OpsPerSec: 1 << 30}, nil)
	b.ReportAllocs()
	for b.Loop() {
		r.Take(4096)
	}
}

// BenchmarkNotifyRoundTrip is one request through the device goroutine:
// Notify from the caller, served there, the used-buffer interrupt back.
func BenchmarkNotifyRoundTrip(b *testing.B) {
	r := newRig(b, &echo{max: 16}, allRing, 16, Options{})
	q, _ := r.drv.add(nil, []uint32{64})
	r.dev.Notify(0)
	r.sig.waitUsed(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.drv.used()
		r.drv.resubmit(q.head)
		r.drv.chainLen[q.head] = 1
		r.dev.Notify(0)
		<-r.sig.used
	}
}
