//go:build linux && amd64

package interp

import (
	"encoding/binary"
	"sync"

	"github.com/pvisor/pvisor/hv/interp/internal/native"
)

// hostCPU reads the host's CPUID once.
var hostCPU = sync.OnceValue(func() hostVariant {
	_, b, c, d := native.CPUID(0, 0)
	var v [12]byte
	binary.LittleEndian.PutUint32(v[0:], b)
	binary.LittleEndian.PutUint32(v[4:], d)
	binary.LittleEndian.PutUint32(v[8:], c)
	h := hostVariant{vendor: string(v[:])}
	if max, _, _, _ := native.CPUID(0, 0); max >= 7 {
		_, b7, _, _ := native.CPUID(7, 0)
		h.fdpExcptnOnly = b7&(1<<6) != 0
	}
	return h
})
