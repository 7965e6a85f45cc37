package netswitch

import "sync/atomic"

// counters are a port's or a segment's, updated on device goroutines and
// read from anywhere.
type counters struct {
	txFrames, txBytes atomic.Uint64
	rxFrames, rxBytes atomic.Uint64
	spoofDrops        atomic.Uint64
	fullDrops         atomic.Uint64
	badDrops          atomic.Uint64
	throttled         atomic.Uint64
}

// Stats are a port's or segment's counters at one moment. For a port, tx
// is what its VM sent into the segment and rx what the segment delivered
// to it; for a segment, the sums over every port it has had.
type Stats struct {
	TxFrames, TxBytes uint64 // frames accepted from the port(s), and their bytes
	RxFrames, RxBytes uint64 // frames copied into the port's (ports') queue(s)
	SpoofDrops        uint64 // frames sent with a source MAC not the port's
	FullDrops         uint64 // frames dropped because the destination port's queue was full
	BadDrops          uint64 // frames shorter than a header or longer than the MTU allows
	Throttled         uint64 // waits the port's rate limits imposed on its sender
}

func (c *counters) snapshot() Stats {
	return Stats{
		TxFrames: c.txFrames.Load(), TxBytes: c.txBytes.Load(),
		RxFrames: c.rxFrames.Load(), RxBytes: c.rxBytes.Load(),
		SpoofDrops: c.spoofDrops.Load(), FullDrops: c.fullDrops.Load(),
		BadDrops: c.badDrops.Load(), Throttled: c.throttled.Load(),
	}
}
