package virtio

// Numbers from the virtio 1.x specification (OASIS, "Virtual I/O Device
// (VIRTIO) Version 1.1"); each group names its section.

// DeviceType is a virtio device ID (section 5).
type DeviceType uint32

// Device IDs (section 5).
const (
	TypeNet   DeviceType = 1
	TypeBlock DeviceType = 2
	TypeRng   DeviceType = 4
)

// Device status bits (section 2.1).
const (
	StatusAcknowledge      uint8 = 1
	StatusDriver           uint8 = 2
	StatusDriverOK         uint8 = 4
	StatusFeaturesOK       uint8 = 8
	StatusDeviceNeedsReset uint8 = 0x40
	StatusFailed           uint8 = 0x80
)

// Feature bits the device layer itself implements (section 6). Bits 0-23
// are the device type's; 24-37 the transport's and the ring's.
const (
	FeatureIndirectDesc uint64 = 1 << 28 // VIRTIO_RING_F_INDIRECT_DESC
	FeatureEventIdx     uint64 = 1 << 29 // VIRTIO_RING_F_EVENT_IDX
	FeatureVersion1     uint64 = 1 << 32 // VIRTIO_F_VERSION_1
)

// ringFeatures are offered by every device: the ring features this package
// implements and VERSION_1 (there is no legacy interface).
const ringFeatures = FeatureIndirectDesc | FeatureEventIdx | FeatureVersion1

// MaxQueueSize is the largest split-virtqueue size (section 2.7: "Queue
// Size ... maximum 32768").
const MaxQueueSize = 32768

// Split-virtqueue layout (section 2.7).
const (
	descSize = 16 // struct virtq_desc: addr le64, len le32, flags le16, next le16

	descFlagNext     = 1 // VIRTQ_DESC_F_NEXT
	descFlagWrite    = 2 // VIRTQ_DESC_F_WRITE
	descFlagIndirect = 4 // VIRTQ_DESC_F_INDIRECT

	availFlagNoInterrupt = 1 // VIRTQ_AVAIL_F_NO_INTERRUPT
	usedElemSize         = 8 // struct virtq_used_elem: id le32, len le32

	// Alignment of the three areas (section 2.7, table "Virtqueue Part
	// Alignment").
	descAlign  = 16
	availAlign = 2
	usedAlign  = 4
)

// Ring area sizes in bytes for a queue of n entries (section 2.7): flags and
// idx (4 bytes), the ring, and with EVENT_IDX the trailing used_event or
// avail_event (2 bytes).
func descTableBytes(n uint16) uint64 { return descSize * uint64(n) }
func availBytes(n uint16, eventIdx bool) uint64 {
	return 4 + 2*uint64(n) + eventBytes(eventIdx)
}
func usedBytes(n uint16, eventIdx bool) uint64 {
	return 4 + usedElemSize*uint64(n) + eventBytes(eventIdx)
}
func eventBytes(eventIdx bool) uint64 {
	if eventIdx {
		return 2
	}
	return 0
}

// Block device (section 5.2).
const (
	BlockFeatureSegMax  uint64 = 1 << 2 // VIRTIO_BLK_F_SEG_MAX
	BlockFeatureRO      uint64 = 1 << 5 // VIRTIO_BLK_F_RO
	BlockFeatureBlkSize uint64 = 1 << 6 // VIRTIO_BLK_F_BLK_SIZE
	BlockFeatureFlush   uint64 = 1 << 9 // VIRTIO_BLK_F_FLUSH

	blockReqIn    = 0 // VIRTIO_BLK_T_IN
	blockReqOut   = 1 // VIRTIO_BLK_T_OUT
	blockReqFlush = 4 // VIRTIO_BLK_T_FLUSH
	blockReqGetID = 8 // VIRTIO_BLK_T_GET_ID

	BlockStatusOK     = 0 // VIRTIO_BLK_S_OK
	BlockStatusIOErr  = 1 // VIRTIO_BLK_S_IOERR
	BlockStatusUnsupp = 2 // VIRTIO_BLK_S_UNSUPP

	SectorSize      = 512 // the unit of capacity and sector, whatever blk_size says
	blockHeaderSize = 16  // struct virtio_blk_req: type le32, reserved le32, sector le64
	blockIDSize     = 20  // VIRTIO_BLK_ID_BYTES
)

// Net device (section 5.1). pvisor offers no offloads: the guest computes
// checksums and segments, so every frame fits the MTU.
const (
	NetFeatureMTU    uint64 = 1 << 3  // VIRTIO_NET_F_MTU
	NetFeatureMAC    uint64 = 1 << 5  // VIRTIO_NET_F_MAC
	NetFeatureStatus uint64 = 1 << 16 // VIRTIO_NET_F_STATUS

	netStatusLinkUp = 1 // VIRTIO_NET_S_LINK_UP

	// netHdrSize is struct virtio_net_hdr_v1 (section 5.1.6): flags u8,
	// gso_type u8, hdr_len le16, gso_size le16, csum_start le16,
	// csum_offset le16, num_buffers le16. With VERSION_1 the header is
	// always this long, MRG_RXBUF or not.
	netHdrSize = 12

	netHdrGSONone = 0 // VIRTIO_NET_HDR_GSO_NONE

	netRxQueue = 0 // receiveq1
	netTxQueue = 1 // transmitq1

	// Ethernet frames as the guest sends them (no FCS): a 14-byte header
	// (destination, source, EtherType) and at most NetMTU bytes of payload.
	EthHeaderSize = 14
	NetMTU        = 1500
	EthMaxFrame   = EthHeaderSize + NetMTU
)
