package mm

import "unsafe"

// hfnOf returns the host frame of ram's first byte.
func hfnOf(ram []byte) HFN {
	return HFN(uintptr(unsafe.Pointer(unsafe.SliceData(ram))) / FrameSize)
}
