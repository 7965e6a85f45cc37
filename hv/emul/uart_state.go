package emul

import "fmt"

// UARTState is the saved state of the 16550A (see UART.Save). The
// transmitter has no queue to save: a byte written to THR reaches the
// output writer at once, so the transmit side is THREPending alone.
type UARTState struct {
	// RX is the receive queue, oldest byte first, at most UARTRxCapacity
	// bytes.
	RX []byte
	// RBR is the byte last read from the receive buffer (what a read of
	// an empty one returns).
	RBR uint8
	// IER is the interrupt enable register (bits 0-3).
	IER uint8
	// LCR, SCR, DLL and DLM are the line control, scratch and divisor
	// latch registers, stored as written.
	LCR, SCR, DLL, DLM uint8
	// MCR is the modem control register (bits 0-4).
	MCR uint8
	// LSRErrors are the line status error bits waiting to be read (only
	// overrun, bit 1).
	LSRErrors uint8
	// MSRDeltas are the modem status delta bits waiting to be read
	// (bits 0-3); the state bits are computed.
	MSRDeltas uint8
	// FIFO is FCR's enable bit; Trigger the receive trigger level (1, 4,
	// 8 or 14; 1 without FIFOs).
	FIFO    bool
	Trigger uint8
	// THREPending is the transmit-holding-register-empty interrupt
	// condition, cleared by a THR write or an IIR read that reports it.
	THREPending bool
	// Overruns counts the input bytes dropped because the queue was full.
	Overruns uint64
}

// Save returns the UART's state. The queue is copied.
func (u *UART) Save() UARTState {
	u.mu.Lock()
	defer u.mu.Unlock()
	return UARTState{
		RX:  append([]byte(nil), u.rx...),
		RBR: u.rbr, IER: u.ier, LCR: u.lcr, SCR: u.scr, DLL: u.dll, DLM: u.dlm, MCR: u.mcr,
		LSRErrors: u.lsrErr, MSRDeltas: u.msr, FIFO: u.fifo, Trigger: uint8(u.trigger),
		THREPending: u.thrPending, Overruns: u.overruns,
	}
}

// Restore puts back a state from Save, or refuses it (changing nothing)
// when a field holds what the UART cannot reach. The level of the
// interrupt line is recomputed but not driven onto the PIC, whose own
// state holds it.
func (u *UART) Restore(st UARTState) error {
	if err := st.check(); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.apply(st)
	return nil
}

func (st *UARTState) check() error {
	switch {
	case len(st.RX) > UARTRxCapacity:
		return fmt.Errorf("emul: UART receive queue of %d bytes exceeds %d", len(st.RX), UARTRxCapacity)
	case st.IER&^ierMask != 0:
		return fmt.Errorf("emul: UART IER %#02x sets bits outside %#02x", st.IER, ierMask)
	case st.MCR&^mcrMask != 0:
		return fmt.Errorf("emul: UART MCR %#02x sets bits outside %#02x", st.MCR, mcrMask)
	case st.LSRErrors&^lsrOE != 0:
		return fmt.Errorf("emul: UART LSR errors %#02x other than overrun", st.LSRErrors)
	case st.MSRDeltas&^0x0F != 0:
		return fmt.Errorf("emul: UART MSR deltas %#02x outside bits 0-3", st.MSRDeltas)
	}
	valid := false
	for _, l := range uartTriggerLevels {
		if int(st.Trigger) == l {
			valid = true
		}
	}
	if !valid || !st.FIFO && st.Trigger != 1 {
		return fmt.Errorf("emul: UART trigger level %d (FIFOs enabled: %v)", st.Trigger, st.FIFO)
	}
	return nil
}

// apply installs a checked state.
// Precondition: mu held.
func (u *UART) apply(st UARTState) {
	u.rx = append([]byte(nil), st.RX...)
	u.rbr, u.ier, u.lcr, u.scr, u.dll, u.dlm, u.mcr = st.RBR, st.IER, st.LCR, st.SCR, st.DLL, st.DLM, st.MCR
	u.lsrErr, u.msr, u.fifo, u.trigger = st.LSRErrors, st.MSRDeltas, st.FIFO, int(st.Trigger)
	u.thrPending, u.overruns = st.THREPending, st.Overruns
	u.line = u.level()
}
