package emul

import "fmt"

// SysCtlState is the saved state of the system-control ports (see
// SysCtl.Save).
type SysCtlState struct {
	// PortB holds port 0x61's writable bits (0-3); bit 0 is PIT counter
	// 2's gate, which the PIT's state holds as well.
	PortB uint8
	// Refresh is the refresh toggle (port 0x61 bit 4) the next read
	// shows.
	Refresh bool
	// POST is the last code written to port 0x80.
	POST uint8
	// PortA is port 0x92 as written.
	PortA uint8
}

// Save returns the ports' state.
func (s *SysCtl) Save() SysCtlState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SysCtlState{PortB: s.portB, Refresh: s.refresh, POST: s.post, PortA: s.portA}
}

// Restore puts back a state from Save, or refuses it (changing nothing)
// when a field holds what the ports cannot reach. It neither sets the
// PIT's gate nor calls OnReset: both belong to the saved PIT and to the
// past.
func (s *SysCtl) Restore(st SysCtlState) error {
	if err := st.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.portB, s.refresh, s.post, s.portA = st.PortB, st.Refresh, st.POST, st.PortA
	return nil
}

func (st *SysCtlState) check() error {
	if st.PortB&^portBWritable != 0 {
		return fmt.Errorf("emul: port 0x61 holds %#02x outside its writable bits %#02x", st.PortB, portBWritable)
	}
	return nil
}
