package virtio

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// BlockOptions configure a block device.
type BlockOptions struct {
	// ReadOnly offers VIRTIO_BLK_F_RO and refuses writes with
	// VIRTIO_BLK_S_IOERR. OpenBlock then opens the image read-only.
	ReadOnly bool
	// ID is the serial GET_ID returns (at most 20 bytes; shorter is
	// padded with NULs).
	ID string
}

// blockQueueSize is the block device's one queue's maximum size (as
// Firecracker's). seg_max is two less: a request's header and status
// byte take a descriptor each, and a chain holds at most the queue size.
const blockQueueSize = 256

// BlockStore is what a block device reads and writes: a raw image file
// (FileStore), or a layer over one (an encrypted image, a copy-on-write
// overlay: package hv/overlay). Byte offsets are whole sectors. Its methods
// run on the device goroutine only, one at a time, and never hold guest
// memory past the call.
type BlockStore interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes every completed write durable.
	Sync() error
	// Size is the disk's size in bytes, fixed while the store is open.
	Size() int64
	Close() error
}

// FileStore is a raw image file as a BlockStore: sector s is bytes
// [512·s, 512·s+512) of the file, and the size is the file's at open.
type FileStore struct {
	f    *os.File
	size int64
}

// NewFileStore makes a store of f, which must be a regular file. The store
// owns f from now on.
func NewFileStore(f *os.File) (*FileStore, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("virtio-blk: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("virtio-blk: image %s is not a regular file (%s): give a raw image file", f.Name(), fi.Mode().Type())
	}
	return &FileStore{f: f, size: fi.Size()}, nil
}

func (s *FileStore) ReadAt(p []byte, off int64) (int, error)  { return s.f.ReadAt(p, off) }
func (s *FileStore) WriteAt(p []byte, off int64) (int, error) { return s.f.WriteAt(p, off) }
func (s *FileStore) Sync() error                              { return unix.Fdatasync(int(s.f.Fd())) }
func (s *FileStore) Size() int64                              { return s.size }
func (s *FileStore) Close() error                             { return s.f.Close() }

// File is the image file.
func (s *FileStore) File() *os.File { return s.f }

// Block is the virtio-blk backend over a BlockStore; the capacity is the
// store's size in whole sectors. Requests run on the device goroutine
// (block_request.go).
type Block struct {
	f        BlockStore
	ro       bool
	capacity uint64 // sectors
	id       [blockIDSize]byte

	// writeback is true when the driver negotiated VIRTIO_BLK_F_FLUSH
	// (set by Activate before the device goroutine starts): writes then
	// complete once they reach the host file, and FLUSH makes them
	// durable. Without it the disk is write-through and every write is
	// made durable (fdatasync) before it completes (section 5.2.6.2).
	writeback bool

	syncs atomic.Uint64 // fdatasync calls that succeeded
}

// OpenBlock opens the raw image at path (read-write unless o.ReadOnly).
func OpenBlock(path string, o BlockOptions) (*Block, error) {
	flag := os.O_RDWR
	if o.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("virtio-blk: %w", err)
	}
	b, err := NewBlock(f, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// NewBlock makes a block backend over f, which must be a regular file
// opened for reading (and writing unless o.ReadOnly). The backend owns f
// from now on; Close closes it.
func NewBlock(f *os.File, o BlockOptions) (*Block, error) {
	s, err := NewFileStore(f)
	if err != nil {
		return nil, err
	}
	return NewBlockStore(s, o)
}

// NewBlockStore makes a block backend over s (opened for writing unless
// o.ReadOnly). The backend owns s from now on; Close closes it. On error s
// is not closed.
func NewBlockStore(s BlockStore, o BlockOptions) (*Block, error) {
	if len(o.ID) > blockIDSize {
		return nil, fmt.Errorf("virtio-blk: serial %q is longer than %d bytes", o.ID, blockIDSize)
	}
	if s.Size() < 0 {
		return nil, fmt.Errorf("virtio-blk: store size %d is negative", s.Size())
	}
	b := &Block{f: s, ro: o.ReadOnly, capacity: uint64(s.Size()) / SectorSize}
	copy(b.id[:], o.ID)
	return b, nil
}

// Store is the backend's store.
func (b *Block) Store() BlockStore { return b.f }

// Close closes the image. Precondition: the device is reset or was never
// started.
func (b *Block) Close() error { return b.f.Close() }

// Syncs is the number of times the image was made durable (fdatasync).
func (b *Block) Syncs() uint64 { return b.syncs.Load() }

// Capacity is the disk's size in 512-byte sectors.
func (b *Block) Capacity() uint64 { return b.capacity }

// Type implements Backend.Type.
func (b *Block) Type() DeviceType { return TypeBlock }

// Features implements Backend.Features.
func (b *Block) Features() uint64 {
	f := BlockFeatureSegMax | BlockFeatureBlkSize | BlockFeatureFlush
	if b.ro {
		f |= BlockFeatureRO
	}
	return f
}

// QueueMax implements Backend.QueueMax: one request queue.
func (b *Block) QueueMax() []uint16 { return []uint16{blockQueueSize} }

// The config space (struct virtio_blk_config, section 5.2.4) up to
// blk_size: capacity le64 at 0, size_max le32 at 8 (not offered),
// seg_max le32 at 12, geometry at 16 (not offered), blk_size le32 at 20.
const (
	blockCfgCapacity = 0
	blockCfgSegMax   = 12
	blockCfgBlkSize  = 20
	blockConfigSize  = 24
)

// ConfigSize implements Backend.ConfigSize.
func (b *Block) ConfigSize() int { return blockConfigSize }

// ReadConfig implements Backend.ReadConfig.
func (b *Block) ReadConfig(off int, p []byte) {
	var c [blockConfigSize]byte
	binary.LittleEndian.PutUint64(c[blockCfgCapacity:], b.capacity)
	binary.LittleEndian.PutUint32(c[blockCfgSegMax:], blockQueueSize-2)
	binary.LittleEndian.PutUint32(c[blockCfgBlkSize:], SectorSize)
	copy(p, c[off:])
}

// WriteConfig implements Backend.WriteConfig: no field is writable
// (writeback is not offered), so writes are ignored.
func (b *Block) WriteConfig(off int, p []byte) {}

// Activate implements Backend.Activate.
func (b *Block) Activate(features uint64) { b.writeback = features&BlockFeatureFlush != 0 }

// Reset implements Backend.Reset.
func (b *Block) Reset() { b.writeback = false }
