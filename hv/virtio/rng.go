package virtio

import (
	"crypto/rand"
	"errors"
)

// Rng is the virtio-rng (entropy) backend: it fills the driver's buffers
// from the host's crypto/rand.
type Rng struct{}

// rngMaxRequest bounds the bytes one request gets (the device may return
// fewer than the buffers hold, section 5.4.6), so that chains of large or
// overlapping buffers cannot make one request cost the host more.
const rngMaxRequest = 64 << 10

// errRngReadable: section 5.4.6.1, "The driver MUST NOT place
// driver-readable buffers into the queue."
var errRngReadable = errors.New("virtio-rng: request with device-readable buffers")

// Type implements Backend.Type.
func (Rng) Type() DeviceType { return TypeRng }

// Features implements Backend.Features: none.
func (Rng) Features() uint64 { return 0 }

// QueueMax implements Backend.QueueMax: one request queue.
func (Rng) QueueMax() []uint16 { return []uint16{256} }

// ConfigSize implements Backend.ConfigSize: no config space.
func (Rng) ConfigSize() int { return 0 }

// ReadConfig implements Backend.ReadConfig.
func (Rng) ReadConfig(int, []byte) {}

// WriteConfig implements Backend.WriteConfig.
func (Rng) WriteConfig(int, []byte) {}

// Activate implements Backend.Activate.
func (Rng) Activate(uint64) {}

// Reset implements Backend.Reset.
func (Rng) Reset() {}

// Handle implements Backend.Handle.
func (Rng) Handle(_ int, c *Chain) (uint32, error) {
	if c.ReadLen() != 0 || len(c.Readable()) != 0 {
		return 0, errRngReadable
	}
	n := min(c.WriteLen(), rngMaxRequest)
	err := c.EachWritable(0, n, func(p []byte) error {
		rand.Read(p) // never fails (it ends the program if the host's source does)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return uint32(n), nil
}
