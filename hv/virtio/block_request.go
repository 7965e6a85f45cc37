package virtio

import (
	"encoding/binary"
	"errors"
)

// errBlockLayout: a request without room for its header and status byte.
// A driver following section 5.2.6 cannot make one, so it breaks the
// device.
var errBlockLayout = errors.New("virtio-blk: request shorter than its 16-byte header and 1-byte status")

// Handle implements Backend.Handle: one virtio-blk request. The header
// (type, sector) is copied out of guest memory before it is looked at; the
// data moves between the image and the guest's buffers directly, one
// bounded copy per buffer. The status byte is the chain's last writable
// byte; the data are the readable bytes after the header (OUT) or the
// writable bytes before the status (IN, GET_ID).
func (b *Block) Handle(_ int, c *Chain) (uint32, error) {
	if c.ReadLen() < blockHeaderSize || c.WriteLen() < 1 {
		return 0, errBlockLayout
	}
	var h [blockHeaderSize]byte
	if err := c.ReadAt(h[:], 0); err != nil {
		return 0, err
	}
	typ := binary.LittleEndian.Uint32(h[0:])
	sector := binary.LittleEndian.Uint64(h[8:])
	status, n, err := b.serve(c, typ, sector)
	if err != nil {
		return 0, err
	}
	st := [1]byte{status}
	if err := c.WriteAt(st[:], c.WriteLen()-1); err != nil {
		return 0, err
	}
	return n + 1, nil
}

// serve carries out one request and returns its status and the data bytes
// written to the guest. An error is a guest buffer gone from RAM.
func (b *Block) serve(c *Chain, typ uint32, sector uint64) (status uint8, written uint32, err error) {
	switch typ {
	case blockReqIn:
		n := c.WriteLen() - 1
		if !b.inRange(sector, n) {
			return BlockStatusIOErr, 0, nil
		}
		off := int64(sector * SectorSize)
		err := c.EachWritable(0, n, func(p []byte) error {
			k, err := b.f.ReadAt(p, off)
			off += int64(k)
			return err
		})
		if err != nil {
			return ioStatus(err)
		}
		return BlockStatusOK, uint32(n), nil
	case blockReqOut:
		n := c.ReadLen() - blockHeaderSize
		if b.ro || !b.inRange(sector, n) {
			return BlockStatusIOErr, 0, nil
		}
		off := int64(sector * SectorSize)
		err := c.EachReadable(blockHeaderSize, n, func(p []byte) error {
			k, err := b.f.WriteAt(p, off)
			off += int64(k)
			return err
		})
		if err == nil && !b.writeback {
			err = b.sync()
		}
		if attackHook != nil && err == nil {
			attackHook(b.f, int64(sector*SectorSize))
		}
		if err != nil {
			return ioStatus(err)
		}
		return BlockStatusOK, 0, nil
	case blockReqFlush:
		if !b.ro {
			if err := b.sync(); err != nil {
				return BlockStatusIOErr, 0, nil
			}
		}
		return BlockStatusOK, 0, nil
	case blockReqGetID:
		n := min(c.WriteLen()-1, blockIDSize)
		if err := c.WriteAt(b.id[:n], 0); err != nil {
			return 0, 0, err
		}
		return BlockStatusOK, uint32(n), nil
	}
	return BlockStatusUnsupp, 0, nil
}

// inRange says whether n bytes from sector are whole sectors within the
// disk.
func (b *Block) inRange(sector, n uint64) bool {
	return n%SectorSize == 0 && sector <= b.capacity && n/SectorSize <= b.capacity-sector
}

// sync makes the image's written data durable.
func (b *Block) sync() error {
	if err := b.f.Sync(); err != nil {
		return err
	}
	b.syncs.Add(1)
	return nil
}

// ioStatus is the result of a failed data transfer: a guest buffer gone
// from RAM breaks the device, a host I/O error is VIRTIO_BLK_S_IOERR.
func ioStatus(err error) (uint8, uint32, error) {
	if errors.Is(err, ErrBufferGone) {
		return 0, 0, err
	}
	return BlockStatusIOErr, 0, nil
}
