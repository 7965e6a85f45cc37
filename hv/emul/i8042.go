package emul

import "sync"

// I8042 is the part of the keyboard controller (ports 0x60 and 0x64) that
// a PC guest uses to reset the machine: command 0xFE pulses the reset line,
// and command 0xD1 writes the output port, whose bit 0 low resets too. No
// keyboard or mouse is attached: the status register always reads an empty
// controller (no input or output pending, self-test passed).
//
// mu protects state.
type I8042 struct {
	mu      sync.Mutex
	pending uint8 // command waiting for its data byte at port 0x60
	// OnReset is called (without the lock) when the guest resets the
	// machine. It must only signal.
	OnReset func()
}

const (
	i8042Data   = 0x60
	i8042Status = 0x64

	i8042StatusSysFlag = 1 << 2 // self-test passed
	i8042CmdWriteOut   = 0xd1
	i8042CmdReset      = 0xfe
)

// In implements PortDevice.
func (k *I8042) In(port uint16, size int) uint32 {
	if port == i8042Status {
		return i8042StatusSysFlag
	}
	return 0
}

// Out implements PortDevice.
func (k *I8042) Out(port uint16, size int, v uint32) {
	k.mu.Lock()
	reset := false
	switch port {
	case i8042Status:
		switch uint8(v) {
		case i8042CmdReset:
			reset = true
		case i8042CmdWriteOut:
			k.pending = i8042CmdWriteOut
		default:
			k.pending = 0
		}
	case i8042Data:
		if k.pending == i8042CmdWriteOut && v&1 == 0 {
			reset = true
		}
		k.pending = 0
	}
	k.mu.Unlock()
	if reset && k.OnReset != nil {
		k.OnReset()
	}
}
