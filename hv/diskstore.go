package hv

import (
	"errors"

	"github.com/pvisor/pvisor/hv/diskcrypt"
	"github.com/pvisor/pvisor/hv/virtio"
)

// openDisk opens the block backend of disk d with serial id: the raw
// image, an encrypted image (d.Key) or a copy-on-write overlay over a raw
// image (d.Overlay; not over an encrypted one, whose clusters the overlay
// would hold in the clear).
func openDisk(d Disk, id string) (*virtio.Block, error) {
	o := virtio.BlockOptions{ReadOnly: d.ReadOnly, ID: id}
	if d.Key != nil && d.Overlay != "" {
		return nil, errors.New("an overlay over an encrypted image would hold its clusters unencrypted: not supported; give one or the other")
	}
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
		return openOverlayDisk(d, o) // diskstate.go
	}
	return virtio.OpenBlock(d.Path, o)
}
