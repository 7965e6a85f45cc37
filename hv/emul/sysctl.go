package emul

import "sync"

// PC system-control ports.
const (
	// SysCtlPortB is the AT's "port B" (once the 8255 PPI's port B): the
	// PIT counter 2 gate and speaker enable, NMI sources, and status bits
	// that Linux's TSC calibration polls.
	SysCtlPortB = 0x61
	// POSTPort takes the firmware's power-on self-test codes; writes to it
	// are Linux's io_delay.
	POSTPort = 0x80
	// SysCtlPortA is the PS/2 "port A": fast A20 gate and fast reset.
	SysCtlPortA = 0x92
)

// Port B bits.
const (
	portBGate2    = 0x01 // PIT counter 2 gate
	portBSpeaker  = 0x02 // speaker data enable
	portBNoParity = 0x04 // disable parity-error NMI (SERR#)
	portBNoIOCHK  = 0x08 // disable channel-check NMI (IOCHK#)
	portBWritable = portBGate2 | portBSpeaker | portBNoParity | portBNoIOCHK
	portBRefresh  = 0x10 // refresh request toggle
	portBOut2     = 0x20 // PIT counter 2 output
	portAReset    = 0x01 // fast reset on a 0 to 1 transition
	portAA20      = 0x02 // A20 enabled
)

// SysCtl is the PC's scattered system-control logic: port B at 0x61, the
// POST diagnostic port at 0x80 and port A at 0x92.
//
// Port B: bits 0-3 are read back as written (bit 0 gates PIT counter 2,
// bit 1 enables the speaker, which has no sound here, bits 2-3 disable
// NMI sources that never fire); bit 4 toggles on every read, standing for
// the DRAM refresh clock that old delay loops watch; bit 5 is counter 2's
// output, which Linux polls to calibrate the TSC; bits 6-7 (NMI source
// status) read 0. Port 0x80 accepts anything and reads 0xFF, as on a
// chipset without a POST card; the last code written is kept for
// diagnostics. Port A keeps what is written; bit 1 (A20) changes nothing
// since long-mode guests need A20 on; a 0 to 1 transition of bit 0 calls
// OnReset.
//
// mu protects everything below it. Lock order: SysCtl before PIT.
type SysCtl struct {
	mu      sync.Mutex
	pit     *PIT
	portB   uint8 // the writable bits
	refresh bool
	post    uint8
	portA   uint8

	// OnReset, when not nil, is called (with the SysCtl's lock held) when
	// the guest requests a reset through port A bit 0. It must not do
	// port I/O. Set it before the device is shared.
	OnReset func()
}

// NewSysCtl returns the system-control ports wired to pit's counter 2
// (pit may be nil: bit 5 then reads 0). The counter 2 gate starts off.
func NewSysCtl(pit *PIT) *SysCtl {
	return &SysCtl{pit: pit, portA: portAA20}
}

// POST returns the last code written to port 0x80.
func (s *SysCtl) POST() uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.post
}

// In implements PortDevice for 0x61, 0x80 and 0x92.
func (s *SysCtl) In(port uint16, size int) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return inBytes(port, size, s.readByte)
}

// Out implements PortDevice for 0x61, 0x80 and 0x92.
func (s *SysCtl) Out(port uint16, size int, v uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	outBytes(port, size, v, s.writeByte)
}

// Precondition: mu held.
func (s *SysCtl) readByte(port uint16) uint8 {
	switch port {
	case SysCtlPortB:
		v := s.portB
		if s.refresh {
			v |= portBRefresh
		}
		s.refresh = !s.refresh
		if s.pit != nil && s.pit.Output(2) {
			v |= portBOut2
		}
		return v
	case SysCtlPortA:
		return s.portA
	}
	return 0xFF
}

// Precondition: mu held.
func (s *SysCtl) writeByte(port uint16, v uint8) {
	switch port {
	case SysCtlPortB:
		s.portB = v & portBWritable
		if s.pit != nil {
			s.pit.SetGate(2, v&portBGate2 != 0)
		}
	case POSTPort:
		s.post = v
	case SysCtlPortA:
		old := s.portA
		s.portA = v
		if old&portAReset == 0 && v&portAReset != 0 && s.OnReset != nil {
			s.OnReset()
		}
	}
}
