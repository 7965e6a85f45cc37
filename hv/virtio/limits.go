package virtio

import "errors"

// ErrLimitsElsewhere is SetLimits' answer for a device whose requests are
// bounded by its backend (a NIC: its switch port's limits).
var ErrLimitsElsewhere = errors.New("virtio: this device's limits belong to its backend (a NIC's are its switch port's)")

// SetLimits changes the device's rate limits at run time (pvisor ctl
// device-limits); zero values are unlimited. It is safe while the device
// runs: the next request is admitted against the new limits, tokens held
// are kept up to the new burst, and a debt is kept.
func (d *Device) SetLimits(l Limits) error {
	if d.limiter == nil {
		return ErrLimitsElsewhere
	}
	d.limiter.SetLimits(l)
	return nil
}

// Limits returns the device's rate limits (ErrLimitsElsewhere for a NIC).
func (d *Device) Limits() (Limits, error) {
	if d.limiter == nil {
		return Limits{}, ErrLimitsElsewhere
	}
	return d.limiter.Limits(), nil
}
