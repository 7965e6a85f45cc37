package virtio

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
)

// NetPort is what a net device is plugged into: a port of pvisor's switch
// (hv/netswitch's Port implements it). Send, Receive, Waiting and Admit
// run on the device goroutine.
type NetPort interface {
	// MAC is the port's address, which the device offers in its config
	// space. The port enforces it as the source of every frame.
	MAC() [6]byte
	// Send hands the port a frame the guest transmitted (EthHeaderSize to
	// EthMaxFrame bytes). The port copies what it keeps before it
	// returns.
	Send(frame []byte)
	// Receive copies the oldest frame waiting for the guest into p (at
	// least EthMaxFrame bytes) and returns its length, or false if none
	// waits.
	Receive(p []byte) (int, bool)
	// Waiting says whether a frame waits for the guest.
	Waiting() bool
	// SetWake registers the function the port calls, from any goroutine,
	// when a frame starts waiting. It must not block.
	SetWake(func())
	// Admit charges a frame of n bytes the guest transmits to the port's
	// rate limits: 0 means it goes ahead, charged; otherwise it is how
	// long to wait before asking again, nothing charged.
	Admit(n uint64) time.Duration
}

// netQueueSize is each queue's maximum size (as Firecracker's).
const netQueueSize = 256

// The config space (struct virtio_net_config, section 5.1.4): mac[6] at
// 0, status le16 at 6, max_virtqueue_pairs le16 at 8 (meaningful with
// VIRTIO_NET_F_MQ, which is not offered: one pair), mtu le16 at 10.
const (
	netCfgMAC       = 0
	netCfgStatus    = 6
	netCfgPairs     = 8
	netCfgMTU       = 10
	netConfigSize   = 12
	netMinRxBuffers = netHdrSize + EthMaxFrame
)

// Request rules of the net device. Each breaks the device.
var (
	errNetRxReadable = errors.New("virtio-net: receive buffer with device-readable parts")
	errNetRxShort    = errors.New("virtio-net: receive buffers shorter than the 12-byte header and a 1514-byte frame")
	errNetTxWritable = errors.New("virtio-net: transmit buffer with device-writable parts")
	errNetTxLength   = errors.New("virtio-net: transmitted frame outside 14..1514 bytes after the 12-byte header")
	errNetTxFlags    = errors.New("virtio-net: transmit header with flags (no checksum offload was negotiated)")
	errNetTxGSO      = errors.New("virtio-net: transmit header with a GSO type (no segmentation offload was negotiated)")
)

// Net is the virtio-net backend (device ID 1) over a NetPort: queue 0
// receives, queue 1 transmits, one 12-byte virtio_net_hdr_v1 before each
// frame. It offers MAC, STATUS (always link up) and MTU (1500) and no
// offload, so the guest computes checksums and segments itself and posts
// receive buffers that each hold a whole frame (section 5.1.6.3.1: at
// least 1526 bytes without MRG_RXBUF or GUEST_TSO; pvisor requires it).
//
// Transmit copies the header and frame out of the guest before looking at
// them, checks the header (no flags, no GSO; the other fields mean nothing
// without offloads and are ignored) and the frame's length, and hands the
// copy to the port, after the port's rate limits admit it (the device
// goroutine waits, as block's does). Receive fills one writable chain per
// waiting frame; the port holds frames in its bounded queue until then.
type Net struct {
	port      NetPort
	mac       [6]byte
	txHoldoff time.Duration                  // netTxHoldoff; tests change it
	tx        [netHdrSize + EthMaxFrame]byte // the frame being sent, copied from the guest
	rx        [netHdrSize + EthMaxFrame]byte // the frame being received, header first
	saveDrops atomic.Uint64                  // frames waiting at the port that Save dropped
}

// NewNet makes a net backend plugged into p.
func NewNet(p NetPort) *Net { return &Net{port: p, mac: p.MAC(), txHoldoff: netTxHoldoff} }

// Type implements Backend.Type.
func (n *Net) Type() DeviceType { return TypeNet }

// Features implements Backend.Features.
func (n *Net) Features() uint64 { return NetFeatureMTU | NetFeatureMAC | NetFeatureStatus }

// QueueMax implements Backend.QueueMax: one receive and one transmit queue.
func (n *Net) QueueMax() []uint16 { return []uint16{netQueueSize, netQueueSize} }

// ConfigSize implements Backend.ConfigSize.
func (n *Net) ConfigSize() int { return netConfigSize }

// ReadConfig implements Backend.ReadConfig.
func (n *Net) ReadConfig(off int, p []byte) {
	var c [netConfigSize]byte
	copy(c[netCfgMAC:], n.mac[:])
	binary.LittleEndian.PutUint16(c[netCfgStatus:], netStatusLinkUp)
	binary.LittleEndian.PutUint16(c[netCfgPairs:], 1)
	binary.LittleEndian.PutUint16(c[netCfgMTU:], NetMTU)
	copy(p, c[off:])
}

// WriteConfig implements Backend.WriteConfig: nothing is writable (with
// VERSION_1 the mac field is read-only, section 5.1.4.2), so writes are
// ignored.
func (n *Net) WriteConfig(off int, p []byte) {}

// Activate implements Backend.Activate.
func (n *Net) Activate(uint64) {}

// Reset implements Backend.Reset. Frames waiting in the port stay there,
// and so do the port's rate-limit buckets: a reset does not refill them.
func (n *Net) Reset() {}

// Bind implements Source.Bind: a frame arriving at the port wakes the
// receive queue.
func (n *Net) Bind(wake func(q int)) { n.port.SetWake(func() { wake(netRxQueue) }) }

// Ready implements Source.Ready: the receive queue has work only while a
// frame waits.
func (n *Net) Ready(q int) bool { return q != netRxQueue || n.port.Waiting() }

// netTxHoldoff is how long the transmit queue's interrupts wait
// (InterruptHoldoff). Linux reaps sent frames in its transmit path and
// needs the interrupt only when its ring fills or to release a TCP
// socket's small queue, so a short wait loses nothing but interrupts.
const netTxHoldoff = 200 * time.Microsecond

// Holdoff implements InterruptHoldoff.Holdoff.
func (n *Net) Holdoff(q int) time.Duration {
	if q == netTxQueue {
		return n.txHoldoff
	}
	return 0
}

// Admit implements QueueThrottler.Admit: transmitted frames are charged to
// the port, by their length after the header; received ones are not.
func (n *Net) Admit(q int, c *Chain) time.Duration {
	if q != netTxQueue {
		return 0
	}
	return n.port.Admit(c.ReadLen() - min(c.ReadLen(), netHdrSize))
}

// Handle implements Backend.Handle.
func (n *Net) Handle(q int, c *Chain) (uint32, error) {
	if q == netRxQueue {
		return n.receive(c)
	}
	return 0, n.transmit(c)
}

func (n *Net) transmit(c *Chain) error {
	if len(c.Writable()) != 0 {
		return errNetTxWritable
	}
	l := c.ReadLen()
	if l < netHdrSize+EthHeaderSize || l > netHdrSize+EthMaxFrame {
		return errNetTxLength
	}
	p := n.tx[:l]
	if err := c.ReadAt(p, 0); err != nil {
		return err
	}
	// The checks read the copy only (p), never guest memory again.
	if p[0] != 0 {
		return errNetTxFlags
	}
	if p[1] != netHdrGSONone {
		return errNetTxGSO
	}
	n.port.Send(p[netHdrSize:])
	return nil
}

func (n *Net) receive(c *Chain) (uint32, error) {
	if len(c.Readable()) != 0 {
		return 0, errNetRxReadable
	}
	if c.WriteLen() < netMinRxBuffers {
		return 0, errNetRxShort
	}
	l, ok := n.port.Receive(n.rx[netHdrSize:])
	if !ok {
		return 0, nil // not reached: Ready said a frame waits, and only this goroutine takes them
	}
	h := n.rx[:netHdrSize]
	clear(h)
	binary.LittleEndian.PutUint16(h[10:], 1) // num_buffers: one buffer holds the frame (section 5.1.6.4)
	m := netHdrSize + l
	if err := c.WriteAt(n.rx[:m], 0); err != nil {
		return 0, err
	}
	return uint32(m), nil
}
