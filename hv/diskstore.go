package hv

import (
	"errors"

	"github.com/pvisor/pvisor/hv/virtio"
)

// openDisk opens the block backend of disk d with serial id: the raw
// image, an encrypted image (d.Key) or a copy-on-write overlay over either
// (d.Overlay).
func openDisk(d Disk, id string) (*virtio.Block, error) {
	o := virtio.BlockOptions{ReadOnly: d.ReadOnly, ID: id}
	if d.Key != nil {
		return nil, errors.New("encrypted disk images are not supported yet")
	}
	if d.Overlay != "" {
		return nil, errors.New("copy-on-write overlays are not supported yet")
	}
	return virtio.OpenBlock(d.Path, o)
}
