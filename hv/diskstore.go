package hv

import (
	"errors"

	"github.com/pvisor/pvisor/hv/diskcrypt"
	"github.com/pvisor/pvisor/hv/virtio"
)

// openDisk opens the block backend of disk d with serial id: the raw
// image, an encrypted image (d.Key) or a copy-on-write overlay over either
// (d.Overlay).
func openDisk(d Disk, id string) (*virtio.Block, error) {
	o := virtio.BlockOptions{ReadOnly: d.ReadOnly, ID: id}
	if d.Key != nil {
		s, err := diskcrypt.Open(d.Path, d.Key, diskcrypt.Options{ReadOnly: d.ReadOnly})
		if err != nil {
			return nil, err
		}
		b, err := virtio.NewBlockStore(s, o)
		if err != nil {
			s.Close()
		}
		return b, err
	}
	if d.Overlay != "" {
		return nil, errors.New("copy-on-write overlays are not supported yet")
	}
	return virtio.OpenBlock(d.Path, o)
}
